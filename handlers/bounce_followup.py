"""Bounce analysis plus live follow-up checks of what the bounce names.

The parser (handlers.bounce) is pure CPU and runs off the event loop; the
follow-ups (sending IP: PTR/FCrDNS + blocklists; sender domain: SPF, DKIM,
DMARC) run concurrently on one resolver. Then each bounce reason is matched
with the live findings that most likely caused it, so the user reads
"rejected for 5.7.25 — and indeed 2001:db8::5 has no PTR".
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from handlers.findings import finding
from handlers.model import Finding, Report

if TYPE_CHECKING:  # only --follow needs DNS: a plain analysis starts without dnspython
    from handlers.net import Resolver

async def analyse_with_followup(data: bytes | str, resolver: Resolver | None, *, lang: str = "en") -> Report:
    from handlers.bounce import analyse_bounce, extract_followup_targets

    t0 = time.monotonic()
    # Parsing is CPU work on untrusted text: keep it off the loop that acks Slack.
    report = await asyncio.to_thread(analyse_bounce, data, lang=lang)
    if resolver is not None and report.bounces:
        targets = extract_followup_targets(report)
        await followup(report, resolver, targets.get("sender_ips", []), targets.get("sender_domains", []))
        report.dns_stats = resolver.stats.as_dict()
    report.duration_ms = int((time.monotonic() - t0) * 1000)
    return report


async def followup(report: Report, resolver: Resolver, ips: list[str], domains: list[str]) -> None:
    from handlers.blocklists import check_blocklists
    from handlers.dkim import audit_dkim
    from handlers.dmarc import audit_dmarc
    from handlers.ptr import check_ptr
    from handlers.spf.audit import audit_spf

    ips = list(dict.fromkeys(ips))[:5]
    domains = list(dict.fromkeys(d.lower() for d in domains))[:3]
    tasks: list[Any] = [check_ptr(resolver, ip, role="sending") for ip in ips]
    for d in domains:
        tasks += [audit_spf(resolver, d), audit_dmarc(resolver, d), audit_dkim(resolver, d)]
    roles = {**dict.fromkeys(ips, "sending"), **dict.fromkeys(domains, "domain")}
    lists_task = check_blocklists(resolver, ips, domains, roles=roles) if (ips or domains) else None
    results = await asyncio.gather(*tasks, *([lists_task] if lists_task else []))
    live: list[Finding] = []
    for r in results[: len(tasks)]:
        live.extend(r[0])
    if lists_task is not None:
        bl_results, bl_findings = results[-1]
        report.blocklists.extend(bl_results)
        live.extend(bl_findings)
    for f in live:
        f.evidence.setdefault("followup", True)
    report.findings.extend(live)
    report.details["followup"] = {"ips": ips, "domains": domains}
    report.findings.extend(likely_causes(report, live))


def likely_causes(report: Report, live: list[Finding]) -> list[Finding]:
    from knowledge.bounce import load

    # Each reason's record lists the live findings that explain it, best first.
    reasons = load().reasons
    out: list[Finding] = []
    bad = [f for f in live if f.severity in ("critical", "warning")]
    for b in report.bounces:
        record = reasons.get(b.reason)
        wanted = record.likely_causes if record else []
        matches = [f for f in bad if f.code in wanted]
        if not matches:
            continue
        # Order by how the table ranks causes for this reason, then severity.
        matches.sort(key=lambda f: (wanted.index(f.code), f.severity != "critical"))
        top = matches[:3]
        who = b.recipient or "the recipient"
        out.append(
            finding(
                "bounce.likely_cause",
                "critical" if (b.hard or b.permanent) else "warning",
                f"Likely cause of the {b.reason} bounce for {who}: {top[0].title}",
                "The live checks found: " + "; ".join(f.title for f in top) + ".",
                evidence={"target": who, "value": b.reason, "codes": [f.code for f in top]},
                remediation=list(dict.fromkeys(r for f in top for r in f.remediation)),
                check="bounce",
            )
        )
    return out
