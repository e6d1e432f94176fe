"""Domain-audit checks, each against the real DNS world (tests/fixtures/zones)."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Iterator

import pytest
from aiohttp import web

from handlers.bimi import audit_bimi
from handlers.dkim import audit_dkim
from handlers.dmarc import audit_dmarc
from handlers.dnssec import audit_dnssec
from handlers.model import Finding
from handlers.mta_sts import audit_mta_sts, mx_matches
from handlers.mx import audit_mx
from handlers.tls_rpt import audit_tls_rpt
from tests.dnsworld import DNSWorld


def codes(findings: list[Finding]) -> dict[str, str]:
    return {f.code: f.severity for f in findings}


# -- DMARC -------------------------------------------------------------------
async def test_a_domain_without_dmarc_gets_dmarc_missing(dns_world: DNSWorld) -> None:
    found, _ = await audit_dmarc(dns_world.resolver(), "nothing.example")
    assert codes(found) == {"dmarc.missing": "critical"}


async def test_p_none_without_rua_is_flagged_twice(dns_world: DNSWorld) -> None:
    found, details = await audit_dmarc(dns_world.resolver(), "weak.example")
    assert codes(found) == {"dmarc.policy_none": "warning", "dmarc.no_rua": "warning"}
    assert details["tags"]["p"] == "none"


async def test_an_unknown_policy_value_is_invalid(dns_world: DNSWorld) -> None:
    found, _ = await audit_dmarc(dns_world.resolver(), "revoked.example")
    assert codes(found) == {"dmarc.invalid": "critical"}
    assert "p=bogus" in found[0].detail


async def test_reports_to_an_unconsenting_domain_are_unauthorized(dns_world: DNSWorld) -> None:
    found, _ = await audit_dmarc(dns_world.resolver(), "nomx.example")
    assert "dmarc.rua_unauthorized" in codes(found)
    assert "reports.good.example" in found[0].title


async def test_reports_to_a_consenting_domain_are_fine(dns_world: DNSWorld) -> None:
    # thirdparty.example publishes *._report._dmarc TXT "v=DMARC1"
    found, _ = await audit_dmarc(dns_world.resolver(), "badmx.example")
    assert codes(found) == {"dmarc.ok": "ok"}


async def test_a_subdomain_inherits_the_parent_record(dns_world: DNSWorld) -> None:
    found, details = await audit_dmarc(dns_world.resolver(), "mx1.good.example")
    assert details["inherited_from"] == "good.example"
    assert "dmarc.inherited" in codes(found)


async def test_dmarc_servfail_is_unknown_never_missing(dns_world: DNSWorld) -> None:
    found, _ = await audit_dmarc(dns_world.resolver(), "broken.example")
    assert codes(found) == {"dmarc.unknown": "unknown"}


async def test_dmarc_timeout_is_unknown(dns_world: DNSWorld) -> None:
    found, _ = await audit_dmarc(dns_world.resolver(timeout=0.3), "slow.example")
    assert codes(found) == {"dmarc.unknown": "unknown"}


# -- DKIM --------------------------------------------------------------------
async def test_discovery_finds_rsa_2048_and_ed25519_keys(dns_world: DNSWorld) -> None:
    found, details = await audit_dkim(dns_world.resolver(), "good.example")
    assert {f.code for f in found} == {"dkim.ok"}
    sizes = {k["selector"]: (k["type"], k["bits"]) for k in details["keys"]}
    assert sizes == {"selector1": ("rsa", 2048), "s2": ("ed25519", 256)}


async def test_short_keys_are_weak(dns_world: DNSWorld) -> None:
    found, _ = await audit_dkim(dns_world.resolver(), "weak.example")
    weak = {f.evidence["selector"]: f.severity for f in found if f.code == "dkim.weak_key"}
    assert weak == {"default": "warning", "k1": "critical"}  # 1024 and 512 bits


async def test_revoked_and_testing_keys(dns_world: DNSWorld) -> None:
    found, _ = await audit_dkim(dns_world.resolver(), "revoked.example")
    assert codes(found) == {"dkim.revoked": "info", "dkim.testing": "warning"}


async def test_no_selector_found_says_dkim_cannot_be_proven_absent(dns_world: DNSWorld) -> None:
    found, _ = await audit_dkim(dns_world.resolver(), "nothing.example")
    assert codes(found) == {"dkim.no_selector_found": "warning"}
    assert "--selector" in found[0].detail


async def test_a_given_selector_without_key_is_critical(dns_world: DNSWorld) -> None:
    found, _ = await audit_dkim(dns_world.resolver(), "good.example", ["missing"], discover=False)
    assert codes(found) == {"dkim.no_selector_found": "critical"}


# -- MX ----------------------------------------------------------------------
async def test_null_mx_says_the_domain_takes_no_mail(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "nullmx.example")
    assert codes(found) == {"mx.null": "info"} and info.null_mx


async def test_no_mx_falls_back_to_the_address_record(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "nomx.example")
    assert codes(found) == {"mx.missing": "warning", "mx.implicit": "info"}
    assert info.all_addresses == ["192.0.2.60"]


async def test_an_mx_pointing_at_loopback_is_critical_and_is_not_looked_up(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "privmx.internal.example")
    [f] = [f for f in found if f.code == "mx.private"]
    assert f.severity == "critical" and f.evidence["value"] == "127.0.0.1"
    assert "mx.ok" not in codes(found) and info.all_addresses == []


async def test_one_private_mx_among_public_ones_is_a_warning(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "halfmx.internal.example")
    [f] = [f for f in found if f.code == "mx.private"]
    assert f.severity == "warning" and f.evidence["host"] == "rfc1918.internal.example"
    assert info.all_addresses == ["8.8.8.8", "2001:4860:4860::8888"]


async def test_a_private_mx_and_an_unresolvable_one_leave_nothing_to_deliver_to(dns_world: DNSWorld) -> None:
    found, _info = await audit_mx(dns_world.resolver(), "deadmx.internal.example")
    assert codes(found) == {"mx.private": "critical", "mx.unresolvable": "critical"}


async def test_an_mx_host_without_address_is_unresolvable(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "badmx.example")
    assert codes(found) == {"mx.unresolvable": "warning"}
    assert found[0].evidence["host"] == "gone.badmx.example"
    assert set(info.all_addresses) == {"192.0.2.31", "192.0.2.32"}


async def test_a_nonexistent_domain_is_reported_as_such(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "nope.good.example")
    assert codes(found) == {"domain.nxdomain": "critical"} and info.nxdomain


async def test_good_mx_lists_hosts_and_addresses(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(), "good.example")
    assert codes(found) == {"mx.ok": "ok"}
    assert info.addresses["mx1.good.example"] == ["192.0.2.10", "2001:db8::10"]


async def test_mx_timeout_is_unknown(dns_world: DNSWorld) -> None:
    found, info = await audit_mx(dns_world.resolver(timeout=0.3), "slow.example")
    assert codes(found) == {"mx.unknown": "unknown"} and info.unknown


# -- TLS-RPT, BIMI, DNSSEC -----------------------------------------------------
async def test_tls_rpt_present_and_missing(dns_world: DNSWorld) -> None:
    r = dns_world.resolver()
    assert codes(await audit_tls_rpt(r, "good.example")) == {"tls_rpt.ok": "ok"}
    assert codes(await audit_tls_rpt(r, "weak.example")) == {"tls_rpt.missing": "info"}


async def test_bimi_needs_dmarc_enforcement(dns_world: DNSWorld) -> None:
    r = dns_world.resolver()
    assert codes(await audit_bimi(r, "good.example", "reject", None)) == {"bimi.ok": "ok"}
    assert "bimi.needs_enforcement" in codes(await audit_bimi(r, "good.example", "none", None))
    assert codes(await audit_bimi(r, "weak.example", "none", None)) == {"bimi.missing": "info"}


async def test_dnssec_signed_and_unsigned(dns_world: DNSWorld) -> None:
    r = dns_world.resolver()
    assert codes(await audit_dnssec(r, "good.example")) == {"dnssec.ok": "ok"}
    assert codes(await audit_dnssec(r, "weak.example")) == {"dnssec.unsigned": "info"}
    assert codes(await audit_dnssec(r, "broken.example")) == {"dnssec.unknown": "unknown"}


# -- MTA-STS -------------------------------------------------------------------
def test_mta_sts_mx_patterns() -> None:
    assert mx_matches("*.good.example", "mx1.good.example")
    assert not mx_matches("*.good.example", "a.b.good.example")
    assert not mx_matches("*.good.example", "good.example")
    assert mx_matches("mx.example", "MX.example.")


async def test_mta_sts_missing(dns_world: DNSWorld) -> None:
    found, _ = await audit_mta_sts(dns_world.resolver(), "weak.example", ["mail.weak.example"])
    assert codes(found) == {"mta_sts.missing": "info"}


async def test_mta_sts_policy_on_loopback_is_never_fetched_by_default(
    dns_world: DNSWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mta-sts.good.example resolves to 127.0.0.1: the safety rule forbids connecting there.
    monkeypatch.delenv("MAILCHECK_ALLOW_PRIVATE_TARGETS", raising=False)
    found, _ = await audit_mta_sts(dns_world.resolver(), "good.example", ["mx1.good.example"])
    assert codes(found) == {"mta_sts.unknown": "unknown"}
    assert "non-public" in found[0].detail


@pytest.fixture
def https_policy_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A real HTTPS server on 127.0.0.1 serving an MTA-STS policy, certified by a test CA."""
    import threading

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("mta-sts.good.example")
    state = {"body": "version: STSv1\nmode: enforce\nmx: *.good.example\nmax_age: 604800\n", "status": "200"}
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box: list[int] = []

    async def policy(_req: web.Request) -> web.Response:
        if state["status"] == "302":
            raise web.HTTPFound("https://elsewhere.example/")
        return web.Response(text=state["body"], content_type="text/plain")

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/.well-known/mta-sts.txt", policy)
        runner = web.AppRunner(app)
        await runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port_box.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    ca_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mailcheck-test-ca-{os.getpid()}.pem")
    ca.cert_pem.write_to_path(ca_file)
    monkeypatch.setenv("MAILCHECK_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("MAILCHECK_HTTPS_PORT", str(port_box[0]))
    monkeypatch.setenv("MAILCHECK_CA_FILE", ca_file)
    yield state
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    os.unlink(ca_file)


async def test_mta_sts_enforce_policy_covering_every_mx(dns_world: DNSWorld, https_policy_server: dict[str, str]) -> None:
    found, details = await audit_mta_sts(dns_world.resolver(), "good.example", ["mx1.good.example", "mx2.good.example"])
    assert codes(found) == {"mta_sts.ok": "ok"}
    assert details["policy"]["mode"] == "enforce"


async def test_mta_sts_policy_not_covering_an_mx_is_invalid(
    dns_world: DNSWorld, https_policy_server: dict[str, str]
) -> None:
    found, _ = await audit_mta_sts(dns_world.resolver(), "good.example", ["mx.other.example"])
    assert codes(found) == {"mta_sts.invalid": "warning"}
    assert "mx.other.example" in found[0].detail


async def test_mta_sts_redirects_are_not_followed(dns_world: DNSWorld, https_policy_server: dict[str, str]) -> None:
    https_policy_server["status"] = "302"
    found, _ = await audit_mta_sts(dns_world.resolver(), "good.example", ["mx1.good.example"])
    assert codes(found) == {"mta_sts.invalid": "warning"}
    assert "302" in found[0].detail
