"""Which nameservers a run asks: the operator's setting (`--nameserver`,
MAILCHECK_NAMESERVERS) or the system's resolv.conf."""

from __future__ import annotations

import ipaddress
import os
import re
import socket

import dns.resolver


def parse_nameserver(spec: str) -> tuple[str, int]:
    """'127.0.0.1:5353', '[::1]:53', '::1', 'host' -> (host, port)."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty nameserver")
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        p = rest[1:] if rest.startswith(":") else "53"
    elif spec.count(":") == 1:
        host, _, p = spec.partition(":")
    else:
        host, p = spec, "53"
    if not p.isdigit() or not 0 < int(p) < 65536:
        raise ValueError(f"bad nameserver port {p!r} in {spec!r} (use HOST or HOST:PORT)")
    port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = _resolve_nameserver_host(host)
    return host, port


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _resolve_nameserver_host(host: str) -> str:
    """A nameserver given by name (the operator's own setting, e.g. --nameserver dns.example.net):
    its first address, from the system resolver."""
    name = host.rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"nameserver {host!r} is neither an IP address nor a host name")
    try:
        infos = socket.getaddrinfo(name, 53, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"nameserver {host!r} does not resolve ({exc})") from exc
    return str(infos[0][4][0])


def nameservers_from_env() -> list[tuple[str, int]]:
    raw = os.environ.get("MAILCHECK_NAMESERVERS", "")
    return [parse_nameserver(p) for p in raw.split(",") if p.strip()]


def system_nameservers() -> list[tuple[str, int]]:
    try:
        r = dns.resolver.Resolver(configure=True)
        return [(str(ns), 53) for ns in r.nameservers]
    except Exception:  # no /etc/resolv.conf: fall back to loopback
        return [("127.0.0.1", 53)]
