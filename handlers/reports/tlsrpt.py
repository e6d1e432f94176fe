"""SMTP TLS reports (RFC 8460 §4): the JSON a sending MTA mails to the rua= of
_smtp._tls. Read leniently (a string where the RFC has a list, counts as strings, a
missing summary) but never guessed: a session count that is not a number is 0."""

from __future__ import annotations

import json
from typing import Any

from handlers.model import format_ip
from handlers.reports.records import ParsedReport, TLSFailure, TLSPolicy, parse_iso

MAX_POLICIES = 1000
MAX_FAILURE_DETAILS = 10_000


class TLSReportError(ValueError):
    """Not a TLS report, or broken: one line."""


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return max(0, min(int(value), 10**12))
    if isinstance(value, str):
        try:
            return max(0, min(int(float(value.strip())), 10**12))
        except (ValueError, OverflowError):
            return 0
    return 0


def _str(value: Any, limit: int = 255) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return value.strip()[:limit] if isinstance(value, str) else ""


def _strs(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [v.strip()[:255] for v in value[:50] if isinstance(v, str) and v.strip()]


def _get(d: dict[str, Any], *names: str) -> Any:
    """RFC 8460's hyphenated key, or the underscore spelling a few reporters use."""
    for n in names:
        for key in (n, n.replace("-", "_")):
            if key in d:
                return d[key]
    return None


def parse_tlsrpt(data: bytes) -> ParsedReport:
    try:
        wide = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        doc = json.loads(data.decode("utf-16" if wide else "utf-8-sig", "replace"))
    except RecursionError:
        raise TLSReportError("refused: the JSON is nested too deeply") from None
    except ValueError as exc:
        raise TLSReportError(f"broken JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict) or not isinstance(_get(doc, "policies"), list):
        raise TLSReportError("not a TLS report (JSON without \"policies\", RFC 8460 §4.4)")
    report = ParsedReport(type="tls-rpt")
    report.org_name = _str(_get(doc, "organization-name"), 200)
    report.report_id = _str(_get(doc, "report-id"), 200)
    dr = _get(doc, "date-range")
    if isinstance(dr, dict):
        report.begin = parse_iso(_get(dr, "start-datetime"))
        report.end = parse_iso(_get(dr, "end-datetime"))
    for raw in _get(doc, "policies")[:MAX_POLICIES]:
        if not isinstance(raw, dict):
            continue
        pol = _get(raw, "policy")
        pol = pol if isinstance(pol, dict) else {}
        summary = _get(raw, "summary")
        summary = summary if isinstance(summary, dict) else {}
        policy = TLSPolicy(
            policy_type=_str(_get(pol, "policy-type"), 40).lower() or "no-policy-found",
            policy_domain=_str(_get(pol, "policy-domain")).lower().rstrip("."),
            successful_sessions=_int(_get(summary, "total-successful-session-count")),
            failed_sessions=_int(_get(summary, "total-failure-session-count")),
            mx_host=_strs(_get(pol, "mx-host")),
        )
        details = _get(raw, "failure-details")
        for f in (details if isinstance(details, list) else [])[:MAX_FAILURE_DETAILS]:
            if not isinstance(f, dict):
                continue
            ip = _str(_get(f, "receiving-ip"), 64)
            sending = _str(_get(f, "sending-mta-ip"), 64)
            policy.failures.append(TLSFailure(
                result_type=_str(_get(f, "result-type"), 60).lower() or "unspecified",
                sessions=_int(_get(f, "failed-session-count")),
                receiving_mx_hostname=_str(_get(f, "receiving-mx-hostname")).lower().rstrip("."),
                receiving_ip=format_ip(ip) if ip else "",
                sending_mta_ip=format_ip(sending) if sending else "",
                failure_reason_code=_str(_get(f, "failure-reason-code"), 200),
            ))
        report.policies.append(policy)
    report.domain = next((p.policy_domain for p in report.policies if p.policy_domain), "")
    if not report.policies and not report.report_id:
        raise TLSReportError("not a TLS report (no policies and no report-id)")
    return report
