"""DMARC aggregate reports: RFC 7489 appendix C, RFC 9990 (`urn:ietf:params:xml:ns:dmarc-2.0`)
and what reporters really send (pre-RFC drafts without <version>, a namespace prefix
on every tag, upper-case `PASS`, `hardfail`, empty <reason>, Latin-1 bytes).

XML goes through defusedxml with DTDs forbidden: a report never needs one, so an
entity ("billion laughs") or an external entity is refused before expansion.
The document is read as a stream (iterparse) one <record> at a time and the tree is
dropped behind it, so a 100k-record report needs no more memory than its sources.
"""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DET

from handlers.model import format_ip
from handlers.reports.records import AuthResult, ParsedReport, Source

MAX_RECORDS = 1_000_000  # <record>s read from one report; the rest is noted, not read
MAX_AUTH_PER_SOURCE = 50  # distinct DKIM / SPF results kept for one source IP
MAX_NAMES_PER_SOURCE = 20  # header_from / envelope_from names kept for one source IP
NS_2 = "urn:ietf:params:xml:ns:dmarc-2.0"


class AggregateError(ValueError):
    """The document is not a DMARC aggregate report, or broken or hostile: one line."""


_LOCAL: dict[str, str] = {}


def _local(tag: Any) -> str:
    """'{urn:...}record' and 'record' alike -> 'record' (cached: few distinct tags)."""
    try:
        return _LOCAL[tag]
    except KeyError:
        name = tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""
        if len(_LOCAL) < 4096:
            _LOCAL[tag] = name
        return name
    except TypeError:
        return ""


def _text(el: Element | None) -> str:
    if el is None or el.text is None:
        return ""
    return el.text.strip()


def _child(el: Element, name: str) -> Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: Element | None) -> dict[str, str]:
    """Leaf children's text by local name (the first of each)."""
    out: dict[str, str] = {}
    if el is None:
        return out
    for c in el:
        name = _local(c.tag)
        if name not in out:
            out[name] = (c.text or "").strip()
    return out


_RESULT_ALIASES = {"hardfail": "fail", "failed": "fail", "passed": "pass", "": "none"}


def _result(value: str) -> str:
    v = value.strip().lower()
    return _RESULT_ALIASES.get(v, v)[:32]


