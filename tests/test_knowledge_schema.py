"""The knowledge base validates, is complete for the SPEC vocabulary, and renders cleanly."""

from __future__ import annotations

import re
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import knowledge
from knowledge import bounce as bounce_kb
from knowledge import loader
from knowledge.bounce import records
from knowledge.schema import PLACEHOLDER_KEYS, REASONS, Text, TextList

SPEC_FINDING_CODES = """
spf.missing spf.multiple_records spf.permerror spf.too_many_lookups spf.too_many_void_lookups
spf.permissive_all spf.ptr_mechanism dmarc.missing dmarc.invalid dmarc.policy_none dmarc.no_rua
dmarc.rua_unauthorized dkim.no_selector_found dkim.weak_key dkim.revoked dkim.testing mx.missing
mx.null mx.unresolvable ptr.missing ptr.mismatch ptr.generic mta_sts.missing mta_sts.invalid
tls_rpt.missing bimi.missing dnssec.unsigned blocklist.listed blocklist.unknown requirements.gmail
requirements.yahoo requirements.microsoft message.auth_failed message.dkim_valid
message.dkim_invalid message.not_aligned message.no_list_unsubscribe message.short_body
message.subject_suspicious message.attachment_name message.url_listed message.missing_header
""".split()

EXTRA_FINDING_CODES = """
spf.ok spf.record_too_long spf.deprecated_spf_rr spf.include_missing spf.unknown dmarc.ok
dmarc.sp_none dmarc.pct_partial dmarc.unknown dkim.ok dkim.unknown dkim.invalid_record mx.ok
mx.implicit mx.unknown ptr.ok ptr.unknown mta_sts.ok mta_sts.testing mta_sts.unknown tls_rpt.ok
tls_rpt.invalid bimi.ok bimi.invalid bimi.needs_enforcement dnssec.ok dnssec.unknown
blocklist.clean input.normalized dns.unreachable ip.generic_ptr bounce.none message.dkim_missing
message.path message.bulk_headers
""".split()

# Further codes the engines emit (documented too).
ENGINE_FINDING_CODES = """
spf.pass spf.fail spf.softfail spf.neutral spf.none spf.all_fail spf.all_softfail spf.no_all
spf.macros spf.multi_string dmarc.inherited dmarc.testing mx.invalid tls_rpt.unknown bimi.unknown
bounce.not_a_bounce bounce.input_truncated bounce.likely_cause message.verdict message.spf_result
message.aligned message.alignment_unknown message.arc message.dkim_unknown
message.list_unsubscribe_ok message.url_clean message.live_timeout message.unreadable
""".split()

REQUIRED_REMEDIATION = """
spf.add_record spf.merge_records spf.fix_syntax spf.reduce_lookups spf.fix_void_lookups
spf.tighten_all spf.remove_ptr dmarc.publish dmarc.fix_syntax dmarc.move_to_enforcement
dmarc.add_rua dmarc.authorize_external_rua dkim.publish_key dkim.rotate_2048 dkim.replace_revoked
dkim.leave_testing mx.publish mx.null_mx mx.fix_hosts ptr.set_reverse_dns ptr.fcrdns_match
ptr.non_generic_name mta_sts.publish mta_sts.fix_policy tls_rpt.publish bimi.publish
dnssec.sign_zone blocklist.delist blocklist.resolver_refused requirements.gmail
requirements.yahoo requirements.microsoft message.fix_authentication message.dkim_fix_signature
message.align_domains message.add_one_click_unsubscribe message.body_content
message.subject_content message.attachment_names message.url_reputation message.fix_headers
provider.google.postmaster_tools provider.google.sender_guidelines provider.google.not_authorized
provider.microsoft.snds_jmrp provider.microsoft.delist provider.microsoft.consumer_silent_drop
provider.microsoft.requirements_5_7_515 provider.yahoo.sender_hub provider.apple.postmaster
provider.jp_carrier.filters postfix.ipv4_only_smtp
""".split()

SPEC_PROVIDERS = """
google microsoft yahoo apple comcast cox gmx orange yandex mailru tencent zoho docomo kddi
softbank ocn mimecast proofpoint barracuda
""".split()

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MARKERS = re.compile(r"UNVERIFIED|\[3P\]|\[OFF\]|\[CODE\]|\bARCH\b|\bSISIMAI\b|\bRSPAMD\b")
ID_PREFIXES = (
    "spf", "dmarc", "dkim", "mx", "ptr", "mta_sts", "tls_rpt", "bimi", "dnssec", "blocklist",
    "requirements", "message", "bounce", "provider", "postfix",
)  # fmt: skip
DOMAIN_ENDINGS = {"com", "net", "org", "jp", "example", "arpa"}
ID_TOKEN = re.compile(r"(?<![\w./-])(?:" + "|".join(ID_PREFIXES) + r")\.[a-z0-9_]+(?:\.[a-z0-9_]+)*(?![\w-])")


