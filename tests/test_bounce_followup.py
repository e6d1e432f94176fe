"""`mailcheck bounce --follow`: live checks of what a bounce names, and the likely cause."""

from __future__ import annotations

from handlers.bounce_followup import analyse_with_followup
from tests.dnsworld import DNSWorld

GMAIL_PTR_IPV6 = """<someone@gmail.com>: host gmail-smtp-in.l.google.com[2404:6800:4008:c19::1a] said: 550-5.7.25
    [2001:db8::20] The IP address sending this message does not have a PTR record
    550-5.7.25 setup, or the corresponding forward DNS entry does not point to the
    550-5.7.25 sending IP. As a policy, Gmail does not accept messages from IPs with
    550-5.7.25 missing PTR records. Learn more at
    550 5.7.25  https://support.google.com/mail/answer/81126#ip-practices - gsmtp (in reply to end of DATA command)
"""


async def test_a_gmail_ptr_rejection_over_ipv6_is_traced_to_the_missing_ptr(dns_world: DNSWorld) -> None:
    report = await analyse_with_followup(GMAIL_PTR_IPV6, dns_world.resolver(timeout=1.2))
    b = report.bounces[0]
    assert (b.reason, b.provider, b.sender_ip) == ("requireptr", "google", "2001:db8::20")
    codes = {f.code for f in report.findings}
    assert {"ptr.missing", "blocklist.listed", "bounce.likely_cause"} <= codes
    cause = next(f for f in report.findings if f.code == "bounce.likely_cause")
    assert cause.evidence["codes"][0] == "ptr.missing"
    listed = {(r.zone, r.target) for r in report.blocklists if r.status == "listed"}
    assert ("zen.spamhaus.org", "2001:db8::20") in listed


async def test_without_a_resolver_nothing_is_looked_up() -> None:
    report = await analyse_with_followup(GMAIL_PTR_IPV6, None)
    assert report.bounces and not report.blocklists
    assert not [f for f in report.findings if f.code.startswith(("ptr.", "blocklist."))]


async def test_a_bounce_naming_the_sender_domain_checks_its_authentication(dns_world: DNSWorld) -> None:
    text = ("550-5.7.26 Unauthenticated email from weak.example is not accepted due to domain's\n"
            "550-5.7.26 DMARC policy. Please contact the administrator of weak.example domain.\n"
            "550 5.7.26 https://support.google.com/mail/answer/2451690 - gsmtp\n")
    report = await analyse_with_followup(text, dns_world.resolver(timeout=1.2))
    assert report.bounces[0].reason == "authfailure"
    codes = {f.code for f in report.findings}
    assert "dmarc.policy_none" in codes and "bounce.likely_cause" in codes
