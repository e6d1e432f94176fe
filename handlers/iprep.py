"""`mailcheck ip IP...`: PTR, FCrDNS, generic PTR, every IP list, Sender Score."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from typing import Any

from handlers.blocklists import check_blocklists
from handlers.dns import Resolver
from handlers.model import Finding, Report, format_ip
from handlers.ptr import check_ptr


def normalise_ips(ips: list[str]) -> list[str]:
    """Canonical, de-duplicated IP texts (RFC 5952 for IPv6); ValueError on a bad one."""
    out: list[str] = []
    for raw in ips:
        text = raw.strip().strip("[]")
        try:
            ip = ipaddress.ip_address(text)
        except ValueError as exc:
            raise ValueError(f"not an IP address: {raw!r}") from exc
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        s = format_ip(str(ip))
        if s not in out:
            out.append(s)
    return out


async def ip_report(
    resolver: Resolver,
    ips: list[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """One report for several IPs; every row and finding names its IP.

    progress(done, total) is called as each IP's PTR check completes (bulk runs).
    """
    t0 = time.monotonic()
    targets = normalise_ips(ips)
    resolver.ensure_budget(200 + 60 * len(targets))  # ~30 lookups per IP (PTR, FCrDNS, every list)
    report = Report(kind="ip", subject=", ".join(targets))
    done = 0

    async def one_ptr(ip: str) -> tuple[list[Finding], dict[str, Any]]:
        nonlocal done
        out = await check_ptr(resolver, ip, role="sending")
        done += 1
        if progress is not None:
            progress(done, len(targets))
        return out

    ptr_task = asyncio.gather(*(one_ptr(ip) for ip in targets))
    bl_task = check_blocklists(resolver, targets, [], roles={ip: "sending" for ip in targets})
    ptr_results, (rows, bl_findings) = await asyncio.gather(ptr_task, bl_task)
    ptr_details: dict[str, Any] = {}
    for ip, (findings, info) in zip(targets, ptr_results, strict=True):
        report.findings.extend(findings)
        ptr_details[ip] = info
    report.findings.extend(bl_findings)
    report.blocklists = rows
    scores = {
        f.evidence["target"]: f.evidence.get("score")
        for f in bl_findings
        if f.code == "reputation.senderscore"
    }
    report.details = {"ptr": ptr_details, "senderscore": scores}
    report.dns_stats = resolver.stats.as_dict()
    report.duration_ms = int((time.monotonic() - t0) * 1000)
    return report
