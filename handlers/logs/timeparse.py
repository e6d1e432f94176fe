"""Timestamps of mail log lines -> local naive epoch seconds and the line's message part.

Formats (what rsyslog, syslog-ng, journald and Exim write):
- BSD syslog (RFC 3164): ``Dec  4 01:32:54 host prog[pid]: msg`` -- no year, local time;
  the year is inferred from a reference (the file's mtime) and carried across New Year.
- RFC 3339 (rsyslog's high-precision template): ``2026-12-04T01:32:54.123+09:00 host prog[pid]: msg``.
- journald ``short-iso`` / ``short-iso-precise``: ``2026-12-04T01:32:54+0900 host prog[pid]: msg``.
- RFC 5424: ``<22>1 2026-12-04T01:32:54.003Z host app procid msgid [sd] msg`` -- rewritten as
  ``app[procid]: msg`` so every parser sees one shape.
- Exim main log: ``2026-12-04 01:32:54 [pid] id ...`` (optionally ``.ffffff`` and ``+0900``).

Zoned times are converted to this machine's local time so that every line (and
``--since``/``--until``) is on one clock.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}  # fmt: skip
_SYSLOG = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) (\S+) ")
_ISO = re.compile(
    r"(?:<\d{1,3}>1 )?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?(Z|[+-]\d\d:?\d\d)? "
)
_RFC5424_TAIL = re.compile(r"(\S+) (\S+) (\S+) (\S+) (-|\[.*?\](?:\[.*?\])*) ?")


def local_offset() -> int:
    """This machine's UTC offset now, in seconds (east positive)."""
    t = time.time()
    return int(calendar.timegm(time.localtime(t)) - t)


@dataclass
class Stamped:
    epoch: float  # local naive time as seconds since 1970 (calendar.timegm of local fields)
    rest: str  # "prog[pid]: message" (syslog) or "id flag ..." (Exim)
    exim: bool = False


class Clock:
    """Parses one file's timestamps; infers syslog years from ``ref`` (epoch, local naive)."""

    def __init__(self, ref: float) -> None:
        ref_t = time.gmtime(ref)
        self.ref_year, self.ref_month = ref_t.tm_year, ref_t.tm_mon
        self.year: int | None = None
        self.last_month = 0
        self.offset = local_offset()
        self._key = ""
        self._val = 0.0

    def _syslog_year(self, month: int) -> int:
        if self.year is None:
            # The first line: not after the reference (a log is written before it is read).
            self.year = self.ref_year if month <= self.ref_month else self.ref_year - 1
        elif month < self.last_month and self.last_month - month >= 6:
            self.year += 1  # Dec -> Jan: New Year inside the file
        self.last_month = month
        return self.year

    def parse(self, line: str) -> Stamped | None:
        c = line[:1]
        if c.isalpha():
            key = line[:15]
            if key == self._key:
                host_end = line.find(" ", 16)
                return Stamped(self._val, line[host_end + 1 :]) if host_end > 0 else None
            m = _SYSLOG.match(line)
            if m is None:
                return None
            month = MONTHS.get(m.group(1))
            if month is None:
                return None
            year = self._syslog_year(month)
            try:
                epoch = float(calendar.timegm((year, month, int(m.group(2)), int(m.group(3)),
                                               int(m.group(4)), int(m.group(5)), 0, 0, 0)))
            except (ValueError, OverflowError):
                return None
            self._key, self._val = key, epoch
            return Stamped(epoch, line[m.end() :])
        if c.isdigit() or c == "<":
            return self._iso(line)
        return None

    def _iso(self, line: str) -> Stamped | None:
        m = _ISO.match(line)
        if m is None:
            return None
        key = m.group(0)
        if key == self._key:
            epoch = self._val
        else:
            y, mo, d, hh, mm, ss = (int(x) for x in m.groups()[:6])
            if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss < 61):
                return None
            epoch = float(calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0)))
            zone = m.group(7)
            if zone:
                epoch += self.offset - _zone_seconds(zone)
            self._key, self._val = key, epoch
        rest = line[m.end() :]
        if line[10] == " ":  # Exim: "YYYY-MM-DD HH:MM:SS [pid] id ..." -- no host field
            if rest.startswith("["):
                close = rest.find("] ")
                if close > 0:
                    rest = rest[close + 2 :]
            return Stamped(epoch, rest, exim=True)
        if line[0] == "<":
            return self._rfc5424(epoch, rest)
        host_end = rest.find(" ")
        return Stamped(epoch, rest[host_end + 1 :]) if host_end > 0 else None

    @staticmethod
    def _rfc5424(epoch: float, rest: str) -> Stamped | None:
        m = _RFC5424_TAIL.match(rest)
        if m is None:
            return None
        app, procid = m.group(2), m.group(3)
        msg = rest[m.end() :].removeprefix("\ufeff")
        head = app if procid == "-" else f"{app}[{procid}]"
        return Stamped(epoch, f"{head}: {msg}")


def _zone_seconds(zone: str) -> int:
    if zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)


_REL = re.compile(r"^(\d{1,6})\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DATE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d))?)?$")


def parse_when(value: str, now: float | None = None) -> float:
    """``--since``/``--until``: ``24h``, ``90m``, ``7d`` (before now) or ``YYYY-MM-DD[ HH:MM[:SS]]``
    (local time). Returns local naive epoch seconds; ValueError with a readable message."""
    v = value.strip()
    local_now = (time.time() if now is None else now) + local_offset()
    m = _REL.match(v)
    if m:
        return local_now - int(m.group(1)) * _UNITS[m.group(2)]
    m = _DATE.match(v)
    if m:
        parts = [int(x) if x else 0 for x in m.groups()]
        try:
            time.strptime("-".join(str(p) for p in parts[:3]), "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"{value!r} is not a date") from None
        return float(calendar.timegm((*parts[:6], 0, 0, 0)))
    raise ValueError(f"{value!r} is not a time: use 24h, 90m, 7d or YYYY-MM-DD[ HH:MM]")


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
