"""The Japanese of the knowledge base follows one style guide (docs/ja-style.md).

What a Japanese administrator reads must use one term per concept, put no
half-width space after 。 or 、, space Japanese against Latin words one way, and
never fall back to English. The rules are enforced on the knowledge files whose
texts have been reviewed against the guide (``ENFORCED``); for every other
knowledge YAML the same checks run and print how many texts still break them,
so the list can be extended file by file.

Run ``python tests/test_ja_style.py`` for the per-file table.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tests/test_ja_style.py` from anywhere
    sys.path.insert(0, str(ROOT))

from knowledge.yamlload import load_yaml  # noqa: E402

KNOWLEDGE = ROOT / "knowledge"

# Files reviewed against docs/ja-style.md: every rule below must hold in them.
ENFORCED: tuple[str, ...] = (
    "findings.yaml",
    "blocklists.yaml",
    "digest_texts.yaml",
    "engine_texts.yaml",
    "detail_phrases.yaml",
    "dkim_selectors.yaml",
    "ptr_patterns.yaml",
    "remediation/spf.yaml",
    "remediation/dkim.yaml",
    "remediation/dmarc.yaml",
    "remediation/dns.yaml",
    "remediation/blocklist.yaml",
    "remediation/requirements.yaml",
    "remediation/message.yaml",
    "remediation/postfix.yaml",
    "remediation/bounce.yaml",
    "remediation/provider.yaml",
    "providers.yaml",
    "bounce/explanations.yaml",
    *sorted(str(p.relative_to(KNOWLEDGE)) for p in (KNOWLEDGE / "bounce" / "reasons").glob("*.yaml")),
    *sorted(str(p.relative_to(KNOWLEDGE)) for p in (KNOWLEDGE / "bounce" / "providers").glob("*.yaml")),
)

# The glossary of docs/ja-style.md: a pattern that must not appear -> the term to use.
TERMS: tuple[tuple[str, str], ...] = (
    # The one gloss 「ブロックリスト（いわゆるブラックリスト）」 lets a reader who knows only the
    # older word recognise the term; everywhere else it is ブロックリスト.
    (r"(?<!いわゆる)ブラックリスト", "ブロックリスト"),
    (r"ホワイトリスト", "許可リスト"),
    (r"フォルダ(?!ー)", "フォルダー"),
    (r"受信箱", "受信トレイ"),
    (r"アラインメント", "アライメント"),
    (r"問合せ|問い合せ|問合わせ", "問い合わせ"),
    (r"優先順位", "優先度"),
    (r"サーバ(?!ー)", "サーバー"),
    (r"ユーザ(?!ー)", "ユーザー"),
    (r"共有サーバー|共有のレンタルサーバー", "共用のレンタルサーバー"),
    (r"リバースDNS|逆引きDNSレコード", "逆引き（PTRレコード）"),
    (r"バルク送信者", "一括送信者 / 大量送信者"),
    (r"スパム率", "迷惑メール率"),
    (r"サプレッションリスト(?!）)", "送信停止リスト（サプレッションリスト）"),
    (r"あなた", "お使いの / 自社の"),
    (r"ちゃんと", "きちんと"),
    (r"嫌われ", "不利に扱われる"),
    (r"(?i)original case|元の事例|もとになった|きっかけ(?:に|と)なった事例", "(no reference to the project's own story)"),
)

_JA = "\u3040-\u30ff\u3400-\u9fff\uff01-\uff60\u3000-\u303f"
# Rule: no half-width space between Japanese and a Latin word (Gmail, SPF, IPv4,
# Postmaster Tools). Code is set off by spaces so it can be copied: a run of Latin
# text next to the space is code when it holds a code sign (p=none, 192.0.2.10,
# {target}, -all, _dmarc, ip4:..., a header name such as List-Unsubscribe) or starts with a lower-case letter
# (postfix reload, include, permerror).
_LATIN_RUN = re.compile(rf"[{_JA}]( )([\x20-\x7e]+?)(?=[^\x20-\x7e]|$)|(?:^|(?<=[^\x20-\x7e]))([\x20-\x7e]+?)( )(?=[{_JA}])")
_CODE_SIGN = re.compile(r"[=/{}<>@+*\"'\\$#%~_|`]|\S\.\S|:\S|(?:^|\s)-|\w-\w|\d\.\d")


# DNS record types and response codes quoted as values ("{rdtype} の問い合わせ",
# "リゾルバーが SERVFAIL を返しました") may be set off like code.
DNS_LITERALS = frozenset({"A", "AAAA", "MX", "TXT", "PTR", "SOA", "NS", "CNAME",
                          "SERVFAIL", "NXDOMAIN", "NOERROR", "REFUSED", "NODATA"})


# A receiver's own error code quoted as a value (Outlook.com S3150, Yahoo TSS04,
# Comcast ES000001, iCloud HM08): upper-case letters with digits, set off like code.
_REPLY_CODE = re.compile(r"(?=[A-Z0-9]*[0-9])(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,}")


def spacing_problem(text: str) -> str | None:
    """The Latin run that is spaced off from Japanese although it is a word, or None."""
    for m in _LATIN_RUN.finditer(text):
        run = (m.group(2) if m.group(2) is not None else m.group(3)).strip()
        if not run:
            continue
        near = run.split()[0] if m.group(2) is not None else run.split()[-1]
        if (_CODE_SIGN.search(run) or not near[:1].isupper() or set(run.split()) <= DNS_LITERALS
                or _REPLY_CODE.fullmatch(near)):
            continue
        return run
    return None


AFTER_PUNCT = re.compile(r"[。、][ \t]")
# A count and its unit are one word: 「4件」, 「{n}件」, 「2048ビット」, not 「{n} 件」.
NUMBER_UNIT = re.compile(r"(?:\}|[0-9]) (?:件|ビット|秒|回|文字|個|通|日|時間)")
HAS_JA = re.compile(f"[{_JA}]")

# Keys that hold user-visible English; a sibling `<key>_ja` (or a `ja` in an en/ja
# pair) must give its Japanese.
EN_ONLY_KEYS = ("meaning", "refused_hint", "how", "note")


@dataclass(frozen=True)
class Problem:
    file: str
    where: str
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.rule}: {self.text[:120]!r}"


def knowledge_files() -> list[str]:
    return sorted(str(p.relative_to(KNOWLEDGE)) for p in KNOWLEDGE.rglob("*.yaml"))


def _load(rel: str) -> Any:
    return load_yaml((KNOWLEDGE / rel).read_text(encoding="utf-8"))


def japanese_texts(node: Any, where: str = "", in_ja: bool = False) -> Iterator[tuple[str, str]]:
    """(path, text) of every Japanese text: values under `ja` or `*_ja` keys."""
    if isinstance(node, dict):
        for key, value in node.items():
            k = str(key)
            yield from japanese_texts(value, f"{where}/{k}", in_ja or k == "ja" or k.endswith("_ja"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from japanese_texts(value, f"{where}/{i}", in_ja)
    elif isinstance(node, str) and in_ja:
        yield where, node


def missing_japanese(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(path, English) of user-visible English without a Japanese form."""
    if isinstance(node, dict):
        keys = {str(k) for k in node}
        if "en" in keys and "ja" not in keys:
            yield f"{where}/en", str(node["en"])
        for key in EN_ONLY_KEYS:
            value = node.get(key)
            if isinstance(value, str) and value.strip() and not str(node.get(f"{key}_ja") or "").strip():
                yield f"{where}/{key}", value
        errors = node.get("error_codes")
        if isinstance(errors, dict):
            for code, meaning in errors.items():
                if not (isinstance(meaning, dict) and meaning.get("ja")):
                    yield f"{where}/error_codes/{code}", str(meaning)
        for key, value in node.items():
            # error_codes: checked above; defunct: the dead lists' notes are never shown.
            if str(key) not in ("error_codes", "defunct"):
                yield from missing_japanese(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from missing_japanese(value, f"{where}/{i}")


def problems(rel: str) -> list[Problem]:
    data = _load(rel)
    out: list[Problem] = []
    for where, text in japanese_texts(data):
        for pattern, use in TERMS:
            m = re.search(pattern, text)
            if m:
                out.append(Problem(rel, where, f"term {m.group(0)!r}: use {use}", text))
        if AFTER_PUNCT.search(text):
            out.append(Problem(rel, where, "half-width space after 。/、", text))
        if NUMBER_UNIT.search(text):
            out.append(Problem(rel, where, "space between a number and its unit", text))
        word = spacing_problem(text)
        if word:
            out.append(Problem(rel, where, f"space between Japanese and the Latin word(s) {word!r}", text))
    for where, text in missing_japanese(data):
        out.append(Problem(rel, where, "no Japanese form", text))
    return out


@pytest.mark.parametrize("rel", ENFORCED)
def test_reviewed_files_follow_the_japanese_style_guide(rel: str) -> None:
    found = problems(rel)
    assert not found, f"{len(found)} problem(s):\n" + "\n".join(str(p) for p in found[:40])


@pytest.mark.parametrize("rel", knowledge_files())
def test_every_user_facing_text_in_the_knowledge_base_has_japanese(rel: str) -> None:
    # Provider notes, blocklist refusal hints and meanings, why-unknown texts, every en/ja
    # pair: a Japanese report never falls back to English for what mailcheck says.
    missing = list(missing_japanese(_load(rel)))
    assert not missing, "\n".join(f"{rel}:{where}: {text[:100]!r}" for where, text in missing[:20])


def test_every_enforced_file_exists_and_has_japanese() -> None:
    files = set(knowledge_files())
    assert set(ENFORCED) <= files
    with_text = [rel for rel in ENFORCED if any(True for _ in japanese_texts(_load(rel)))]
    # dkim_selectors / ptr_patterns hold no user-visible text, nor does a bounce provider
    # file without notes (its patterns are data); the others must.
    without = {rel for rel in set(ENFORCED) - set(with_text) if not rel.startswith("bounce/providers/")}
    assert without <= {"dkim_selectors.yaml", "ptr_patterns.yaml"}


def test_the_checks_catch_what_the_guide_forbids() -> None:
    bad = {
        "term": "IPがブラックリストに載っています。",
        "punct": "設定します。 次に確認します。",
        "spacing_before": "送信には Gmail を使います。",
        "spacing_after": "SPF に合格します。",
    }
    caught = {
        name: any(re.search(p, text) for p, _ in TERMS)
        or bool(AFTER_PUNCT.search(text))
        or spacing_problem(text) is not None
        for name, text in bad.items()
    }
    assert all(caught.values()), caught
    good = "postfix reload で反映し、Gmail宛てのログで p=none と {target} を確認します。dig +short -x 192.0.2.10 SOA で確認。"
    assert spacing_problem(good) is None, spacing_problem(good)
    # A receiver's own error code is set off like code; a form's name is a word.
    assert spacing_problem("S3150 は 4xx の応答後も送信ペースを落とさなかった場合に出ます。") is None
    assert spacing_problem("続く場合は Sender Support Request を送ります。") == "Sender Support Request"
    assert missing_japanese({"meaning": "listed", "meaning_ja": ""}) and not list(
        missing_japanese({"meaning": "listed", "meaning_ja": "掲載"})
    )


def report_other_files() -> dict[str, dict[str, int]]:
    """Per file outside ENFORCED: Japanese texts and problems by kind."""
    table: dict[str, dict[str, int]] = {}
    for rel in knowledge_files():
        if rel in ENFORCED:
            continue
        found = problems(rel)
        row = {
            "ja_texts": sum(1 for _ in japanese_texts(_load(rel))),
            "no_japanese": sum(p.rule == "no Japanese form" for p in found),
            "terms": sum(p.rule.startswith("term") for p in found),
            "space_after_punct": sum(p.rule.startswith("half-width") for p in found),
            "spacing": sum(p.rule.startswith("space between") for p in found),
        }
        if any(row.values()):
            table[rel] = row
    return table


def _format(table: dict[str, dict[str, int]]) -> str:
    cols = ["ja_texts", "no_japanese", "terms", "space_after_punct", "spacing"]
    lines = ["file".ljust(40) + "".join(c.rjust(18) for c in cols)]
    for rel, row in table.items():
        lines.append(rel.ljust(40) + "".join(str(row[c]).rjust(18) for c in cols))
    totals = {c: sum(r[c] for r in table.values()) for c in cols}
    lines.append("total".ljust(40) + "".join(str(totals[c]).rjust(18) for c in cols))
    return "\n".join(lines)


def test_report_the_files_not_yet_enforced(capsys: pytest.CaptureFixture[str]) -> None:
    # Report-only: these files have other owners; the lead moves each into ENFORCED
    # once it passes. The table is printed (pytest -s, or python tests/test_ja_style.py).
    table = report_other_files()
    with capsys.disabled():
        print("\nJapanese style, files not yet enforced:\n" + _format(table))
    assert all(rel.endswith(".yaml") for rel in table)


if __name__ == "__main__":
    print(_format(report_other_files()))
    for rel in ENFORCED:
        for p in problems(rel):
            print(p)
