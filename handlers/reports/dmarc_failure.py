"""DMARC failure reports (RFC 6591 ARF, `Feedback-Type: auth-failure`; RFC 7489 §7.3).

Only the fields that say what failed are kept: source IP, which authentication
failed, the reported domain, DKIM domain/selector, SPF domain, dates. The original
message's addresses, subject and body are personal data of whoever it was sent to:
they are never read into the report, stored or posted (SECURITY.md).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import quopri
from datetime import UTC
from email.message import Message
from email.parser import HeaderParser

from handlers.model import format_ip
from handlers.reports.records import ParsedReport

_KEEP = {  # ARF field -> key in the report (RFC 6591 §3.1, RFC 7489 §7.3)
    "feedback-type": "feedback_type",
    "delivery-result": "delivery_result",
    "dkim-domain": "dkim_domain",
    "dkim-selector": "dkim_selector",
    "spf-dns": "spf_dns",
    "identity-alignment": "identity_alignment",
    "reporting-mta": "reporting_mta",
}


class FailureReportError(ValueError):
    """Not a DMARC failure report: one line."""


def _fields(part: Message) -> dict[str, str]:
    payload = part.get_payload()
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
        items = list(inner.items())
        if cte in ("base64", "quoted-printable"):
            # The parser read the encoded fields as a body without headers: decode them first.
            body = inner.get_payload()
            raw = body.encode("ascii", "replace") if isinstance(body, str) else b""
            try:
                decoded = base64.b64decode(raw, validate=False) if cte == "base64" else quopri.decodestring(raw)
            except (binascii.Error, ValueError):
                decoded = b""
            items = list(HeaderParser().parsestr(decoded.decode("utf-8", "replace").lstrip()).items())
    else:
        raw_bytes = part.get_payload(decode=True)
        text = raw_bytes.decode("utf-8", "replace") if isinstance(raw_bytes, bytes) else str(payload or "")
        items = list(HeaderParser().parsestr(text.lstrip()).items())
    out: dict[str, str] = {}
    for k, v in items[:200]:
        key = str(k).strip().lower()
        if key not in out:
            out[key] = " ".join(str(v).split())[:300]
    return out


def _domain_of(value: str) -> str:
    addr = email.utils.parseaddr(value)[1]
    return addr.rpartition("@")[2].lower().strip(" .>")[:255] if "@" in addr else ""


def parse_failure(msg: Message) -> ParsedReport:
    fields: dict[str, str] = {}
    original_from_domain = ""
    for part in msg.get_payload() if isinstance(msg.get_payload(), list) else []:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and not fields:
            fields = _fields(part)
        elif ctype in ("message/rfc822", "text/rfc822-headers") and not original_from_domain:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original_from_domain = _domain_of(str(inner[0].get("From", "")))
            else:
                raw = part.get_payload(decode=True)
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(inner or "")
                original_from_domain = _domain_of(str(HeaderParser().parsestr(text).get("From", "")))
    if not fields:
        raise FailureReportError("a feedback report without its message/feedback-report part")
    ftype = fields.get("feedback-type", "").lower()
    if ftype != "auth-failure" and "auth-failure" not in fields:
        raise FailureReportError(f"a feedback report of type {ftype[:30] or 'unknown'!r}, "
                                 "not a DMARC failure report (auth-failure)")
    report = ParsedReport(type="dmarc-failure")
    ip = fields.get("source-ip", "").strip("[] ")
    report.source_ip = format_ip(ip)[:64] if ip else ""
    report.auth_failure = fields.get("auth-failure", "").lower()[:60]
    report.domain = (fields.get("reported-domain", "").lower().rstrip(".")
                     or fields.get("dkim-domain", "").lower() or original_from_domain)[:255]
    # The reporter is the organisation that sent the report (its From: domain), never a person.
    report.org_name = _domain_of(str(msg.get("From", ""))) or fields.get("reporting-mta", "")[:200]
    arrival = fields.get("arrival-date", "")
    if arrival:
        try:
            when = email.utils.parsedate_to_datetime(arrival)
            report.begin = when if when.tzinfo else when.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            report.begin = None
    report.failure = {v: fields[k] for k, v in _KEEP.items() if fields.get(k)}
    # A stable id without keeping the original message: a digest of what identifies the case.
    basis = "|".join([str(msg.get("Message-ID", "")), report.source_ip, arrival, report.domain,
                      fields.get("original-envelope-id", "")])
    report.report_id = hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()[:32]
    return report