def _epoch(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
        if seconds > 1e11:  # milliseconds, as a few reporters write them
            seconds /= 1000
        return datetime.fromtimestamp(int(seconds), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:  # a few reporters write ISO 8601
        out = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return out if out.tzinfo else out.replace(tzinfo=UTC)


def _count(value: str) -> int:
    try:
        n = int(float(value.strip() or 0))
    except (ValueError, OverflowError):
        return 0
    return max(0, min(n, 10**12))


_LATIN1_DECL = re.compile(rb"^(\s*<\?xml[^>]*?encoding=)([\"'])[^\"']*\2", re.I)


def _as_utf8(data: bytes) -> bytes | None:
    """Bytes that are not the UTF-8 they claim (a reporter writing Latin-1 or cp1252
    under no or a UTF-8 declaration): re-coded as UTF-8; None when that is not it."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", "replace").encode("utf-8")
    if _LATIN1_DECL.match(text):
        text = _LATIN1_DECL.sub(rb'\1"UTF-8"', text, count=1)
    return text


class _Rows:
    """Adds up records into per-IP sources."""

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        self.auth: dict[tuple[str, str, str, str, str, str], AuthResult] = {}
        self.messages = 0
        self.passed = 0
        self.rows = 0
        self.skipped = 0

    def add(self, record: Element) -> None:
        row = ident = auth = None
        for c in record:
            name = _local(c.tag)
            if name == "row":
                row = c
            elif name in ("identifiers", "identities"):
                ident = c
            elif name == "auth_results":
                auth = c
        if row is None:
            return
        ip = count = ""
        disposition = dkim_pe = spf_pe = ""
        reasons: list[str] = []
        for c in row:
            name = _local(c.tag)
            if name == "source_ip":
                ip = (c.text or "").strip()
            elif name == "count":
                count = c.text or ""
            elif name == "policy_evaluated":
                for p in c:
                    pn = _local(p.tag)
                    if pn == "disposition":
                        disposition = (p.text or "").strip().lower()
                    elif pn == "dkim":
                        dkim_pe = _result(p.text or "")
                    elif pn == "spf":
                        spf_pe = _result(p.text or "")
                    elif pn == "reason":
                        kind = _children(p).get("type", "").lower()
                        if kind:
                            reasons.append(kind[:40])
        if not ip:
            # A row that names no source says nothing usable; parsedmarc (the reference
            # for these totals) drops it too. It is counted, not guessed.
            self.skipped += 1
            return
        n = _count(count)
        ip = format_ip(ip)[:64]
        src = self.sources.get(ip)
        if src is None:
            src = self.sources[ip] = Source(ip=ip)
        self.rows += 1
        self.messages += n
        src.messages += n
        passed = dkim_pe == "pass" or spf_pe == "pass"
        if passed:
            self.passed += n
            src.pass_messages += n
        if spf_pe == "pass":
            src.spf_aligned_messages += n
        if dkim_pe == "pass":
            src.dkim_aligned_messages += n
        disposition = disposition[:20] or "none"  # RFC 9990 adds "pass" to none/quarantine/reject
        src.dispositions[disposition] = src.dispositions.get(disposition, 0) + n
        for r in reasons:
            if r not in src.reasons and len(src.reasons) < 10:
                src.reasons.append(r)
        if ident is not None:
            ids = _children(ident)
            for key, names in (("header_from", src.header_from), ("envelope_from", src.envelope_from)):
                value = ids.get(key, "").lower()[:255]
                if value and value not in names and len(names) < MAX_NAMES_PER_SOURCE:
                    names.append(value)
        if auth is not None:
            for a in auth:
                method = _local(a.tag)
                if method not in ("dkim", "spf"):
                    continue
                f = _children(a)
                domain = f.get("domain", "").lower()[:255]
                result = _result(f.get("result", ""))
                selector = f.get("selector", "")[:100] if method == "dkim" else ""
                scope = f.get("scope", "").lower()[:10] if method == "spf" else ""
                akey = (ip, method, domain, selector, scope, result)
                entry = self.auth.get(akey)
                if entry is None:
                    bucket = src.dkim if method == "dkim" else src.spf
                    if len(bucket) >= MAX_AUTH_PER_SOURCE:
                        continue
                    entry = self.auth[akey] = AuthResult(method, domain, result, selector, scope)
                    bucket.append(entry)
                entry.messages += n

    def finish(self) -> list[Source]:
        for src in self.sources.values():
            if src.dispositions:
                src.disposition = max(src.dispositions.items(), key=lambda kv: kv[1])[0]
        return sorted(self.sources.values(), key=lambda s: (-s.messages, s.ip))


def _plain_prolog(data: bytes) -> bool:
    """True when the document is ASCII-compatible and nothing but the XML declaration,
    comments and processing instructions come before the root element: no DTD, so no
    entity can be declared and expat has nothing to expand or fetch (XML 1.0 §2.8: a
    document type declaration may only appear there)."""
    head = data[:2]
    if head in (b"\xfe\xff", b"\xff\xfe") or b"\x00" in data[:64]:
        return False  # UTF-16/32: left to defusedxml
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    n = len(data)
    while pos < n:
        while pos < n and data[pos] in b" \t\r\n":
            pos += 1
        if data.startswith(b"<?", pos):
            end, step = data.find(b"?>", pos), 2
        elif data.startswith(b"<!--", pos):
            end, step = data.find(b"-->", pos + 4), 3
        elif data.startswith(b"<", pos) and not data.startswith(b"<!", pos):
            return True  # the root element
        else:
            return False  # a DOCTYPE, or anything unexpected: defusedxml decides
        if end < 0:
            return False
        pos = end + step
    return False


def _events(data: bytes) -> Iterator[tuple[str, Element]]:
    if _plain_prolog(data):
        # No DTD: the C parser (3x faster than defusedxml's pure-Python one on a 100k-record
        # report) meets no entity declaration; anything else goes through defusedxml,
        # which refuses DTDs, entities and external references.
        yield from _c_events(data)
        return
    yield from DET.iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True,
                             forbid_entities=True, forbid_external=True)


def _c_events(data: bytes, chunk: int = 1 << 16) -> Iterator[tuple[str, Element]]:
    from xml.etree.ElementTree import XMLPullParser

    parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
    for i in range(0, len(data), chunk):
        parser.feed(data[i : i + chunk])
        yield from parser.read_events()  # type: ignore[misc]
    parser.close()
    yield from parser.read_events()  # type: ignore[misc]


def parse_aggregate(data: bytes, *, max_records: int = MAX_RECORDS) -> ParsedReport:
    # The parser makes millions of short-lived elements, freed by reference counting (an
    # element has no parent link, so no cycles): with the cyclic collector on, its full
    # passes over them made a 100k-record report 10x slower than a 20k one.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_leniently(data, max_records)
    finally:
        if enabled:
            gc.enable()


def _parse_leniently(data: bytes, max_records: int) -> ParsedReport:
    try:
        return _parse(data, max_records)
    except ParseError as exc:
        recoded = _as_utf8(data)
        if recoded is None:
            raise AggregateError(f"broken XML ({exc})") from None
        try:
            return _parse(recoded, max_records)
        except ParseError as exc2:
            raise AggregateError(f"broken XML ({exc2})") from None


def _parse(data: bytes, max_records: int) -> ParsedReport:
    report = ParsedReport(type="dmarc-aggregate")
    rows = _Rows()
    root: Element | None = None
    seen_feedback = False
    depth = 0
    try:
        for event, el in _events(data):
            if event == "start":
                depth += 1
                if root is None:
                    root = el
                    if _local(el.tag) != "feedback":
                        raise AggregateError(f"not a DMARC aggregate report (the XML is <{_local(el.tag)[:40]}>)")
                    seen_feedback = True
                continue
            depth -= 1
            if depth != 1:
                continue  # only the children of <feedback> are handled, when complete
            name = _local(el.tag)
            if name == "record":
                if rows.rows >= max_records:
                    report.truncated = True
                else:
                    rows.add(el)
            elif name == "report_metadata":
                meta = _children(el)
                report.org_name = meta.get("org_name", "")[:200]
                report.report_id = meta.get("report_id", "")[:200]
                dr = _children(_child(el, "date_range"))
                report.begin = _epoch(dr.get("begin", ""))
                report.end = _epoch(dr.get("end", ""))
            elif name == "policy_published":
                pol = _children(el)
                report.domain = pol.get("domain", "").lower().rstrip(".")[:255]
                report.policy = {k: v[:100] for k, v in pol.items()
                                 if k in ("p", "sp", "np", "pct", "adkim", "aspf", "fo", "testing",
                                          "discovery_method") and v}
            if root is not None:
                root.clear()  # drop what is handled: memory stays flat however many records
    except defusedxml.DefusedXmlException:
        raise AggregateError("refused: the XML declares a DTD or entities, which a DMARC report never needs") from None
    if not seen_feedback:
        raise AggregateError("not a DMARC aggregate report")
    report.sources = rows.finish()
    report.messages = rows.messages
    report.dmarc_pass = rows.passed
    report.rows = rows.rows
    report.skipped = rows.skipped
    if not (report.report_id or report.org_name or rows.rows):
        raise AggregateError("not a DMARC aggregate report (no report_metadata and no records)")
    return report
