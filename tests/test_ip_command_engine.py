"""`mailcheck ip` engine: PTR / FCrDNS / generic PTR + blocklists, on the real DNS world.

Reverse zones come from tests/fixtures/zones (2.0.192.in-addr.arpa):
192.0.2.10 -> mx1.good.example (A 192.0.2.10: FCrDNS ok), 192.0.2.31 ->
elsewhere.good.example (no A: mismatch), 192.0.2.32 -> 192-0-2-32.dynamic.pool.isp.example
(generic), 192.0.2.1 (no PTR). 203.0.113.0/24 has no reverse zone in the
world (lookups fail: unknown).
"""

from __future__ import annotations

import pytest

from handlers.iprep import ip_report, normalise_ips
from handlers.ptr import check_ptr, generic_reason
from tests.dnsworld import DNSWorld


@pytest.mark.parametrize(
    ("name", "ip"),
    [
        ("192-0-2-32.dynamic.pool.isp.example", "192.0.2.32"),
        ("32.2.0.192.in-addr.example.net", "192.0.2.32"),
        ("ppp-12-34.bb.isp.example", "198.51.100.7"),
        ("ec2-198-51-100-7.compute-1.amazonaws.com", "198.51.100.7"),
        ("static.7.100.51.198.clients.your-server.de", "198.51.100.7"),
        ("p1234-ipngn100101tokyo.ocn.ne.jp", "198.51.100.7"),  # no keyword, no IP: not flagged
        ("dhcp-77.cust.example.co.jp", "198.51.100.7"),
        ("c6336407.example.net", "198.51.100.7"),  # hex form of the IP
    ],
)
def test_generic_reason_flags(name: str, ip: str) -> None:
    expected = name != "p1234-ipngn100101tokyo.ocn.ne.jp"
    assert bool(generic_reason(name, ip)) is expected, name


@pytest.mark.parametrize(
    "name",
    ["mail.example.com", "mx1.good.example", "smtp-out.mailer.example.co.uk", "o1.ptr1234.sendgrid.net",
     "mail.pool-party.example", "mta7.dynamic.example"],
)  # fmt: skip
def test_generic_reason_leaves_mail_names_alone(name: str) -> None:
    # Keywords in the organisation's own domain (pool-party.example, dynamic.example) don't count.
    assert generic_reason(name, "198.51.100.7") == ""


async def test_ptr_ok(dns_world: DNSWorld) -> None:
    findings, info = await check_ptr(dns_world.resolver(), "192.0.2.10")
    assert [f.code for f in findings] == ["ptr.ok"]
    assert info["ptr"] == ["mx1.good.example"] and info["fcrdns"] is True and info["status"] == "ok"
    assert "192.0.2.10" in findings[0].title and findings[0].check == "ptr"


async def test_ptr_missing_severity_by_role(dns_world: DNSWorld) -> None:
    sending, _ = await check_ptr(dns_world.resolver(), "192.0.2.1")
    mx, _ = await check_ptr(dns_world.resolver(), "192.0.2.1", role="mx")
    assert [f.code for f in sending] == ["ptr.missing"] and sending[0].severity == "critical"
    assert mx[0].severity == "warning"
    assert sending[0].remediation == ["ptr.set_reverse_dns"] and sending[0].evidence["ip"] == "192.0.2.1"


async def test_ptr_mismatch(dns_world: DNSWorld) -> None:
    findings, info = await check_ptr(dns_world.resolver(), "192.0.2.31")
    codes = [f.code for f in findings]
    assert codes == ["ptr.mismatch"] and info["fcrdns"] is False
    f = findings[0]
    assert f.remediation == ["ptr.fcrdns_match"] and "elsewhere.good.example" in f.title


async def test_ptr_generic(dns_world: DNSWorld) -> None:
    findings, info = await check_ptr(dns_world.resolver(), "192.0.2.32")
    gen = [f for f in findings if f.code == "ptr.generic"]
    assert gen and gen[0].remediation == ["ptr.non_generic_name"] and info["generic"] is True
    assert "192.0.2.32" in gen[0].title
    # The forward zone isp.example is not served in the world: FCrDNS unknown, never "ok".
    assert "ptr.ok" not in [f.code for f in findings]


async def test_ptr_ipv6(dns_world: DNSWorld) -> None:
    findings, info = await check_ptr(dns_world.resolver(), "2001:db8::10")
    assert [f.code for f in findings] == ["ptr.ok"] and info["ip"] == "2001:db8::10"


async def test_ptr_unknown_when_lookup_fails(dns_world: DNSWorld) -> None:
    findings, info = await check_ptr(dns_world.resolver(timeout=1.2), "203.0.113.1")
    assert [f.code for f in findings] == ["ptr.unknown"] and findings[0].severity == "unknown"
    assert info["status"] == "unknown"


async def test_ip_report(dns_world: DNSWorld) -> None:
    ips = ["192.0.2.10", "203.0.113.1", "2001:db8::20", "198.51.100.25"]
    seen: list[tuple[int, int]] = []
    report = await ip_report(dns_world.resolver(timeout=1.2), ips, progress=lambda d, t: seen.append((d, t)))
    assert report.kind == "ip" and report.subject == ", ".join(ips)
    assert seen[-1] == (4, 4)
    assert {r.target for r in report.blocklists} == set(ips)
    zen = [r for r in report.blocklists if r.zone == "zen.spamhaus.org" and r.target == "203.0.113.1"]
    assert zen[0].status == "listed"
    assert report.has_critical
    for f in report.findings:
        assert f.evidence["target"] in ips and f.evidence["target"] in f.title
    assert report.details["senderscore"]["203.0.113.1"] == 12
    assert report.details["ptr"]["192.0.2.10"]["status"] == "ok"
    assert report.dns_stats["answered"] > 0
    d = report.to_dict()
    assert d["kind"] == "ip" and any(b["status"] == "listed" for b in d["blocklists"])


def test_normalise_ips() -> None:
    assert normalise_ips(["2001:DB8:0:0::20", "::ffff:192.0.2.1", "192.0.2.1"]) == [
        "2001:db8::20",
        "192.0.2.1",
    ]
    with pytest.raises(ValueError):
        normalise_ips(["not-an-ip"])


async def test_a_private_address_is_named_as_such_and_not_looked_up(dns_world: DNSWorld) -> None:
    resolver = dns_world.resolver(timeout=1.2)
    report = await ip_report(resolver, ["10.0.0.1", "fd00::5", "127.0.0.1"])
    private = [f for f in report.findings if f.code == "ip.private"]
    assert [f.evidence["target"] for f in private] == ["10.0.0.1", "fd00::5", "127.0.0.1"]
    assert "10.0.0.0/8 (RFC 1918)" in private[0].detail
    assert report.blocklists == [] and resolver.stats.as_dict().get("asked", 0) == 0
    assert not report.has_critical
