"""DNS messages on the wire, with no I/O: the query we send and what an answer means.

Shared by both transports (handlers/net/resolver.py, handlers/net/bulk.py) through
`Resolution` (handlers/net/core.py). Queries are hand-encoded and the common answers
(A, AAAA, TXT) hand-parsed because building and parsing dnspython Message objects cost
more CPU than the network round trip on loopback (blocklist runs ask thousands of names);
anything unusual falls back to dnspython's parser.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename

from handlers.net.results import DNSResult, Outcome

# Header after the ID (RFC 1035 §4.1.1): flags RD (0x0100) | AD (0x0020, RFC 6840 §5.7:
# ask a validating resolver to say whether the answer was validated); 1 question,
# 0 answers, 0 authority, 1 additional (the OPT record).
HEADER_TAIL = b"\x01\x20\x00\x01\x00\x00\x00\x00\x00\x01"
# OPT pseudo-RR (RFC 6891 §6.1.2): root owner, type 41, UDP payload 1232 (the DNS flag
# day 2020 size: no IP fragmentation on common paths), no extended flags, no options.
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"

# (rcode, flags, records, ttl) from the fast parser.
FastAnswer = tuple[int, int, tuple[Any, ...], int]


@lru_cache(maxsize=64)
def rdtype_code(text: str) -> dns.rdatatype.RdataType:
    """'TXT' -> 16 (dnspython's table, cached: asked per lookup)."""
    return dns.rdatatype.from_text(text)


@lru_cache(maxsize=64)
def rdtype_text(rdtype: int) -> str:
    """16 -> 'TXT' (cached like rdtype_code: asked per lookup)."""
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))


def norm_name(name: str) -> str:
    """The run cache's spelling of a name: lower case (RFC 4343), one final dot."""
    return name.rstrip(".").lower() + "."


def reverse_name(ip: str) -> str:
    """The PTR name of an address (RFC 1035 §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa)."""
    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)


def encode_question(name: str, rdtype: int) -> bytes:
    """Wire form of the question section (RFC 1035 §4.1.2: QNAME, QTYPE, QCLASS IN).

    Raises ValueError for names DNS can't carry (RFC 1035 §2.3.4: labels of 1-63
    octets, names of at most 255).
    """
    text = name.rstrip(".")
    labels = text.encode("ascii").split(b".") if text else []  # callers give IDNA/ASCII names
    for raw in labels:
        if not 0 < len(raw) < 64:
            raise ValueError(f"label {raw.decode('ascii')!r} is empty or longer than 63 octets")
    out = b"".join([_LEN_BYTES[len(raw)] + raw for raw in labels]) + b"\x00"
    if len(out) > 255:
        raise ValueError("name longer than 255 octets")
    return out + rdtype.to_bytes(2, "big") + b"\x00\x01"


_LEN_BYTES = [bytes((n,)) for n in range(64)]


def query_datagram(qid: int, question: bytes) -> bytes:
    """A whole query message: ID, header, the question, the OPT record (EDNS, RFC 6891)."""
    return qid.to_bytes(2, "big") + HEADER_TAIL + question + OPT


def answers(data: bytes, question: bytes, qid: bytes | None = None) -> bool:
    """`data` is a response (QR set) to this question (and ID, when given).

    The same ID with another question is a late answer to an earlier user of the ID,
    or a spoofing attempt (RFC 5452: match the ID and the question); never use it.
    """
    return (len(data) >= 12 and (qid is None or data[:2] == qid) and bool(data[2] & 0x80)
            and data[12 : 12 + len(question)].lower() == question.lower())


def truncated(data: bytes) -> bool:
    """TC set: the UDP answer is cut short (maybe mid-record); ask again over TCP
    (RFC 1035 §4.2.1, RFC 7766 §5)."""
    return bool(data[2] & 0x02)


@dataclass(frozen=True)
class AddressRecord:
    """A/AAAA rdata from the fast parser (same attribute as dnspython's)."""

    address: str


@dataclass(frozen=True)
class TXTRecord:
    """TXT rdata from the fast parser (same attribute as dnspython's)."""

    strings: tuple[bytes, ...]


_FAST_TYPES = {1: 4, 28: 16, 16: 0}  # A, AAAA, TXT -> fixed rdata length (0 = variable)


def _skip_name(data: bytes, off: int) -> int:
    while True:
        length = data[off]
        if length == 0:
            return off + 1
        if length & 0xC0 == 0xC0:  # compression pointer ends the name (RFC 1035 §4.1.4)
            return off + 2
        off += 1 + length


def _txt_strings(rdata: bytes) -> tuple[bytes, ...] | None:
    """RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and text."""
    strings, i, size = [], 0, len(rdata)
    while i < size:
        n = rdata[i]
        if i + 1 + n > size:
            return None
        strings.append(rdata[i + 1 : i + 1 + n])
        i += 1 + n
    return tuple(strings)


