"""One async DNS layer for every check.

Why not dns.asyncresolver directly: its exceptions fold SERVFAIL, REFUSED and
timeouts into one `NoNameservers`, and a check must tell "the name does not
exist" from "we got no answer" (SPEC: never a verdict from an answer not
received). So we send queries at the message level and map each response to an
explicit `Outcome`.

Per run (one `Resolver` instance per audit / command):
- a cache keyed by (name, type): concurrent askers share one in-flight query, so
  no name is asked twice;
- a semaphore bounding queries in flight;
- an optional overall deadline: once passed, every query is `TIMEOUT` at once.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import os
import re
import socket
import struct
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename

DEFAULT_TIMEOUT = 3.0
DEFAULT_CONCURRENCY = 96
# UDP sockets kept open per (event loop, nameserver). Several, so queries leave
# from several source ports (spoofing resistance); each carries up to 64k
# in-flight queries told apart by their random 16-bit IDs.
SOCKETS_PER_SERVER = 4
REAP_INTERVAL = 0.02  # how often overdue UDP queries are timed out
# Per-audit DNS query budget (issue 8, abuse): a domain audit asks ~300 names; a hostile
# zone (SPF include fan-out, thousands of MX hosts) must not make one audit ask without end.
DEFAULT_MAX_QUERIES = 2000
AUTO_BUDGET = -1  # max_queries default: DEFAULT_MAX_QUERIES for an audit's resolver (one with a deadline)


class Outcome(enum.Enum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    TIMEOUT = "timeout"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    ERROR = "error"  # malformed response, network error, other rcode
    INVALID = "invalid"  # the name itself can't be asked (label > 63, ...)
    BUDGET = "budget"  # not asked: the audit's DNS query budget was spent
    SKIPPED = "skipped"  # not asked: its answer could no longer change the verdict (error says why)


@dataclass(frozen=True)
class DNSResult:
    name: str
    rdtype: str
    outcome: Outcome
    records: tuple[Any, ...] = ()
    ttl: int = 0
    error: str = ""
    authenticated: bool = False  # AD bit from a validating resolver
    server: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ANSWER

    @property
    def definitive(self) -> bool:
        """True when the server gave a real answer (records, NXDOMAIN or NODATA)."""
        return self.outcome in (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def void(self) -> bool:
        """RFC 7208 §4.6.4 'void lookup': NXDOMAIN or an empty answer."""
        return self.outcome in (Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def failed(self) -> bool:
        return not self.definitive

    def describe(self) -> str:
        """Short human text for a failed lookup (used in `unknown` findings)."""
        base = {
            Outcome.TIMEOUT: "no answer (timeout)",
            Outcome.SERVFAIL: "the resolver answered SERVFAIL",
            Outcome.REFUSED: "the resolver refused the query",
            Outcome.ERROR: "the lookup failed",
            Outcome.INVALID: "the name is not valid in DNS",
            Outcome.BUDGET: "not asked: this check's DNS query budget is spent",
            Outcome.SKIPPED: "not asked",
            Outcome.NXDOMAIN: "the name does not exist",
            Outcome.NODATA: "no record of that type",
            Outcome.ANSWER: "answered",
        }[self.outcome]
        if not self.error or self.definitive or self.error.upper() in base.upper():
            return base  # "the resolver answered SERVFAIL", not "...SERVFAIL: SERVFAIL"
        return f"{base}: {self.error}"

    # Convenience views -------------------------------------------------
    @property
    def texts(self) -> list[str]:
        """TXT records with their strings joined (RFC 7208 §3.3), as text."""
        return [b.decode("utf-8", "replace") for b in self.text_bytes]

    @property
    def text_bytes(self) -> list[bytes]:
        out = []
        for r in self.records:
            strings = getattr(r, "strings", None)
            if strings is not None:
                out.append(b"".join(strings))
        return out

    @property
    def addresses(self) -> list[str]:
        return [r.address for r in self.records if hasattr(r, "address")]

    @property
    def targets(self) -> list[str]:
        """PTR / CNAME / NS targets as text without the trailing dot."""
        return [r.target.to_text(omit_final_dot=True) for r in self.records if hasattr(r, "target")]

    @property
    def mx(self) -> list[tuple[int, str]]:
        return sorted(
            (r.preference, r.exchange.to_text(omit_final_dot=True)) for r in self.records if hasattr(r, "exchange")
        )


def parse_nameserver(spec: str) -> tuple[str, int]:
    """'127.0.0.1:5353', '[::1]:53', '::1', 'host' -> (host, port)."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty nameserver")
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        p = rest[1:] if rest.startswith(":") else "53"
    elif spec.count(":") == 1:
        host, _, p = spec.partition(":")
    else:
        host, p = spec, "53"
    if not p.isdigit() or not 0 < int(p) < 65536:
        raise ValueError(f"bad nameserver port {p!r} in {spec!r} (use HOST or HOST:PORT)")
    port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = _resolve_nameserver_host(host)
    return host, port


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _resolve_nameserver_host(host: str) -> str:
    """A nameserver given by name (the operator's own setting, e.g. --nameserver dns.example.net):
    its first address, from the system resolver."""
    name = host.rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"nameserver {host!r} is neither an IP address nor a host name")
    try:
        infos = socket.getaddrinfo(name, 53, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"nameserver {host!r} does not resolve ({exc})") from exc
    return str(infos[0][4][0])


