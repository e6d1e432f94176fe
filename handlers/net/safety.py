"""Outbound-connection guard (SPEC safety rules).

Every connection whose destination comes from user input (MTA-STS policy, BIMI
assets) goes through `resolve_public()`: resolve first, refuse non-global
addresses, then connect to exactly the address that was checked (no DNS
rebinding between check and connect). DNS questions themselves are never
restricted — only connections.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the address rules are used by the bounce parser, which starts without dnspython
    from handlers.net.resolver import Resolver

# Not globally reachable, whatever this Python's `is_global` says (its tables
# changed between 3.11 patch releases): IANA special-purpose registries.
_V4_BLOCKED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved + limited broadcast
    )
)
_V6_BLOCKED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/8",  # unspecified, loopback, IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): embeds private space
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (incl. Teredo 2001::/32, ORCHID)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local (ULA)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: last 32 bits are IPv4
_SIIT = ipaddress.IPv6Network("::ffff:0:0/96")  # RFC 2765 IPv4-translated


class UnsafeTarget(Exception):
    """The destination is not a global address: we refuse to connect."""


def private_targets_allowed() -> bool:
    # Tests only: lets the suite fetch from servers on loopback.
    return os.environ.get("MAILCHECK_ALLOW_PRIVATE_TARGETS") == "1"


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for (mapped, translated, 6to4, NAT64), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64 or addr in _SIIT:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public_address(ip: str) -> bool:
    """True only for a globally reachable unicast address we may connect to.

    IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, 6to4 2002::/16,
    NAT64 64:ff9b::/96) are judged by that IPv4 address; Teredo, local-use
    NAT64, ULA, link/site-local and the other special ranges are refused.
    """
    try:
        addr = ipaddress.ip_address(ip.strip() if isinstance(ip, str) else ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            return False  # fe80::1%eth0 and the like: interface-scoped
        embedded = _embedded_v4(addr)
        if embedded is not None:
            return is_public_address(str(embedded))
        if addr.teredo is not None or any(addr in net for net in _V6_BLOCKED):
            return False
    elif any(addr in net for net in _V4_BLOCKED):
        return False
    return bool(addr.is_global) and not (
        addr.is_multicast or addr.is_reserved or addr.is_private or addr.is_link_local or addr.is_loopback
    )


async def resolve_public(resolver: Resolver, host: str) -> list[str]:
    """Addresses of `host` that may be connected to; raises UnsafeTarget if none may."""
    try:
        ips = [str(ipaddress.ip_address(host))]
    except ValueError:
        a, aaaa = await resolver.addresses(host)
        ips = a.addresses + aaaa.addresses
    if not ips:
        failed = a if a.failed else aaaa
        raise UnsafeTarget(f"{host} has no address ({failed.describe()})")
    if private_targets_allowed():
        return ips
    good = [ip for ip in ips if is_public_address(ip)]
    if not good:
        raise UnsafeTarget(f"{host} resolves only to non-public addresses ({', '.join(ips)}); not connecting")
    return good


# SPEC: in Received chains (and for bounce follow-ups) only these count as internal
# hops; documentation ranges are ordinary addresses there (DNS questions only).
INTERNAL_HOP_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
        "100.64.0.0/10", "0.0.0.0/8", "::1/128", "::/128", "fe80::/10", "fc00::/7",
    )
)  # fmt: skip


def is_internal_hop(ip: str) -> bool:
    """True for loopback, RFC 1918, link-local, CGNAT, ULA (and unparsable text)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == n.version and addr in n for n in INTERNAL_HOP_NETS)
