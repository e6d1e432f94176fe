"""The resolver's logic with no I/O, shared by both transports.

Modelled on dnspython's `resolver._Resolution` (its sync and async resolvers drive the
same object): `BaseResolver` holds one run's state — the cache, the query budget, the
overall deadline, the bound on queries in flight, the dead-resolver breaker and the
stats — and a `Resolution` decides, for one lookup, what to send next
(`next_request()`) and what an answer or a failure means (`query_result()`). The
transports only move bytes: `Resolver.query()` (handlers/net/resolver.py, a coroutine
per lookup) and `Resolver.query_many()` (handlers/net/bulk.py, callbacks per datagram).

Per run (one resolver per audit / command):
- a cache keyed by (name, type): concurrent askers share one in-flight lookup, so no
  name is asked twice;
- a bound on queries in flight (`Slots`), shared by both transports;
- a budget of distinct lookups: beyond it a lookup is not sent (Outcome.BUDGET);
- an optional overall deadline: once passed, every lookup is TIMEOUT at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message

from handlers.net.results import DNSResult, DNSStats, Outcome
from handlers.net.wire import FastAnswer, encode_question, norm_name, rdtype_code, rdtype_text, to_result

DEFAULT_TIMEOUT = 3.0
DEFAULT_CONCURRENCY = 96
# Per-audit DNS query budget (SECURITY.md, abuse): a domain audit asks ~300
# names; a hostile zone (SPF include fan-out, thousands of MX hosts) must not make one
# audit ask without end.
DEFAULT_MAX_QUERIES = 2000
AUTO_BUDGET = -1  # max_queries default: DEFAULT_MAX_QUERIES for an audit's resolver (one with a deadline)

CANCELLED = "not asked: the check that asked it was cancelled"

Key = tuple[str, int]  # (normalised name, rdtype)


class Slots:
    """The resolver's bound on queries in flight, usable from coroutines and callbacks.

    Like asyncio.Semaphore (FIFO hand-over to waiting coroutines), plus a
    non-blocking `try_acquire` and release listeners, so the callback-driven
    bulk transport (handlers/net/bulk.py) shares the same bound as `query()`.
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


@dataclass(frozen=True)
class Request:
    """One datagram to send: to whom, how long its answer is accepted, and when to send
    the same datagram again if nothing came (`resend_after`, None = never)."""

    host: str
    port: int
    wait: float
    resend_after: float | None = None


@dataclass
class BaseResolver:
    """One run's DNS state with no I/O. Create one resolver per audit; share it between
    the audit's checks. The transports (handlers/net/resolver.py) subclass it."""

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
        if self.max_queries == AUTO_BUDGET:
            self.max_queries = DEFAULT_MAX_QUERIES if self.deadline is not None else None
        self.over_budget = 0  # lookups refused by the budget
        # Dead-resolver breaker: once a whole timeout has passed since the first packet
        # without hearing anything back, later lookups fail at once instead of each
        # waiting out its own timeout (keeps "dead resolver -> exit 3" within ~1x timeout).
        self._first_sent: float | None = None
        self._heard = False
        self._cache: dict[Key, asyncio.Future[DNSResult]] = {}
        self._slots: Slots | None = None
        self._plan: tuple[Sequence[tuple[str, int]], list[tuple[str, int]], bool] | None = None
        self._t0 = time.monotonic()

    # ------------------------------------------------------------------ run state
    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() - self._t0)

    def ensure_budget(self, queries: int) -> None:
        """Raise the query budget to at least `queries` (a bulk check of many targets)."""
        if self.max_queries is not None and self.max_queries < queries:
            self.max_queries = queries

    def slots(self) -> Slots:
        if self._slots is None:
            self._slots = Slots(self.concurrency)
        return self._slots

    def plan(self) -> tuple[list[tuple[str, int]], bool]:
        """(attempts, single): one server is asked twice (a second query only after a
        failed answer, never after silence); several servers once each. Worked out once
        per set of nameservers: every lookup asks for it."""
        if self._plan is None or self._plan[0] is not self.nameservers:
            servers = [(str(h), int(p)) for h, p in self.nameservers]
            single = len(servers) == 1
            self._plan = (self.nameservers, servers * 2 if single else servers, single)
        return self._plan[1], self._plan[2]

    def heard_since(self, when: float) -> bool:
        """Whether any nameserver of ours has sent anything since `when` (time.monotonic).
        The transport knows (its sockets); with no transport, nothing was heard."""
        return False

    def silent(self, now: float) -> bool:
        """The dead-resolver breaker: True once a whole timeout has passed since our first
        packet and no nameserver of ours has sent anything back. A server that answers,
        however slowly (even after a lookup gave up on it), is not dead."""
        if self._heard or self._first_sent is None or now - self._first_sent < self.timeout:
            return False
        if self.heard_since(self._first_sent):
            self._heard = True
            return False
        return True

    def count_resend(self) -> None:
        """A datagram was sent again (same ID) by the transport's timer."""
        self.stats.asked += 1

    # ------------------------------------------------------------------ the cache
    def cached(self, name: str, rdtype: str) -> DNSResult | None:
        fut = self._cache.get((norm_name(name), rdtype_code(rdtype)))
        if fut is not None and fut.done() and not fut.cancelled():
            return fut.result()
        return None

    def begin(self, name: str, rdtype: str) -> tuple[asyncio.Future[DNSResult], Resolution | None]:
        """Join this run's lookup of (name, type), or start it.

        Returns the lookup's future (shared by every asker) and, when the caller must
        do the asking, its `Resolution`. None: the lookup was already known or in flight
        (a cache hit), or it ended at once (a name DNS can't carry, the budget spent),
        and the future says how. The caller that gets a Resolution must end it with
        `Resolution.finish()` or `abandon()`.
        """
        rdt = rdtype_code(rdtype)
        key = (norm_name(name), rdt)
        fut = self._cache.get(key)
        if fut is not None:
            self.stats.cache_hits += 1
            return fut, None
        fut = asyncio.get_running_loop().create_future()
        self._cache[key] = fut
        self.stats.lookups += 1
        tname = rdtype_text(rdt)
        try:
            question = encode_question(key[0], rdt)
        except (ValueError, UnicodeError) as exc:
            fut.set_result(DNSResult(key[0], tname, Outcome.INVALID, error=str(exc)))
            return fut, None
        if self.max_queries is not None and self.stats.lookups > self.max_queries:
            self.over_budget += 1
            fut.set_result(DNSResult(key[0], tname, Outcome.BUDGET,
                                     error=f"query budget of {self.max_queries} lookups per check spent; not asked"))
            return fut, None
        return fut, Resolution(self, key, tname, question, fut)

    def abandon(self, res: Resolution) -> None:
        """The asker was cancelled before the lookup ended: forget it, so a later ask
        asks again; others sharing it get a non-definitive answer, never the
        cancellation."""
        if self._cache.get(res.key) is res.future:
            del self._cache[res.key]
        res.finish(DNSResult(res.name, res.tname, Outcome.TIMEOUT, error=CANCELLED))


