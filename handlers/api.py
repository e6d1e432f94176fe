"""One way to run a check: `await run(kind, request, resolver) -> Report`.

The CLI (`bot/cli.py`), the Slack bot (`bot/slack/runtime.py`) and the digests
(`bot/digest.py`) all come through here, so a check behaves the same whoever asks. Every
check has the same shape: one verb (`CHECKS[kind]`), one request, one resolver, one
`Report`. A new check is one module under handlers/ and one line in `CHECKS`.

Input validation that needs the user's own words (a port after an IP, a file that
holds no addresses) stays with the caller; a request here is already well-formed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.model import Report

if TYPE_CHECKING:  # dnspython is heavy; a bounce analysis without live checks must start without it
    from handlers.net import Resolver


@dataclass(frozen=True)
class CheckRequest:
    target: str = ""  # the domain (domain, spf)
    ips: tuple[str, ...] = ()  # ip: the IPs; spf: the one IP; domain: sending IPs to judge
    selectors: tuple[str, ...] = ()  # domain: DKIM selectors to check besides the common ones
    data: bytes | str = b""  # bounce, message: the pasted text or file
    helo: str | None = None  # spf
    sender: str | None = None  # spf
    blocklists: bool = True  # domain: query the blocklists
    live: bool = True  # message: live checks (DKIM keys, DMARC, PTR, blocklists)
    lang: str = "en"  # bounce, message: the language of the engine's own case notes


Check = Callable[[CheckRequest, "Resolver | None"], Awaitable[Report]]


def _need(resolver: Resolver | None, kind: str) -> Resolver:
    if resolver is None:
        raise ValueError(f"the {kind} check needs a resolver")
    return resolver


async def _domain(req: CheckRequest, resolver: Resolver | None) -> Report:
    from handlers.domain_audit import audit_domain

    return await audit_domain(req.target, _need(resolver, "domain"), selectors=list(req.selectors) or None,
                              ips=list(req.ips), blocklists=req.blocklists)


async def _ip(req: CheckRequest, resolver: Resolver | None) -> Report:
    from handlers.iprep import ip_report

    return await ip_report(_need(resolver, "ip"), list(req.ips))


async def _spf(req: CheckRequest, resolver: Resolver | None) -> Report:
    from handlers.spf.evaluate import spf_check

    if len(req.ips) != 1:
        raise ValueError("the spf check takes exactly one IP")
    return await spf_check(_need(resolver, "spf"), req.target, req.ips[0], helo=req.helo, sender=req.sender)


async def _bounce(req: CheckRequest, resolver: Resolver | None) -> Report:
    """Without a resolver: the analysis alone, no live checks of the IP and domain it names."""
    from handlers.bounce_followup import analyse_with_followup

    return await analyse_with_followup(req.data, resolver, lang=req.lang)


async def _message(req: CheckRequest, resolver: Resolver | None) -> Report:
    from handlers.message import diagnose_message

    return await diagnose_message(req.data, resolver, live=req.live and resolver is not None, lang=req.lang)


CHECKS: dict[str, Check] = {
    "domain": _domain,
    "ip": _ip,
    "spf": _spf,
    "bounce": _bounce,
    "message": _message,
}


async def run(kind: str, request: CheckRequest, resolver: Resolver | None) -> Report:
    """Run the `kind` check; the report carries its duration and DNS statistics."""
    check = CHECKS.get(kind)
    if check is None:
        raise ValueError(f"unknown check {kind!r} (known: {', '.join(CHECKS)})")
    t0 = time.monotonic()
    report = await check(request, resolver)
    report.duration_ms = report.duration_ms or int((time.monotonic() - t0) * 1000)
    if resolver is not None and not report.dns_stats:
        report.dns_stats = resolver.stats.as_dict()
    return report
