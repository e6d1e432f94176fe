"""The SPF parser: exact syntax decisions, and totality on arbitrary input (Hypothesis)."""

from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.spf.parser import (
    Macro,
    Mechanism,
    SPFRecord,
    SPFSyntaxError,
    is_spf_record,
    parse_explanation,
    parse_record,
)
from tests.support.timing import cpu_timed


def ok(text: str | bytes) -> SPFRecord:
    rec = parse_record(text)
    assert isinstance(rec, SPFRecord), rec
    return rec


def err(text: str | bytes) -> SPFSyntaxError:
    rec = parse_record(text)
    assert isinstance(rec, SPFSyntaxError), rec
    return rec


def test_typed_terms() -> None:
    rec = ok(
        "v=spf1 -ip4:192.0.2.0/24 ~a:mail.example.com/28//64 mx ?include:_spf.example.net "
        "ip6:2001:db8::/32 ptr exists:%{ir}.%{l1r+-}._spf.%{d} redirect=_spf.example.com exp=explain.%{d2} "
        "foo-bar=baz -all"
    )
    kinds = [(t.kind, getattr(t, "name", None)) for t in rec.terms]
    assert kinds[0] == ("mechanism", "ip4")
    ip4, a, mx, inc, ip6, ptr, exists = rec.mechanisms[:7]
    assert ip4.qualifier == "-" and ip4.network == ipaddress.ip_network("192.0.2.0/24")
    assert (a.qualifier, a.domain_spec, a.cidr4, a.cidr6) == ("~", "mail.example.com", 28, 64)
    assert (mx.domain_spec, mx.cidr4, mx.cidr6) == (None, 32, 128)
    assert inc.result == "neutral" and inc.costs_lookup
    assert ip6.network == ipaddress.ip_network("2001:db8::/32") and not ip6.costs_lookup
    assert ptr.name == "ptr" and ptr.domain_spec is None
    assert exists.has_macros
    macros = [t for t in exists.domain_tokens if isinstance(t, Macro)]
    assert macros[0] == Macro("i", False, None, True, "")
    assert macros[1] == Macro("l", False, 1, True, "+-")
    assert rec.redirect is not None and rec.redirect.value == "_spf.example.com"
    assert rec.exp is not None and rec.exp.has_macros
    assert [m.name for m in rec.unknown_modifiers] == ["foo-bar"]
    assert rec.has_all and rec.all_mechanism is not None and rec.all_mechanism.qualifier == "-"
    assert len(rec.lookup_terms) == 6  # a mx include ptr exists redirect


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ("v=spf1 ip4:192.0.2.300", "IPv4"),
        ("v=spf1 ip4:1.2.3", "IPv4"),
        ("v=spf1 ip4:1.2.3.4/33", "larger than 32"),
        ("v=spf1 ip4:1.2.3.4/032", "leading zero"),
        ("v=spf1 ip6:2001:db8::/129", "larger than 128"),
        ("v=spf1 ip6::CAFE::BABE", "IPv6"),
        ("v=spf1 a:111.222.33.44", "numeric label"),
        ("v=spf1 a:museum", "needs a dot"),
        ("v=spf1 a/24/64", "CIDR"),
        ("v=spf1 -all.", "unknown mechanism"),
        ("v=spf1 include", "needs ':domain'"),
        ("v=spf1 redirect:example.com", "is a modifier"),
        ("v=spf1 redirect=a.example.com redirect=b.example.com", "more than once"),
        ("v=spf1 exp=a.example.com exp=b.example.com", "more than once"),
        ("v=spf1 1up=foo", "modifier name"),
        ("v=spf1 =all", "needs a name"),
        ("v=spf1 foo=%abc", "not a macro"),
        ("v=spf1 a:%{a}.example.com", "unknown macro letter"),
        ("v=spf1 exists:%{r}.example.com", "only allowed in explanation"),
        ("v=spf1 exists:%{d0}.example.com", "must not be zero"),
        ("v=spf1 a:foo.example.com\x00", "0x00"),
        ("v=spf1 ip4:192.0.2.5\n include:x.example.com", "0x0a"),
        ("v=spf1 a:example.com\x96", "non-ASCII"),
        (b"v=spf1 \x80a:example.net -all", "non-ASCII"),
        ("v=spf1 ptr:", "empty domain"),
        ("v=spf1 ptr/0", "CIDR"),
        ("v=spf1 exp=", "needs a domain"),
    ],
)
def test_syntax_errors_are_precise(record: str | bytes, needle: str) -> None:
    e = err(record)
    assert needle in e.message, e.message
    assert e.term is not None or "more than once" in e.message


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1",
        "V=SpF1 ~ALL",
        "v=spf1 a  -all ",
        "v=spf1 a:foo.example.xn--zckzah",
        "v=spf1 a:foo:bar/baz.example.com",
        "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
        "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
        "v=spf1 default=+",
        "v=spf1 ip6:::1.1.1.1/0 ip6:Cafe:Babe:8000::/33",
        "v=spf1 exists:%{p}.should.example.com",
        "v=spf1 redirect=%{d}.d.spf.example.com.",
        "v=spf1 a:%{H}.bar",
    ],
)
def test_valid_records(record: str) -> None:
    ok(record)


