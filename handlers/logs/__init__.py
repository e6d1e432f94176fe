"""`mailcheck logs`: whole Postfix / Exim / Sendmail logs -> per provider, per message.

Public entry point: analyse_logs(paths, ...) -> LogsReport. Pure CPU and file reads,
no network; streams every file line by line, so memory does not grow with the log.
"""

from __future__ import annotations

from collections.abc import Callable

from .classify import Classifier
from .fastpath import SentCounter
from .findings import build
from .othermta import EximReader, SendmailReader
from .postfix import PostfixReader
from .reader import ReadStats, Source, describe, lines
from .report import LogsReport, mask
from .tally import Tally
from .timeparse import Clock, parse_when

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def analyse_logs(
    paths: list[str],
    *,
    since: float | None = None,
    until: float | None = None,
    show_addresses: bool = False,
    lang: str = "en",
    progress: Progress | None = None,
) -> LogsReport:
    """Read the logs (a rotated set in any order; "-" is stdin) and summarise them."""
    sources, errors = describe(paths)
    tally = Tally()
    classifier = Classifier()
    stats = ReadStats(errors=errors)
    readers = (PostfixReader(tally, classifier), SendmailReader(tally, classifier))
    exim = EximReader(tally, classifier)
    total = sum(s.size for s in sources)
    done = 0
    for src in sources:
        tick = None
        if progress is not None:
            base = done

            def tick(pos: int, base: int = base) -> None:
                progress(base + pos, total)

        _read_one(src, stats, tick, readers, exim, since, until)
        done += src.size
        if progress is not None:
            progress(done, total)
    tally.finish()
    report = LogsReport(tally=tally, errors=stats.errors, lines=stats.lines, show_addresses=show_addresses,
                        sources=[s.name for s in sources], lang=lang)
    report.findings = build(tally)
    if not show_addresses:
        for f in report.findings:
            f.detail = mask(f.detail)
            if isinstance(f.evidence.get("error"), str):
                f.evidence["error"] = mask(f.evidence["error"])
    return report


def _read_one(
    src: Source,
    stats: ReadStats,
    tick: Callable[[int], None] | None,
    readers: tuple[PostfixReader, SendmailReader],
    exim: EximReader,
    since: float | None,
    until: float | None,
) -> None:
    clock = Clock(src.ref)
    parse = clock.parse
    postfix, sendmail = readers
    # --since/--until need every line's time: then all lines take the full path.
    fast = SentCounter(postfix.t, clock) if since is None and until is None else None
    close = postfix.t.close
    for raw in lines(src, stats, tick):
        if fast is not None and b"status=sent" in raw and fast.feed(raw):
            continue
        if raw.endswith(b": removed"):
            # qmgr's last word on a message (a quarter of a Postfix log): handled without
            # decoding or reading the timestamp.
            close(raw[raw.rfind(b" ", 0, len(raw) - 9) + 1 : -9].decode("ascii", "replace"))
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
        fast.flush(postfix.c)


# Every line any reader acts on holds one of these; the rest (pickup, cleanup, qmgr's
# "queue active", smtpd connect/disconnect ...) is skipped before it is decoded.
__all__ = ["LogsReport", "analyse_logs", "mask", "parse_when"]
