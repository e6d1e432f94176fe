"""Blocklist engine and the list of lists, on real rbldnsd behind dnsmasq.

Fixture zones: tests/fixtures/rbl (zones.txt), served under the REAL zone names
of the default list set, so the default configuration is what is tested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.blocklists import check_blocklists, evaluate, query_name
from handlers.model import BlocklistResult, Finding
from handlers.net import DNSResult, Outcome
from knowledge.blocklists import (
    BlocklistSet,
    KnowledgeError,
    default_blocklists,
    load_blocklists,
    merge,
)
from tests.dnsworld import DNSWorld, rbl_manifest

MANDATORY = [
    "zen.spamhaus.org", "dbl.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org",
    "psbl.surriel.com", "bl.mailspike.net", "all.s5h.net", "bl.nordspam.com",
    "ix.dnsbl.manitu.net", "dnsbl-1.uceprotect.net", "dnsbl-2.uceprotect.net",
    "dnsbl-3.uceprotect.net", "multi.surbl.org", "multi.uribl.com",
]  # fmt: skip

SBL_IP = "203.0.113.1"
PBL_IP = "203.0.113.10"
ERROR_IP = "203.0.113.254"
UNDOC_IP = "203.0.113.99"
OUTSIDE_IP = "203.0.113.66"
CLEAN_IP = "198.51.100.200"
ALLOW_IP = "198.51.100.25"
V6_IP = "2001:db8::20"


def row(rows: list[BlocklistResult], zone: str, target: str) -> BlocklistResult:
    hits = [r for r in rows if r.zone == zone and r.target == target]
    assert len(hits) == 1, (zone, target, hits)
    return hits[0]


def findings_for(findings: list[Finding], target: str, code: str | None = None) -> list[Finding]:
    return [f for f in findings if f.evidence.get("target") == target and (code is None or f.code == code)]


async def run(world: DNSWorld, ips: list[str], domains: list[str] = [], **kw: Any):  # noqa: B006
    # 0.6 s per try: answers from the DNS world take milliseconds even on a busy machine;
    # the world's deliberately silent list costs the whole timeout in every run.
    return await check_blocklists(world.resolver(timeout=1.2), ips, domains, **kw)


# ------------------------------------------------------------------- schema
def test_default_set_validates_and_has_40_live_lists() -> None:
    s = default_blocklists()
    live = s.live()
    blocking = [e for e in live if e.purpose == "block"]
    assert len(blocking) >= 40
    zones = {e.zone for e in live}
    assert set(MANDATORY) <= zones
    for e in live:
        assert e.sources or e.confidence == "unverified", e.zone
        assert e.reviewed is not None, e.zone
        assert e.delist.procedure, e.zone
        assert e.codes, e.zone
    zen = s.get("zen.spamhaus.org")
    assert zen is not None and zen.kind == ["ip4", "ip6"]
    assert "127.255.255.254" in zen.error_codes and "127.255.255.252" in zen.error_codes
    dbl = s.get("dbl.spamhaus.org")
    assert dbl is not None and "127.0.1.255" in dbl.error_codes
    uribl = s.get("multi.uribl.com")
    assert uribl is not None and "127.0.0.1" in uribl.error_codes
    for z in ("dnsbl-2.uceprotect.net", "dnsbl-3.uceprotect.net"):
        entry = s.get(z)
        assert entry is not None and entry.informational
    dnswl = s.get("list.dnswl.org")
    assert dnswl is not None and dnswl.purpose == "allow" and "127.0.0.255" in dnswl.error_codes


def test_defunct_lists_are_recorded_and_not_live() -> None:
    s = default_blocklists()
    dead = s.defunct_zones
    for z in ("dnsbl.sorbs.net", "dnsbl.ahbl.org", "combined.njabl.org"):
        assert z in dead
    assert not dead & {e.zone for e in s.live()}


def test_fixture_manifest_covers_default_set() -> None:
    served = {zone for zone, _kind, _file in rbl_manifest()}
    for e in default_blocklists().live():
        if e.key is not None and e.key.required:
            continue
        assert e.zone in served, e.zone


def test_dqs_key_switches_zone_and_key_required_lists() -> None:
    s = default_blocklists()
    zen, abusix = s.get("zen.spamhaus.org"), s.get("combined.mail.abusix.zone")
    assert zen is not None and abusix is not None
    assert zen.query_zone({}) == "zen.spamhaus.org"
    assert zen.query_zone({"MAILCHECK_SPAMHAUS_DQS_KEY": "abcdefghijklmnopqrstuvwxyz"}) == (
        "abcdefghijklmnopqrstuvwxyz.zen.dq.spamhaus.net"
    )
    assert abusix.query_zone({}) is None
    assert abusix.query_zone({"MAILCHECK_ABUSIX_KEY": "k1"}) == "k1.combined.mail.abusix.zone"


def _write(tmp_path: Path, data: dict[str, Any]) -> str:
    p = tmp_path / "lists.yaml"
    p.write_text(json.dumps(data))  # JSON is YAML
    return str(p)


MINI = {
    "zone": "bl.example.net",
    "name": "Example BL",
    "kind": ["ip4"],
    "lists": "test list",
    "codes": [{"code": "127.0.0.2", "weight": "warning", "meaning": "listed by example"}],
}


def test_override_file_extends_or_replaces(tmp_path: Path) -> None:
    n = len(default_blocklists().lists)
    ext = load_blocklists({"MAILCHECK_BLOCKLISTS": _write(tmp_path, {"lists": [MINI]})})
    assert len(ext.lists) == n + 1 and ext.get("bl.example.net") is not None
    rep = load_blocklists(
        {"MAILCHECK_BLOCKLISTS": _write(tmp_path / "..", {"mode": "replace", "lists": [MINI]})}
    )
    assert [e.zone for e in rep.lists] == ["bl.example.net"]
    # Disable a default list.
    off = {**MINI, "zone": "bl.spamcop.net", "enabled": False}
    merged = merge(default_blocklists(), BlocklistSet.model_validate({"lists": [off]}))
    assert "bl.spamcop.net" not in {e.zone for e in merged.live()}


def test_override_cannot_revive_defunct_and_bad_files_fail(tmp_path: Path) -> None:
    sorbs = {**MINI, "zone": "dnsbl.sorbs.net"}
    merged = merge(default_blocklists(), BlocklistSet.model_validate({"lists": [sorbs]}))
    assert "dnsbl.sorbs.net" not in {e.zone for e in merged.live()}
    bad = {**MINI, "codes": [{"code": "10.0.0.2", "weight": "warning", "meaning": "outside loopback"}]}
    with pytest.raises(KnowledgeError):
        load_blocklists({"MAILCHECK_BLOCKLISTS": _write(tmp_path, {"lists": [bad]})})


def test_query_names() -> None:
    assert query_name("192.0.2.1", "ip4", "zen.spamhaus.org") == "1.2.0.192.zen.spamhaus.org"
    v6 = query_name("2001:db8::20", "ip6", "zen.spamhaus.org")
    assert v6.split(".")[:32] == list(reversed("20010db8000000000000000000000020"))
    # The RFC 5782 IPv6 test point stays in nibble form (dnspython would map it to in-addr.arpa).
    assert query_name("::ffff:7f00:2", "ip6", "z.example").startswith("2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0")
    assert query_name("listed.example", "domain", "dbl.spamhaus.org") == "listed.example.dbl.spamhaus.org"


def test_evaluate_is_conservative() -> None:
    zen = default_blocklists().get("zen.spamhaus.org")
    assert zen is not None
    for outcome in (Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED, Outcome.ERROR):
        assert evaluate(zen, DNSResult("x", "A", outcome)).status == "unknown"
    assert evaluate(zen, DNSResult("x", "A", Outcome.NXDOMAIN)).status == "clean"


# ------------------------------------------------------------ live engine
async def test_ip_on_zen_is_listed_with_meaning_txt_and_delist(dns_world: DNSWorld) -> None:
    rows, findings = await run(dns_world, [SBL_IP])
    r = row(rows, "zen.spamhaus.org", SBL_IP)
    assert r.status == "listed" and r.codes == ["127.0.0.2"]
    assert "SBL" in r.meaning and r.delist_url.startswith("https://check.spamhaus.org")
    assert "SBL000001" in r.reason_text
    assert row(rows, "bl.spamcop.net", SBL_IP).status == "listed"
    f = [
        x
        for x in findings_for(findings, SBL_IP, "blocklist.listed")
        if x.evidence["zone"] == "zen.spamhaus.org"
    ]
    assert len(f) == 1 and f[0].severity == "critical"
    assert SBL_IP in f[0].title and f[0].remediation == ["blocklist.delist"] and f[0].check == "blocklists"
    assert {"target", "zone", "codes", "meaning", "ip"} <= set(f[0].evidence)
    assert f[0].evidence["ip"] == SBL_IP


async def test_error_code_is_unknown_never_listed(dns_world: DNSWorld) -> None:
    rows, findings = await run(dns_world, [ERROR_IP, UNDOC_IP])
    r = row(rows, "zen.spamhaus.org", ERROR_IP)
    assert r.status == "unknown" and r.codes == ["127.255.255.254"]
    assert "public" in r.why_unknown and "DQS" in r.why_unknown
    assert row(rows, "zen.spamhaus.org", UNDOC_IP).status == "unknown"  # undocumented code, strict list
    assert not [
        f for f in findings if f.code == "blocklist.listed" and f.evidence["zone"] == "zen.spamhaus.org"
    ]
    unk = findings_for(findings, ERROR_IP, "blocklist.unknown")
    assert len(unk) == 1 and unk[0].severity == "unknown"
    assert (
        "zen.spamhaus.org" in unk[0].evidence["zone"] and "blocklist.resolver_refused" in unk[0].remediation
    )


async def test_dead_list_fails_test_points_and_is_unknown(dns_world: DNSWorld) -> None:
    rows, _ = await run(dns_world, [CLEAN_IP, SBL_IP])
    for ip in (CLEAN_IP, SBL_IP):
        r = row(rows, "dnsbl.justspam.org", ip)
        assert r.status == "unknown" and "RFC 5782" in r.why_unknown


async def test_timing_out_list_is_unknown(dns_world: DNSWorld) -> None:
    rows, findings = await run(dns_world, [CLEAN_IP])
    r = row(rows, "bl.blocklist.de", CLEAN_IP)
    assert r.status == "unknown" and "timeout" in r.why_unknown
    # Unknown rows do not spoil the verdict of the lists that answered.
    ok = findings_for(findings, CLEAN_IP, "blocklist.clean")
    assert len(ok) == 1 and ok[0].severity == "ok"
    assert not findings_for(findings, CLEAN_IP, "blocklist.listed")


async def test_answer_outside_loopback_is_unknown(dns_world: DNSWorld) -> None:
    rows, findings = await run(dns_world, [OUTSIDE_IP])
    r = row(rows, "spamsources.fabel.dk", OUTSIDE_IP)
    assert r.status == "unknown" and "127.0.0.0/8" in r.why_unknown
    assert not findings_for(findings, OUTSIDE_IP, "blocklist.listed")


async def test_ipv6_nibble_queries(dns_world: DNSWorld) -> None:
    rows, _ = await run(dns_world, [V6_IP])
    r = row(rows, "zen.spamhaus.org", V6_IP)
    assert r.status == "listed" and r.codes == ["127.0.0.3"] and "CSS" in r.meaning
    assert row(rows, "all.s5h.net", V6_IP).status == "listed"
    assert row(rows, "bl.ipv6.spameatingmonkey.net", V6_IP).status == "clean"
    assert not [x for x in rows if x.zone == "bl.spamcop.net"]  # IPv4-only list: not asked
    assert all(x.kind == "ip6" for x in rows)


async def test_pbl_severity_depends_on_role(dns_world: DNSWorld) -> None:
    _, as_mx = await run(dns_world, [PBL_IP], roles={PBL_IP: "mx"})
    _, as_sender = await run(dns_world, [PBL_IP])
    mx = [f for f in as_mx if f.code == "blocklist.listed" and f.evidence["zone"] == "zen.spamhaus.org"]
    snd = [f for f in as_sender if f.code == "blocklist.listed" and f.evidence["zone"] == "zen.spamhaus.org"]
    assert mx[0].severity == "info" and snd[0].severity == "critical"
    assert "PBL" in mx[0].evidence["meaning"]


async def test_domain_lists(dns_world: DNSWorld) -> None:
    rows, findings = await run(dns_world, [], ["listed.example", "www.listed.example", "refused.example"])
    assert row(rows, "dbl.spamhaus.org", "listed.example").status == "listed"
    assert row(rows, "dbl.spamhaus.org", "www.listed.example").status == "listed"  # DBL is wildcarded
    surbl = row(rows, "multi.surbl.org", "listed.example")
    assert surbl.status == "listed" and "MW" in surbl.meaning and "ABUSE" in surbl.meaning
    assert row(rows, "multi.uribl.com", "refused.example").status == "unknown"  # 127.0.0.1 = refused
    assert not [x for x in rows if x.zone == "zen.spamhaus.org"]
    f = [
        x
        for x in findings_for(findings, "listed.example", "blocklist.listed")
        if x.evidence["zone"] == "dbl.spamhaus.org"
    ]
    assert f and f[0].severity == "critical" and f[0].evidence["ip"] is None


async def test_allowlist_and_sender_score_are_not_listings(dns_world: DNSWorld) -> None:
    rows, findings = await run(dns_world, [ALLOW_IP, SBL_IP])
    wl = row(rows, "list.dnswl.org", ALLOW_IP)
    assert wl.status == "clean" and wl.codes == ["127.0.5.2"] and wl.informational
    assert findings_for(findings, ALLOW_IP, "reputation.allowlisted")
    assert not [f for f in findings_for(findings, ALLOW_IP, "blocklist.listed")]
    score = findings_for(findings, SBL_IP, "reputation.senderscore")
    assert score and score[0].evidence["score"] == 12 and score[0].severity == "warning"
    good = findings_for(findings, ALLOW_IP, "reputation.senderscore")
    assert good and good[0].evidence["score"] == 91 and good[0].severity == "ok"


async def test_one_query_per_list_and_target(dns_world: DNSWorld) -> None:
    resolver = dns_world.resolver(timeout=1.2)
    rows, _ = await check_blocklists(resolver, [CLEAN_IP, CLEAN_IP, "198.51.100.200"], [])
    zones = [r.zone for r in rows]
    assert len(zones) == len(set(zones))


async def test_defunct_never_queried(dns_world: DNSWorld) -> None:
    sorbs = {**MINI, "zone": "dnsbl.sorbs.net"}
    lists = merge(default_blocklists(), BlocklistSet.model_validate({"lists": [sorbs]}))
    resolver = dns_world.resolver(timeout=1.2)
    rows, _ = await check_blocklists(resolver, [CLEAN_IP], [], lists=lists)
    assert not [r for r in rows if "sorbs" in r.zone]
    assert resolver.cached("200.100.51.198.dnsbl.sorbs.net", "A") is None
    assert resolver.cached("2.0.0.127.dnsbl.sorbs.net", "A") is None


async def test_dqs_key_never_shown(dns_world: DNSWorld) -> None:
    key = "secretkeysecretkeysecretk1"
    rows, findings = await run(dns_world, [SBL_IP], env={"MAILCHECK_SPAMHAUS_DQS_KEY": key})
    blob = json.dumps([r.to_dict() for r in rows] + [f.to_dict() for f in findings])
    assert key not in blob
    # The fixture world does not serve DQS: Spamhaus rows are unknown, not clean, not listed.
    assert row(rows, "zen.spamhaus.org", SBL_IP).status == "unknown"


async def test_every_finding_names_its_target(dns_world: DNSWorld) -> None:
    targets = [SBL_IP, CLEAN_IP, V6_IP, ERROR_IP]
    _, findings = await run(dns_world, targets, ["listed.example"])
    assert findings
    for f in findings:
        t = f.evidence["target"]
        assert t in [*targets, "listed.example"] and t in f.title, f.title


async def test_a_list_that_fails_its_test_points_gets_no_more_of_the_runs_queries() -> None:
    """A dead list that answers 'listed' for everything (even 127.0.0.1) is unknown for
    every target, and is not asked for the targets still waiting when that is known.

    One query at a time makes the order certain (the test server answers from threads,
    so with more in flight a target's answer may overtake a test point's): both test
    points are answered before any target is due, and then none is asked."""
    from handlers.net import Resolver
    from tests.support.zonedns import ZoneServer

    ips = [f"198.51.100.{n}" for n in range(1, 31)]
    records: dict[tuple[str, str], Any] = {
        (query_name(ip, "ip4", "dead.example.net"), "A"): ["127.0.0.2"] for ip in [*ips, "127.0.0.1", "127.0.0.2"]
    }
    dead = BlocklistSet.model_validate({"lists": [{**MINI, "zone": "dead.example.net"}]}).lists
    with ZoneServer(records) as server:
        resolver = Resolver(nameservers=[server.address], timeout=1.0, concurrency=1)
        rows, findings = await check_blocklists(resolver, ips, [], lists=dead)
    assert [r.status for r in rows] == ["unknown"] * len(ips)
    assert all("RFC 5782" in r.why_unknown for r in rows), {r.why_unknown for r in rows}
    real = [q for q in server.queries if not q[0].startswith(("1.0.0.127.", "2.0.0.127."))]
    assert real == [], real
    assert not [f for f in findings if f.code == "blocklist.listed"]
