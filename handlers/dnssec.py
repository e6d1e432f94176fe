"""DNSSEC: is the zone signed (DNSKEY published), and did the resolver validate (AD)."""

from __future__ import annotations

from handlers.findings import dns_unknown, finding
from handlers.model import Finding
from handlers.net import Resolver


async def audit_dnssec(resolver: Resolver, domain: str) -> list[Finding]:
    res = await resolver.query(domain, "DNSKEY")
    if res.failed:
        return [dns_unknown("dnssec.unknown", "DNSSEC", res, domain, check="dnssec")]
    if res.ok:
        validated = " Your resolver validated the answer (AD flag)." if res.authenticated else ""
        return [
            finding("dnssec.ok", "ok", f"{domain} is DNSSEC-signed",
                    f"The zone publishes {len(res.records)} DNSKEY record(s).{validated}",
                    evidence={"target": domain, "count": len(res.records)})
        ]
    return [
        finding(
            "dnssec.unsigned",
            "info",
            f"{domain} is not DNSSEC-signed",
            "Without DNSSEC, forged DNS answers (MX, SPF, DKIM keys) can't be detected by validating receivers, "
            "and DANE for SMTP is not possible. Most registrars and DNS hosts can sign with one switch.",
            evidence={"target": domain},
            remediation=["dnssec.sign_zone"],
        )
    ]
