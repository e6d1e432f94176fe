"""Parse a pasted or uploaded message source into what the checks need (sync, bounded).

Runs in a worker thread (asyncio.to_thread). Every size is capped so hostile
input (megabytes of junk, thousands of headers, deep MIME trees) costs bounded
time: the raw header block, the number of headers and MIME parts walked, the
text kept from bodies and the number of URLs extracted.
"""

from __future__ import annotations

import email
import email.feedparser
import email.message
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass, field
from typing import Any

from handlers.charsets import to_utf8

from .charset import decode, decode_header_value, guess_decode, rfc2231_value

MAX_INPUT = 5 * 1024 * 1024
MAX_HEADER_BLOCK = 512 * 1024
MAX_HEADERS = 2000
MAX_HEADER_VALUE = 16000
MAX_PARTS = 200
MAX_DEPTH = 10
MAX_TEXT = 200_000
MAX_URL_HOSTS = 200
MAX_PREAMBLE_LINES = 8

# Longest Content-Type / Content-Disposition value handed to the email package. Its
# parameter parser (email.message._parseparam) copies the rest of the value for every
# ";", so cost grows with the square of the length; real values, even RFC 2231
# continuations of long Japanese file names, stay far below this.
MAX_MIME_PARAMS_VALUE = 4000
# Multipart levels the email package may open. Each open level is a boundary test on
# every following line, so depth x lines grew without bound (300 levels and 40k lines
# took seconds). Real mail nests a handful of levels; MAX_DEPTH of them are read.
MAX_NESTING = 50

_HEADER_LINE = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}[ \t]{0,4}:")
_URL = re.compile(r"(?i)\b(?:https?|hxxps?)://([^\s/?#<>\"'()\[\]{}\\|^`]{1,300})")
_WWW = re.compile(r"(?i)(?<![\w.@/-])(www\d{0,3}\.[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,8})")
_HOST_OK = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
_TAG = re.compile(r"<[^<>]{0,4000}>")
_STYLE = re.compile(r"(?is)<(script|style)\b[^>]{0,2000}>.{0,200000}?</\1\s{0,10}>")
_BREAK = re.compile(r"(?i)<br\s{0,4}/?>|</p\s{0,4}>|</div\s{0,4}>|</tr\s{0,4}>|</h\d\s{0,4}>|</li\s{0,4}>")
_HREF = re.compile(r"""(?i)\bhref\s{0,4}=\s{0,4}["']?\s{0,4}(?:https?:)?//([^\s/?#<>"']{1,300})""")


@dataclass
class Attachment:
    filename: str
    raw_filename: str  # as written in the header (before decoding)
    content_type: str
    size: int
    encoding_note: str = ""  # how the name was encoded (rfc2231 / encoded-word / raw 8-bit)


