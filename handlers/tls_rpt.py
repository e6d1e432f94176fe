"""SMTP TLS Reporting (RFC 8460): the _smtp._tls TXT record."""

from __future__ import annotations

from handlers.findings import dns_unknown, finding
from handlers.model import Finding
from handlers.net import Resolver
from handlers.tags import TagError, parse_tags


async def audit_tls_rpt(resolver: Resolver, domain: str) -> list[Finding]:
    name = f"_smtp._tls.{domain}"
    res = await resolver.txt(name)
    if res.failed:
        return [dns_unknown("tls_rpt.unknown", "TLS-RPT", res, domain, check="tls_rpt")]
    records = [t for t in res.texts if t.lower().startswith("v=tlsrptv1")]
    if not records:
        return [
            finding(
                "tls_rpt.missing",
                "info",
                f"{domain} requests no TLS reports (no TLS-RPT)",
                "TLS-RPT (RFC 8460) makes senders email you daily summaries of TLS failures delivering to you.",
                evidence={"target": domain},
                remediation=["tls_rpt.publish"],
            )
        ]
    problems: list[str] = []
    if len(records) > 1:
        problems.append("several v=TLSRPTv1 records")
    try:
        tags = parse_tags(records[0])
        ruas = [u.strip() for u in tags.get("rua", "").split(",") if u.strip()]
        if not ruas:
            problems.append("no rua= destination")
        for u in ruas:
            if not u.lower().startswith(("mailto:", "https:")):
                problems.append(f"rua '{u}' must be mailto: or https:")
    except TagError as exc:
        problems.append(str(exc))
    if problems:
        return [
            finding(
                "tls_rpt.invalid",
                "warning",
                f"TLS-RPT record of {domain} is invalid",
                "; ".join(problems) + ".",
                evidence={"target": domain, "record": records[0], "error": "; ".join(problems)},
                remediation=["tls_rpt.publish"],
            )
        ]
    return [
        finding("tls_rpt.ok", "ok", f"TLS-RPT for {domain} is published", records[0],
                evidence={"target": domain, "record": records[0]})
    ]
