"""`mailcheck reports FILE...`: DMARC aggregate, DMARC failure and TLS reports.

Each file is read on its own: one that is not a report, or is broken or hostile,
becomes one line in `errors` and the others are still reported (SPEC "Receiver
reports and logs"); exit 2 only when no file gave a report.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handlers.model import Report

MAX_FILE_BYTES = 64 * 1024 * 1024  # a compressed report is rarely over 1 MB; XML of 100k records ~50 MB


def add_reports_command(subs: Any, common: argparse.ArgumentParser) -> None:
    p = subs.add_parser("reports", parents=[common],
                        help="summarise DMARC aggregate/failure reports and TLS-RPT reports (files or - for stdin)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help=".xml, .xml.gz, .zip, .json, .json.gz, .eml or mbox; - reads stdin")
    p.add_argument("--offline", action="store_true", help="no DNS lookups (no PTR / provider for sources)")


def _read(path: str) -> tuple[bytes | None, str]:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return None, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB (limit)"
    return data, ""


async def cmd_reports(args: argparse.Namespace) -> Report:
    from bot.cli import make_resolver
    from handlers.reports.api import parse_blob, summarize

    reports = []
    errors: list[dict[str, str]] = []
    for path in args.files:
        label = "stdin" if path == "-" else path
        data, problem = _read(path)
        if data is None:
            errors.append({"file": label, "error": problem})
            continue
        parsed = parse_blob(label, data)
        reports.extend(parsed.reports)
        for line in parsed.errors:
            # The engine prefixes its lines with the label: the file is its own field here.
            text = line[len(label) + 2:] if line.startswith(label + ": ") else line
            errors.append({"file": label, "error": " ".join(text.split())[:300]})
    from bot.cli import _with_progress

    resolver = None if args.offline or not reports else make_resolver(args, deadline=120.0)
    report = await _with_progress(f"Summarising {len(reports)} report(s)", summarize(reports, resolver))
    report.details["errors"] = errors
    return report


def reports_json(report: Report) -> dict[str, Any]:
    """SPEC's shape: kind, reports, findings, errors (nothing else)."""
    return {
        "kind": "reports",
        "reports": list(report.details.get("reports", [])),
        "findings": [f.to_dict() for f in report.findings],
        "errors": list(report.details.get("errors", [])),
    }
