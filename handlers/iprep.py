"""`mailcheck ip IP...`: PTR, FCrDNS, generic PTR, every IP list, Sender Score."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from typing import Any

from handlers.blocklists import check_blocklists
from handlers.model import Finding, Report, format_ip
from handlers.net import Resolver, is_internal_hop
from handlers.ptr import check_ptr

# The ranges is_internal_hop() treats as internal, with the RFC that sets each aside.
_PRIVATE_RANGES = (
    ("127.0.0.0/8", "RFC 1122"), ("::1/128", "RFC 4291"), ("10.0.0.0/8", "RFC 1918"),
    ("172.16.0.0/12", "RFC 1918"), ("192.168.0.0/16", "RFC 1918"), ("100.64.0.0/10", "RFC 6598"),
    ("169.254.0.0/16", "RFC 3927"), ("fe80::/10", "RFC 4291"), ("fc00::/7", "RFC 4193"),
    ("0.0.0.0/8", "RFC 1122"), ("::/128", "RFC 4291"),
)


def _private_range(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    for net, name in _PRIVATE_RANGES:
        network = ipaddress.ip_network(net)
        if addr.version == network.version and addr in network:
            return f"{net} ({name})"
    return ip


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
    given = normalise_ips(ips)
    report = Report(kind="ip", subject=", ".join(given))
    # Loopback, RFC 1918, CGNAT, link-local and ULA addresses never meet a receiver: say so
    # instead of asking PTR and ~50 blocklists about them (documentation ranges are asked:
    # they are real DNS questions, and the test fixtures use them).
    targets = [ip for ip in given if not is_internal_hop(ip)]
    for ip in given:
        if ip not in targets:
            rng = _private_range(ip)
            report.findings.append(Finding(
                code="ip.private", severity="info", title=f"{ip} is a private address: nothing on the Internet sees it",
                detail=(f"Addresses in {rng} never reach a receiving server, so no receiver checks their reverse "
                        "DNS and no blocklist lists them: they were not looked up. Check the public address your "
                        "mail leaves from instead (the first external hop in a delivered message's Received "
                        "lines, or your provider's sending IP)."),
                evidence={"target": ip, "value": rng}, check="ip",
            ))
    resolver.ensure_budget(200 + 60 * len(targets))  # ~30 lookups per IP (PTR, FCrDNS, every list)
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
