"""One source, block by block: find the lines any reader acts on, and hand them over.

A 1 MB block is searched with bytes.find (C speed) for each marker; the other lines --
pickup, cleanup, qmgr's "queue active", smtpd connect/disconnect, about half of a
Postfix log -- are never looked at one by one. Within a block the full-path lines go
first (in order), then the fast-path deliveries, then qmgr's ``removed``: a message's
deferral is seen before its delivery and both before its removal, whatever the block
holds. The fast path has its own clock so each clock sees its lines in time order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .fastpath import SentCounter
from .othermta import EximReader, SendmailReader
from .postfix import PostfixReader
from .reader import MAX_LINE, ReadStats, Source, blocks
from .timeparse import Clock

# Markers of the full-path lines besides "status=" (rejects, smtp connection and TLS
# messages; Exim's flags; Sendmail's stat= and DSN lines; their rejects say "reject").
_POSTFIX_MARKS: tuple[bytes, ...] = (b"reject", b"connect to ", b"warning:")
_EXIM_MARKS = (b" => ", b" -> ", b" == ", b" ** ", b" Completed")
_SENDMAIL_MARKS = (b"stat=", b"DSN: ")


def read_source(
    src: Source,
    stats: ReadStats,
    tick: Callable[[int], None] | None,
    readers: tuple[PostfixReader, SendmailReader, EximReader],
    since: float | None,
    until: float | None,
) -> None:
    postfix = readers[0]
    clock = Clock(src.ref)
    # --since/--until need every line's time: then all lines take the full path.
    fast = SentCounter(postfix.t, Clock(src.ref)) if since is None and until is None else None
    parse = clock.parse
    for block in blocks(src, stats, tick):
        scan_block(block, stats, readers, parse, since, until, fast)
    if fast is not None:
        fast.flush(postfix.c)
    if stats.long_lines:
        stats.errors.append(f"{src.name}: {stats.long_lines} line(s) longer than {MAX_LINE // 1024} KB skipped")
    if stats.junk:
        stats.errors.append(f"{src.name}: {stats.junk} line(s) of binary data (not text) skipped")
    stats.long_lines = stats.junk = 0


def scan_block(
    block: bytes,
    stats: ReadStats,
    readers: tuple[PostfixReader, SendmailReader, EximReader],
    parse: Callable[[str], Any],
    since: float | None,
    until: float | None,
    fast: SentCounter | None = None,
) -> None:
    """Feed the lines of one block (whole lines, each ending in a newline) to the readers."""
    postfix, sendmail, exim = readers
    close = postfix.t.close
    stats.lines += block.count(b"\n")
    binary = b"\0" in block  # checked per block: text logs never hold NUL
    if binary:
        stats.junk += sum(1 for part in block.split(b"\n") if b"\0" in part)
    hits, starts = _scan(block, fast, binary)
    for start in sorted(starts):
        end = block.find(b"\n", start)
        if end - start > MAX_LINE:
            stats.long_lines += 1
            continue
        raw = block[start:end]
        if binary and b"\0" in raw:
            continue
        line = raw.decode("utf-8", "replace").rstrip("\r")
        st = parse(line)
        if st is None:
            continue
        if (since is not None and st.epoch < since) or (until is not None and st.epoch > until):
            continue
        if st.exim:
            exim.feed(st.epoch, st.rest, line)
        elif not postfix.feed(st.epoch, st.rest, line):
            sendmail.feed(st.epoch, st.rest, line)
    if fast is not None:
        for m in hits:
            fast.count(m)
    i = block.find(b": removed\n")
    while i >= 0:
        # qmgr's last word on a message (a quarter of a Postfix log): no decoding, no time.
        close(block[block.rfind(b" ", 0, i) + 1 : i].decode("ascii", "replace"))
        i = block.find(b": removed\n", i + 10)


def _scan(block: bytes, fast: SentCounter | None, binary: bool) -> tuple[list[re.Match[bytes]], set[int]]:
    """Fast-path matches (in order) and start offsets of the full-path lines of ``block``."""
    find, rfind = block.find, block.rfind
    hits: list[re.Match[bytes]] = []
    starts: set[int] = set()
    eligible = fast.eligible if fast is not None and not binary else None
    i = find(b"status=")
    while i >= 0:
        start = rfind(b"\n", 0, i) + 1
        m = None
        if eligible is not None and block.startswith(b"sent (", i + 7):
            m = eligible(block, start, i + 13)
        if m is not None:
            hits.append(m)
        else:
            starts.add(start)
        i = find(b"status=", i + 13)
    # Each marker costs a pass over the block: only the MTAs this block can hold are looked for.
    marks = _POSTFIX_MARKS
    if block[10:11] == b" " and block[:4].isdigit():
        marks += _EXIM_MARKS  # an Exim main log: "YYYY-MM-DD HH:MM:SS ..." with no syslog header
    if b"sm-mta[" in block or b"sendmail[" in block or b"sm-msp-queue[" in block:
        marks += _SENDMAIL_MARKS
    for mark in marks:
        i = find(mark)
        while i >= 0:
            starts.add(rfind(b"\n", 0, i) + 1)
            i = find(mark, i + 1)
    return hits, starts