def nameservers_from_env() -> list[tuple[str, int]]:
    raw = os.environ.get("MAILCHECK_NAMESERVERS", "")
    return [parse_nameserver(p) for p in raw.split(",") if p.strip()]


def system_nameservers() -> list[tuple[str, int]]:
    try:
        r = dns.resolver.Resolver(configure=True)
        return [(str(ns), 53) for ns in r.nameservers]
    except Exception:  # no /etc/resolv.conf: fall back to loopback
        return [("127.0.0.1", 53)]


def reverse_name(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)


@dataclass(frozen=True)
class GroupLimit:
    """Manners towards one group of names (one blocklist): in flight at once, average
    queries per second, and the burst allowed before the rate applies."""

    in_flight: int = 32
    qps: float = 200.0
    burst: int = 32


@dataclass
class DNSStats:
    asked: int = 0  # packets sent, retries included
    answered: int = 0  # definitive answers
    failed: int = 0  # attempts without a definitive answer
    lookups: int = 0  # distinct (name, type) lookups performed
    cache_hits: int = 0  # asks served from this run's cache (or its in-flight query)

    def as_dict(self) -> dict[str, int]:
        return {"asked": self.asked, "answered": self.answered, "failed": self.failed,
                "lookups": self.lookups, "cache_hits": self.cache_hits}


class Slots:
    """The resolver's bound on queries in flight, usable from coroutines and callbacks.

    Like asyncio.Semaphore (FIFO hand-over to waiting coroutines), plus a
    non-blocking `try_acquire` and release listeners, so the callback-driven
    bulk path (handlers/dns_bulk.py) shares the same bound as `query()`.
    """

    def __init__(self, value: int) -> None:
        self.free = value
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._listeners: list[Callable[[], None]] = []

    def try_acquire(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()  # cancelled waiters
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over directly
                return
        self.free += 1
        for listener in tuple(self._listeners):
            listener()

    def listen(self, callback: Callable[[], None]) -> None:
        if callback not in self._listeners:
            self._listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)


