"""SPF audit and `mailcheck spf` report, against the in-process DNS server over real sockets."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.model import Finding
from handlers.net import Resolver
from handlers.spf import audit_spf, check_host, spf_check
from tests.support.zonedns import ZoneServer, serve_records

REMEDIATIONS = {
    "spf.add_record",
    "spf.merge_records",
    "spf.fix_syntax",
    "spf.reduce_lookups",
    "spf.fix_void_lookups",
    "spf.tighten_all",
    "spf.remove_ptr",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ZoneServer]:
    with ZoneServer() as srv:
        yield srv


def resolver_for(server: ZoneServer, timeout: float = 3.0) -> Resolver:
    """Generous by default (answers must arrive on a busy machine); tests of silence pass 0.3."""
    return Resolver(nameservers=[server.address], timeout=timeout)


def codes(findings: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in findings}


def hosts(*names: str, ip: str = "192.0.2.10") -> dict[tuple[str, str], Any]:
    return {(n, "A"): [ip] for n in names}


def check_common(findings: list[Finding]) -> None:
    for f in findings:
        assert f.check == "spf"
        assert f.code.startswith("spf.")
        assert f.severity in ("critical", "warning", "info", "ok", "unknown")
        assert f.title and f.detail
        assert set(f.remediation) <= REMEDIATIONS, f.remediation


async def test_too_many_lookups(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["v=spf1 include:_spf1.example.com include:_spf2.example.com mx a ~all"],
            ("example.com", "MX"): [(10, "mx.example.com")],
            ("example.com", "A"): ["192.0.2.1"],
            ("_spf1.example.com", "TXT"): [
                "v=spf1 a:h1.example.com a:h2.example.com a:h3.example.com a:h4.example.com -all"
            ],
            ("_spf2.example.com", "TXT"): ["v=spf1 a:h5.example.com a:h6.example.com a:h7.example.com -all"],
            **hosts("mx.example.com", *(f"h{i}.example.com" for i in range(1, 8))),
        }
    )
    r = resolver_for(server)
    findings, details = await audit_spf(r, "example.com")
    check_common(findings)
    f = codes(findings)["spf.too_many_lookups"]
    assert f.severity == "critical"
    assert f.evidence["count"] == 11 and f.evidence["limit"] == 10
    assert f.evidence["target"] == "example.com"
    assert f.remediation == ["spf.reduce_lookups"]
    assert details["lookups"] == 11
    assert "spf.ok" not in codes(findings)
    # The evaluator agrees: an unlisted client runs into the limit.
    res = await check_host(r, "203.0.113.9", "example.com", "postmaster@example.com")
    assert res.result == "permerror" and res.problem_code == "spf.too_many_lookups"


async def test_multiple_records(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): [
                "v=spf1 ip4:192.0.2.1 -all",
                "v=spf1 include:_spf.google.com ~all",
                "google-site-verification=x",
            ]
        }
    )
    findings, details = await audit_spf(resolver_for(server), "example.com")
    check_common(findings)
    f = codes(findings)["spf.multiple_records"]
    assert f.severity == "critical" and f.evidence["count"] == 2
    assert f.remediation == ["spf.merge_records"]
    assert details["tree"]["status"] == "multiple"


async def test_missing(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["google-site-verification=x"],
            ("nx-sibling.example.com", "A"): ["192.0.2.1"],
        }
    )
    findings, _ = await audit_spf(resolver_for(server), "example.com")
    f = codes(findings)["spf.missing"]
    assert f.severity == "critical" and f.remediation == ["spf.add_record"]
    findings, _ = await audit_spf(resolver_for(server), "nothere.example.org")
    assert codes(findings)["spf.missing"].severity == "critical"


@pytest.mark.parametrize(
    ("term", "severity"), [("+all", "critical"), ("all", "critical"), ("?all", "warning")]
)
async def test_permissive_all(server: ZoneServer, term: str, severity: str) -> None:
    server.set_records({("example.com", "TXT"): [f"v=spf1 ip4:192.0.2.0/24 {term}"]})
    findings, _ = await audit_spf(resolver_for(server), "example.com")
    check_common(findings)
    f = codes(findings)["spf.permissive_all"]
    assert f.severity == severity
    assert f.evidence["value"] == term
    assert f.remediation == ["spf.tighten_all"]


async def test_permissive_all_through_redirect_and_include(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["v=spf1 redirect=_spf.example.com"],
            ("_spf.example.com", "TXT"): ["v=spf1 include:open.example.net -all"],
            ("open.example.net", "TXT"): ["v=spf1 +all"],
        }
    )
    findings, _ = await audit_spf(resolver_for(server), "example.com")
    f = codes(findings)["spf.permissive_all"]
    assert f.severity == "critical" and f.evidence["host"] == "open.example.net"
    assert "spf.all_fail" in codes(findings)  # the effective all is the redirect target's -all


async def test_softfail_and_fail_all_are_info(server: ZoneServer) -> None:
    server.set_records(
        {
            ("soft.example.com", "TXT"): ["v=spf1 ip4:192.0.2.1 ~all"],
            ("hard.example.com", "TXT"): ["v=spf1 ip4:192.0.2.1 -all"],
        }
    )
    soft, _ = await audit_spf(resolver_for(server), "soft.example.com")
    hard, _ = await audit_spf(resolver_for(server), "hard.example.com")
    assert codes(soft)["spf.all_softfail"].severity == "info"
    assert codes(hard)["spf.all_fail"].severity == "info"
    assert codes(hard)["spf.ok"].severity == "ok"


async def test_no_all(server: ZoneServer) -> None:
    server.set_records({("example.com", "TXT"): ["v=spf1 ip4:192.0.2.1"]})
    findings, _ = await audit_spf(resolver_for(server), "example.com")
    assert codes(findings)["spf.no_all"].severity == "warning"


async def test_ptr_mechanism(server: ZoneServer) -> None:
    server.set_records({("example.com", "TXT"): ["v=spf1 ptr:example.com -all"]})
    findings, details = await audit_spf(resolver_for(server), "example.com")
    check_common(findings)
    f = codes(findings)["spf.ptr_mechanism"]
    assert f.severity == "warning" and f.remediation == ["spf.remove_ptr"]
    assert f.evidence["value"] == "ptr:example.com"
    assert details["lookups"] == 1


async def test_void_includes(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): [
                "v=spf1 include:gone1.example.net include:gone2.example.net include:gone3.example.net ip4:192.0.2.1 -all"
            ],
            ("gone3.example.net", "A"): ["192.0.2.3"],  # exists, but has no TXT: still void
        }
    )
    findings, details = await audit_spf(resolver_for(server), "example.com")
    check_common(findings)
    f = codes(findings)["spf.too_many_void_lookups"]
    assert f.severity == "warning"
    assert f.evidence["count"] == 3 and f.evidence["limit"] == 2
    assert f.remediation == ["spf.fix_void_lookups"]
    missing = [x for x in findings if x.code == "spf.include_missing"]
    assert {x.evidence["host"] for x in missing} == {
        "gone1.example.net",
        "gone2.example.net",
        "gone3.example.net",
    }
    assert all(x.severity == "critical" for x in missing)
    assert details["void_lookups"] == 3
    assert [c["void"] for c in details["tree"]["children"]] == [True, True, True]


async def test_void_a_terms(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): [
                "v=spf1 a:nx1.example.com a:nx2.example.com mx:nomx.example.com ip4:192.0.2.1 -all"
            ],
            ("nomx.example.com", "A"): ["192.0.2.5"],
        }
    )
    r = resolver_for(server)
    findings, details = await audit_spf(r, "example.com")
    assert codes(findings)["spf.too_many_void_lookups"].evidence["count"] == 3
    assert "spf.include_missing" not in codes(findings)
    assert details["tree"]["void_lookups"] == 3
    res = await check_host(r, "203.0.113.9", "example.com", "a@example.com")
    assert res.result == "permerror" and res.problem_code == "spf.too_many_void_lookups"


@pytest.mark.parametrize("failure", ["SERVFAIL", "TIMEOUT", "REFUSED"])
async def test_dns_failure_is_unknown_never_ok(server: ZoneServer, failure: str) -> None:
    server.set_records({("example.com", "TXT"): failure})
    r = resolver_for(server, timeout=0.3)
    findings, details = await audit_spf(r, "example.com")
    check_common(findings)
    assert [f.code for f in findings] == ["spf.unknown"]
    assert findings[0].severity == "unknown"
    assert findings[0].evidence["target"] == "example.com"
    assert details["status"] == "unknown"
    report = await spf_check(r, "example.com", "192.0.2.1")
    assert report.spf is not None and report.spf["result"] == "temperror"
    assert report.findings[0].severity == "unknown"


async def test_include_failure_is_unknown_never_ok(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["v=spf1 include:_spf.example.net a:slow.example.com -all"],
            ("_spf.example.net", "TXT"): "SERVFAIL",
            ("slow.example.com", "*"): "TIMEOUT",
        }
    )
    findings, _ = await audit_spf(resolver_for(server, timeout=0.3), "example.com")
    check_common(findings)
    unknown = [f for f in findings if f.code == "spf.unknown"]
    assert {f.evidence["host"] for f in unknown} == {"_spf.example.net", "slow.example.com"}
    assert all(f.severity == "unknown" for f in unknown)
    assert not any(f.severity == "ok" for f in findings)


async def test_syntax_error(server: ZoneServer) -> None:
    server.set_records({("example.com", "TXT"): ["v=spf1 ip4:192.0.2.300 -all"]})
    findings, _ = await audit_spf(resolver_for(server), "example.com")
    f = codes(findings)["spf.permerror"]
    assert f.severity == "critical" and f.remediation == ["spf.fix_syntax"]
    assert f.evidence["value"] == "ip4:192.0.2.300"
    assert "192.0.2.300" in f.evidence["error"]


async def test_include_tree_shape(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): [
                "v=spf1 mx include:_spf.example.com include:mail.example.net redirect=_r.example.com"
            ],
            ("example.com", "MX"): [(10, "mx.example.com")],
            ("_spf.example.com", "TXT"): ["v=spf1 include:_inner.example.com a:h1.example.com ~all"],
            ("_inner.example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"],
            ("mail.example.net", "TXT"): ["v=spf1 exists:%{i}._spf.example.net -all"],
            ("_r.example.com", "TXT"): ["v=spf1 a -all"],
            **hosts("mx.example.com", "h1.example.com", "_r.example.com"),
        }
    )
    findings, details = await audit_spf(resolver_for(server), "example.com")
    check_common(findings)
    tree = details["tree"]
    assert tree["domain"] == "example.com" and tree["via"] == "root"
    assert tree["lookups"] == 4  # mx, 2 includes, redirect
    assert tree["total_lookups"] == 4 + 2 + 0 + 1 + 1  # + _spf (include, a) + _inner + mail (exists) + _r (a)
    assert details["lookups"] == tree["total_lookups"] == 8
    kids = tree["children"]
    assert [(c["domain"], c["via"]) for c in kids] == [
        ("_spf.example.com", "include"),
        ("mail.example.net", "include"),
        ("_r.example.com", "redirect"),
    ]
    spf1 = kids[0]
    assert spf1["term"] == "include:_spf.example.com"
    assert spf1["lookups"] == 2 and spf1["total_lookups"] == 2
    assert spf1["children"][0]["domain"] == "_inner.example.com"
    assert spf1["children"][0]["lookups"] == 0 and spf1["children"][0]["children"] == []
    terms = {t["term"]: t for t in tree["terms"]}
    assert terms["include:_spf.example.com"]["lookups"] == 1
    assert terms["include:_spf.example.com"]["total_lookups"] == 3
    assert terms["mx"]["total_lookups"] == 1
    for node in (tree, *kids):
        assert set(node) >= {
            "domain",
            "record",
            "lookups",
            "total_lookups",
            "children",
            "void",
            "error",
            "terms",
        }
    assert "spf.macros" in codes(findings)
    assert codes(findings)["spf.all_fail"]  # the redirect target ends in -all


async def test_loop(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["v=spf1 include:a.example.com -all"],
            ("a.example.com", "TXT"): ["v=spf1 include:example.com -all"],
        }
    )
    findings, _ = await audit_spf(resolver_for(server), "example.com")
    f = [x for x in findings if x.code == "spf.permerror"]
    assert f and "loop" in f[0].title and f[0].severity == "critical"


async def test_long_multi_string_record_over_tcp(server: ZoneServer) -> None:
    nets = " ".join(f"ip4:198.51.100.{i}" for i in range(1, 40))
    record = f"v=spf1 {nets} -all"
    assert len(record) > 450
    server.set_records({("example.com", "TXT"): [record, "x" * 300, "y" * 500]})  # > 1232 bytes: TC
    server.clear_log()
    r = resolver_for(server)
    findings, _ = await audit_spf(r, "example.com")
    c = codes(findings)
    assert c["spf.record_too_long"].severity == "warning"
    assert c["spf.record_too_long"].evidence["count"] == len(record)
    assert c["spf.multi_string"].evidence["count"] == 3
    assert ("example.com.", "TXT", "tcp") in server.queries  # truncated over UDP, retried over TCP
    res = await check_host(r, "198.51.100.39", "example.com", "a@example.com")
    assert res.result == "pass" and res.mechanism == "ip4:198.51.100.39"


async def test_siblings_fetched_concurrently_and_nothing_asked_twice() -> None:
    records: dict[tuple[str, str], Any] = {
        ("example.com", "TXT"): [
            "v=spf1 " + " ".join(f"include:s{i}.example.net" for i in range(6)) + " -all"
        ],
    }
    for i in range(6):
        records[(f"s{i}.example.net", "TXT")] = [f"v=spf1 a:h{i}.example.net -all"]
        records[(f"h{i}.example.net", "A")] = [f"192.0.2.{i + 1}"]
    delay = 0.5  # long enough for six answering threads to overlap on a busy machine
    with ZoneServer(records, delay=delay) as srv:
        r = Resolver(nameservers=[srv.address], timeout=10.0)
        _findings, details = await audit_spf(r, "example.com")
        # The six include records were asked together (and their 12 a: lookups), not one by one.
        assert srv.peak_in_flight >= 6, srv.peak_in_flight
        assert details["lookups"] == 12
        # The evaluator reuses the audit's answers: every question went out once.
        await check_host(r, "192.0.2.6", "example.com", "a@example.com")
        asked = Counter((n, t) for n, t, _ in srv.queries)
        assert asked and max(asked.values()) == 1, asked


async def test_spf_check_report(server: ZoneServer) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["v=spf1 include:_spf.example.com -all exp=why.example.com"],
            ("_spf.example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/28 ip6:2001:db8::/64 ~all"],
            ("why.example.com", "TXT"): ["%{i} may not send for %{d} (sender %{s})"],
        }
    )
    r = resolver_for(server)
    report = await spf_check(r, "example.com", "192.0.2.5")
    assert report.kind == "spf"
    spf = report.spf
    assert spf is not None
    assert spf["result"] == "pass"
    assert spf["mechanism"] == "include:_spf.example.com"
    assert spf["path"] == ["example.com: include:_spf.example.com", "_spf.example.com: ip4:192.0.2.0/28"]
    assert spf["lookups"] == 1 and spf["void_lookups"] == 0
    assert spf["domain"] == "example.com" and spf["ip"] == "192.0.2.5"
    assert spf["sender"] == "postmaster@example.com"
    steps = [(t["depth"], t["step"], t.get("term"), t.get("outcome")) for t in spf["trace"]]
    assert (1, "term", "ip4:192.0.2.0/28", "match") in steps
    assert (0, "term", "include:_spf.example.com", "match") in steps
    assert report.findings[0].code == "spf.pass" and report.findings[0].severity == "ok"
    report.to_dict()  # JSON-ready

    fail = await spf_check(r, "example.com", "2001:DB8:1::1", helo="mx.example.org", sender="bob@example.com")
    assert fail.spf is not None
    assert fail.spf["result"] == "fail" and fail.spf["mechanism"] == "-all"
    assert fail.spf["ip"] == "2001:db8:1::1"
    nibbles = ".".join(ipaddress.ip_address("2001:db8:1::1").exploded.replace(":", "").upper())
    assert fail.spf["explanation"] == f"{nibbles} may not send for example.com (sender bob@example.com)"
    assert fail.findings[0].code == "spf.fail"


async def test_serve_records_context_manager() -> None:
    with serve_records(
        {("example.org", "TXT"): ["v=spf1 -all"], ("example.org", "MX"): ["10 mx.example.org"]}
    ) as (host, port):
        r = Resolver(nameservers=[(host, port)], timeout=1.0)
        txt = await r.query("EXAMPLE.org.", "TXT")
        mx = await r.query("example.org", "MX")
        nx = await r.query("nope.example.org", "A")
        nodata = await r.query("example.org", "AAAA")
    assert txt.texts == ["v=spf1 -all"]
    assert mx.mx == [(10, "mx.example.org")]
    assert nx.outcome.value == "nxdomain" and nodata.outcome.value == "nodata"


@pytest.mark.parametrize(
    ("sender", "helo"),
    [("", None), ("no-at-sign", "[192.0.2.1]"), ("@example.com", "bad helo !"), ("a@b@example.com", "%{x}")],
)
async def test_odd_sender_and_helo_go_verbatim(server: ZoneServer, sender: str, helo: str | None) -> None:
    server.set_records(
        {
            ("example.com", "TXT"): ["v=spf1 exists:%{l}.%{o}.%{H}.x.example.com -all exp=e.example.com"],
            ("e.example.com", "TXT"): ["%{s} via %{h}"],
        }
    )
    report = await spf_check(resolver_for(server), "example.com", "192.0.2.1", helo=helo, sender=sender)
    assert report.spf is not None and report.spf["result"] == "fail"
    assert report.spf["sender"] == sender
    assert report.spf["explanation"].endswith(f" via {helo if helo is not None else 'unknown'}")