def test_version_tag() -> None:
    assert is_spf_record("v=spf1") and is_spf_record("v=spf1 -all") and is_spf_record(b"V=SPF1 mx")
    assert not is_spf_record("v=spf10") and not is_spf_record("v=spf1mx") and not is_spf_record(" v=spf1")
    assert not is_spf_record("v=spf1\n-all") and not is_spf_record("spf2.0/pra -all")
    assert "not an SPF record" in err("v=spf2 -all").message


def test_explanation_string() -> None:
    toks = parse_explanation(b"See http://example.com/why?s=%{S}&ip=%{C} at %{t}")
    assert toks is not None and any(isinstance(t, Macro) and t.letter == "c" for t in toks)
    assert parse_explanation("The %{x}-files.") is None
    assert parse_explanation(b"\xef\xbb\xbfExplanation") is None


TERM_ALPHABET = st.sampled_from(
    list("v=spf1 aimxptrxincludexists:/.%{}-_+~?!0123456789abcdefghijklmnopqrstuvwxyzABCDEF")
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=600))
def test_parser_is_total_on_arbitrary_text(text: str) -> None:
    def parse_all() -> None:
        for candidate in (text, "v=spf1 " + text, text.encode("utf-8", "surrogatepass")):
            result = parse_record(candidate)
            assert isinstance(result, (SPFRecord, SPFSyntaxError))
            if isinstance(result, SPFSyntaxError):
                assert result.message

    _, took = cpu_timed(parse_all)
    assert took < 0.1, took  # a few hundred chars: linear work is well under a millisecond


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(TERM_ALPHABET, max_size=40), max_size=30), st.binary(max_size=200))
def test_parser_is_total_on_record_like_text(terms: list[str], junk: bytes) -> None:
    text = "v=spf1 " + " ".join(terms)
    result = parse_record(text)
    assert isinstance(result, (SPFRecord, SPFSyntaxError))
    if isinstance(result, SPFRecord):
        for m in result.mechanisms:
            assert isinstance(m, Mechanism) and m.name in (
                "all",
                "include",
                "a",
                "mx",
                "ptr",
                "ip4",
                "ip6",
                "exists",
            )
    assert isinstance(parse_record(b"v=spf1 " + junk), (SPFRecord, SPFSyntaxError))


def test_huge_input_is_fast() -> None:
    t0 = time.perf_counter()
    for text in (
        "v=spf1 " + "a:" + "%{d}" * 20000,
        "v=spf1 " + "/" * 100000,
        "v=spf1 a:" + "9" * 100000 + "/1",
        "v=spf1 exists:%{d" + "1" * 50000 + "}.x.com",
        "v=spf1 " + "ip4:1.2.3.4 " * 5000,
    ):
        assert isinstance(parse_record(text), (SPFRecord, SPFSyntaxError))
    assert time.perf_counter() - t0 < 2.0
