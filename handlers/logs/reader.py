"""Read log files as a stream of text lines: plain, gzip (by magic, not by name), stdin.

Memory stays bounded whatever the size: one line at a time, a line is cut at
MAX_LINE bytes (the rest skipped up to its newline). Damage is reported once per
file and kind, and reading goes on: a truncated gzip stops that file only, binary
junk lines are skipped and counted.
"""

from __future__ import annotations

import gzip
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from .timeparse import Clock, local_offset

MAX_LINE = 64 * 1024  # a Postfix log line is at most a few KB (line_length_limit, syslog limits)
_BLOCK = 1 << 20


@dataclass
class Source:
    name: str
    path: str  # "-" for stdin
    size: int = 0
    ref: float = 0.0  # reference time for syslog years: the file's mtime (local naive)
    first: float | None = None  # first timestamp, for ordering a rotated set


@dataclass
class ReadStats:
    lines: int = 0
    long_lines: int = 0
    junk: int = 0
    errors: list[str] = field(default_factory=list)


def _open(path: str) -> BinaryIO:
    if path == "-":
        raw: BinaryIO = sys.stdin.buffer
    else:
        raw = open(path, "rb")
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def describe(paths: list[str]) -> tuple[list[Source], list[str]]:
    """Sources in time order (a rotated set may be given in any order), and errors for
    paths that cannot be opened."""
    out: list[Source] = []
    errors: list[str] = []
    offset = local_offset()
    for path in paths:
        if path == "-":
            out.append(Source(name="stdin", path="-", ref=time.time() + offset))
            continue
        try:
            st = os.stat(path)
            src = Source(name=os.path.basename(path), path=path, size=st.st_size, ref=st.st_mtime + offset)
            src.first = _first_time(src)
        except OSError as exc:
            errors.append(f"{path}: cannot read ({exc.strerror or exc})")
            continue
        out.append(src)
    stdin = [s for s in out if s.path == "-"]
    files = sorted((s for s in out if s.path != "-"), key=lambda s: (s.first is None, s.first or 0.0))
    return stdin + files, errors


def _first_time(src: Source) -> float | None:
    clock = Clock(src.ref)
    try:
        with _open(src.path) as fh:
            for _ in range(200):
                raw = fh.readline(MAX_LINE)
                if not raw:
                    break
                st = clock.parse(raw.decode("utf-8", "replace"))
                if st is not None:
                    return st.epoch
    except (OSError, EOFError, zlib.error):
        return None
    return None


def blocks(src: Source, stats: ReadStats, tick: Callable[[int], None] | None) -> Iterator[bytes]:
    """~1 MB blocks of whole lines, each ending with a newline. A line longer than MAX_LINE
    that spans blocks is dropped while it is read (counted in ``stats.long_lines``)."""
    try:
        fh = _open(src.path)
    except OSError as exc:
        stats.errors.append(f"{src.name}: cannot read ({exc.strerror or exc})")
        return
    raw_file = getattr(fh, "fileobj", fh)
    buf = b""
    skipping = False
    # gzip: read1 hands over what was decompressed so far, so a truncated file still gives
    # everything before the damage (read() would drop the whole block with the error).
    read = fh.read1 if isinstance(fh, gzip.GzipFile) else fh.read
    try:
        while True:
            try:
                chunk = read(_BLOCK)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                stats.errors.append(f"{src.name}: the compressed data ends early or is damaged "
                                    f"({_short(exc)}); read up to there")
                break
            except OSError as exc:
                stats.errors.append(f"{src.name}: read error ({exc.strerror or _short(exc)}); read up to there")
                break
            if not chunk:
                break
            if skipping:
                cut = chunk.find(b"\n")
                if cut < 0:
                    continue
                chunk = chunk[cut + 1 :]
                skipping = False
                stats.lines += 1
            data = buf + chunk
            cut = data.rfind(b"\n") + 1
            buf = data[cut:]
            if cut:
                yield data[:cut]
            if len(buf) > MAX_LINE:
                stats.long_lines += 1
                buf = b""
                skipping = True
            if tick is not None:
                tick(_position(raw_file))
        if buf and not skipping:
            yield buf + b"\n"
    finally:
        if raw_file is not sys.stdin.buffer:
            fh.close()
            if raw_file is not fh:
                raw_file.close()


def _position(fh: object) -> int:
    try:
        return int(fh.tell())  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        return 0


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]