@dataclass
class Resolver:
    """A per-run resolver. Create one per audit; share it between the audit's checks."""

    nameservers: Sequence[tuple[str, int]] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    deadline: float | None = None  # seconds from creation; None = no overall limit
    stats: DNSStats = field(default_factory=DNSStats)
    # Distinct lookups this resolver may send; beyond it a lookup is not sent and
    # returns Outcome.BUDGET (non-definitive -> `unknown`). None = no limit. The
    # default gives an audit's resolver (one with a deadline) DEFAULT_MAX_QUERIES
    # and leaves long-lived shared resolvers (digest runs, benchmarks) unlimited.
    max_queries: int | None = AUTO_BUDGET

    def __post_init__(self) -> None:
        if not self.nameservers:
            self.nameservers = nameservers_from_env() or system_nameservers()
        if self.max_queries == AUTO_BUDGET:
            self.max_queries = DEFAULT_MAX_QUERIES if self.deadline is not None else None
        self.over_budget = 0  # lookups refused by the budget
        # Dead-resolver breaker: once a whole timeout has passed since the first packet
        # without hearing anything back, later lookups fail at once instead of each
        # waiting out its own timeout (keeps "dead resolver -> exit 3" within ~1x timeout).
        self._first_sent: float | None = None
        self._heard = False
        self._cache: dict[tuple[str, int], asyncio.Future[DNSResult]] = {}
        self._slots: Slots | None = None
        self._bulks: set[Any] = set()  # query_many runs in progress (handlers.dns_bulk.Bulk)
        self._t0 = time.monotonic()

    # ------------------------------------------------------------------
    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() - self._t0)

    def ensure_budget(self, queries: int) -> None:
        """Raise the query budget to at least `queries` (a bulk check of many targets)."""
        if self.max_queries is not None and self.max_queries < queries:
            self.max_queries = queries

    def cached(self, name: str, rdtype: str) -> DNSResult | None:
        fut = self._cache.get((_norm(name), _rdtype(rdtype)))
        if fut is not None and fut.done() and not fut.cancelled():
            return fut.result()
        return None

    async def query(self, name: str, rdtype: str) -> DNSResult:
        """Ask (name, type) once per run; always returns a DNSResult, never raises."""
        rdt = _rdtype(rdtype)
        key = (_norm(name), rdt)
        fut = self._cache.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._cache[key] = fut
            self.stats.lookups += 1
            try:
                result = await self._ask(key[0], rdt)
            except BaseException:  # our caller was cancelled: let later askers retry
                if self._cache.get(key) is fut:
                    del self._cache[key]
                if not fut.done():
                    # Other askers sharing this lookup were not cancelled: they get a
                    # non-definitive answer, never our CancelledError.
                    fut.set_result(DNSResult(key[0], _rdtype_text(rdt), Outcome.TIMEOUT,
                                             error="not asked: the check that asked it was cancelled"))
                raise
            fut.set_result(result)
            return result
        self.stats.cache_hits += 1
        return await asyncio.shield(fut)

    async def txt(self, name: str) -> DNSResult:
        return await self.query(name, "TXT")

    async def ptr(self, ip: str) -> DNSResult:
        return await self.query(reverse_name(ip), "PTR")

    async def addresses(self, name: str, families: Iterable[str] = ("A", "AAAA")) -> list[DNSResult]:
        return list(await asyncio.gather(*(self.query(name, t) for t in families)))

    # ------------------------------------------------------------------
    async def _ask(self, name: str, rdtype: dns.rdatatype.RdataType) -> DNSResult:
        tname = dns.rdatatype.to_text(rdtype)
        try:
            question = encode_question(name, rdtype)
        except (ValueError, UnicodeError) as exc:
            return DNSResult(name, tname, Outcome.INVALID, error=str(exc))
        if self.max_queries is not None and self.stats.lookups > self.max_queries:
            self.over_budget += 1
            return DNSResult(
                name, tname, Outcome.BUDGET,
                error=f"query budget of {self.max_queries} lookups per check spent; not asked",
            )
        slots = self.slots()
        await slots.acquire()
        try:
            return await self._send(name, rdtype, tname, question)
        finally:
            slots.release()

    def slots(self) -> Slots:
        if self._slots is None:
            self._slots = Slots(self.concurrency)
        return self._slots

    async def query_many(
        self,
        requests: Iterable[tuple[str, str, Hashable]],
        limits: Mapping[Hashable, GroupLimit] | None = None,
        on_result: Callable[[int, DNSResult], None] | None = None,
    ) -> list[DNSResult]:
        """Many lookups at once: [(name, type, group)] -> results in the same order.

        Same answers, cache, stats, budget and deadline as `query()`, driven by
        callbacks instead of a task per lookup (a blocklist run asks thousands of
        names; the per-task cost set the pace). `limits` caps each group (e.g. a
        blocklist zone): queries in flight and queries per second. `on_result(i,
        result)` is called as each request's answer arrives.
        """
        from handlers.dns_bulk import Bulk

        bulk = Bulk(self, limits or {})
        self._bulks.add(bulk)
        try:
            return await bulk.run(requests, on_result)
        finally:
            self._bulks.discard(bulk)

    def skip_group(self, group: Hashable, reason: str) -> int:
        """Stop asking the names of `group` that query_many has not sent yet (nor been
        given yet): they end as Outcome.SKIPPED with `reason`. Used when a list fails
        its own test points: its answers can no longer change a verdict, and a broken
        or refusing list should not get the rest of the run's queries."""
        return sum(b.skip(group, reason) for b in tuple(self._bulks))

    def silent(self, now: float) -> bool:
        """The dead-resolver breaker: True once a whole timeout has passed since our first
        packet and no nameserver of ours has sent anything back. A server that answers,
        however slowly (even after a lookup gave up on it), is not dead."""
        if self._heard or self._first_sent is None or now - self._first_sent < self.timeout:
            return False
        per_loop = _MUXES.get(asyncio.get_running_loop()) or {}
        for server in self.nameservers:
            for mux in per_loop.get((str(server[0]), int(server[1])), ()):
                if mux.heard_at is not None and mux.heard_at >= self._first_sent:
                    self._heard = True
                    return False
        return True

    def plan(self) -> tuple[list[tuple[str, int]], bool]:
        """(attempts, single): one server is asked twice (a second query only after a
        failed answer, never after silence); several servers once each."""
        servers = [(str(h), int(p)) for h, p in self.nameservers]
        single = len(servers) == 1
        return (servers * 2 if single else servers), single

    async def _send(self, name: str, rdtype: dns.rdatatype.RdataType, tname: str, question: bytes) -> DNSResult:
        # `timeout` is how long the user waits for one answer: a query's answer is
        # accepted until `timeout` after it was sent. One server: the datagram is sent
        # again (same ID) at half the timeout in case one of the two was lost; an answer
        # to either counts. Several servers: each is asked in turn, for `timeout` each.
        attempts, single = self.plan()
        last = DNSResult(name, tname, Outcome.TIMEOUT, error="no nameserver answered")
        started: float | None = None  # the first send to the single server
        for host, port in attempts:
            rem = self.remaining()
            if rem is not None and rem <= 0:
                return DNSResult(name, tname, Outcome.TIMEOUT, error="overall deadline reached")
            now = time.monotonic()
            if self._first_sent is None:
                self._first_sent = now
            elif self.silent(now):
                return DNSResult(name, tname, Outcome.TIMEOUT,
                                 error=f"no nameserver has answered anything in {self.timeout:g}s; not asked")
            resend: float | None = None
            if not single:
                wait = self.timeout
            elif started is None:
                started, wait, resend = now, self.timeout, self.timeout / 2
            else:  # asking again after a failed answer: within the same timeout
                wait = self.timeout - (now - started)
                if wait <= 0:
                    return last
            wait = wait if rem is None else min(wait, rem)
            self.stats.asked += 1
            try:
                resp = await _udp_query(name, question, rdtype, host, port, wait, resend, self._count_resend)
            except dns.exception.Timeout:
                last = DNSResult(name, tname, Outcome.TIMEOUT, error=f"{host}:{port} did not answer", server=host)
                self.stats.failed += 1
                if single:
                    return last  # the whole timeout has passed since the first send
                continue
            except dns.exception.DNSException as exc:  # a response came, but not a usable one
                self._heard = True
                last = DNSResult(name, tname, Outcome.ERROR, error=f"{host}:{port}: {exc}", server=host)
                self.stats.failed += 1
                continue
            except (OSError, ValueError, EOFError) as exc:
                last = DNSResult(name, tname, Outcome.ERROR, error=f"{host}:{port}: {exc}", server=host)
                self.stats.failed += 1
                continue
            self._heard = True
            if isinstance(resp, tuple):
                result = _from_fast(name, tname, resp, host)
            else:
                result = _from_response(name, tname, rdtype, resp, host)
            if result.definitive:
                self.stats.answered += 1
                return result
            self.stats.failed += 1
            last = result
        return last

    def _count_resend(self) -> None:
        self.stats.asked += 1