class Resolution:
    """One lookup's attempts, with no I/O (dnspython's `_Resolution`).

    `timeout` is how long the user waits for one answer: a query's answer is accepted
    until `timeout` after it was sent. One server: the datagram is sent again (same ID)
    at half the timeout in case one of the two was lost (RFC 1035 §4.2.1: UDP is not
    reliable), and a second query only after a failed answer, within the same timeout;
    several servers: each is asked in turn, for `timeout` each.
    """

    __slots__ = (
        "attempt",
        "attempts",
        "future",
        "key",
        "last",
        "name",
        "question",
        "rdtype",
        "resolver",
        "single",
        "started",
        "tname",
    )

    def __init__(self, resolver: BaseResolver, key: Key, tname: str, question: bytes,
                 future: asyncio.Future[DNSResult]) -> None:
        self.resolver = resolver
        self.key = key
        self.name, self.rdtype = key
        self.tname = tname
        self.question = question
        self.future = future
        self.attempts, self.single = resolver.plan()
        self.attempt = 0
        self.started: float | None = None  # the first send to the single server
        self.last = DNSResult(self.name, tname, Outcome.TIMEOUT, error="no nameserver answered")

    def next_request(self) -> Request | DNSResult:
        """What to send now, or the lookup's end (attempts, deadline or breaker spent)."""
        r = self.resolver
        if self.attempt >= len(self.attempts):
            return self.last
        rem = r.remaining()
        if rem is not None and rem <= 0:
            return DNSResult(self.name, self.tname, Outcome.TIMEOUT, error="overall deadline reached")
        now = time.monotonic()
        if r._first_sent is None:
            r._first_sent = now
        elif r.silent(now):
            return DNSResult(self.name, self.tname, Outcome.TIMEOUT,
                             error=f"no nameserver has answered anything in {r.timeout:g}s; not asked")
        resend: float | None = None
        if not self.single:
            wait = r.timeout
        elif self.started is None:
            self.started, wait, resend = now, r.timeout, r.timeout / 2
        else:  # asking again after a failed answer: within the same timeout
            wait = r.timeout - (now - self.started)
            if wait <= 0:
                return self.last
        host, port = self.attempts[self.attempt]
        self.attempt += 1
        r.stats.asked += 1
        return Request(host, port, wait if rem is None else min(wait, rem), resend)

    def query_result(
        self, req: Request, response: FastAnswer | dns.message.Message | BaseException
    ) -> DNSResult | None:
        """The lookup's result from one attempt's parsed answer or failure; None: ask
        again (`next_request()`)."""
        r = self.resolver
        if isinstance(response, BaseException):
            where = f"{req.host}:{req.port}"
            r.stats.failed += 1
            if isinstance(response, (TimeoutError, dns.exception.Timeout)):
                self.last = DNSResult(self.name, self.tname, Outcome.TIMEOUT, error=f"{where} did not answer",
                                      server=req.host)
                # One server: the whole timeout has passed since the first send.
                return self.last if self.single else None
            if isinstance(response, dns.exception.DNSException):
                r._heard = True  # a response came, but not a usable one
            self.last = DNSResult(self.name, self.tname, Outcome.ERROR, error=f"{where}: {response}",
                                  server=req.host)
            return None
        r._heard = True
        result = to_result(self.name, self.tname, self.rdtype, response, req.host)
        if result.definitive:
            r.stats.answered += 1
            return result
        r.stats.failed += 1
        self.last = result
        return None

    def finish(self, result: DNSResult) -> None:
        """Give every asker the result (once)."""
        if not self.future.done():
            self.future.set_result(result)
