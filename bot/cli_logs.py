"""`mailcheck logs`: whole mail logs summarised per provider (handlers/logs).

Its JSON is SPEC's ``{"kind": "logs", ...}`` shape, not a Report: a log summary has
totals, providers and periods rather than one subject's checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_OK, EXIT_CRITICAL, EXIT_USAGE = 0, 1, 2
_BAR_MIN_BYTES = 20 * 1024 * 1024  # a progress bar only for files that take a while


def add_logs_command(subs: Any, common: argparse.ArgumentParser) -> None:
    p = subs.add_parser("logs", parents=[common],
                        help="summarise whole Postfix/Exim/Sendmail logs per provider (plain, .gz, rotated sets)")
    p.add_argument("files", nargs="*", default=["-"], metavar="FILE", help="log files (- for stdin)")
    p.add_argument("--since", help="only lines after this: 24h, 90m, 7d or YYYY-MM-DD[ HH:MM]")
    p.add_argument("--until", help="only lines before this (same forms as --since)")
    p.add_argument("--show-addresses", action="store_true",
                   help="show recipients' addresses (masked by default: logs carry personal data)")
    p.add_argument("--follow", action="store_true",
                   help="follow one growing log (across rotation): a summary each --period, alerts on rate jumps")
    p.add_argument("--post", metavar="CHANNEL",
                   help="with --follow: post summaries and alerts to this Slack channel (token: SLACK_BOT_TOKEN)")
    p.add_argument("--period", default="1h", help="with --follow: how often to summarise (90s, 15m, 1h; default 1h)")
    p.add_argument("--cooldown", default="6h",
                   help="with --follow: after an alert, the same provider's trouble is told in its thread "
                        "for this long (default 6h)")


def run_logs(args: argparse.Namespace) -> int:
    from bot import redact
    from handlers.logs import analyse_logs, parse_when

    if args.follow or args.post:
        from bot.logs_follow import run_follow

        return run_follow(args)

    try:
        since = parse_when(args.since) if args.since else None
        until = parse_when(args.until) if args.until else None
    except ValueError as exc:
        return fail(f"--since/--until: {exc}")
    files = list(args.files or ["-"])
    missing = [f for f in files if f != "-" and not os.path.isfile(f)]
    if missing and len(missing) == len(files):
        return fail(f"cannot read {missing[0]}: no such file")
    progress, stop = _progress_bar(files, args.lang)
    try:
        report = analyse_logs(files, since=since, until=until, show_addresses=args.show_addresses,
                              lang=args.lang, progress=progress)
    except KeyboardInterrupt:
        return 130
    finally:
        stop()
    localize(report, args.lang)
    data = redact.scrub(report.to_dict())
    try:
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            render(data, args.lang)
            for err in report.errors:
                print(f"mailcheck: {redact.redact(err)}", file=sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if report.lines == 0 and report.errors:
        return EXIT_USAGE
    return EXIT_CRITICAL if report.has_critical else EXIT_OK


def fail(message: str) -> int:
    from bot import redact

    print(f"mailcheck: error: {redact.redact(message)}", file=sys.stderr)
    return EXIT_USAGE


def localize(report: Any, lang: str) -> None:
    if lang == "en":
        return
    import knowledge

    for f in report.findings:
        f.title, f.detail = knowledge.localize_finding(f.code, lang, f.evidence, f.title, f.detail)


def _progress_bar(files: list[str], lang: str) -> tuple[Any, Any]:
    size = sum(os.path.getsize(f) for f in files if f != "-" and os.path.isfile(f))
    if not sys.stderr.isatty() or size < _BAR_MIN_BYTES:
        return None, lambda: None
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from knowledge.engine_texts import engine_text

    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), transient=True, console=_stderr_console())
    task = bar.add_task(engine_text("logs_progress", lang), total=size)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total or None)

    return update, bar.stop


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def render(data: dict[str, Any], lang: str) -> None:
    from knowledge.engine_texts import engine_text

    t = data["totals"]
    if not data["lines"] or data["period"]["start"] is None:
        print(engine_text("logs_no_lines", lang))
        return
    print(engine_text("logs_heading", lang, start=data["period"]["start"], end=data["period"]["end"],
                      lines=data["lines"], messages=data["messages"]))
    print("  " + engine_text("logs_totals", lang, **{k: t[k] for k in
          ("delivered", "deferred", "deferrals", "bounced", "expired", "rejected")}))
    print()
    for p in data["providers"][:15]:
        print(engine_text("logs_provider", lang, **{k: p[k] for k in
              ("provider", "delivered", "deferred", "bounced", "expired")}))
        for r in p["reasons"][:3]:
            print("    " + engine_text("logs_reason", lang, reason=r["reason"], count=r["count"],
                                       example=r["example"][:160]))
    if data["findings"]:
        print()
        print(engine_text("logs_findings", lang))
        for f in data["findings"]:
            print(f"  [{f['severity']}] {f['title']}")
            if f["detail"]:
                print(f"      {f['detail']}")
