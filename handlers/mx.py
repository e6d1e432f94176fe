"""MX audit: missing / implicit / null MX (RFC 7505) / unresolvable hosts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from handlers.findings import dns_unknown, finding
from handlers.model import Finding
from handlers.net import Resolver, is_internal_hop

# Bounds on what one audit looks at, so a hostile zone (1,000 MX hosts) costs what a
# real one does. Real domains publish a handful of MX hosts (Google Workspace 5,
# Microsoft 365 1), and senders never get far down a long list: Postfix's
# smtp_mx_address_limit tries 5 addresses by default (postconf(5)).
MAX_MX_HOSTS = 20  # the most preferred hosts (RFC 5321 §5.1: lowest preference first)
MAX_ADDRESSES_PER_HOST = 10


@dataclass
class MXInfo:
    hosts: list[tuple[int, str]] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)  # host -> IPs
    null_mx: bool = False
    implicit: bool = False  # no MX: mail goes to the domain's A/AAAA
    nxdomain: bool = False
    unknown: bool = False
    # What the bounds above cut: MX hosts published (when more than MAX_MX_HOSTS),
    # and host -> addresses published for hosts with more than MAX_ADDRESSES_PER_HOST.
    hosts_published: int = 0
    addresses_published: dict[str, int] = field(default_factory=dict)

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
                check="domain",
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
    # Most preferred first (stable: equal preferences keep the answer's order).
    mx = sorted(mx, key=lambda pair: pair[0])
    published = list(dict.fromkeys(h for _p, h in mx))
    hosts = published[:MAX_MX_HOSTS]
    if len(published) > MAX_MX_HOSTS:
        info.hosts_published = len(published)
        kept = set(hosts)
        mx = [(p, h) for p, h in mx if h in kept]
        out.append(too_many_hosts(domain, published))
    info.hosts = mx
    lookups = await asyncio.gather(*(resolver.addresses(h) for h in hosts))
    bad: list[str] = []
    private: dict[str, list[str]] = {}
    for host, (a, aaaa) in zip(hosts, lookups, strict=True):
        ips = list(dict.fromkeys(a.addresses + aaaa.addresses))
        if len(ips) > MAX_ADDRESSES_PER_HOST:
            info.addresses_published[host] = len(ips)
            ips = ips[:MAX_ADDRESSES_PER_HOST]
        # Loopback/RFC 1918/ULA addresses can't be reached by any sender: they are a
        # finding of their own, and never looked up for PTR or blocklists.
        internal = [ip for ip in ips if is_internal_hop(ip)]
        if internal:
            private[host] = internal
            ips = [ip for ip in ips if ip not in internal]
        if ips:
            info.addresses[host] = ips
        elif host in private:
            continue
        elif a.failed or aaaa.failed:
            info.unknown = True
            out.append(dns_unknown("mx.unknown", f"MX host {host}", a if a.failed else aaaa, domain, check="mx"))
        else:
            bad.append(host)
    if info.addresses_published:
        out.append(too_many_addresses(domain, info.addresses_published))
    # Hosts no sender can use: no address at all, or only private ones. A host whose
    # lookup failed is not among them (never a verdict from an answer not received).
    dead = set(bad) | {h for h in private if h not in info.addresses}
    none_left = all(h in dead for h in hosts)
    for host, ips in private.items():
        out.append(
            finding(
                "mx.private",
                "critical" if none_left else "warning",
                f"MX host {host} of {domain} points at {', '.join(ips)}: no sender can deliver there",
                f"{', '.join(ips)} is a loopback or private address, which senders on the Internet can't reach"
                + (" — no MX host of this domain can receive mail." if none_left else "; they try the other MX hosts."),
                evidence={"target": domain, "host": host, "value": ", ".join(ips)},
                remediation=["mx.fix_hosts"],
            )
        )
    for host in bad:
        out.append(
            finding(
                "mx.unresolvable",
                "critical" if none_left else "warning",
                f"MX host {host} of {domain} has no address",
                f"{host} has no A or AAAA record, so senders can't deliver to it"
                + (" — no MX host of this domain can receive mail." if none_left else "; they retry other MX hosts."),
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


def too_many_hosts(domain: str, published: list[str]) -> Finding:
    skipped = published[MAX_MX_HOSTS:]
    shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    return finding(
        "mx.too_many",
        "warning",
        f"{domain} publishes {len(published)} MX hosts; the {MAX_MX_HOSTS} most preferred were checked",
        f"Senders try MX hosts in preference order and give up long before the end of a list this long "
        f"(Postfix tries 5 addresses by default), so hosts far down it never receive mail. The other "
        f"{len(skipped)} ({shown}) were not looked up. Publish the few hosts that really receive your mail.",
        evidence={"target": domain, "count": len(published), "limit": MAX_MX_HOSTS, "value": shown},
        remediation=["mx.trim_hosts"],
        check="mx",
    )


def too_many_addresses(domain: str, published: dict[str, int]) -> Finding:
    host, count = max(published.items(), key=lambda item: item[1])
    more = f" (and {len(published) - 1} other MX hosts)" if len(published) > 1 else ""
    return finding(
        "mx.too_many_addresses",
        "info",
        f"MX host {host} of {domain} has {count} addresses; the first {MAX_ADDRESSES_PER_HOST} were checked",
        f"{host}{more} publishes more than {MAX_ADDRESSES_PER_HOST} A/AAAA records. Senders try only the first "
        "few, so the rest add nothing; only the first ones are checked.",
        evidence={"target": domain, "host": host, "count": count, "limit": MAX_ADDRESSES_PER_HOST},
        remediation=["mx.trim_hosts"],
        check="mx",
    )


def mx_details(info: MXInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "hosts": [{"preference": p, "host": h, "addresses": info.addresses.get(h, [])} for p, h in info.hosts],
        "null_mx": info.null_mx,
        "implicit": info.implicit,
    }
    if info.hosts_published:
        out["hosts_published"] = info.hosts_published
    if info.addresses_published:
        out["addresses_published"] = dict(info.addresses_published)
    return out
