"""The full domain audit on fixture domains: one domain per problem a user can have."""

from __future__ import annotations

import pytest

from handlers.domain_audit import audit_domain
from handlers.model import Report
from tests.dnsworld import DNSWorld


async def audit(world: DNSWorld, domain: str, **kw: object) -> Report:
    return await audit_domain(domain, world.resolver(timeout=1.0), **kw)  # type: ignore[arg-type]


def codes(report: Report) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in report.findings:
        # keep the worst severity per code
        rank = ["critical", "warning", "unknown", "info", "ok"]
        if f.code not in out or rank.index(f.severity) < rank.index(out[f.code]):
            out[f.code] = f.severity
    return out


@pytest.mark.parametrize(
    ("domain", "code", "severity"),
    [
        ("nothing.example", "spf.missing", "critical"),
        ("multi.example", "spf.multiple_records", "critical"),
        ("badspf.example", "spf.permerror", "critical"),
        ("lookups.example", "spf.too_many_lookups", "critical"),
        ("weak.example", "spf.too_many_void_lookups", None),
        ("plusall.example", "spf.permissive_all", "critical"),
        ("weak.example", "spf.ptr_mechanism", None),
        ("nothing.example", "dmarc.missing", "critical"),
        ("revoked.example", "dmarc.invalid", "critical"),
        ("weak.example", "dmarc.policy_none", "warning"),
        ("weak.example", "dmarc.no_rua", "warning"),
        ("nomx.example", "dmarc.rua_unauthorized", "warning"),
        ("nothing.example", "dkim.no_selector_found", "warning"),
        ("weak.example", "dkim.weak_key", "critical"),
        ("revoked.example", "dkim.revoked", None),
        ("revoked.example", "dkim.testing", "warning"),
        ("nullmx.example", "mx.null", "info"),
        ("nomx.example", "mx.missing", "warning"),  # no MX record: SPEC's code ...
        ("nomx.example", "mx.implicit", "info"),  # ... and where mail goes instead (its A record)
        ("badmx.example", "mx.unresolvable", "warning"),
        ("weak.example", "ptr.missing", None),
        ("badmx.example", "ptr.mismatch", None),
        ("badmx.example", "ptr.generic", None),
        ("weak.example", "mta_sts.missing", "info"),
        ("badspf.example", "mta_sts.invalid", "warning"),
        ("weak.example", "tls_rpt.missing", "info"),
        ("badspf.example", "tls_rpt.invalid", "warning"),
        ("weak.example", "bimi.missing", "info"),
        ("badspf.example", "bimi.invalid", "warning"),
        ("weak.example", "dnssec.unsigned", "info"),
        ("good.example", "dnssec.ok", "ok"),
        ("nothing.example", "requirements.gmail", "critical"),
        # The worst fact behind it is a warning (void lookups; no PTR on the MX address).
        ("weak.example", "requirements.yahoo", "warning"),
        ("plusall.example", "requirements.gmail", "critical"),  # '+all' is no valid SPF
        ("nothing.example", "requirements.microsoft", "critical"),
    ],
)
async def test_each_problem_gets_its_finding(dns_world: DNSWorld, domain: str, code: str, severity: str | None) -> None:
    found = codes(await audit(dns_world, domain))
    assert code in found, sorted(found)
    if severity is not None:
        assert found[code] == severity


async def test_a_good_domain_meets_the_requirements(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "good.example")
    found = codes(report)
    assert found["requirements.gmail"] == "ok"
    assert found["requirements.microsoft"] == "ok"
    assert not [f for f in report.findings if f.severity == "critical"]


async def test_requirements_judge_the_given_sending_ip(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "good.example", ips=["192.0.2.32"])  # generic PTR, no FCrDNS
    gmail = next(f for f in report.findings if f.code == "requirements.gmail")
    assert gmail.severity == "critical"
    assert gmail.evidence["sending_ips"] == ["192.0.2.32"]


async def test_a_parked_domain_passes(dns_world: DNSWorld) -> None:
    """Null MX, `v=spf1 -all`, DMARC p=reject: a domain correctly set up to send and
    receive nothing. It gets no receiving checks, no DKIM or sender-requirement demands,
    and nothing critical or to warn about."""
    report = await audit(dns_world, "nullmx.example")
    found = codes(report)
    assert "mta_sts.missing" not in found and "tls_rpt.missing" not in found
    assert found["requirements.not_sending"] == "ok"
    assert not {c for c in found if c.startswith("requirements.") and c != "requirements.not_sending"}
    assert "dkim.no_selector_found" not in found
    assert not [f for f in report.findings if f.severity in ("critical", "warning")], found


async def test_a_domain_that_does_not_exist_gets_one_headline(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "nope.good.example")
    assert [(f.code, f.severity, f.group) for f in report.findings] == [("domain.nxdomain", "critical", "domain")]
    assert not report.blocklists and not [r for f in report.findings for r in f.remediation]


async def test_a_requirement_line_is_as_severe_as_the_findings_it_rests_on(dns_world: DNSWorld) -> None:
    """The same fact has the same severity in every section."""
    for domain in ("weak.example", "badmx.example", "good.example", "nothing.example", "revoked.example"):
        report = await audit(dns_world, domain)
        lines = [f for f in report.findings if f.code.startswith("requirements.")]
        assert lines
        for line in lines:
            if line.severity in ("warning", "info"):
                behind = {f.severity for f in report.findings if not f.code.startswith("requirements.")}
                assert line.severity in behind, (domain, line.code, line.severity, behind)


async def test_plus_all_is_never_a_met_spf_requirement(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "plusall.example")
    for line in (f for f in report.findings if f.code.startswith("requirements.")):
        assert "SPF record valid" in line.evidence["unmet"] and "SPF record valid" not in line.evidence["met"]


async def test_a_servfail_domain_is_unknown_everywhere_never_ok(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "broken.example")
    assert report.findings
    # The blocklists did answer about the name (their zones work), so only they may say "clean".
    assert not [f for f in report.findings if f.severity == "ok" and not f.code.startswith("blocklist.")]
    assert {f.severity for f in report.findings if f.code.startswith(("spf", "dmarc", "mx"))} == {"unknown"}


async def test_no_name_is_asked_twice_in_one_audit(dns_world: DNSWorld) -> None:
    resolver = dns_world.resolver()
    await audit_domain("good.example", resolver)
    # Checks share lookups (an MX host's address serves the MX check, PTR/FCrDNS and
    # blocklists): each (name, type) is looked up once and then served from the cache.
    assert resolver.stats.lookups == len(resolver._cache)
    assert resolver.stats.cache_hits > 0


async def test_mx_addresses_are_checked_on_blocklists(dns_world: DNSWorld) -> None:
    report = await audit(dns_world, "good.example")
    targets = {b.target for b in report.blocklists}
    assert {"192.0.2.10", "2001:db8::10", "192.0.2.11", "good.example"} <= targets
