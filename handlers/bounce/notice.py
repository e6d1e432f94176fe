"""Read a whole message (RFC 5322 / MIME) into the parts a bounce is made of.

A bounce notice has up to four things we care about: the notice's own headers,
a human-readable text, machine-readable reports (message/delivery-status per
RFC 3464, message/feedback-report per RFC 5965) and the returned original
message (message/rfc822 or text/rfc822-headers), whose headers tell who the
original recipient and sender were. Anything below the original message is
never read as part of the bounce.
"""

from __future__ import annotations

import base64
import binascii
import email.header
import quopri
import re
from dataclasses import dataclass, field
from functools import lru_cache

from .textin import clean_lines, decode_bytes

_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,60}:")
_KNOWN_HEADERS = frozenset(
    {
        "from", "to", "subject", "date", "received", "return-path", "content-type", "mime-version",
        "message-id", "delivered-to", "x-failed-recipients", "auto-submitted", "x-original-to",
        "reply-to", "sender", "in-reply-to", "references", "dkim-signature", "authentication-results",
    }
)  # fmt: skip
_TAG = re.compile(r"<[^<>]{0,2000}>")
_MAX_PARTS = 200


@dataclass
class DsnBlock:
    fields: dict[str, str]  # lower-case name -> unfolded value (first occurrence)


@dataclass
class Notice:
    headers: dict[str, str] = field(default_factory=dict)
    human: str = ""  # text of the human-readable part(s)
    per_message: dict[str, str] = field(default_factory=dict)
    per_recipient: list[DsnBlock] = field(default_factory=list)
    feedback: dict[str, str] | None = None
    original: dict[str, str] = field(default_factory=dict)  # headers of the returned message
    original_text: str = ""  # raw text after an "original message" marker (non-MIME notices)
    is_message: bool = False
    notes: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


def looks_like_message(text: str) -> bool:
    """True when the text starts with an RFC 5322 header block."""
    seen = known = 0
    for line in clean_lines(text[:20000])[:60]:
        if not line.strip():
            break
        if line.startswith("From ") and seen == 0:
            continue  # mbox separator
        if line[:1] in (" ", "\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        seen += 1
        if line.split(":", 1)[0].lower() in _KNOWN_HEADERS:
            known += 1
    return seen >= 2 and known >= 1


def decode_header(value: str | None) -> str:
    if not value:
        return ""
    try:
        parts = email.header.decode_header(str(value))
    except Exception:  # malformed encoded-words: keep the raw text
        return " ".join(str(value).split())
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "ascii", "replace"))
            except LookupError:
                out.append(decode_bytes(chunk))
        else:
            out.append(chunk)
    return " ".join("".join(out).split())


def _html_to_text(html: str) -> str:
    html = re.sub(r"(?i)<br\s{0,4}/?>|</p>|</div>|</tr>", "\n", html)
    return (
        _TAG.sub(" ", html)
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def parse_field_blocks(text: str) -> list[dict[str, str]]:
    """Parse "Name: value" blocks separated by blank lines (DSN / ARF bodies)."""
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    # Continuation lines of cur[fold_key], joined once when the field ends: appending
    # to the value per line re-copied it each time (quadratic in a field's lines).
    fold_key = ""
    folds: list[str] = []
    for line in clean_lines(text):
        if not line.strip():
            _join_folds(cur, fold_key, folds)
            if cur:
                blocks.append(cur)
                cur, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            if fold_key != last:
                _join_folds(cur, fold_key, folds)
                fold_key = last
            folds.append(line.strip())
            continue
        if ":" in line and _HEADER_LINE.match(line):
            _join_folds(cur, fold_key, folds)
            name, _, value = line.partition(":")
            last = name.strip().lower()
            if (
                last == "final-recipient"
                and "final-recipient" in cur
                and ("action" in cur or "status" in cur)
            ):
                blocks.append(cur)  # the next recipient, without the blank line RFC 3464 asks for
                cur = {}
            cur.setdefault(last, value.strip())
            if cur[last] != value.strip():
                last = ""  # keep the first occurrence; ignore continuation of a duplicate
        elif last == "diagnostic-code":
            # Badly folded multi-line replies ("550-5.7.1 ..." without indentation).
            if fold_key != last:
                _join_folds(cur, fold_key, folds)
                fold_key = last
            folds.append(line.strip())
    _join_folds(cur, fold_key, folds)
    if cur:
        blocks.append(cur)
    return blocks


def _join_folds(cur: dict[str, str], key: str, folds: list[str]) -> None:
    if folds:
        cur[key] = " ".join([cur[key], *folds])
        folds.clear()


def _add_dsn(notice: Notice, blocks: list[dict[str, str]]) -> None:
    for blk in blocks:
        if "final-recipient" in blk or "original-recipient" in blk or "x-actual-recipient" in blk:
            notice.per_recipient.append(DsnBlock(blk))
        elif not notice.per_message:
            notice.per_message = blk


@lru_cache(maxsize=8)
def _literal_alternation(markers: tuple[str, ...]) -> re.Pattern[str]:
    # An alternation of escaped literals: no quantifiers, so matching stays linear.
    return re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))