@dataclass
class ParsedMessage:
    raw: bytes  # the message as given to DKIM (mbox line / preamble removed)
    headers: list[tuple[str, str]] = field(default_factory=list)  # (name, raw unfolded value)
    body_text: str = ""  # readable text of the body (text/plain preferred, else html stripped)
    html_present: bool = False
    text_parts: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    url_hosts: list[str] = field(default_factory=list)
    content_type: str = ""
    charsets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    truncated: bool = False
    header_only: bool = False  # no body at all (a headers-only paste)
    parts_seen: int = 0

    def all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    def first(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def decoded(self, name: str) -> str | None:
        v = self.first(name)
        return None if v is None else decode_header_value(v)

    def has(self, name: str) -> bool:
        low = name.lower()
        return any(n.lower() == low for n, _ in self.headers)


# ---------------------------------------------------------------------------
def to_bytes(data: bytes | str) -> bytes:
    """The message as bytes; a UTF-16/32 file (Windows "Unicode" text) becomes UTF-8."""
    if isinstance(data, bytes | bytearray | memoryview):
        return to_utf8(bytes(data))
    text = str(data)
    return text.encode("utf-8", "surrogateescape")


def unslack(text: str) -> str:
    """Undo Slack's markup in a pasted header block (links, entities, code fences)."""
    if "```" in text:
        text = text.replace("```", "\n")
    if "<mailto:" in text or "|" in text or "<http" in text:
        text = re.sub(r"<(?:mailto:|https?://)[^<>|\s]{1,2000}\|([^<>\n]{0,2000})>", r"\1", text)
        text = re.sub(r"<mailto:([^<>|\s]{1,500})>", r"\1", text)
    head = text[:MAX_HEADER_BLOCK]
    if "&lt;" in head and "<" not in head.replace("&lt;", ""):
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text


def strip_preamble(raw: bytes) -> tuple[bytes, int]:
    """Drop an mbox "From " line, leading blank lines and a few lines of prose before the headers."""
    lines = raw[: 64 * 1024].split(b"\n", MAX_PREAMBLE_LINES + 2)
    skip = 0
    for i, line in enumerate(lines[: MAX_PREAMBLE_LINES + 1]):
        if _HEADER_LINE.match(line.lstrip(b"\xef\xbb\xbf")):
            if i == 0:
                return raw.lstrip(b"\xef\xbb\xbf") if raw.startswith(b"\xef\xbb\xbf") else raw, 0
            skip = sum(len(x) + 1 for x in lines[:i])
            return raw[skip:], i
    return raw, 0


class _BoundedPolicy(email.policy.Compat32):
    """compat32, but MIME parameter headers are cut (at a ";") before the email package parses them."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        if len(value) > MAX_MIME_PARAMS_VALUE and name.strip().lower() in ("content-type", "content-disposition"):
            cut = value[:MAX_MIME_PARAMS_VALUE]
            semi = cut.rfind(";")
            value = cut[:semi] if semi > 0 else cut
        return name, value


_POLICY = _BoundedPolicy()


class _TooDeep(Exception):
    pass


_BOUNDARY_TAIL = " \t-\r\n"  # what may follow the separator on a boundary line (RFC 2046 5.1.1)
_BOUNDARY_PATTERN = re.compile(r"\(\?P<sep>(.*)\)\(\?P<end>--\)\?", re.S)


class _BoundedInput(email.feedparser.BufferedSubFile):  # type: ignore[name-defined,misc]
    """The email package's line buffer, with its end-of-part tests made O(1) per line.

    The original tries every open level's boundary regex on every line (RFC 2046:
    an outer boundary ends inner parts too), so cost was lines x depth. Those
    tests match only a line made of "--boundary", then "--", blanks and the line
    end; the blank-line test (between message/delivery-status blocks) only an
    empty line. So a line is looked up by what is left once that tail is cut,
    and only the boundaries it could be are tried. A test of any other shape
    (a future email package) makes every line take the original path.
    """

    def __init__(self) -> None:
        super().__init__()
        self._kinds: list[tuple[str, Any]] = []  # per pushed test: ("sep", key) / ("nl", None) / ("other", None)
        self._by_key: dict[str, dict[str, Any]] = {}  # key -> {regex pattern: its match}
        self._blank_tests = 0
        self._other_tests = 0

    def push_eof_matcher(self, pred: Any) -> None:
        if len(self._eofstack) >= MAX_NESTING:  # type: ignore[attr-defined]
            raise _TooDeep(f"MIME parts nested more than {MAX_NESTING} levels deep")
        super().push_eof_matcher(pred)
        kind = self._kind(pred)
        self._kinds.append(kind)
        if kind[0] == "sep":
            self._by_key.setdefault(kind[1], {})[pred.__self__.pattern] = pred
        elif kind[0] == "nl":
            self._blank_tests += 1
        else:
            self._other_tests += 1

    def pop_eof_matcher(self) -> Any:
        pred = super().pop_eof_matcher()
        kind = self._kinds.pop()
        if kind[0] == "sep":
            self._by_key = {}  # rebuilt: the same boundary may be open at several levels
            for p in self._eofstack:  # type: ignore[attr-defined]
                k = self._kind(p)
                if k[0] == "sep":
                    self._by_key.setdefault(k[1], {})[p.__self__.pattern] = p
        elif kind[0] == "nl":
            self._blank_tests -= 1
        else:
            self._other_tests -= 1
        return pred

    @staticmethod
    def _kind(pred: Any) -> tuple[str, Any]:
        if pred == email.feedparser.NLCRE.match:  # type: ignore[attr-defined]
            return "nl", None
        rx = getattr(pred, "__self__", None)
        if isinstance(rx, re.Pattern) and getattr(pred, "__name__", "") == "match" and isinstance(rx.pattern, str):
            m = _BOUNDARY_PATTERN.match(rx.pattern)
            if m is not None:
                sep = re.sub(r"\\(.)", r"\1", m.group(1), flags=re.S)
                if sep.startswith("--") and "(?P<sep>" + re.escape(sep) + ")" == rx.pattern[: m.end(1) + 1]:
                    return "sep", sep.rstrip(_BOUNDARY_TAIL)
        return "other", None

    def readline(self) -> Any:
        lines = self._lines  # type: ignore[attr-defined]
        if not lines or self._other_tests:
            return super().readline()
        line = lines[0]
        if line.startswith("--"):
            tests = self._by_key.get(line.rstrip(_BOUNDARY_TAIL))
            if tests and any(t(line) for t in tests.values()):
                return ""  # the end of this part: the line stays for the level it ends
        elif line[:1] in ("\r", "\n") and self._blank_tests:
            return ""
        return lines.popleft()


class _FeedParser(email.feedparser.FeedParser):
    def __init__(self) -> None:
        super().__init__(policy=_POLICY)
        self._input = _BoundedInput()  # read lazily by the parse generator: not started yet


def _mime_tree(raw: bytes) -> email.message.Message:
    """email.message_from_bytes(raw, policy=_POLICY), its cost linear in the input."""
    parser = _FeedParser()
    parser.feed(raw.decode("ascii", "surrogateescape"))  # as BytesParser does
    return parser.close()


def _split_header_block(raw: bytes) -> tuple[bytes, bytes]:
    m = re.search(rb"\r?\n\r?\n", raw[:MAX_HEADER_BLOCK])
    if m is None:
        if len(raw) <= MAX_HEADER_BLOCK:
            return raw, b""
        return raw[:MAX_HEADER_BLOCK], raw[MAX_HEADER_BLOCK:]
    return raw[: m.start()], raw[m.end() :]


def parse_headers(block: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """Unfolded (name, value) pairs in order; values as text (8-bit bytes kept as surrogates)."""
    out: list[tuple[str, str]] = []
    defects: list[str] = []
    cur_name: str | None = None
    cur_val: list[str] = []
    cur_len = 0  # characters kept in cur_val: a running total keeps unfolding linear
    for line in block.replace(b"\r\n", b"\n").split(b"\n"):
        if len(out) >= MAX_HEADERS:
            defects.append(f"more than {MAX_HEADERS} header fields; the rest were ignored")
            break
        if line[:1] in (b" ", b"\t"):
            # A continuation line (RFC 5322 2.2.3). Past the value cap it is skipped
            # without decoding, so a huge folded header costs what its bytes cost.
            if cur_name is not None and cur_len < MAX_HEADER_VALUE:
                text = line.decode("utf-8", "surrogateescape")
                cur_val.append(text)
                cur_len += len(text)
            continue
        text = line.decode("utf-8", "surrogateescape")
        if cur_name is not None:
            out.append((cur_name, _unfold(cur_val)))
            cur_name, cur_val, cur_len = None, [], 0
        if not text.strip():
            continue
        name, sep, value = text.partition(":")
        if not sep or not name.strip() or len(name) > 76 or " " in name.strip():
            defects.append(f"not a header line: {text[:60]!r}")
            continue
        cur_name, cur_val, cur_len = name.strip(), [value], len(value)
    if cur_name is not None:
        out.append((cur_name, _unfold(cur_val)))
    return out, defects


def _unfold(parts: list[str]) -> str:
    return " ".join(p.strip() for p in parts if p.strip())[:MAX_HEADER_VALUE]


def parse_message(data: bytes | str) -> ParsedMessage:
    raw = to_bytes(unslack(data) if isinstance(data, str) else data)
    notes: list[str] = []
    truncated = False
    if len(raw) > MAX_INPUT:
        raw = raw[:MAX_INPUT]
        truncated = True
        notes.append(f"The input is larger than {MAX_INPUT // (1024 * 1024)} MB; only the first part was read.")
    raw, skipped = strip_preamble(raw)
    if skipped:
        notes.append(f"{skipped} line(s) of text before the first header were ignored.")
    block, body = _split_header_block(raw)
    headers, defects = parse_headers(block)
    pm = ParsedMessage(raw=raw, headers=headers, notes=notes, defects=defects, truncated=truncated)
    pm.header_only = not body.strip()
    try:
        msg = _mime_tree(raw)
    except _TooDeep as exc:
        pm.defects.append(f"{exc}; the body was read as plain text")
        pm.body_text = guess_decode(body[:MAX_TEXT])
        return pm
    except Exception as exc:  # the stdlib parser is lenient; this is belt and braces
        pm.defects.append(f"MIME parse failed: {type(exc).__name__}")
        pm.body_text = guess_decode(body[:MAX_TEXT])
        return pm
    pm.content_type = _safe(lambda: msg.get_content_type(), "text/plain")
    texts: list[str] = []
    htmls: list[str] = []
    _walk(msg, pm, texts, htmls, 0)
    plain = "\n".join(texts).strip()
    html_text = "\n".join(_html_to_text(h) for h in htmls).strip()
    pm.html_present = bool(htmls)
    pm.body_text = (plain if len(plain) >= len(html_text) // 4 or not html_text else html_text)[:MAX_TEXT]
    pm.url_hosts = _url_hosts("\n".join([*texts, *htmls]))
    return pm


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception:
        return default


def _walk(part: email.message.Message, pm: ParsedMessage, texts: list[str], htmls: list[str], depth: int) -> None:
    if pm.parts_seen >= MAX_PARTS or depth > MAX_DEPTH:
        if "MIME tree too large" not in " ".join(pm.defects):
            pm.defects.append(f"MIME tree too large (more than {MAX_PARTS} parts or {MAX_DEPTH} levels); the rest was skipped")
        return
    pm.parts_seen += 1
    ctype = _safe(lambda: part.get_content_type(), "text/plain")
    if part.is_multipart():
        payload = _safe(lambda: part.get_payload(), [])
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, email.message.Message):
                    _walk(sub, pm, texts, htmls, depth + 1)
        return
    filename = _filename(part)
    disp = (_safe(lambda: part.get_content_disposition(), None) or "").lower()
    charset = _safe(lambda: part.get_content_charset(), None)
    if charset and charset not in pm.charsets:
        pm.charsets.append(charset)
    payload = _safe(lambda: part.get_payload(decode=True), None)
    data = payload if isinstance(payload, bytes) else b""
    if filename is not None or disp == "attachment" or (
        depth > 0 and not ctype.startswith("text/") and ctype != "message/rfc822"
    ):
        name, raw_name, note = filename if filename is not None else ("", "", "")
        if len(pm.attachments) < 100:
            pm.attachments.append(Attachment(name, raw_name, ctype, len(data), note))
        return
    if ctype == "text/plain" or ctype == "text/html":
        text = decode(data, charset) if data else ""
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
        pm.text_parts += 1
        (htmls if ctype == "text/html" else texts).append(text)


def _filename(part: email.message.Message) -> tuple[str, str, str] | None:
    """(decoded name, name as written, how it was encoded) or None when the part has no name."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = _safe(lambda h=header, p=param: part.get_param(p, header=h), None)
        if value is None:
            continue
        if isinstance(value, tuple):
            raw = "".join(str(v) for v in value if v)
            return rfc2231_value(value).strip(), raw[:500], "rfc2231"
        text = str(value)
        if "\ufffd" in text:
            # Raw 8-bit bytes in the header (RFC 6532, common from Japanese mailers): the
            # email package replaced them; read the parameter from the header as received.
            text = _raw_param(part, header, param) or text
        note = "encoded-word" if "=?" in text else ("raw 8-bit" if any(ord(c) > 127 for c in text) else "")
        if "=?" not in text and any("\udc80" <= c <= "\udcff" for c in text):
            # Decoded as is: header unfolding would turn a full-width space into a plain one.
            name = guess_decode(email.utils.unquote(text).encode("utf-8", "surrogateescape"))
            return name.strip(), text[:500], note
        return decode_header_value(email.utils.unquote(text)).strip(), text[:500], note
    return None


