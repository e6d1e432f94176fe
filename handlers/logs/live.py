"""A log that is still being written (`mailcheck logs --follow`), and telling a whole
mail log from other text (a file shared in Slack).

``Tail`` hands over the whole lines appended to a file since the last call, across
rotation (the file renamed and a new one created, or truncated in place); memory is
bounded by the read size and MAX_LINE whatever the file does. ``LiveLog`` counts the
lines twice: once for the current period (taken and reset by ``take_period``), once
over a sliding window of hours whose ``rate_jump`` findings are the alerts -- the same
rule as a whole log's ``logs.rate_jump``.
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from handlers.model import Finding

from .classify import Classifier
from .findings import build, jumps
from .othermta import EximReader, SendmailReader
from .postfix import PostfixReader
from .reader import MAX_LINE, ReadStats
from .report import LogsReport, mask_findings
from .scan import scan_block
from .tally import Tally
from .timeparse import Clock, local_offset

READ_MAX = 4 << 20  # bytes taken from the file per call; the rest comes on the next one
WINDOW_HOURS = 24  # history a jump is measured against
_SNIFF_BYTES = 256 * 1024
_SNIFF_LINES = 200
_SNIFF_MIN = 5  # mail-log lines needed before a text counts as a whole log
_MTA_PREFIXES = ("postfix", "sm-mta", "sendmail", "sm-msp-queue", "exim")


def looks_like_log(data: bytes) -> bool:
    """Is this (plain or gzip) text mostly timestamped Postfix / Exim / Sendmail lines?
    At least _SNIFF_MIN of them among the first lines, and at least half of those lines."""
    head = data[:_SNIFF_BYTES]
    if data[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(data[: 4 * _SNIFF_BYTES], _SNIFF_BYTES)
        except zlib.error:
            return False
    if b"\0" in head:
        return False
    clock = Clock(time.time() + local_offset())
    seen = found = 0
    for raw in head.split(b"\n")[:_SNIFF_LINES]:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            continue
        seen += 1
        st = clock.parse(line)
        if st is not None and (st.exim or st.rest.startswith(_MTA_PREFIXES)):
            found += 1
    return found >= _SNIFF_MIN and found * 2 >= seen


class Tail:
    """The whole lines appended to ``path`` since the last ``read()``, across rotation."""

    def __init__(self, path: str, *, from_start: bool = False) -> None:
        self.path = path
        self._fh: BinaryIO = open(path, "rb")
        self._ino = os.fstat(self._fh.fileno()).st_ino
        if not from_start:
            self._fh.seek(0, os.SEEK_END)
        self._rest = b""
        self._skipping = False
        self.rotations = 0
        self.long_lines = 0
        self.clock = Clock(time.time() + local_offset())

    def close(self) -> None:
        self._fh.close()

    def read(self) -> bytes:
        """New whole lines (each ending in a newline), b"" when nothing new."""
        out = self._drain()
        try:
            st = os.stat(self.path)
        except OSError:
            return out  # renamed away and not yet re-created: keep reading the old file
        if st.st_ino != self._ino or st.st_size < self._fh.tell():
            out += self._drain()  # the last lines written to the old file before it moved
            if self._rest and not self._skipping:
                out += self._rest + b"\n"
            self._rest, self._skipping = b"", False
            try:
                fh = open(self.path, "rb")
            except OSError:
                return out
            self._fh.close()
            self._fh, self._ino = fh, os.fstat(fh.fileno()).st_ino
            self.rotations += 1
            self.clock = Clock(time.time() + local_offset())
            out += self._drain()
        return out

    def _drain(self) -> bytes:
        chunk = self._fh.read(READ_MAX)
        if not chunk:
            return b""
        if self._skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                return b""
            chunk, self._skipping = chunk[cut + 1 :], False
        data = self._rest + chunk
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if len(self._rest) > MAX_LINE:
            self.long_lines += 1
            self._rest, self._skipping = b"", True
        return data[:cut]


@dataclass
class _Count:
    tally: Tally = field(default_factory=Tally)
    stats: ReadStats = field(default_factory=ReadStats)
    readers: tuple[PostfixReader, SendmailReader, EximReader] | None = None

    def bind(self, classifier: Classifier) -> _Count:
        t = self.tally
        self.readers = (PostfixReader(t, classifier), SendmailReader(t, classifier), EximReader(t, classifier))
        return self


class LiveLog:
    """Lines fed as they arrive: the period's summary, and jumps over the last hours."""

    def __init__(self, window_hours: int = WINDOW_HOURS) -> None:
        self._classifier = Classifier()
        self._period = _Count().bind(self._classifier)
        self._window = _Count().bind(self._classifier)
        self.window_hours = window_hours

    def feed(self, block: bytes, clock: Clock) -> None:
        if not block:
            return
        for count in (self._period, self._window):
            assert count.readers is not None
            scan_block(block, count.stats, count.readers, clock.parse, None, None)
        hours = self._window.tally.hours
        if hours:
            oldest = max(hours) - self.window_hours
            for hour in [h for h in hours if h <= oldest]:
                del hours[hour]
            reasons = self._window.tally.hour_reasons
            for key in [k for k in reasons if k[0] <= oldest]:
                del reasons[key]

    @property
    def period_lines(self) -> int:
        return self._period.stats.lines

    def take_period(self, *, show_addresses: bool = False, lang: str = "en") -> LogsReport | None:
        """The summary of the lines fed since the last call (None when there were none)."""
        count, self._period = self._period, _Count().bind(self._classifier)
        if not count.stats.lines:
            return None
        count.tally.finish()
        report = LogsReport(tally=count.tally, errors=count.stats.errors, lines=count.stats.lines,
                            show_addresses=show_addresses, lang=lang)
        report.findings = build(count.tally)
        if not show_addresses:
            mask_findings(report.findings)
        return report

    def jumps(self, *, show_addresses: bool = False) -> list[Finding]:
        """``logs.rate_jump`` findings over the window: one per provider whose deferral or
        bounce rate jumped."""
        found = jumps(self._window.tally)
        if not show_addresses:
            mask_findings(found)
        return found