def _deliver(
    waiter: asyncio.Future[bytes] | Callable[[bytes | BaseException], None],
    outcome: bytes | BaseException,
    *,
    now: bool = False,
) -> None:
    """Hand a datagram or an error to a query's future or callback.

    A callback runs at once only for a received datagram (`now`); timeouts and
    socket errors reach it on the next loop pass, because its retry may send on
    the same socket and fail synchronously again (recursion without end)."""
    if isinstance(waiter, asyncio.Future):
        if waiter.done():
            return
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
            waiter.exception()  # retrieved: the waiter may already have timed out
        else:
            waiter.set_result(outcome)
    elif now:
        waiter(outcome)
    else:
        asyncio.get_running_loop().call_soon(waiter, outcome)


class _UDPMux:
    """One connected UDP socket, many concurrent queries demultiplexed by message ID.

    dnspython's asyncquery.udp opens a socket per query; under blocklist load
    that costs more than the queries themselves. A plain non-blocking socket with
    a reader that drains every datagram waiting (asyncio's datagram transport
    reads one per pass of the event loop, so a burst of answers waited in line
    behind each other's loop passes).

    An ID is reused as soon as its query is over, so every operation on an
    entry checks it is still *that* query's entry: a finished query must never
    forget (or be answered through) the entry of a newer query that drew the
    same ID before the older one's task resumed. That race once left a query
    waiting forever with no timer to end it.

    No strong reference to the event loop is kept (the per-loop pool is keyed
    weakly by the loop).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # qid -> (future or callback, question section): the question identifies the query.
        # A callback (the bulk path) is called with the datagram or an exception.
        self.pending: dict[int, tuple[asyncio.Future[bytes] | Callable[[bytes | BaseException], None], bytes]] = {}
        self.deadlines: dict[int, float] = {}
        # qid -> (when, datagram, on_resend): a retransmission of a query still waiting.
        self.resends: dict[int, tuple[float, bytes, Callable[[], None] | None]] = {}
        self._reaper: asyncio.TimerHandle | None = None
        self._out: deque[bytes] = deque()  # datagrams waiting for room in the send buffer
        # When a response last arrived here (time.monotonic), whoever it was for: a late
        # answer to a query that gave up still shows the server is alive (the breaker).
        self.heard_at: float | None = None

    @classmethod
    def open(cls, host: str, port: int) -> _UDPMux:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((host, port))  # UDP: no packet sent; only answers from there arrive
            mux = cls(sock)
            asyncio.get_running_loop().add_reader(sock.fileno(), mux._readable)
        except BaseException:
            sock.close()
            raise
        return mux

    def send(self, data: bytes) -> None:
        """Send one query; failures reach the registered queries (never raises)."""
        if self._out:
            self._out.append(data)
            return
        try:
            self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            self._out.append(data)
            asyncio.get_running_loop().add_writer(self.sock.fileno(), self._writable)
        except OSError as exc:  # e.g. an ICMP error from an earlier packet
            asyncio.get_running_loop().call_soon(self._fail_all, exc)

    def _writable(self) -> None:
        while self._out:
            try:
                self.sock.send(self._out[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._out.clear()
                self._fail_all(exc)
                break
            self._out.popleft()
        asyncio.get_running_loop().remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        for _ in range(256):
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP port unreachable on a connected socket: nobody listens there.
                self._fail_all(exc)
                continue
            self.datagram_received(data)

    def expect(self, qid: int, fut: asyncio.Future[bytes] | Callable[[bytes | BaseException], None],
               timeout: float, question: bytes = b"", resend: tuple[float, bytes] | None = None,
               on_resend: Callable[[], None] | None = None) -> None:
        """Register a query; one periodic reaper times out overdue ones.

        A timer per query would put thousands of entries in the event loop's
        heap during a blocklist run; a 20 ms sweep is as precise as needed.
        `resend=(after, datagram)`: send the same datagram again `after` seconds
        from now if no answer came (UDP loss). The query keeps its ID and its
        deadline, so an answer to either copy ends it, until `timeout` after the
        first send.
        """
        loop = fut.get_loop() if isinstance(fut, asyncio.Future) else asyncio.get_running_loop()
        now = loop.time()
        self.pending[qid] = (fut, question.lower())
        self.deadlines[qid] = now + timeout
        if resend is not None and resend[0] < timeout:
            self.resends[qid] = (now + resend[0], resend[1], on_resend)
        else:
            self.resends.pop(qid, None)
        if self._reaper is None:
            self._reaper = loop.call_later(REAP_INTERVAL, self._reap, loop)

    def forget(self, qid: int, fut: asyncio.Future[bytes] | Callable[[bytes | BaseException], None]) -> None:
        """Drop qid's entry if it is still `fut`'s (the ID may already serve a newer query)."""
        entry = self.pending.get(qid)
        if entry is not None and entry[0] is fut:
            del self.pending[qid]
            self.deadlines.pop(qid, None)
            self.resends.pop(qid, None)

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for qid in [q for q, d in self.deadlines.items() if d <= now]:
            entry = self.pending.pop(qid, None)
            self.deadlines.pop(qid, None)
            self.resends.pop(qid, None)
            if entry is not None:
                _deliver(entry[0], TimeoutError())
        if self.resends:
            for qid in [q for q, r in self.resends.items() if r[0] <= now]:
                _when, datagram, on_resend = self.resends.pop(qid)
                if qid in self.pending:
                    self.send(datagram)
                    if on_resend is not None:
                        on_resend()
        self._reaper = loop.call_later(REAP_INTERVAL, self._reap, loop) if self.deadlines else None

    def datagram_received(self, data: bytes) -> None:
        if len(data) < 12 or not data[2] & 0x80:
            return  # not a response
        self.heard_at = time.monotonic()
        qid = int.from_bytes(data[:2], "big")
        entry = self.pending.get(qid)
        if entry is None:
            return  # late answer to a query that timed out: nobody waits for it
        fut, question = entry
        if question and data[12 : 12 + len(question)].lower() != question:
            # Same ID, another question: a late answer to an earlier user of this ID,
            # or a spoofing attempt. Keep waiting for the real answer.
            return
        del self.pending[qid]
        self.deadlines.pop(qid, None)
        self.resends.pop(qid, None)
        _deliver(fut, data, now=True)

    def _fail_all(self, exc: BaseException) -> None:
        pending, self.pending = self.pending, {}
        self.deadlines = {}
        self.resends = {}
        for fut, _q in pending.values():
            _deliver(fut, exc)

    def new_id(self) -> int:
        while True:
            qid = _random_id()
            if qid not in self.pending:
                return qid


_ID_POOL: list[int] = []


def _random_id() -> int:
    """Unpredictable 16-bit query IDs from the OS CSPRNG, fetched in bulk (one syscall per 1024)."""
    if not _ID_POOL:
        raw = os.urandom(2048)
        _ID_POOL.extend(int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2048, 2))
    return _ID_POOL.pop()


_MUXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], list[_UDPMux]]] = (
    weakref.WeakKeyDictionary()
)


def _pooled_mux(host: str, port: int) -> _UDPMux | None:
    """A socket from a full pool without awaiting (the common case)."""
    per_loop = _MUXES.get(asyncio.get_running_loop())
    pool = per_loop.get((host, port)) if per_loop else None
    if pool and len(pool) >= SOCKETS_PER_SERVER:
        return pool[_random_id() % len(pool)]
    return None


def _mux_now(host: str, port: int) -> _UDPMux:
    """A socket of the (event loop, server) pool, opening one while the pool is short."""
    per_loop = _MUXES.setdefault(asyncio.get_running_loop(), {})
    pool = per_loop.setdefault((host, port), [])
    if len(pool) < SOCKETS_PER_SERVER:
        mux = _UDPMux.open(host, port)  # synchronous: no other query can interleave
        pool.append(mux)
        return mux
    return pool[_random_id() % len(pool)]


def encode_question(name: str, rdtype: int) -> bytes:
    """Wire form of the question section (QNAME, QTYPE, QCLASS IN).

    Hand-encoded because building dnspython Message objects cost more CPU than
    the network round trip on loopback (blocklist runs ask thousands of names).
    Raises ValueError for names DNS can't carry.
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


