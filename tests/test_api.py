"""One way to run a check: the CLI, the bot and the digests all call
`handlers.api.run(kind, request, resolver)` and get the same report."""

from __future__ import annotations

import pytest

from handlers import api
from tests.dnsworld import DNSWorld


def test_every_check_the_product_offers_is_in_the_one_registry() -> None:
    assert set(api.CHECKS) == {"domain", "ip", "spf", "bounce", "message"}


async def test_an_unknown_check_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown check 'dns'"):
        await api.run("dns", api.CheckRequest(), None)


async def test_each_check_runs_through_the_entry_point(dns_world: DNSWorld) -> None:
    resolver = dns_world.resolver(timeout=3.0)
    audit = await api.run("domain", api.CheckRequest(target="nothing.example", blocklists=False), resolver)
    assert audit.kind == "domain" and "spf.missing" in {f.code for f in audit.findings}
    assert audit.dns_stats and audit.duration_ms >= 0
    spf = await api.run("spf", api.CheckRequest(target="plusall.example", ips=("203.0.113.9",)), resolver)
    assert spf.spf is not None and spf.spf["result"] == "pass"
    ip = await api.run("ip", api.CheckRequest(ips=("10.0.0.1",)), resolver)
    assert {f.code for f in ip.findings} == {"ip.private"}


async def test_a_bounce_without_a_resolver_is_analysed_without_live_checks() -> None:
    report = await api.run("bounce", api.CheckRequest(data="550 5.1.1 <a@example.org>: User unknown"), None)
    assert report.kind == "bounce" and report.bounces[0].reason == "userunknown"
    assert not report.dns_stats


async def test_a_check_that_needs_dns_says_so_without_a_resolver() -> None:
    with pytest.raises(ValueError, match="needs a resolver"):
        await api.run("domain", api.CheckRequest(target="good.example"), None)


def test_selectors_seen_in_reports_are_the_domains_own_most_used_first() -> None:
    from handlers.digest_reports import selectors_seen

    def src(*sigs: tuple[str, str, int]) -> dict[str, object]:
        return {"dkim": [{"domain": d, "selector": s, "messages": n} for d, s, n in sigs]}

    reports = [{"sources": [src(("shop.example", "k1", 5), ("esp.example", "e1", 900)),
                            src(("shop.example", "k2", 50), ("shop.example", "bad selector!", 99))]}]
    assert selectors_seen(reports, "Shop.Example.") == ["k2", "k1"]  # another d= and junk are left out
