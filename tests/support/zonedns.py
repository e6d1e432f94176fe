"""A small in-process authoritative DNS server for tests (real UDP + TCP sockets).

It serves a dict of records on 127.0.0.1 and an ephemeral port, from a
background thread, so code under test talks to it through the normal DNS
layer exactly as it would to NSD. It is the laptop fallback for the fixture
DNS world and the server behind the RFC 7208 conformance suite.

    records = {
        ("example.com", "TXT"): ["v=spf1 mx -all"],            # long text is split into 255-byte strings
        ("example.com", "MX"): [(10, "mx.example.com")],        # or "10 mx.example.com"
        ("mx.example.com", "A"): ["192.0.2.1"],
        ("slow.example.com", "TXT"): "TIMEOUT",                # never answer
        ("broken.example.com", "*"): "SERVFAIL",               # any type not listed: SERVFAIL
        ("alias.example.com", "CNAME"): ["example.com"],
    }
    with serve_records(records) as (host, port):
        resolver = Resolver(nameservers=[(host, port)], timeout=0.3)

Semantics:
- names are case-insensitive; a trailing dot is optional;
- a name that is not listed (and is not an empty non-terminal above a listed
  name) is NXDOMAIN; a listed name without the asked type is NODATA;
- a value may be a list of records or one of "TIMEOUT" (no answer at all),
  "SERVFAIL", "REFUSED"; type "*" gives the behaviour for every type not listed;
  type "**" gives it for the name and every name below it (a whole zone that
  is broken or lame), overriding records there;
- CNAMEs are chased inside the served data (loops stop), like an authoritative
  server answering for all of its zones;
- UDP answers larger than the client's EDNS size (512 without EDNS) are
  truncated with TC set, so clients retry over TCP.

TXT/SPF values: a str (UTF-8 encoded, split into 255-byte strings), bytes, a
list/tuple of str/bytes (one record made of several strings; an empty list is
served as one empty string, since DNS cannot carry a TXT without strings), or
a dns.rdata.Rdata. MX values: (preference, exchange) or "pref exchange". Other
types: presentation text ("192.0.2.1", "ns1.example.com.") or Rdata.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.TXT
import dns.rrset
import dns.zone

SPECIAL = ("TIMEOUT", "SERVFAIL", "REFUSED")
RecordValue = str | bytes | Sequence[str | bytes] | tuple[int, str] | dns.rdata.Rdata
Records = Mapping[tuple[str, str], Sequence[Any] | str]

_IN = dns.rdataclass.IN
_TTL = 60


def _name(text: str) -> dns.name.Name:
    if isinstance(text, dns.name.Name):
        return text
    text = text.strip()
    if text in ("", "."):
        return dns.name.root
    return dns.name.from_text(text if text.endswith(".") else text + ".")


def _chunks(data: bytes) -> list[bytes]:
    if not data:
        return [b""]
    return [data[i : i + 255] for i in range(0, len(data), 255)]


def _as_bytes(v: str | bytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode("utf-8")


def make_rdata(rdtype: str, value: Any) -> dns.rdata.Rdata:
    """Build one Rdata from a friendly value (see the module doc)."""
    if isinstance(value, dns.rdata.Rdata):
        return value
    t = dns.rdatatype.from_text(rdtype)
    if t in (dns.rdatatype.TXT, dns.rdatatype.SPF):
        cls = dns.rdtypes.ANY.TXT.TXT if t == dns.rdatatype.TXT else dns.rdata.get_rdata_class(_IN, t)
        if isinstance(value, (str, bytes)):
            strings = _chunks(_as_bytes(value))
        else:
            strings = [c for s in value for c in _chunks(_as_bytes(s))] or [b""]
        return cls(_IN, t, strings)
    if t == dns.rdatatype.MX:
        if isinstance(value, str):
            pref_text, _, exch = value.strip().partition(" ")
            pref, exchange = int(pref_text), exch.strip()
        else:
            pref, exchange = int(value[0]), str(value[1] or "")
        return dns.rdtypes.ANY.MX.MX(_IN, t, pref, _name(exchange))
    if t in (dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS):
        cls = dns.rdata.get_rdata_class(_IN, t)
        return cls(_IN, t, _name(str(value)))  # type: ignore[call-arg]
    return dns.rdata.from_text(_IN, t, str(value), origin=dns.name.root)


class _Zone:
    """The served data: name -> {type: [Rdata] | special}."""

    def __init__(self, records: Records) -> None:
        self.nodes: dict[dns.name.Name, dict[int | str, list[dns.rdata.Rdata] | str]] = {}
        self.subtrees: dict[dns.name.Name, str] = {}
        for (name, rdtype), values in records.items():
            if rdtype == "**":
                if not isinstance(values, str) or values.upper() not in SPECIAL:
                    raise ValueError(f"type '**' takes one of {SPECIAL}, got {values!r}")
                self.subtrees[_name(name)] = values.upper()
                continue
            node = self.nodes.setdefault(_name(name), {})
            key: int | str = "*" if rdtype == "*" else int(dns.rdatatype.from_text(rdtype))
            if isinstance(values, str):
                if values.upper() not in SPECIAL:
                    raise ValueError(f"unknown special value {values!r} for {name} {rdtype}")
                node[key] = values.upper()
            else:
                node[key] = [make_rdata(rdtype, v) for v in values]
        # Empty non-terminals exist (NODATA), everything else not listed is NXDOMAIN.
        self.ents: set[dns.name.Name] = set()
        for n in self.nodes:
            parent = n
            while len(parent) > 1:
                parent = parent.parent()
                if parent in self.nodes:
                    break
                self.ents.add(parent)


class ZoneServer:
    """An authoritative test server on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, records: Records | None = None, host: str = "127.0.0.1", delay: float = 0.0) -> None:
        self.host = host
        self.port = 0
        self.delay = delay  # seconds added before every answer (e.g. benchmarks)
        self._zone = _Zone(records or {})
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str, str]] = []  # (name lower-case, type, "udp"/"tcp")
        # How many questions were being answered at once, at most: proves concurrency
        # without timing the client (threads answer in parallel, each holding `delay`).
        self.in_flight = 0
        self.peak_in_flight = 0
        self._udp: socketserver.ThreadingUDPServer | None = None
        self._tcp: _TCPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- data --------------------------------------------------------------
    def set_records(self, records: Records) -> None:
        """Replace everything served (atomically for concurrent queries)."""
        zone = _Zone(records)
        with self._lock:
            self._zone = zone

    def clear_log(self) -> None:
        with self._lock:
            self.queries.clear()
            self.peak_in_flight = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> ZoneServer:
        server = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = server.answer(data, "udp")
                if reply is not None:
                    try:
                        sock.sendto(reply, self.client_address)
                    except OSError:
                        pass  # stopped while this answer was held back (`delay`)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                try:
                    while True:
                        head = _recv_exact(conn, 2)
                        if head is None:
                            return
                        data = _recv_exact(conn, int.from_bytes(head, "big"))
                        if data is None:
                            return
                        reply = server.answer(data, "tcp")
                        if reply is None:
                            return  # TIMEOUT: keep silent (the client gives up)
                        conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    return

        for _ in range(50):
            udp = socketserver.ThreadingUDPServer((self.host, 0), UDPHandler)
            port = udp.server_address[1]
            try:
                tcp = _TCPServer((self.host, port), TCPHandler)
            except OSError:
                udp.server_close()
                continue
            break
        else:  # pragma: no cover
            raise RuntimeError("no free port for the test DNS server")
        udp.daemon_threads = True
        tcp.daemon_threads = True
        self._udp, self._tcp, self.port = udp, tcp, int(port)
        for srv in (udp, tcp):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in (self._udp, self._tcp):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        self._udp = self._tcp = None

    def __enter__(self) -> ZoneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering -----------------------------------------------------------
    def answer(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        q = query.question[0]
        with self._lock:
            zone = self._zone
            self.queries.append((q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype), transport))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
        finally:
            with self._lock:
                self.in_flight -= 1
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        resp.flags &= ~dns.flags.RA
        outcome = self._fill(zone, resp, q.name, q.rdtype)
        if outcome == "TIMEOUT":
            return None
        if outcome == "SERVFAIL":
            resp.set_rcode(dns.rcode.SERVFAIL)
            resp.answer.clear()
        elif outcome == "REFUSED":
            resp.set_rcode(dns.rcode.REFUSED)
            resp.answer.clear()
        elif outcome == "NXDOMAIN":
            resp.set_rcode(dns.rcode.NXDOMAIN)
        limit = 65535
        if transport == "udp":
            limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            resp.answer.clear()
            resp.flags |= dns.flags.TC
            return resp.to_wire()

    @staticmethod
    def _fill(zone: _Zone, resp: dns.message.Message, qname: dns.name.Name, qtype: int) -> str:
        name = qname
        seen: set[dns.name.Name] = set()
        for _ in range(16):
            seen.add(name)
            if zone.subtrees:
                for owner, special in zone.subtrees.items():
                    if name.is_subdomain(owner):
                        return special
            node = zone.nodes.get(name)
            if node is None:
                return "NOERROR" if name in zone.ents else "NXDOMAIN"
            values = node.get(qtype)
            if values is None and qtype != dns.rdatatype.CNAME:
                cname = node.get(dns.rdatatype.CNAME)
                if isinstance(cname, list) and cname:
                    resp.answer.append(dns.rrset.from_rdata_list(name, _TTL, cname[:1]))
                    target = cname[0].target  # type: ignore[attr-defined]
                    if target in seen:
                        return "NOERROR"  # a loop: stop where a real server would
                    name = target
                    continue
            if values is None:
                values = node.get("*")
            if values is None:
                return "NOERROR"  # NODATA
            if isinstance(values, str):
                return values
            if values:
                resp.answer.append(dns.rrset.from_rdata_list(name, _TTL, values))
            return "NOERROR"
        return "NOERROR"


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