def fast_parse(data: bytes, qlen: int, rdtype: int) -> FastAnswer | None:
    """(rcode, flags, records, ttl) for A/AAAA/TXT answers; None -> use dnspython.

    The blocklist and SPF hot path asks these three types thousands of times per
    run; dnspython's general parser cost more CPU than the loopback round trip.
    Anything unusual (other types, malformed data) falls back to dnspython.
    """
    size = _FAST_TYPES.get(rdtype)
    if size is None:
        return None
    flags = int.from_bytes(data[2:4], "big")
    ancount = int.from_bytes(data[6:8], "big")
    off = 12 + qlen
    records: list[Any] = []
    ttl = 0
    try:
        for _ in range(ancount):
            off = _skip_name(data, off)
            rtype, rclass, rttl, rdlen = struct.unpack_from("!HHIH", data, off)
            off += 10
            rdata = data[off : off + rdlen]
            if len(rdata) != rdlen:
                return None
            off += rdlen
            if rtype != rdtype or rclass != 1:
                continue  # CNAME chain links and the like
            if size:
                if rdlen != size:
                    return None
                records.append(AddressRecord(socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, rdata)))
            else:
                strings = _txt_strings(rdata)
                if strings is None:
                    return None
                records.append(TXTRecord(strings))
            ttl = rttl
    except (IndexError, struct.error):
        return None
    return flags & 0xF, flags, tuple(records), ttl


def parse_answer(data: bytes, qlen: int, rdtype: int) -> FastAnswer | dns.message.Message:
    """The fast parse when it applies, else dnspython's (raises dns.exception.DNSException
    on a malformed message)."""
    fast = fast_parse(data, qlen, rdtype)
    if fast is not None:
        return fast
    return dns.message.from_wire(data, ignore_trailing=True)


def to_result(
    name: str, tname: str, rdtype: int, parsed: FastAnswer | dns.message.Message, server: str
) -> DNSResult:
    """The outcome a parsed answer stands for."""
    if isinstance(parsed, tuple):
        return _from_fast(name, tname, parsed, server)
    return _from_message(name, tname, rdtype, parsed, server)


def _from_fast(name: str, tname: str, parsed: FastAnswer, server: str) -> DNSResult:
    rcode, flags, records, ttl = parsed
    ad = bool(flags & dns.flags.AD)
    if rcode == dns.rcode.NOERROR:
        if records:
            return DNSResult(name, tname, Outcome.ANSWER, records, ttl=ttl, authenticated=ad, server=server)
        if _lame(flags):
            return _lame_result(name, tname, server)
        return DNSResult(name, tname, Outcome.NODATA, authenticated=ad, server=server)
    return _rcode_result(name, tname, rcode, ad, server)


def _lame(flags: int) -> bool:
    """An empty NOERROR from a server that is neither authoritative (AA) nor recursive (RA).

    That is a referral or a lame server's answer, not "no such record" (RFC 2308 §2.2
    tells NODATA from a referral by the NS records a referral carries): taking it as
    NODATA would turn "we were not told" into "it does not exist" (SPEC: never a
    verdict from an answer not received).
    """
    return not flags & (dns.flags.AA | dns.flags.RA)


def _lame_result(name: str, tname: str, server: str) -> DNSResult:
    return DNSResult(name, tname, Outcome.ERROR, server=server,
                     error="lame answer: neither authoritative nor recursive (a referral?)")


def _rcode_result(name: str, tname: str, rcode: int, ad: bool, server: str) -> DNSResult:
    if rcode == dns.rcode.NXDOMAIN:
        return DNSResult(name, tname, Outcome.NXDOMAIN, authenticated=ad, server=server)
    if rcode == dns.rcode.SERVFAIL:
        return DNSResult(name, tname, Outcome.SERVFAIL, error="SERVFAIL", server=server)
    if rcode == dns.rcode.REFUSED:
        return DNSResult(name, tname, Outcome.REFUSED, error="REFUSED", server=server)
    return DNSResult(name, tname, Outcome.ERROR, error=dns.rcode.to_text(dns.rcode.Rcode.make(rcode)), server=server)


def _from_message(name: str, tname: str, rdtype: int, resp: dns.message.Message, server: str) -> DNSResult:
    rcode = resp.rcode()
    ad = bool(resp.flags & dns.flags.AD)
    if rcode != dns.rcode.NOERROR:
        return _rcode_result(name, tname, rcode, ad, server)
    records: list[Any] = []
    ttl = 0
    for rrset in resp.answer:
        # Follow CNAME chains implicitly (RFC 1034 §3.6.2): keep every rrset of the asked type.
        if rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN:
            records.extend(rrset)
            ttl = rrset.ttl
    if not records:
        if _lame(int(resp.flags)):
            return _lame_result(name, tname, server)
        return DNSResult(name, tname, Outcome.NODATA, authenticated=ad, server=server)
    return DNSResult(name, tname, Outcome.ANSWER, tuple(records), ttl=ttl, authenticated=ad, server=server)

