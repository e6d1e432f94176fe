"""The `Received` chain: hops oldest first, per-hop delays, the first external sending IP.

SPEC: in `Received` chains only loopback, RFC 1918, link-local, CGNAT and ULA
addresses count as internal hops (documentation ranges are external: test
fixtures use them as public senders).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.net import is_internal_hop

from .parse import header_date

MAX_HOPS = 60


_FROM = re.compile(r"(?is)^\s{0,10}from\s{1,10}(.{0,600}?)(?=\s(?:by|via|with|id|for)\s|;|$)")
_BY = re.compile(r"(?is)\sby\s{1,10}([^\s;()]{1,255})")
_WITH = re.compile(r"(?is)\swith\s{1,10}([A-Za-z0-9_-]{1,40})")
_IPV4 = re.compile(r"(?<![\d.])((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})(?![\d.])")
_BRACKET = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{2,60})\]")
_PAREN_IP = re.compile(r"\(\s{0,3}(?:IPv6:)?([0-9A-Fa-f:.]{2,60})\s{0,3}[\])]")
_HELO = re.compile(r"^\s{0,5}([^\s()\[\];]{1,255})")
_RDNS = re.compile(r"\(\s{0,3}([A-Za-z0-9][A-Za-z0-9.-]{0,252}\.[A-Za-z]{2,63})\.?[\s\[)]")


def is_internal(ip: str) -> bool:
    return is_internal_hop(ip)


def _valid_ip(text: str) -> str | None:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


@dataclass
class Hop:
    index: int  # 1 = oldest (bottom-most Received)
    from_helo: str = ""
    from_rdns: str = ""
    from_ip: str = ""
    by: str = ""
    with_: str = ""
    date: datetime | None = None
    delay_s: float | None = None  # since the previous (older) hop
    raw: str = ""

    @property
    def internal(self) -> bool:
        return not self.from_ip or is_internal(self.from_ip)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.index,
            "from": self.from_helo or None,
            "rdns": self.from_rdns or None,
            "ip": self.from_ip or None,
            "by": self.by or None,
            "with": self.with_ or None,
            "date": self.date.isoformat() if self.date else None,
            "delay_s": None if self.delay_s is None else round(self.delay_s, 1),
            "internal": bool(self.from_ip) and is_internal(self.from_ip),
        }


def is_submission(hop: Hop) -> bool:
    w = hop.with_.upper()
    return w.endswith(("SA", "A")) and w.startswith(("ESMTP", "UTF8SMTP", "SMTP", "LMTP"))


def parse_received(value: str) -> Hop:
    v = value[:2000]
    hop = Hop(index=0, raw=v[:300])
    body, _, date_part = v.rpartition(";")
    if not _:
        body, date_part = v, ""
    m = _FROM.search(body)
    if m:
        clause = m.group(1)
        h = _HELO.match(clause)
        if h:
            hop.from_helo = h.group(1).strip("[]")
        r = _RDNS.search(clause)
        if r:
            hop.from_rdns = r.group(1).lower()
        ip = None
        for rx in (_BRACKET, _PAREN_IP):
            for cand in rx.finditer(clause):
                ip = _valid_ip(cand.group(1))
                if ip:
                    break
            if ip:
                break
        if not ip:
            c = _IPV4.search(clause)
            ip = _valid_ip(c.group(1)) if c else None
        if not ip and hop.from_helo:
            ip = _valid_ip(hop.from_helo)
        hop.from_ip = ip or ""
    b = _BY.search(" " + body)
    if b:
        hop.by = b.group(1).lower()
    w = _WITH.search(" " + body)
    if w:
        hop.with_ = w.group(1)
    hop.date = header_date(date_part.strip()) if date_part.strip() else None
    return hop


@dataclass
class Path:
    hops: list[Hop]
    sending_ip: str | None
    sending_hop: Hop | None
    total_delay_s: float | None
    skew: list[int]  # hops whose date is earlier than the previous hop's
    slow: list[int]  # hops that took over SLOW_HOP_S

    @property
    def arrived_at(self) -> datetime | None:
        """When the last receiver got the message: the newest dated Received."""
        for h in reversed(self.hops):
            if h.date is not None:
                return h.date
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hops": [h.to_dict() for h in self.hops],
            "sending_ip": self.sending_ip,
            "total_delay_s": None if self.total_delay_s is None else round(self.total_delay_s, 1),
        }


SLOW_HOP_S = 15 * 60


def analyse_path(received: list[str]) -> Path:
    """Received headers as they appear (newest first) -> the path oldest first."""
    values = received[:MAX_HOPS]
    hops = [parse_received(v) for v in reversed(values)]
    for i, h in enumerate(hops, start=1):
        h.index = i
    prev: datetime | None = None
    skew: list[int] = []
    slow: list[int] = []
    for h in hops:
        if h.date is not None and prev is not None:
            try:
                h.delay_s = (h.date - prev).total_seconds()
            except TypeError:  # naive vs aware
                h.delay_s = None
            if h.delay_s is not None and h.delay_s < -60:
                skew.append(h.index)
            elif h.delay_s is not None and h.delay_s > SLOW_HOP_S:
                slow.append(h.index)
        if h.date is not None:
            prev = h.date
    external = [h for h in hops if h.from_ip and not is_internal(h.from_ip)]
    sending = external[0] if external else None
    # An authenticated submission (with ESMTPA / ESMTPSA ...) records the mail
    # client's address, not an MTA's: receivers judge the next hop's sender.
    while sending is not None and is_submission(sending) and len(external) > 1:
        external.pop(0)
        sending = external[0]
    dated = [h.date for h in hops if h.date is not None]
    total: float | None = None
    if len(dated) >= 2:
        try:
            total = (dated[-1] - dated[0]).total_seconds()
        except TypeError:
            total = None
    return Path(hops, sending.from_ip if sending else None, sending, total, skew, slow)