def _cut_original(human: str, markers: list[str]) -> tuple[str, str]:
    """Split a text at the first "original message follows" marker."""
    low = human.lower()
    if len(low) != len(human):  # lower() changed lengths (rare Unicode): positions would drift
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in human)
    m = _literal_alternation(tuple(markers)).search(low)
    if not m:
        return human, ""
    start = human.rfind("\n", 0, m.start()) + 1
    end = human.find("\n", m.end())
    return human[:start], (human[end + 1 :] if end >= 0 else "")


class _Part:
    """One MIME entity: its headers and its raw body (str; bytes kept as latin-1 text)."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: dict[str, str], body: str) -> None:
        self.headers = headers
        self.body = body

    def content_type(self) -> tuple[str, dict[str, str]]:
        return _content_type(self.headers.get("content-type", ""))


def _split_head(raw: str) -> tuple[dict[str, str], str]:
    """Header block (unfolded, first occurrence wins) and the body after the blank line."""
    headers: dict[str, str] = {}
    folded: dict[str, list[str]] = {}  # continuation lines, joined once at the end (linear)
    last = ""
    pos = 0
    n = len(raw)
    while pos < n:
        nl = raw.find("\n", pos)
        if nl < 0:
            nl = n
        line = raw[pos:nl].rstrip("\r")
        pos = nl + 1
        if not line.strip():
            break
        if line[:1] in (" ", "\t"):
            if last:
                folded.setdefault(last, []).append(line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_LINE.match(line):
            if line.startswith("From ") and not headers:
                continue  # mbox separator
            last = ""
            continue
        last = name.strip().lower()
        if last in headers:
            last = ""
            continue
        headers[last] = value.strip()
    else:
        pos = n
    for name, more in folded.items():
        headers[name] = " ".join([headers[name], *more])
    return headers, raw[pos:]


_PARAM = re.compile(r';\s{0,20}([A-Za-z0-9*._-]{1,60})\s{0,5}=\s{0,5}(?:"([^"]{0,500})"|([^;\s]{0,500}))')


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    ctype = value.split(";", 1)[0].strip().lower() or "text/plain"
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PARAM.finditer(value)
    }
    return ctype, params


def _decode_body(part: _Part, from_bytes: bool) -> str:
    """Undo the transfer encoding and the charset of a leaf part."""
    cte = part.headers.get("content-transfer-encoding", "").strip().lower()
    body = part.body
    raw: bytes | None = None
    try:
        if cte == "base64":
            raw = base64.b64decode("".join(body.split()) + "===", validate=False)
        elif cte == "quoted-printable":
            raw = quopri.decodestring(body.encode("latin-1" if from_bytes else "utf-8", "replace"))
    except (binascii.Error, ValueError):
        raw = None
    if raw is None:
        if not from_bytes:
            return body
        raw = body.encode("latin-1", "replace")
    charset = _content_type(part.headers.get("content-type", ""))[1].get("charset", "").strip().lower()
    if charset:
        alias = {
            "shift-jis": "cp932",
            "shift_jis": "cp932",
            "x-sjis": "cp932",
            "sjis": "cp932",
            "iso-2022-jp": "iso2022_jp",
            "euc-jp": "euc_jp",
            "x-euc-jp": "euc_jp",
        }
        try:
            return raw.decode(alias.get(charset, charset), "strict")
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(raw)


def _split_multipart(body: str, boundary: str) -> list[str]:
    """Bodies between "--boundary" lines (RFC 2046 §5.1.1; tolerant of a missing close).

    Finds the delimiter lines with str.find and slices between them: every nesting level
    scans its body once, without splitting it into lines and joining them again (that
    cost a copy of the whole body per level)."""
    marker = "\n--" + boundary
    text = "\n" + body  # a delimiter on the first line is found like any other
    parts: list[str] = []
    start: int | None = None
    pos = 0
    while True:
        i = text.find(marker, pos)
        if i < 0:
            break
        line_end = text.find("\n", i + 1)
        if line_end < 0:
            line_end = len(text)
        rest = text[i + len(marker) : line_end].rstrip()
        pos = line_end
        if not (rest in ("", "--") or rest.startswith("--")):
            continue  # "--boundaryX": another boundary, not ours
        if start is not None:
            parts.append(text[start:i])
        if rest.startswith("--"):
            return parts
        start = line_end + 1
    if start is not None and start <= len(text):
        parts.append(text[start:])
    return parts


def _header_value(value: str, from_bytes: bool) -> str:
    if from_bytes and not value.isascii():
        value = decode_bytes(value.encode("latin-1", "replace"))  # raw 8-bit header
    return value


def parse_message(data: bytes | str, markers: list[str]) -> Notice:
    """Parse a whole message. Never raises: broken MIME degrades to plain text."""
    from_bytes = isinstance(data, bytes)
    raw = data.decode("latin-1") if isinstance(data, bytes) else data
    raw = raw.replace("\r\n", "\n")
    top_headers, top_body = _split_head(raw)
    notice = Notice(is_message=True)
    for k, v in top_headers.items():
        v = _header_value(v, from_bytes)
        notice.headers[k] = decode_header(v) if k in ("subject", "from", "to") else " ".join(v.split())
    human_parts: list[str] = []
    state = {"count": 0, "seen_original": False}

    def visit(part: _Part, depth: int) -> None:
        state["count"] += 1
        if state["count"] > _MAX_PARTS or depth > 20:
            return
        ctype, params = part.content_type()
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers"):
            if not notice.original:
                inner = _decode_body(part, from_bytes) if ctype.startswith("text/") else part.body
                hdrs, _ = _split_head(inner.lstrip("\n"))
                notice.original = {
                    k: (decode_header(v) if k in ("subject", "from", "to") else v) for k, v in hdrs.items()
                }
            state["seen_original"] = True
            return
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            _add_dsn(notice, parse_field_blocks(_decode_body(part, from_bytes)))
            return
        if ctype == "message/feedback-report":
            merged: dict[str, str] = {}
            for b in parse_field_blocks(_decode_body(part, from_bytes)):
                for k, v in b.items():
                    merged.setdefault(k, v)
            notice.feedback = merged
            return
        if ctype.startswith("multipart/"):
            chunks = _split_multipart(part.body, params["boundary"]) if params.get("boundary") else []
            if chunks:
                for chunk in chunks:
                    hdrs, body = _split_head(chunk)
                    visit(_Part(hdrs, body), depth + 1)
                return
            # Broken MIME (no boundary, or none of its lines): read the body as text.
        if state["seen_original"]:
            return  # parts after the returned message belong to it
        if (
            ctype.startswith("text/")
            or ctype.startswith("multipart/")
            or (depth == 0 and not ctype.startswith(("image/", "audio/", "video/")))
        ):
            text = _decode_body(part, from_bytes)
            if ctype == "text/html":
                if human_parts:
                    return  # the text/plain alternative is enough
                text = _html_to_text(text)
            human_parts.append(text)

    visit(_Part(top_headers, top_body), 0)
    if state["count"] > _MAX_PARTS:
        notice.notes.append("Only the first 200 MIME parts were read.")
    human = "\n".join(human_parts)
    notice.human, notice.original_text = _cut_original(human, markers)
    if not notice.original and notice.original_text:
        hdrs, _ = _split_head(notice.original_text.lstrip("\n"))
        if hdrs:
            notice.original = hdrs
    low = human.lower()
    if not notice.per_recipient and ("final-recipient:" in low or "original-recipient:" in low):
        # A DSN pasted or sent as plain text (no message/delivery-status part).
        _add_dsn(notice, parse_field_blocks(human))
    return notice
