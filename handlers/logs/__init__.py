"""`mailcheck logs`: whole Postfix / Exim / Sendmail logs -> per provider, per message.

Public entry point: analyse_logs(paths, ...) -> LogsReport. Pure CPU and file reads,
no network; streams every file line by line, so memory does not grow with the log.
"""

from __future__ import annotations

from collections.abc import Callable

from .classify import Classifier
from .findings import build
from .live import LiveLog, Tail, looks_like_log
from .othermta import EximReader, SendmailReader
from .postfix import PostfixReader
from .reader import ReadStats, describe
from .report import LogsReport, mask, mask_findings
from .scan import read_source
from .tally import Tally
from .timeparse import parse_when

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

        read_source(src, stats, tick, (*readers, exim), since, until)
        done += src.size
        if progress is not None:
            progress(done, total)
    tally.finish()
    report = LogsReport(tally=tally, errors=stats.errors, lines=stats.lines, show_addresses=show_addresses,
                        sources=[s.name for s in sources], lang=lang)
    report.findings = build(tally)
    if not show_addresses:
        mask_findings(report.findings)
    return report


__all__ = ["LiveLog", "LogsReport", "Tail", "analyse_logs", "looks_like_log", "mask", "parse_when"]