def _walk_texts(obj: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """Yield (path, lang, text) for every Text / TextList inside a model."""
    if isinstance(obj, Text):
        yield path, "en", obj.en
        yield path, "ja", obj.ja
    elif isinstance(obj, TextList):
        for item in obj.en:
            yield path, "en", item
        for item in obj.ja:
            yield path, "ja", item
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _walk_texts(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _walk_texts(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk_texts(value, f"{path}.{key}")


def _all_texts() -> Iterator[tuple[str, str, str]]:
    for entry in knowledge.all_remediation():
        yield from _walk_texts(entry, entry.id)
    for code, f in loader.load_findings().items():
        yield from _walk_texts(f, f"findings:{code}")
    for reason, r in loader.load_reasons().items():
        yield from _walk_texts(r, f"reasons:{reason}")
    for p in knowledge.providers():
        yield from _walk_texts(p, f"providers:{p.id}")


def test_every_file_validates() -> None:
    loader.load_remediation.cache_clear()
    loader.load_findings.cache_clear()
    loader.load_reasons.cache_clear()
    loader.load_providers.cache_clear()
    assert knowledge.all_remediation()
    assert loader.load_findings()
    assert loader.load_reasons()
    assert knowledge.providers()


def test_required_remediation_ids_exist() -> None:
    ids = {r.id for r in knowledge.all_remediation()}
    missing = [i for i in REQUIRED_REMEDIATION if i not in ids]
    assert not missing
    missing_bounce = [r for r in REASONS if f"bounce.{r}" not in ids]
    assert not missing_bounce


def test_reason_vocabulary_matches_spec() -> None:
    assert len(REASONS) == len(set(REASONS)) == 34
    assert set(loader.load_reasons()) == set(REASONS)


def test_every_reason_is_one_record_file_named_after_it() -> None:
    files = sorted(p.stem for p in records.REASONS_DIR.glob("*.yaml"))
    assert files == sorted(REASONS)
    for reason, record in loader.load_reasons().items():
        assert record.reason == reason
        assert record.remediation[0] == f"bounce.{reason}"
        for text in (record.summary, record.explain, record.meaning):
            assert JAPANESE.search(text.ja), (reason, text.ja)


def test_a_reason_file_that_breaks_the_record_shape_is_refused(tmp_path: Path) -> None:
    for reason in REASONS:
        shutil.copy(records.REASONS_DIR / f"{reason}.yaml", tmp_path)
    records.read_reasons(tmp_path)  # a faithful copy loads
    bad = tmp_path / "delivered.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("severity: ok\n", ""), encoding="utf-8")
    with pytest.raises(ValueError, match=r"delivered\.yaml"):
        records.read_reasons(tmp_path)
    bad.unlink()
    with pytest.raises(ValueError, match="missing \\['delivered'\\]"):
        records.read_reasons(tmp_path)


def test_reason_records_name_only_known_findings_and_ordered_phrases() -> None:
    codes = set(loader.load_findings())
    kb = bounce_kb.load()
    for reason, record in kb.reasons.items():
        unknown = [c for c in record.likely_causes if c not in codes]
        assert not unknown, (reason, unknown)
        if record.phrases is not None:
            assert all(p == p.lower() for p in record.phrases.contains), reason
    tried = [*kb.text_rules.order.probe, *kb.text_rules.order.fallback]
    assert all(kb.reasons[r].phrases is not None for r in tried)


def test_what_a_record_says_about_the_address() -> None:
    reasons = loader.load_reasons()
    dead = sorted(r for r, rec in reasons.items() if rec.address_dead(True))
    assert dead == ["hasmoved", "hostunknown", "notaccept", "userunknown"]
    assert not reasons["notaccept"].address_dead(False)  # a 4xx null-MX reply: not yet
    notices = {r: rec.severity for r, rec in reasons.items() if not rec.failure}
    assert notices == {"delivered": "ok", "feedback": "warning", "vacation": "info"}


@pytest.mark.parametrize("code", SPEC_FINDING_CODES)
def test_spec_finding_codes_have_text_and_remediation(code: str) -> None:
    for lang in ("en", "ja"):
        text = knowledge.finding_text(code, lang)
        assert text is not None, code
        assert text.title.strip() and text.detail.strip()
        assert text.remediation, f"{code} has no remediation"
    ja = knowledge.finding_text(code, "ja")
    assert ja is not None and JAPANESE.search(ja.title) and JAPANESE.search(ja.detail)


@pytest.mark.parametrize("code", EXTRA_FINDING_CODES + ENGINE_FINDING_CODES)
def test_extra_finding_codes_have_text(code: str) -> None:
    for lang in ("en", "ja"):
        text = knowledge.finding_text(code, lang)
        assert text is not None, code
        assert text.title.strip()


def test_every_referenced_remediation_exists() -> None:
    ids = {r.id for r in knowledge.all_remediation()}
    refs: list[tuple[str, str]] = []
    for code, f in loader.load_findings().items():
        refs += [(f"findings:{code}", i) for i in f.remediation]
    for reason, r in loader.load_reasons().items():
        refs += [(f"reasons:{reason}", i) for i in r.remediation]
        assert f"bounce.{reason}" in r.remediation
    for p in knowledge.providers():
        refs += [(f"providers:{p.id}", i) for i in p.remediation]
        for c in p.codes:
            refs += [(f"providers:{p.id}:{c.code}", i) for i in c.remediation]
    for r in knowledge.all_remediation():
        refs += [(r.id, i) for i in r.related]
    dangling = [(where, ref) for where, ref in refs if ref not in ids]
    assert not dangling


def test_ids_mentioned_in_text_exist() -> None:
    """Steps say "(see spf.reduce_lookups)": every such id must be real (or a finding code)."""
    known = {r.id for r in knowledge.all_remediation()} | set(loader.load_findings())
    unknown = sorted(
        {
            (path, tok)
            for path, _lang, text in _all_texts()
            for tok in ID_TOKEN.findall(text)
            if tok not in known and tok.rsplit(".", 1)[-1] not in DOMAIN_ENDINGS
        }
    )
    assert not unknown


def test_sources_and_review_dates() -> None:
    for r in knowledge.all_remediation():
        assert r.sources and all(s.startswith(("http://", "https://")) for s in r.sources), r.id
        assert r.reviewed.year >= 2026, r.id
    for p in knowledge.providers():
        assert p.sources, p.id
        assert p.reviewed.year >= 2026, p.id
        for c in p.codes:
            assert c.source.startswith(("http://", "https://")), (p.id, c.code)
        for req in p.requirements:
            assert req.sources, (p.id, req.id)


def test_japanese_texts_are_japanese() -> None:
    not_ja = [(path, text) for path, lang, text in _all_texts() if lang == "ja" and not JAPANESE.search(text)]
    assert not not_ja


def test_no_fact_sheet_markers_leak() -> None:
    leaks = [(path, text) for path, _lang, text in _all_texts() if MARKERS.search(text)]
    assert not leaks


def test_no_empty_or_identical_translations() -> None:
    same = [
        path
        for path, text_en, text_ja in (
            (p, a.en, a.ja)
            for r in knowledge.all_remediation()
            for p, a in (("title", r.title), ("why", r.why), ("verify", r.verify))
        )
        if text_en == text_ja
    ]
    assert not same


def test_providers_cover_spec_ids() -> None:
    ids = {p.id for p in knowledge.providers()}
    assert set(SPEC_PROVIDERS) <= ids
    for pid in SPEC_PROVIDERS:
        p = knowledge.provider(pid)
        assert p is not None and p.behaviour.en and p.behaviour.ja
        assert p.mx or p.domains or p.markers


def test_fact_sheet_provider_codes_map_to_reasons() -> None:
    """Spot-check the codes named in the fact sheet and their reasons."""
    expected = {
        ("google", "5.7.26"): "authfailure",
        ("google", "4.7.26"): "authfailure",
        ("google", "4.7.27"): "authfailure",
        ("google", "4.7.30"): "authfailure",
        ("google", "4.7.32"): "authfailure",
        ("google", "4.7.40"): "authfailure",
        ("google", "4.7.31"): "authfailure",
        ("google", "4.7.24"): "authfailure",
        ("google", "4.7.23"): "requireptr",
        ("google", "5.7.25"): "requireptr",
        ("google", "IPv6AuthError"): "requireptr",
        ("google", "4.7.28"): "ratelimited",
        ("google", "5.7.28"): "blocked",
        ("google", "4.7.29"): "failedstarttls",
        ("google", "5.1.1"): "userunknown",
        ("google", "4.2.2"): "mailboxfull",
        ("google", "NotAuthorizedError"): "blocked",
        ("google", "gcdp"): "policyviolation",
        ("microsoft", "S3140"): "blocked",
        ("microsoft", "S3150"): "blocked",
        ("microsoft", "S775"): "badreputation",
        ("microsoft", "5.7.515"): "authfailure",
        ("microsoft", "5.7.606-649"): "blocked",
        ("microsoft", "5.7.25"): "requireptr",
        ("microsoft", "5.1.8"): "rejected",
        ("yahoo", "TSS04"): "badreputation",
        ("yahoo", "BL21"): "blocked",
        ("yahoo", "PH01"): "policyviolation",
        ("apple", "HME1"): "authfailure",
        ("comcast", "ES000010"): "blocked",
        ("comcast", "BL000001"): "blocked",
        ("cox", "CXDNS"): "requireptr",
        ("orange", "OFR005_104"): "ratelimited",
        ("docomo", "5.2.0"): "filtered",
        ("kddi", "filtered-user-unknown"): "filtered",
        ("softbank", "domain-does-not-exist"): "rejected",
    }
    table: dict[tuple[str, str], set[str]] = {}
    for p in knowledge.providers():
        for c in p.codes:
            table.setdefault((p.id, c.code), set()).add(c.reason)
    for key, reason in expected.items():
        assert key in table, key
        assert reason in table[key], (key, table[key])
    total = sum(len(p.codes) for p in knowledge.providers())
    assert total >= 100


def test_templates_use_only_known_placeholders() -> None:
    bad = []
    for code, f in loader.load_findings().items():
        for field in (f.title, f.detail):
            for lang in ("en", "ja"):
                for _lit, name, spec, conv in string.Formatter().parse(field.get(lang)):
                    if name is None:
                        continue
                    if name not in PLACEHOLDER_KEYS or spec or conv:
                        bad.append((code, lang, name))
    assert not bad


EMPTY_BRACKETS = re.compile(r"\(\s*\)|（\s*）|「\s*」|\[\s*\]")


@pytest.mark.parametrize("code", SPEC_FINDING_CODES + EXTRA_FINDING_CODES + ENGINE_FINDING_CODES)
def test_missing_evidence_renders_cleanly(code: str) -> None:
    for lang in ("en", "ja"):
        title, detail = knowledge.localize_finding(code, lang, {}, "", "")
        for text in (title, detail):
            assert "{" not in text and "}" not in text and "\x00" not in text
            assert not EMPTY_BRACKETS.search(text), (code, lang, text)
            assert "  " not in text
            if lang == "ja" and text:
                assert not text.startswith(("の", "は", "が", "で", "に", "を", "、", "。", "：")), text
        assert title, (code, lang)


def test_localize_fills_and_falls_back() -> None:
    ev = {"target": "example.com", "count": 13, "record": "v=spf1 include:a include:b ~all"}
    title, detail = knowledge.localize_finding("spf.too_many_lookups", "ja", ev, "FT", "FD")
    assert title == "example.com のSPFはDNS参照回数が多すぎます"
    assert "13回" in detail
    title, detail = knowledge.localize_finding("spf.too_many_lookups", "en", ev, "FT", "FD")
    assert "example.com" in title and "13" in detail
    # English with a missing key: the caller's English text.
    title, detail = knowledge.localize_finding("spf.too_many_lookups", "en", {}, "FT", "FD")
    assert (title, detail) == ("FT", "FD")
    # Japanese with a missing key: the template, cleaned.
    title, _ = knowledge.localize_finding("spf.too_many_lookups", "ja", {}, "FT", "FD")
    assert title == "SPFはDNS参照回数が多すぎます"
    # Unknown code: fallbacks in both languages.
    assert knowledge.localize_finding("no.such_code", "ja", ev, "FT", "FD") == ("FT", "FD")
    # Lists are joined; odd values never raise.
    title, detail = knowledge.localize_finding(
        "blocklist.listed",
        "ja",
        {
            "target": "192.0.2.1",
            "zone": "zen.spamhaus.org",
            "codes": ["127.0.0.2", "127.0.0.4"],
            "meaning": "SBL",
        },
        "",
        "",
    )
    assert "zen.spamhaus.org" in title and "127.0.0.2, 127.0.0.4" in detail
    for ev_odd in ({"target": None}, {"target": "{x}"}, {"target": object()}, {"count": [None]}):
        knowledge.localize_finding("spf.too_many_lookups", "ja", ev_odd, "FT", "FD")
        knowledge.localize_finding("spf.too_many_lookups", "en", ev_odd, "FT", "FD")
    # A braces value is inserted verbatim, not re-formatted.
    title, _ = knowledge.localize_finding("spf.missing", "en", {"target": "{record}"}, "FT", "FD")
    assert title == "No SPF record for {record}"
    # Unsupported language -> English.
    assert knowledge.localize_finding("spf.missing", "fr", {"target": "a.example"}, "", "")[0].startswith(
        "No SPF"
    )


def test_render_template_is_total() -> None:
    assert knowledge.render_template("{target} の {broken", {}, "ja")
    assert knowledge.render_template("a {0} b {x.y} c", {"x": 1}, "en") is not None


def test_remediation_accessors() -> None:
    entry = knowledge.remediation("spf.reduce_lookups")
    ja = entry.localized("ja")
    assert ja.lang == "ja" and JAPANESE.search(ja.title) and ja.steps
    with pytest.raises(KeyError):
        knowledge.remediation("no.such_entry")
    assert knowledge.find_remediation("no.such_entry") is None
    info = knowledge.reason_info("userunknown")
    assert info is not None and info.hard == "yes" and "bounce.userunknown" in info.remediation
    assert knowledge.reason_info("nonsense") is None
    assert knowledge.provider("nonsense") is None


def test_import_is_lazy() -> None:
    import subprocess
    import sys

    code = "import sys, knowledge; print('pydantic' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_findings_doc_is_current() -> None:
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_findings_doc", root / "tools" / "gen_findings_doc.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (root / "docs" / "findings.md").read_text(encoding="utf-8") == mod.render(), (
        "docs/findings.md is stale: run python tools/gen_findings_doc.py"
    )


# --- bounce provider files (knowledge/bounce/providers/*.yaml) -------------------------------
def test_bounce_provider_files_validate_with_sources_and_known_remediation() -> None:
    from knowledge.bounce import BounceKnowledge

    kb = BounceKnowledge()  # a fresh read: raises on any schema error
    ids = {r.id for r in knowledge.all_remediation()}
    assert len(kb.providers) >= 60
    for p in kb.providers:
        spec = p.spec
        assert re.fullmatch(r"[a-z0-9_]+", spec.id), spec.id
        assert spec.source.startswith(("http://", "https://")), spec.id
        assert spec.detect.hosts or spec.detect.text or spec.detect.codes, spec.id
        assert all(n == n.lower() for n in spec.detect.names), spec.id
        refs = [*spec.remediation, *spec.delivered_remediation, *(i for r in spec.rules for i in r.remediation)]
        assert not [i for i in refs if i not in ids], spec.id
        for rule in spec.rules:
            assert rule.source.startswith(("http://", "https://")), (spec.id, rule)
        # User-visible: the display name never carries a fact-sheet marker.
        assert not MARKERS.search(spec.name), spec.id


def test_bounce_providers_cover_the_spec_ids() -> None:
    from knowledge.bounce import load

    assert set(SPEC_PROVIDERS) <= set(load().by_id)


# Work that needs root on the sending server or control of its IP address: Postfix files,
# settings and commands, the mail log, setting a PTR, enrolling an IP in SNDS/JMRP.
_NEEDS_THE_SERVER = re.compile(
    r"main\.cf|master\.cf|postconf|/var/log/mail|\bsmtp_[a-z_]+\b|inet_protocols|"
    r"\bset (?:the|a|its|custom) PTR|\bPTR at\b|\benrol\w* (?:the|your|sending)? ?IPs?\b",
    re.IGNORECASE,
)


def test_advice_that_needs_the_server_or_its_ip_says_what_to_do_on_shared_hosting() -> None:
    # docs/ja-style.md, "Shared hosting first": most readers are on a rental server where
    # they cannot change Postfix, the PTR or the IP's enrolments; each such entry tells them
    # to ask the provider or send through the provider's SMTP server, in both languages.
    lacking = []
    for r in loader.all_remediation():
        shown = " ".join([*r.steps.en, *(line for block in r.code for line in block.lines)])
        if not _NEEDS_THE_SERVER.search(shown):
            continue
        en = any("shared hosting" in step.lower() for step in r.steps.en)
        ja = any("共用のレンタルサーバー" in step for step in r.steps.ja)
        if not (en and ja):
            lacking.append((r.id, _NEEDS_THE_SERVER.search(shown).group(0), en, ja))  # type: ignore[union-attr]
    assert not lacking, lacking