# flags RD (0x0100) | AD (0x0020); 1 question, 0 answers, 0 authority, 1 additional (OPT)
_HEADER_TAIL = b"\x01\x20\x00\x01\x00\x00\x00\x00\x00\x01"
# OPT pseudo-RR: root owner, type 41, UDP payload 1232, no extended flags, no options
_OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"


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
        if length & 0xC0 == 0xC0:  # compression pointer ends the name
            return off + 2
        off += 1 + length


def fast_parse(data: bytes, qlen: int, rdtype: int) -> tuple[int, int, tuple[Any, ...], int] | None:
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
                strings, i = [], 0
                while i < rdlen:
                    n = rdata[i]
                    if i + 1 + n > rdlen:
                        return None
                    strings.append(rdata[i + 1 : i + 1 + n])
                    i += 1 + n
                records.append(TXTRecord(tuple(strings)))
            ttl = rttl
    except (IndexError, struct.error):
        return None
    return flags & 0xF, flags, tuple(records), ttl


async def _udp_query(
    name: str, question: bytes, rdtype: int, host: str, port: int, timeout: float,
    resend_after: float | None = None, on_resend: Callable[[], None] | None = None,
) -> dns.message.Message | tuple[int, int, tuple[Any, ...], int]:
    """Ask over a shared UDP socket; fall back to TCP (dnspython) when the answer is truncated.

    An answer is accepted until `timeout` after the send; `resend_after`: the same
    datagram (same ID) is sent again then if nothing came, and either copy's answer counts.
    """
    mux = _pooled_mux(host, port) or _mux_now(host, port)
    qid = mux.new_id()
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()
    datagram = qid.to_bytes(2, "big") + _HEADER_TAIL + question + _OPT
    mux.expect(qid, fut, timeout, question,
               resend=None if resend_after is None else (resend_after, datagram), on_resend=on_resend)
    try:
        mux.send(datagram)
        data = await fut
    except TimeoutError as exc:
        raise dns.exception.Timeout from exc
    finally:
        mux.forget(qid, fut)
    # Same ID but another question (or not a response): stray or spoofed. Never use it.
    if not (data[2] & 0x80) or data[12 : 12 + len(question)].lower() != question.lower():
        raise dns.exception.FormError("response does not match the query")
    if data[2] & 0x02:
        # TC: the UDP answer is cut short (maybe mid-record): don't parse it, ask over TCP.
        # A failing TCP retry (nobody listening, timeout) raises: the caller's outcome is
        # then ERROR/TIMEOUT, never an answer built from the truncated part.
        return await _tcp_query(question, rdtype, host, port, timeout)
    fast = fast_parse(data, len(question), rdtype)
    if fast is not None:
        return fast
    return dns.message.from_wire(data, ignore_trailing=True)


