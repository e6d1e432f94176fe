"""BIMI: the default._bimi TXT record and the DMARC enforcement it needs."""

from __future__ import annotations

from handlers.findings import dns_unknown, finding
from handlers.model import Finding
from handlers.net import Resolver
from handlers.tags import TagError, parse_tags


async def audit_bimi(resolver: Resolver, domain: str, dmarc_policy: str | None, dmarc_pct: str | None
                     ) -> list[Finding]:
    name = f"default._bimi.{domain}"
    res = await resolver.txt(name)
    if res.failed:
        return [dns_unknown("bimi.unknown", "BIMI", res, domain, check="bimi")]
    records = [t for t in res.texts if t.lower().startswith("v=bimi1")]
    if not records:
        return [
            finding(
                "bimi.missing",
                "info",
                f"{domain} has no BIMI record",
                "Optional: BIMI shows your logo in supporting mailboxes; it needs DMARC at quarantine or reject.",
                evidence={"target": domain},
                remediation=["bimi.publish"],
            )
        ]
    out: list[Finding] = []
    problems: list[str] = []
    try:
        tags = parse_tags(records[0])
        logo = tags.get("l", "")
        if logo and not logo.lower().startswith("https://"):
            problems.append("l= must be an https:// URL of an SVG Tiny PS logo")
        if not logo and not tags.get("a"):
            problems.append("neither l= (logo) nor a= (certificate) is set")
    except TagError as exc:
        problems.append(str(exc))
    if problems:
        out.append(
            finding("bimi.invalid", "warning", f"BIMI record of {domain} is invalid", "; ".join(problems) + ".",
                    evidence={"target": domain, "record": records[0], "error": "; ".join(problems)},
                    remediation=["bimi.publish"])
        )
    enforced = dmarc_policy in ("quarantine", "reject") and (dmarc_pct in (None, "100"))
    if not enforced:
        out.append(
            finding(
                "bimi.needs_enforcement",
                "warning",
                f"BIMI for {domain} is ignored: DMARC is not at enforcement",
                "Mailbox providers show BIMI logos only when DMARC is p=quarantine or p=reject (pct=100).",
                evidence={"target": domain, "policy": dmarc_policy or "none"},
                remediation=["dmarc.move_to_enforcement"],
            )
        )
    if not out:
        out.append(finding("bimi.ok", "ok", f"BIMI for {domain} is published", records[0],
                           evidence={"target": domain, "record": records[0]}))
    return out
