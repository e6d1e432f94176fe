"""Moving DNS messages: UDP sockets shared by many queries, and TCP for truncated answers.

No decisions here (what to ask, what an answer means: handlers/net/core.py); this
module only sends datagrams and hands back what came, or the failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable

import dns.exception
import dns.message

from handlers.net.wire import FastAnswer, answers, parse_answer, query_datagram, truncated

# UDP sockets kept open per (event loop, nameserver). Several, so queries leave from
# several source ports (RFC 5452: spoofing resistance); each carries up to 64k
# in-flight queries told apart by their random 16-bit IDs.
SOCKETS_PER_SERVER = 4
REAP_INTERVAL = 0.02  # how often overdue UDP queries are timed out
# dnspython needs ~0.25 ms per record: a 64 KB answer (1,000 MX hosts plus their
# addresses in the additional section) is ~260 ms of CPU. Answers bigger than this are
# parsed in a worker thread, so the event loop keeps serving (Slack acks) meanwhile.
LARGE_ANSWER_BYTES = 8192
# What a failed exchange may raise: no answer (TimeoutError, an OSError), a socket
# error, a response that is not a usable answer, a connection closed mid-answer.
EXCHANGE_ERRORS = (dns.exception.DNSException, OSError, ValueError, EOFError)


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


class UDPMux:
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
    def open(cls, host: str, port: int) -> UDPMux:
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
            qid = random_id()
            if qid not in self.pending:
                return qid


_ID_POOL: list[int] = []


def random_id() -> int:
    """Unpredictable 16-bit query IDs from the OS CSPRNG, fetched in bulk (one syscall per 1024)."""
    if not _ID_POOL:
        raw = os.urandom(2048)
        _ID_POOL.extend(int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2048, 2))
    return _ID_POOL.pop()


_MUXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], list[UDPMux]]] = (
    weakref.WeakKeyDictionary()
)


def pooled_mux(host: str, port: int) -> UDPMux | None:
    """A socket from a full pool without awaiting (the common case)."""
    per_loop = _MUXES.get(asyncio.get_running_loop())
    pool = per_loop.get((host, port)) if per_loop else None
    if pool and len(pool) >= SOCKETS_PER_SERVER:
        return pool[random_id() % len(pool)]
    return None


def mux_now(host: str, port: int) -> UDPMux:
    """A socket of the (event loop, server) pool, opening one while the pool is short."""
    per_loop = _MUXES.setdefault(asyncio.get_running_loop(), {})
    pool = per_loop.setdefault((host, port), [])
    if len(pool) < SOCKETS_PER_SERVER:
        mux = UDPMux.open(host, port)  # synchronous: no other query can interleave
        pool.append(mux)
        return mux
    return pool[random_id() % len(pool)]


def heard_since(servers: Iterable[tuple[str, int]], when: float) -> bool:
    """Whether any of these servers' sockets (on this event loop) received anything since
    `when` (time.monotonic): a late answer to a query that gave up still shows the
    server is alive."""
    per_loop = _MUXES.get(asyncio.get_running_loop()) or {}
    for host, port in servers:
        for mux in per_loop.get((str(host), int(port)), ()):
            if mux.heard_at is not None and mux.heard_at >= when:
                return True
    return False


async def udp_exchange(
    question: bytes, rdtype: int, host: str, port: int, timeout: float,
    resend_after: float | None = None, on_resend: Callable[[], None] | None = None,
) -> FastAnswer | dns.message.Message:
    """Ask over a shared UDP socket; over TCP when the answer is truncated (RFC 7766 §5).

    An answer is accepted until `timeout` after the send; `resend_after`: the same
    datagram (same ID) is sent again then if nothing came, and either copy's answer
    counts. Raises TimeoutError, OSError or dns.exception.DNSException.
    """
    mux = pooled_mux(host, port) or mux_now(host, port)
    qid = mux.new_id()
    fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    datagram = query_datagram(qid, question)
    mux.expect(qid, fut, timeout, question,
               resend=None if resend_after is None else (resend_after, datagram), on_resend=on_resend)
    try:
        mux.send(datagram)
        data = await fut
    finally:
        mux.forget(qid, fut)
    if not answers(data, question):
        raise dns.exception.FormError("response does not match the query")
    if truncated(data):
        # Don't parse the cut-short part. A failing TCP retry (nobody listening, timeout)
        # raises: the outcome is then ERROR/TIMEOUT, never an answer built from it.
        return await tcp_exchange(question, rdtype, host, port, timeout)
    return parse_answer(data, len(question), rdtype)


async def tcp_exchange(
    question: bytes, rdtype: int, host: str, port: int, timeout: float
) -> FastAnswer | dns.message.Message:
    """One query over TCP (RFC 7766; RFC 1035 §4.2.2: two-byte length prefix), same
    question and flags as over UDP; the answer is checked against the question like a
    UDP one."""
    qid = int.from_bytes(os.urandom(2), "big")
    wire = query_datagram(qid, question)

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

    data = await asyncio.wait_for(exchange(), timeout)
    if not answers(data, question, wire[:2]):
        raise dns.exception.FormError("TCP response does not match the query")
    if len(data) > LARGE_ANSWER_BYTES:
        return await asyncio.to_thread(parse_answer, data, len(question), rdtype)
    return parse_answer(data, len(question), rdtype)