# dnspython needs ~0.25 ms per record: a 64 KB answer (1,000 MX hosts plus their
# addresses in the additional section) is ~260 ms of CPU. Answers bigger than this are
# parsed in a worker thread, so the event loop keeps serving (Slack acks) meanwhile.
LARGE_ANSWER_BYTES = 8192


async def _tcp_query(
    question: bytes, rdtype: int, host: str, port: int, timeout: float
) -> dns.message.Message | tuple[int, int, tuple[Any, ...], int]:
    """One query over TCP (RFC 7766: two-byte length prefix), same question and flags as
    over UDP; the answer is checked against the question like a UDP one."""
    qid = int.from_bytes(os.urandom(2), "big").to_bytes(2, "big")
    wire = qid + _HEADER_TAIL + question + _OPT

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(len(wire).to_bytes(2, "big") + wire)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    try:
        data = await asyncio.wait_for(exchange(), timeout)
    except TimeoutError as exc:
        raise dns.exception.Timeout from exc
    if (len(data) < 12 or data[:2] != qid or not (data[2] & 0x80)
            or data[12 : 12 + len(question)].lower() != question.lower()):
        raise dns.exception.FormError("TCP response does not match the query")
    fast = fast_parse(data, len(question), rdtype)
    if fast is not None:
        return fast
    if len(data) > LARGE_ANSWER_BYTES:
        return await asyncio.to_thread(dns.message.from_wire, data, ignore_trailing=True)
    return dns.message.from_wire(data, ignore_trailing=True)


