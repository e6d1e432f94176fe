"""Cheap detector: is a Slack paste the source of a delivered message (not a bounce)?

Bounded work: at most the first 64 KB and 300 lines are looked at, no regex
that can backtrack.
"""

from __future__ import annotations

import re

_SCAN_CHARS = 64 * 1024
_SCAN_LINES = 300
_PREAMBLE = 5
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]{0,4}:")
_STRONG = frozenset({
    "received", "dkim-signature", "authentication-results", "arc-seal", "arc-message-signature",
    "arc-authentication-results", "message-id", "return-path", "received-spf", "x-received", "delivered-to",
    "x-google-smtp-source", "x-ms-exchange-organization-authas", "list-unsubscribe", "mime-version",
    "x-originating-ip", "x-mailer",
})  # fmt: skip
_KNOWN = _STRONG | {"from", "to", "cc", "subject", "date", "reply-to", "sender", "content-type",
                    "content-transfer-encoding", "list-id", "precedence", "feedback-id"}  # fmt: skip
_BOUNCE_FROM = re.compile(r"(?i)mailer-daemon|postmaster@|mail delivery (?:sub)?system|mail delivery subsystem")
_BOUNCE_SUBJECT = re.compile(
    r"(?i)undeliver|delivery status notification|failure notice|returned mail|mail delivery failed|"
    r"delivery failure|non-?delivery|could not be delivered|配信不能|配送エラー|送信エラー|メール配信失敗"
)


def looks_like_message(text: str) -> bool:
    """True for a pasted message source: a header block of a real message, not a bounce/DSN."""
    if not text or not isinstance(text, str):
        return False
    sample = text[:_SCAN_CHARS]
    if "&lt;" in sample and "<" not in sample.replace("&lt;", ""):
        sample = sample.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    lines = sample.replace("\r\n", "\n").replace("```", "\n").split("\n", _SCAN_LINES)[:_SCAN_LINES]
    start = None
    for i, line in enumerate(lines[: _PREAMBLE + 2]):
        s = line.strip("\ufeff")
        if s.startswith("From ") and not _HEADER.match(s):
            continue  # mbox separator
        if _HEADER.match(s):
            start = i
            break
    if start is None:
        return False
    names: list[str] = []
    values: dict[str, str] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        if line[:1] in (" ", "\t"):
            continue
        m = _HEADER.match(line)
        if not m:
            if len(names) >= 3:
                break  # headers-only paste followed by commentary
            return False
        name = m.group(1).lower()
        names.append(name)
        values.setdefault(name, line[m.end():m.end() + 300])
    known = [n for n in names if n in _KNOWN]
    strong = [n for n in names if n in _STRONG]
    if not (len(names) >= 3 and len(known) >= 2 and strong):
        return False
    # A bounce notice also starts with headers: recognise it and leave it to the bounce analyser.
    ctype = values.get("content-type", "").lower()
    if "multipart/report" in ctype or "delivery-status" in ctype:
        return False
    if "x-failed-recipients" in names:
        return False
    if _BOUNCE_FROM.search(values.get("from", "")) and _BOUNCE_SUBJECT.search(values.get("subject", "") or "undeliver"):
        return False
    return not _BOUNCE_SUBJECT.search(values.get("subject", ""))
