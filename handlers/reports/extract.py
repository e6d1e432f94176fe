"""Open whatever a receiver sent: .xml, .xml.gz, .zip, .json(.gz), a whole report email
(.eml, any transfer encoding) or an mbox of them, down to the report documents inside.

Anyone can mail a rua= address, so every layer is bounded: decompressed bytes (a zip or
gzip bomb stops at the cap, whatever its headers claim), zip members, nesting depth and
MIME parts.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from email.message import Message

MAX_DECOMPRESSED = 160 * 1024 * 1024  # per document: a 250k-record aggregate report is ~100 MB of XML
MAX_TOTAL = 320 * 1024 * 1024  # all documents of one file together
MAX_ZIP_MEMBERS = 16
MAX_DEPTH = 4  # email -> zip -> gzip -> document
MAX_PARTS = 200  # MIME parts looked at in one message
MAX_MESSAGES = 10_000  # messages in one mbox


class ExtractError(ValueError):
    """The file, or a layer inside it, is broken or over a cap: one line says which."""


@dataclass
class Payload:
    """One report document: `kind` is "xml", "json" or "arf" (a failure-report email)."""

    label: str
    kind: str
    data: bytes
    message: Message | None = None


@dataclass
class Extracted:
    payloads: list[Payload] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    total: int = 0


_MBOX_SPLIT = re.compile(rb"(?m)^From [^\r\n]*\r?\n")
_HEADER_LINE = re.compile(rb"^[A-Za-z0-9-]{1,76}:")
_MAIL_HEADERS = re.compile(rb"(?im)^(content-type|mime-version|from|received|subject|message-id|date):")
_REPORT_TYPES = ("xml", "json", "gzip", "zip", "octet-stream", "tlsrpt")


def gunzip(data: bytes, label: str, cap: int = MAX_DECOMPRESSED) -> bytes:
    """Every gzip member of `data`, decompressed, stopping at `cap` bytes."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            chunk = d.decompress(rest, cap - len(out) + 1)
        except zlib.error as exc:
            raise ExtractError(f"{label}: broken gzip data ({exc})") from None
        out += chunk
        if len(out) > cap:
            raise ExtractError(f"{label}: decompresses to more than {cap // (1024 * 1024)} MB (limit)")
        if not d.eof:
            raise ExtractError(f"{label}: gzip data is truncated")
        rest = d.unused_data
        if rest and not rest.startswith(b"\x1f\x8b"):
            break  # trailing garbage after the last member, as gzip(1) tolerates
    return bytes(out)


def sniff(data: bytes) -> str:
    """What `data` looks like: gzip, zip, xml, json, mbox, email or '' (none of them)."""
    head = data[:4096]
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its byte order mark
        wide = head[2:200].decode("utf-16-le" if head[:2] == b"\xff\xfe" else "utf-16-be", "replace").lstrip()
        return "xml" if wide.startswith("<") else "json" if wide.startswith("{") else ""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    if text.startswith(b"{"):
        return "json"
    if text.startswith(b"From ") and b"\n" in text:
        second = text.split(b"\n", 1)[1]
        if _HEADER_LINE.match(second):
            return "mbox"
    # Header blocks of delivered mail can be tens of kilobytes (ARC, DKIM, Exchange's X-MS-*)
    # before the first of the usual fields.
    if _HEADER_LINE.match(text) and _MAIL_HEADERS.search(data[:65536]):
        return "email"
    return ""


def extract(name: str, data: bytes) -> Extracted:
    out = Extracted()
    _walk(name, data, out, depth=0)
    return out


def _add(out: Extracted, payload: Payload) -> None:
    out.total += len(payload.data)
    if out.total > MAX_TOTAL:
        raise ExtractError(f"{payload.label}: the documents inside add up to more than "
                           f"{MAX_TOTAL // (1024 * 1024)} MB (limit)")
    out.payloads.append(payload)