def _raw_param(part: email.message.Message, header: str, param: str) -> str | None:
    """A header parameter's value with its 8-bit bytes kept (as surrogate escapes)."""
    value = next((v for k, v in part.raw_items() if k.lower() == header), None)  # as received
    if not isinstance(value, str):
        return None
    m = re.search(rf'(?i)(?:^|;)\s*{param}\s*=\s*(?:"([^"]{{0,1000}})"|([^;\s]{{1,1000}}))', value[:4000])
    return (m.group(1) if m.group(1) is not None else m.group(2)) if m else None


def _html_to_text(src: str) -> str:
    src = src[:MAX_TEXT]
    src = _STYLE.sub(" ", src)
    src = _BREAK.sub("\n", src)
    src = _TAG.sub(" ", src)
    try:
        return html.unescape(src)
    except Exception:
        return src


def _url_hosts(text: str) -> list[str]:
    hosts: list[str] = []
    seen: set[str] = set()
    for rx in (_URL, _HREF, _WWW):
        for m in rx.finditer(text[: MAX_TEXT * 2]):
            host = _clean_host(m.group(1))
            if host and host not in seen:
                seen.add(host)
                hosts.append(host)
                if len(hosts) >= MAX_URL_HOSTS:
                    return hosts
    return hosts


def _clean_host(raw: str) -> str | None:
    host = raw.rsplit("@", 1)[-1]  # userinfo
    if host.startswith("["):
        return None  # IP literal
    host = host.split(":", 1)[0].strip(".").lower()
    host = host.rstrip(".,;:!?)")
    try:
        host = host.encode("idna").decode("ascii") if any(ord(c) > 127 for c in host) else host
    except UnicodeError:
        return None
    if not _HOST_OK.match(host) or len(host) > 253:
        return None
    if re.fullmatch(r"[\d.]+", host):
        return None  # dotted IP
    return host


def header_date(value: str | None) -> Any:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except Exception:
        return None