@contextlib.contextmanager
def serve_records(records: Records, delay: float = 0.0) -> Iterator[tuple[str, int]]:
    """Serve `records` on 127.0.0.1:<ephemeral>; yields (host, port)."""
    with ZoneServer(records, delay=delay) as server:
        yield server.address


# ---------------------------------------------------------------------------
# Loaders


def load_zone_file(path: str | Path, origin: str | None = None) -> dict[tuple[str, str], Any]:
    """Records of a master-format zone file (origin defaults to the file name without `.zone`).

    Raises dns.exception.DNSException when the file is not valid zone data.
    """
    p = Path(path)
    org = origin or p.name.removesuffix(".zone")
    zone = dns.zone.from_file(str(p), origin=_name(org), relativize=False, check_origin=False)
    out: dict[tuple[str, str], Any] = {}
    for name, rdataset in zone.iterate_rdatasets():
        key = (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
        out.setdefault(key, []).extend(rdataset)
    return out


def load_zone_dir(
    path: str | Path, pattern: str = "*.zone", broken: str = "SERVFAIL"
) -> dict[tuple[str, str], Any]:
    """All zone files of a directory (e.g. tests/fixtures/zones) merged into one records dict.

    A file that is not valid zone data is served the way a resolver reports a
    zone its authoritative server refused to load: every name in it answers
    `broken` ("SERVFAIL" by default, or "REFUSED" / "TIMEOUT").
    """
    out: dict[tuple[str, str], Any] = {}
    for f in sorted(Path(path).glob(pattern)):
        try:
            records = load_zone_file(f)
        except (dns.exception.DNSException, ValueError):
            out[(f.name.removesuffix(".zone"), "**")] = broken
            continue
        for key, values in records.items():
            out.setdefault(key, []).extend(values)
    return out


def records_from_spf_suite(zonedata: Mapping[str, Iterable[Any]]) -> dict[tuple[str, str], Any]:
    """Translate the `zonedata` of an openspf/RFC 7208 test-suite scenario.

    Follows the suite's reference driver: type SPF records are also served as
    TXT unless the name lists TXT records of its own; `TXT: NONE` means no TXT;
    a bare `TIMEOUT` entry makes every type not answered by records listed
    before it time out (including the TXT copies of SPF records, which the
    driver appends after it).
    """
    out: dict[tuple[str, str], Any] = {}
    for name, entries in zonedata.items():
        by_type: dict[str, list[Any]] = {}
        explicit_txt = False
        generated: list[Any] = []
        timeout = False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                break
            for rtype, value in entry.items():
                rtype = str(rtype).upper()
                if rtype == "TXT":
                    explicit_txt = True
                elif rtype == "SPF":
                    generated.append(value)
                if value == "NONE":
                    by_type.setdefault(rtype, [])
                    continue
                by_type.setdefault(rtype, []).append(value)
        if not explicit_txt and generated and not timeout:
            by_type.setdefault("TXT", []).extend(generated)
        for rtype, values in by_type.items():
            if values:
                out[(name, rtype)] = values
        if timeout:
            out[(name, "*")] = "TIMEOUT"
    return out