def _walk(label: str, data: bytes, out: Extracted, depth: int, hint: str = "") -> None:
    if depth > MAX_DEPTH:
        out.errors.append(f"{label}: nested too deeply (archives inside archives)")
        return
    kind = sniff(data)
    try:
        if kind == "gzip":
            _walk(label, gunzip(data, label), out, depth + 1)
        elif kind == "zip":
            _unzip(label, data, out, depth)
        elif kind in ("xml", "json"):
            _add(out, Payload(label, kind, data))
        elif kind == "mbox":
            _mbox(label, data, out, depth)
        elif kind == "email":
            _email(label, email.message_from_bytes(data, policy=email.policy.compat32), out, depth)
        elif not data.strip():
            out.errors.append(f"{label}: empty")
        else:
            out.errors.append(f"{label}: not a DMARC or TLS report (expected XML, JSON, gzip, zip or an email)")
    except ExtractError as exc:
        out.errors.append(str(exc))


def _unzip(label: str, data: bytes, out: Extracted, depth: int) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractError(f"{label}: broken zip archive ({exc})") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ExtractError(f"{label}: zip archive has {len(infos)} files (limit {MAX_ZIP_MEMBERS})")
    for info in infos:
        member = f"{label}:{info.filename[:100]}"
        buf = bytearray()
        try:
            # Read in pieces whatever the header says the size is: the header can lie.
            with zf.open(info) as fh:
                while True:
                    piece = fh.read(1024 * 1024)
                    if not piece:
                        break
                    buf += piece
                    if len(buf) > MAX_DECOMPRESSED:
                        raise ExtractError(f"{member}: decompresses to more than "
                                           f"{MAX_DECOMPRESSED // (1024 * 1024)} MB (limit)")
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError,
                NotImplementedError, zlib.error) as exc:
            out.errors.append(f"{member}: cannot be read ({exc})")
            continue
        except ExtractError as exc:
            out.errors.append(str(exc))
            continue
        _walk(member, bytes(buf), out, depth + 1)


def _mbox(label: str, data: bytes, out: Extracted, depth: int) -> None:
    starts = [m.end() for m in _MBOX_SPLIT.finditer(data)]
    if len(starts) > MAX_MESSAGES:
        raise ExtractError(f"{label}: mbox holds more than {MAX_MESSAGES} messages (limit)")
    for n, start in enumerate(starts):
        end = data.rfind(b"\n", start, starts[n + 1]) if n + 1 < len(starts) else len(data)
        body = data[start:end if end > start else len(data)]
        # mboxrd quoting: a body line ">From " stands for "From ".
        body = re.sub(rb"(?m)^>(>*From )", rb"\1", body)
        _email(f"{label}#{n + 1}", email.message_from_bytes(body, policy=email.policy.compat32), out, depth + 1)


def _is_feedback_report(msg: Message) -> bool:
    if msg.get_content_type() != "multipart/report":
        return False
    return str(msg.get_param("report-type", "") or "").lower() == "feedback-report"


def _leaves(msg: Message, out: Extracted, label: str) -> list[Message]:
    """The parts that can hold a report: leaves, and whole feedback reports (whose
    inside, the original message, is never looked into)."""
    found: list[Message] = []
    stack = [msg]
    seen = 0
    while stack:
        part = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            out.errors.append(f"{label}: more than {MAX_PARTS} MIME parts; the rest is not read")
            break
        if _is_feedback_report(part):
            found.append(part)
            continue
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
            continue
        found.append(part)
    return found


def _email(label: str, msg: Message, out: Extracted, depth: int) -> None:
    if depth > MAX_DEPTH:
        out.errors.append(f"{label}: nested too deeply (messages inside messages)")
        return
    found = len(out.payloads)
    for part in _leaves(msg, out, label):
        if _is_feedback_report(part):
            _add(out, Payload(label, "arf", b"", message=part))
            continue
        ctype = part.get_content_type()
        filename = part.get_filename() or ""
        if not (filename or any(t in ctype for t in _REPORT_TYPES)):
            continue  # the covering letter ("This is a DMARC report for ...")
        try:
            payload = part.get_payload(decode=True)
        except (ValueError, TypeError, AssertionError):
            payload = None
        if not isinstance(payload, bytes) or not payload.strip():
            continue
        name = f"{label}:{filename[:100]}" if filename else f"{label}:{ctype}"
        sub = sniff(payload)
        if sub in ("xml", "json", "gzip", "zip"):
            _walk(name, payload, out, depth + 1)
    if len(out.payloads) == found and not any(e.startswith(label) for e in out.errors):
        out.errors.append(f"{label}: an email with no DMARC or TLS report attached")
