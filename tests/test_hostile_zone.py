"""A hostile zone costs what a real domain does: the audit looks at a bounded number of
MX hosts, addresses and blocklist rows, and says exactly what it left out.

`hostile.example` (tools/gen_hostile_zone.py) publishes 1,000 MX hosts with four
addresses each (twelve on the most preferred one), 500 TXT records at the apex (ten
of them SPF) and 300 DMARC records. Unbounded, its audit asked ~175,000 DNS queries
and built a 26 MB report.
"""

from __future__ import annotations

import json

from handlers.dkim import MAX_GIVEN_SELECTORS
from handlers.domain_audit import MAX_CHECKED_MX_ADDRESSES, audit_domain
from handlers.i18n import localized_copy
from handlers.model import Finding, Report
from handlers.mx import MAX_ADDRESSES_PER_HOST, MAX_MX_HOSTS
from tests.dnsworld import DNSWorld

HOSTILE = "hostile.example"


async def audit(world: DNSWorld, domain: str, **kw: object) -> Report:
    return await audit_domain(domain, world.resolver(timeout=1.0), fetch_policies=False, **kw)  # type: ignore[arg-type]


def only(report: Report, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, [f.code for f in report.findings]
    return found[0]


async def test_a_thousand_mx_hosts_are_cut_to_the_most_preferred(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, HOSTILE)

    too_many = only(report, "mx.too_many")
    assert too_many.severity == "warning"
    assert too_many.evidence["count"] == 1000 and too_many.evidence["limit"] == MAX_MX_HOSTS
    assert "1000 MX hosts" in too_many.title
    assert too_many.remediation == ["mx.trim_hosts"]
    mx = report.details["mx"]
    assert mx["hosts_published"] == 1000
    assert len(mx["hosts"]) == MAX_MX_HOSTS
    # the most preferred ones (RFC 5321 §5.1): the fixture's twenty hosts at preference 10
    assert {h["preference"] for h in mx["hosts"]} == {10}
    assert {h["host"] for h in mx["hosts"]} == {f"mx{i}.hostile.example" for i in range(0, 1000, 50)}

    # mx0 publishes twelve addresses: the first ten are kept, and the report says so
    per_host = only(report, "mx.too_many_addresses")
    assert per_host.evidence["host"] == "mx0.hostile.example"
    assert per_host.evidence["count"] == 12 and per_host.evidence["limit"] == MAX_ADDRESSES_PER_HOST
    assert mx["addresses_published"] == {"mx0.hostile.example": 12}
    assert max(len(h["addresses"]) for h in mx["hosts"]) == MAX_ADDRESSES_PER_HOST

    # reverse DNS and blocklists: at most MAX_CHECKED_MX_ADDRESSES of the kept addresses
    kept = sum(len(h["addresses"]) for h in mx["hosts"])
    truncated = only(report, "audit.truncated")
    assert truncated.evidence == {"target": HOSTILE, "count": kept, "limit": MAX_CHECKED_MX_ADDRESSES}
    assert len(report.details["ptr"]) == MAX_CHECKED_MX_ADDRESSES
    assert len({b.target for b in report.blocklists} - {HOSTILE}) == MAX_CHECKED_MX_ADDRESSES
    # every kept host got one address checked before any host got a second
    first_of_each = {h["addresses"][0] for h in mx["hosts"]}
    assert first_of_each <= set(report.details["ptr"])


async def test_an_ip_with_hundreds_of_ptr_names_keeps_the_first_few(dns_world: DNSWorld) -> None:
    from handlers.ptr import MAX_NAMES, check_ptr

    findings, info = await check_ptr(dns_world.resolver(timeout=1.0), "198.18.0.1", role="mx")
    assert info["ptr_published"] == 200
    assert len(info["ptr"]) == MAX_NAMES
    texts = " ".join(f.title + f.detail for f in findings)
    assert "200 PTR records" in texts and f"and {200 - MAX_NAMES} more" in texts
    assert len(texts) < 2_000


async def test_hostile_report_is_the_size_of_a_real_one(dns_world: DNSWorld) -> None:
    """Counts, not time: the bounded report has as many rows as a big real domain's."""
    report = await audit(dns_world, HOSTILE)
    size = len(json.dumps(report.to_dict()))
    assert size < 1_000_000, size  # was 36 MB of JSON
    assert len(report.findings) < 200
    assert report.dns_stats["asked"] < 2_000  # was ~175,000


async def test_a_domain_within_the_bounds_is_not_cut(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "good.example")
    codes = {f.code for f in report.findings}
    assert not codes & {"mx.too_many", "mx.too_many_addresses", "audit.truncated"}
    assert "hosts_published" not in report.details["mx"]


async def test_the_cut_is_explained_in_japanese(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, HOSTILE)
    ja = localized_copy(report, "ja")
    titles = {f.code: f.title for f in ja.findings}
    assert titles["mx.too_many"] == "hostile.example はMXホストを1000件公開しています（確認したのは優先度の高い20件）"
    assert "20件" in titles["audit.truncated"] and "逆引き" in titles["audit.truncated"]
    assert "mx0.hostile.example" in titles["mx.too_many_addresses"]
    # the English report it was made from is unchanged (the cached copy is shown again)
    assert only(report, "mx.too_many").title.startswith("hostile.example publishes 1000 MX hosts")
    assert report.lang == "en"


async def test_too_many_dkim_selectors_are_cut(dns_world: DNSWorld) -> None:
    given = [f"nokey{i}" for i in range(MAX_GIVEN_SELECTORS + 5)]
    report = await audit(dns_world, "good.example", selectors=given, blocklists=False)
    cut = only(report, "dkim.too_many_selectors")
    assert cut.evidence["count"] == MAX_GIVEN_SELECTORS + 5 and cut.evidence["limit"] == MAX_GIVEN_SELECTORS
    missing = [f for f in report.findings if f.code == "dkim.no_selector_found" and f.severity == "critical"]
    assert len(missing) == MAX_GIVEN_SELECTORS  # each checked selector you named is answered for
