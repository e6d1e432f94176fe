"""SMTP reply and enhanced-status helpers: find codes, join multi-line replies.

Every regex here is anchored or uses bounded quantifiers and is applied to
text already capped in length, so a hostile paste cannot trigger catastrophic
backtracking.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# RFC 3463 enhanced status: class.subject.detail, not part of a longer dotted number
# (an IPv4 address or a version string) nor glued to a word (the "v4.6.1" of
# "Lotus SMTP MTA v4.6.1" is a version, not a 4.6.1 content error).
STATUS_RE = re.compile(r"(?<![A-Za-z0-9_.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")  # ASCII: "宛先不明5.1.1" counts
# A reply code as it starts an SMTP reply: "550 ", "550-", "550:" or at the end.
# 2yz replies are only the ones SMTP defines (RFC 5321 4.2.3): "Size (in bytes): 222" is
# not a reply. 4yz/5yz stay open: receivers invent codes there (521, 554, 571 ...).
REPLY_RE = re.compile(r"(?<![\w.\-/#=])(2(?:1[14]|2[01]|5[0-2])|[45][0-5]\d)(?=[ \-:;,)]|$)")
# Reply line prefix of a (multi-line) reply: "550-5.7.1 " / "550 5.7.1 " / "550 ".
LINE_PREFIX_RE = re.compile(r"^\s{0,16}([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\s)?")
# qmail / vpopmail style status in parentheses: "(#5.1.1)".
HASH_STATUS_RE = re.compile(r"\(#([245]\.\d{1,3}\.\d{1,3})\)")

MAX_DIAG = 4000  # characters kept of one diagnostic


def find_status(text: str) -> str | None:
    """The enhanced status code of `text` ("5.7.1"), skipping ones inside URLs.

    The first code wins, except that a generic X.0.0 or "4.4.7" (Exchange/SES "message
    expired") gives way to a more specific code later in the text, as in Sisimai's
    status.Find: "554 4.4.7 Message expired ... <421 4.4.2 Connection timed out>" is 4.4.2.
    """
    first: str | None = None
    generic: str | None = None  # an X.Y.0 code: kept unless a more specific one follows
    for n, code in enumerate(_statuses(text)):
        weak = code.endswith(".0.0") or code == "4.4.7"
        if first is None:
            first = code
            if not weak and not code.endswith(".0"):
                return code
            if not weak:
                generic = code
        elif code[0] == first[0] and not weak and not code.endswith(".0"):
            return code  # "5.1.0 - Unknown address error 550-'5.2.2 ... Mailbox Full'" is 5.2.2
        elif code[0] == first[0] and not weak and generic is None:
            generic = code
        if n > 8:
            break
    return generic or first


def _statuses(text: str) -> Iterator[str]:
    for m in STATUS_RE.finditer(text):
        start = m.start()
        # "…/answer/5.7.1…" or a dotted host name part: not a status.
        if start > 0 and text[start - 1] in "/=?&":
            continue
        code = f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"
        if (
            m.group(1) == "2"
            and code != "2.0.0"
            and not code.startswith("2.1.")
            and not code.startswith("2.6.")
        ):
            # 2.x.y other than the usual success codes are almost always noise.
            continue
        yield code


def find_reply(text: str, status: str | None = None) -> int | None:
    """First plausible SMTP reply code; when a status is known its class must agree."""
    for m in REPLY_RE.finditer(text):
        code = m.group(1)
        if status and code[0] != status[0]:
            continue
        return int(code)
    return None


def join_reply_lines(lines: list[str]) -> str:
    """Join a multi-line reply into one string without the repeated "550-5.7.1" prefixes."""
    out: list[str] = []
    for line in lines:
        m = LINE_PREFIX_RE.match(line)
        if m and out:
            line = line[m.end() :]
        out.append(line.strip())
    return squeeze(" ".join(p for p in out if p))


def squeeze(text: str) -> str:
    """Collapse runs of white space (linear, no regex)."""
    return " ".join(text.split())


def strip_repeated_codes(text: str) -> str:
    """Remove the reply/status prefixes a wrapped multi-line reply repeats mid-text.

    Postfix re-wraps "550-5.7.1 ... 550-5.7.1 ..." so the codes appear inside
    sentences ("... to send mail 550-5.7.1 is not authorized ..."). Only the
    same code as the first one is removed, so other numbers stay.
    """
    first = LINE_PREFIX_RE.search(text) or REPLY_RE.search(text)
    if not first:
        return text
    code = first.group(1)
    status = find_status(text[first.start() : first.start() + 24]) or ""
    head, tail = text[: first.end()], text[first.end() :]
    if tail.startswith("-") and not head.endswith("-"):
        head, tail = head + " ", tail[1:]  # "550-5.7.1 ..." found by REPLY_RE: one reply
    if head.endswith(code + "-") or (code + "-") in head[-16:]:
        head = head.replace(code + "-", code + " ", 1)  # "550-5.7.1 ..." reads as one reply
    # Plain string replacement of the exact tokens (no per-call regex to compile).
    for token in ((f"{code}-{status} ", f"{code} {status} ") if status else ()) + (f"{code}-",):
        if token in tail:
            tail = tail.replace(token, " ")
    return squeeze(head + " " + tail)


def status_class_ok(status: str | None, reply: int | None) -> bool:
    return not (status and reply and str(reply)[0] != status[0])


def prefer_status(field: str | None, in_text: str | None, reply: int | None) -> str | None:
    """Choose between the Status: field and the code inside the diagnostic text.

    Same decision table as Sisimai's status.Prefer: a generic X.0.0 loses to a
    specific code, a class that disagrees with the reply code loses.
    """
    if not field:
        return in_text
    if not in_text:
        return field
    if reply is not None:
        r = str(reply)[0]
        if field[0] != in_text[0]:
            if r == field[0]:
                return field
            if r == in_text[0]:
                return in_text
    if field == in_text:
        return field
    field_zero, text_zero = ".0" in field, ".0" in in_text
    field_zero2, text_zero2 = ".0.0" in field, ".0.0" in in_text
    if field_zero2:
        return field if text_zero2 else in_text
    if field_zero and not text_zero:
        return in_text
    if text_zero2:
        return field
    if field in ("4.4.7", "4.7.0") or field.startswith("5.3."):
        return in_text
    if field[1:4] in (".5.1", ".5.2", ".5.4", ".5.5"):
        return in_text
    if field == "5.1.1":
        if text_zero or in_text.startswith("5.5."):
            return field
        return in_text
    if field == "5.1.3" and in_text.startswith("5.7."):
        return in_text
    return field
