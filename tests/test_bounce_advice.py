"""Advice fits the case: for every provider's own reply rows, the remediation shown
names no OTHER provider, and every remediation id the bounce knowledge refers to
exists with English and Japanese text.

A Gmail bounce must not be told what au does with malformed addresses: generic
reason entries (bounce.<reason>, spf.add_record ...) carry no provider facts, and
provider facts live in provider entries that are only shown for that provider.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

import knowledge
from handlers.bounce import analyse_bounce
from handlers.bounce.engine import _Engine
from handlers.bounce.fact import Fact
from knowledge.bounce import CompiledProvider, load

KB = load()
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _names(p: CompiledProvider) -> set[str]:
    """How a provider is written in prose: its aliases and the parts of its display
    name ("Gmail / Google Workspace" -> Gmail, Google Workspace), without remarks in
    parentheses such as "(gateway)"."""
    out = set(p.spec.aliases)
    for part in re.split(r"\s*/\s*", re.sub(r"\s*\([^)]*\)", "", p.spec.name)):
        if part:
            out.add(part.strip())
    return {n for n in out if len(n) >= 2}


@cache
def _name_pattern(pid: str) -> re.Pattern[str]:
    names = sorted(_names(KB.by_id[pid]), key=len, reverse=True)
    # Case-sensitive proper nouns; a Japanese character next to the name still ends it.
    return re.compile("|".join(rf"(?<![A-Za-z0-9.@_-]){re.escape(n)}(?![A-Za-z0-9_-])" for n in names))


def _shown_texts(rid: str) -> list[str]:
    entry = knowledge.remediation(rid)
    out: list[str] = []
    for lang in ("en", "ja"):
        out += [entry.title.get(lang), entry.why.get(lang), entry.verify.get(lang), *entry.steps.get(lang)]
    return out


def _others_named(rid: str, pid: str | None) -> list[tuple[str, str]]:
    hits = []
    for other in KB.providers:
        if other.id == pid:
            continue
        pat = _name_pattern(other.id)
        for text in _shown_texts(rid):
            m = pat.search(text)
            if m:
                hits.append((other.id, m.group(0)))
                break
    return hits


def _advice_for_rule(p: CompiledProvider, i: int) -> list[str]:
    rule = p.spec.rules[i]
    engine = _Engine(KB)
    reason = rule.reason
    f = Fact(recipient="user@example.net", diagnostic=rule.text or rule.code, status=rule.status or None)
    return engine.remediation(reason, p, rule, f)


RULES = [(p.id, i) for p in KB.providers for i in range(len(p.spec.rules))]


@pytest.mark.parametrize(("pid", "index"), RULES, ids=[f"{p}-{i}" for p, i in RULES])
def test_advice_for_a_providers_rule_names_no_other_provider(pid: str, index: int) -> None:
    p = KB.by_id[pid]
    for rid in _advice_for_rule(p, index):
        assert not _others_named(rid, pid), (rid, _others_named(rid, pid))


@pytest.mark.parametrize("pid", sorted(KB.by_id))
def test_provider_level_and_delivered_advice_names_no_other_provider(pid: str) -> None:
    p = KB.by_id[pid]
    for rid in [*p.spec.remediation, *p.spec.delivered_remediation]:
        assert not _others_named(rid, pid), (rid, _others_named(rid, pid))


@pytest.mark.parametrize("reason", sorted(KB.reasons))
def test_generic_reason_advice_names_no_provider(reason: str) -> None:
    """With no provider known, every entry shown for a reason is provider-neutral."""
    engine = _Engine(KB)
    for v6 in (None, "2001:db8::1"):
        ids = engine.remediation(reason, None, None, Fact(diagnostic="550 x", sender_ip=v6))
        for rid in ids:
            assert not _others_named(rid, None), (reason, rid, _others_named(rid, None))


def _referenced_ids() -> set[str]:
    ids: set[str] = set()
    for p in KB.providers:
        ids.update(p.spec.remediation, p.spec.delivered_remediation)
        for rule in p.spec.rules:
            ids.update(rule.remediation)
    ids.update(f"bounce.{r}" for r in KB.reasons)
    return ids


@pytest.mark.parametrize("rid", sorted(_referenced_ids()))
def test_every_referenced_remediation_exists_in_english_and_japanese(rid: str) -> None:
    entry = knowledge.find_remediation(rid)
    assert entry is not None, rid
    for lang in ("en", "ja"):
        assert entry.title.get(lang).strip() and entry.steps.get(lang), (rid, lang)
    assert JAPANESE.search(entry.title.ja) and all(JAPANESE.search(s) for s in entry.steps.ja), rid


def test_a_gmail_not_authorized_bounce_is_not_told_about_japanese_carriers() -> None:
    text = (
        "550-5.7.1 [2001:db8::25] The IP you're using to send mail is not authorized to send email directly "
        "to our servers. Please use the SMTP relay at your service provider instead. "
        "https://support.google.com/mail/?p=NotAuthorizedError - gsmtp"
    )
    (b,) = analyse_bounce(text).bounces
    assert b.provider == "google"
    assert "provider.google.not_authorized" in b.remediation
    for rid in b.remediation:
        assert not _others_named(rid, "google"), (rid, _others_named(rid, "google"))


def test_carrier_advice_is_shown_for_that_carrier_only() -> None:
    (docomo,) = analyse_bounce("<taro@docomo.ne.jp>: 550 Unknown user taro@docomo.ne.jp").bounces
    (au,) = analyse_bounce("<hanako@ezweb.ne.jp>: 550 : User unknown").bounces
    assert "provider.docomo.filters" in docomo.remediation and "provider.kddi.filters" not in docomo.remediation
    assert "provider.kddi.filters" in au.remediation and "provider.docomo.filters" not in au.remediation


def test_every_provider_note_has_japanese_text_and_japanese_users_get_it() -> None:
    for p in KB.providers:
        for rule in p.spec.rules:
            if rule.note:
                assert JAPANESE.search(rule.note_ja), (p.id, rule.note)
    text = "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints"
    (en,) = analyse_bounce(text).bounces
    (ja,) = analyse_bounce(text, lang="ja").bounces
    assert "slow down" in en.explanation
    assert "送信ペースを落とし" in ja.explanation and "slow down" not in ja.explanation
