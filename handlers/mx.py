"""MX audit: missing / implicit / null MX (RFC 7505) / unresolvable hosts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from handlers.dns import Resolver
from handlers.findings import dns_unknown, finding
from handlers.model import Finding


@dataclass
class MXInfo:
    hosts: list[tuple[int, str]] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)  # host -> IPs
    null_mx: bool = False
    implicit: bool = False  # no MX: mail goes to the domain's A/AAAA
    nxdomain: bool = False
    unknown: bool = False

    @property
    def all_addresses(self) -> list[str]:
        return list(dict.fromkeys(ip for ips in self.addresses.values() for ip in ips))


async def audit_mx(resolver: Resolver, domain: str) -> tuple[list[Finding], MXInfo]:
    info = MXInfo()
    out: list[Finding] = []
    res = await resolver.query(domain, "MX")
    if res.failed:
        info.unknown = True
        out.append(dns_unknown("mx.unknown", "MX", res, domain, check="mx"))
        return out, info
    if res.outcome.name == "NXDOMAIN":
        info.nxdomain = True
        out.append(
            finding(
                "domain.nxdomain",
                "critical",
                f"{domain} does not exist in DNS",
                "The name returned NXDOMAIN: nothing can be delivered to or authenticated for it. "
                "Check the spelling, or that the domain's registration and delegation are active.",
                evidence={"target": domain},
                remediation=["mx.publish"],
                check="mx",
            )
        )
        return out, info
    mx = res.mx
    if len(mx) == 1 and mx[0][1] in ("", "."):
        info.null_mx = True
        out.append(
            finding(
                "mx.null",
                "info",
                f"{domain} publishes a null MX: it accepts no mail",
                "MX 0 . (RFC 7505) says this domain never receives mail. Mail to it fails at once "
                "(556 5.1.10), and Yahoo rejects mail FROM a domain with a null MX (550 5.7.27), so a "
                "domain that sends mail must not publish one. MX-related checks are skipped.",
                evidence={"target": domain, "record": "MX 0 ."},
                remediation=["mx.null_mx"],
            )
        )
        return out, info
    if any(host in ("", ".") for _p, host in mx):
        out.append(
            finding(
                "mx.invalid",
                "warning",
                f"{domain} mixes a null MX with real MX hosts",
                "A null MX (MX 0 .) must be the only MX record (RFC 7505 §3); receivers may treat the domain as mail-less.",
                evidence={"target": domain, "record": ", ".join(f"{p} {h or '.'}" for p, h in mx)},
                remediation=["mx.fix_hosts"],
            )
        )
        mx = [(p, h) for p, h in mx if h not in ("", ".")]
    if not mx:
        a, aaaa = await resolver.addresses(domain)
        ips = a.addresses + aaaa.addresses
        if ips:
            info.implicit = True
            info.addresses[domain] = ips
            # SPEC's mx.missing means "no MX record"; mx.implicit says where mail goes instead.
            out.append(
                finding(
                    "mx.missing",
                    "warning",
                    f"No MX record for {domain}",
                    "Replies and bounces to this domain have no defined mail server.",
                    evidence={"target": domain, "implicit": True, "ip": ", ".join(ips)},
                    remediation=["mx.publish", "mx.null_mx"],
                )
            )
            out.append(
                finding(
                    "mx.implicit",
                    "info",
                    f"{domain} has no MX record; mail goes to its address record",
                    f"Without MX, senders fall back to the A/AAAA of {domain} ({', '.join(ips)}) as an implicit "
                    "MX (RFC 5321 §5.1). It works, but many filters treat a sending domain without MX as suspect; "
                    "publish an MX (or a null MX if the domain takes no mail).",
                    evidence={"target": domain, "ip": ", ".join(ips)},
                    remediation=["mx.publish"],
                )
            )
        elif a.failed or aaaa.failed:
            info.unknown = True
            out.append(dns_unknown("mx.unknown", "the implicit MX", a if a.failed else aaaa, domain, check="mx"))
        else:
            out.append(
                finding(
                    "mx.missing",
                    "critical",
                    f"{domain} has no MX record and no address to fall back to",
                    "Nobody can send mail to this domain, so bounces and replies to its mail are lost. Receivers "
                    "also distrust sending domains that can't receive mail.",
                    evidence={"target": domain},
                    remediation=["mx.publish"],
                )
            )
        return out, info
    info.hosts = mx
    hosts = list(dict.fromkeys(h for _p, h in mx))
    lookups = await asyncio.gather(*(resolver.addresses(h) for h in hosts))
    bad: list[str] = []
    for host, (a, aaaa) in zip(hosts, lookups, strict=True):
        ips = a.addresses + aaaa.addresses
        if ips:
            info.addresses[host] = ips
        elif a.failed or aaaa.failed:
            info.unknown = True
            out.append(dns_unknown("mx.unknown", f"MX host {host}", a if a.failed else aaaa, domain, check="mx"))
        else:
            bad.append(host)
    for host in bad:
        all_bad = len(bad) == len(hosts)
        out.append(
            finding(
                "mx.unresolvable",
                "critical" if all_bad else "warning",
                f"MX host {host} of {domain} has no address",
                f"{host} has no A or AAAA record, so senders can't deliver to it"
                + (" — no MX host of this domain can receive mail." if all_bad else "; they retry other MX hosts."),
                evidence={"target": domain, "host": host},
                remediation=["mx.fix_hosts"],
            )
        )
    if not any(f.severity in ("critical", "warning", "unknown") for f in out):
        listing = ", ".join(f"{h} ({p})" for p, h in mx)
        out.append(
            finding(
                "mx.ok",
                "ok",
                f"{domain} receives mail at {listing}",
                "; ".join(f"{h}: {', '.join(ips)}" for h, ips in info.addresses.items()),
                evidence={"target": domain, "host": listing},
            )
        )
    return out, info


def mx_details(info: MXInfo) -> dict[str, Any]:
    return {
        "hosts": [{"preference": p, "host": h, "addresses": info.addresses.get(h, [])} for p, h in info.hosts],
        "null_mx": info.null_mx,
        "implicit": info.implicit,
    }
