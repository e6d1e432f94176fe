"""knowledge/digest_texts.yaml: every key in en and ja, the same placeholders, every key the
digest code asks for exists, and a malformed file is refused."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge import digest_texts
from knowledge.digest_texts import DIGEST_TEXTS_FILE, LANGS, digest_text, load_digest_texts
from knowledge.loader import KnowledgeError
from knowledge.yamlload import load_yaml

ROOT = Path(__file__).resolve().parent.parent
# Keys the code builds at run time (f"status_{k}", f"severity_{sev}", f"error_{key}", change keys).
DYNAMIC_KEYS = """
status_listed status_critical status_warning status_unknown severity_critical severity_warning
error_timeout error_failed error_no_answers error_not_checked listed delisted no_longer_used
record_added record_removed record_changed dmarc_p_weakened dmarc_p_strengthened dmarc_sp_weakened
dmarc_sp_strengthened dmarc_pct_lowered dmarc_pct_raised spf_weakened spf_strengthened finding_new
finding_worse finding_better finding_resolved record_spf record_dmarc record_mta_sts record_tls_rpt
record_bimi
""".split()
# Texts that are only punctuation/markup around placeholders (no words to translate).
NO_WORDS = {"fallback", "list_sep", "listed_reason"}


def _forms(value: str | dict[str, str]) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def _entries() -> Iterator[tuple[str, dict[str, str | dict[str, str]]]]:
    yield from load_digest_texts().items()


def test_every_key_has_both_languages() -> None:
    with DIGEST_TEXTS_FILE.open(encoding="utf-8") as fh:
        raw = load_yaml(fh)
    assert isinstance(raw, dict) and raw
    for key, entry in raw.items():
        assert isinstance(entry, dict) and set(entry) == set(LANGS), key
        for lang in LANGS:
            for form in _forms(entry[lang]):
                assert isinstance(form, str) and form.strip(), (key, lang)


def test_same_placeholders_and_japanese_is_japanese() -> None:
    for key, entry in _entries():
        en = set().union(*(_fields(t) for t in _forms(entry["en"])))
        ja = set().union(*(_fields(t) for t in _forms(entry["ja"])))
        assert en == ja, (key, en, ja)
        if isinstance(entry["en"], dict):
            assert "n" in en, key  # plural forms are chosen by {n}
        if key not in NO_WORDS:
            for form in _forms(entry["ja"]):
                assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", form), (key, form)


def test_every_key_the_code_uses_exists() -> None:
    known = set(load_digest_texts())
    used = set(DYNAMIC_KEYS)
    for path in ("bot/digest.py", "handlers/digest_diff.py", "handlers/digest_reports.py"):
        src = (ROOT / path).read_text(encoding="utf-8")
        used |= set(re.findall(r'(?:\bt|digest_text)\(\s*"([a-z_]+)"', src))
    missing = used - known
    assert not missing, missing


def test_fill_and_plurals() -> None:
    assert digest_text("title", "en", n=1) == "Mail digest: 1 watched target"
    assert digest_text("title", "en", n=3) == "Mail digest: 3 watched targets"
    assert digest_text("title", "ja", n=3) == "メール配信ダイジェスト: 監視対象 3件"
    assert digest_text("title", "fr", n=3) == "Mail digest: 3 watched targets"  # unknown language: en
    assert digest_text("status_warning", "en", n=0) == "0 warnings"
    with pytest.raises(KeyError):
        digest_text("no_such_key", "en")


def test_malformed_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "digest_texts.yaml"
    for text in ('title: {en: "Mail digest"}\n',  # ja missing
                 'title: {en: "x", ja: "", de: "y"}\n',
                 'title: {en: {one: "x"}, ja: "y"}\n',
                 "- a list\n"):
        bad.write_text(text, encoding="utf-8")
        monkeypatch.setattr(digest_texts, "DIGEST_TEXTS_FILE", bad)
        load_digest_texts.cache_clear()
        try:
            with pytest.raises(KnowledgeError):
                load_digest_texts()
        finally:
            load_digest_texts.cache_clear()
