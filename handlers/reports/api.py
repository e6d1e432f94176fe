"""The receiver-report engine's public face: `parse_blob` (bytes -> reports) and
`summarize` (reports -> a Report with findings). The CLI, Slack and the mailbox
worker all go through these two."""

from __future__ import annotations

from handlers.reports.dmarc_aggregate import AggregateError, parse_aggregate
from handlers.reports.dmarc_failure import FailureReportError, parse_failure
from handlers.reports.extract import ExtractError, extract
from handlers.reports.records import (
    AuthResult,
    ParsedFile,
    ParsedReport,
    Source,
    TLSFailure,
    TLSPolicy,
)
from handlers.reports.summary import summarize
from handlers.reports.tlsrpt import TLSReportError, parse_tlsrpt

__all__ = [
    "AuthResult",
    "ParsedFile",
    "ParsedReport",
    "Source",
    "TLSFailure",
    "TLSPolicy",
    "parse_blob",
    "summarize",
]


def parse_blob(name: str, data: bytes) -> ParsedFile:
    """Every report in one file or blob (`name` labels its errors); never raises for bad
    input: what could not be read is one line in `errors`, the rest is still reported."""
    out = ParsedFile(name=name)
    try:
        found = extract(name, data)
    except ExtractError as exc:
        out.errors.append(str(exc))
        return out
    except RecursionError:
        out.errors.append(f"{name}: refused: nested too deeply")
        return out
    out.errors.extend(found.errors)
    seen: set[tuple[str, str, str]] = set()
    for payload in found.payloads:
        try:
            if payload.kind == "xml":
                report = parse_aggregate(payload.data)
            elif payload.kind == "json":
                report = parse_tlsrpt(payload.data)
            elif payload.message is not None:
                report = parse_failure(payload.message)
            else:
                continue
        except (AggregateError, TLSReportError, FailureReportError) as exc:
            out.errors.append(f"{payload.label}: {exc}")
            continue
        except RecursionError:
            out.errors.append(f"{payload.label}: refused: nested too deeply")
            continue
        if report.truncated:
            out.errors.append(f"{payload.label}: more records than the limit; the totals count the first "
                              f"{report.rows}")
        if report.report_id and report.key in seen:
            continue  # the same report twice in one file (an mbox holding a resend)
        seen.add(report.key)
        out.reports.append(report)
    if not found.payloads and not out.errors:
        out.errors.append(f"{name}: no report found")
    return out