@lru_cache(maxsize=64)
def _rdtype(text: str) -> dns.rdatatype.RdataType:
    return dns.rdatatype.from_text(text)


def _rdtype_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))


def _norm(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _from_fast(name: str, tname: str, parsed: tuple[int, int, tuple[Any, ...], int], server: str) -> DNSResult:
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

    That is a referral or a lame server's answer, not "no such record": taking it as
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


def _from_response(
    name: str, tname: str, rdtype: dns.rdatatype.RdataType, resp: dns.message.Message, server: str
) -> DNSResult:
    rcode = resp.rcode()
    ad = bool(resp.flags & dns.flags.AD)
    if rcode != dns.rcode.NOERROR:
        return _rcode_result(name, tname, rcode, ad, server)
    records: list[Any] = []
    ttl = 0
    for rrset in resp.answer:
        # Follow CNAME chains implicitly: keep every rrset of the asked type.
        if rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN:
            records.extend(rrset)
            ttl = rrset.ttl
    if not records:
        if _lame(int(resp.flags)):
            return _lame_result(name, tname, server)
        return DNSResult(name, tname, Outcome.NODATA, authenticated=ad, server=server)
    return DNSResult(name, tname, Outcome.ANSWER, tuple(records), ttl=ttl, authenticated=ad, server=server)
