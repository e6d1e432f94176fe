"""Many DNS lookups driven by callbacks: the blocklist engine's hot path.

`Resolver.query()` costs a task and a chain of coroutine resumptions per
lookup, and every answer waits two trips through the event loop before the
next query leaves. For a blocklist run (thousands of names, each a 20-100 ms
round trip) that overhead, not the network, set the pace: answers queued
behind each other's processing. Here a query is a datagram plus a future
callback; when an answer (or a timeout) frees a slot, the next query is sent
from the same callback.

Semantics are those of `Resolver.query()`: both drive the same core
(handlers/net/core.py) through its public interface (`BaseResolver.begin()`,
`Resolution.next_request()` / `query_result()`), so they share:
- the run's cache: a name asked before (or in flight) is not asked again, and
  lookups started here are visible to concurrent `query()` callers;
- the resolver's bound on queries in flight (its `Slots`), its stats, query
  budget, overall deadline and dead-resolver breaker;
- attempts: an answer is accepted until the timeout after the query was sent;
  a single server gets the same datagram again at half the timeout (UDP loss)
  and a second query only after a failed answer, several servers are asked once
  each; a truncated answer is asked again over TCP (RFC 7766 §5; rare);
- per-group manners (`GroupLimit`): at most `in_flight` queries of a group at
  once and `qps` per second after a `burst`.
Every lookup ends with a DNSResult, never an exception and never a hang: a
lookup's timeout is enforced by the socket's reaper as for `query()`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice

import dns.exception
import dns.message

from handlers.net.core import BaseResolver, Request, Resolution
from handlers.net.results import DNSResult, GroupLimit, Outcome
from handlers.net.transport import EXCHANGE_ERRORS, mux_now, pooled_mux, tcp_exchange
from handlers.net.wire import FastAnswer, parse_answer, query_datagram, truncated

ADMIT_CHUNK = 256  # names admitted between two sends (see Bulk.run)


@dataclass
class _Item:
    res: Resolution  # the lookup: its attempts and the run cache's future
    group: Hashable
    index: int = -1  # the request's place in run(): its on_result number


@dataclass
class _Bucket:
    """In-flight count and token bucket of one GroupLimit object: groups given the same
    object (a list's IPv4 and IPv6 names) share the list's manners."""

    limit: GroupLimit
    in_flight: int = 0
    tokens: float = 0.0
    stamp: float = 0.0


@dataclass
class _Group:
    bucket: _Bucket
    queue: deque[_Item] = field(default_factory=deque)


class Bulk:
    def __init__(self, resolver: BaseResolver, limits: Mapping[Hashable, GroupLimit]) -> None:
        self.r = resolver
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.slots = resolver.slots()
        self.groups: dict[Hashable, _Group] = {}
        self.buckets: dict[int, _Bucket] = {}  # id(GroupLimit) -> its shared state
        self.abandoned = False
        self.order: deque[Hashable] = deque()  # round-robin over groups with work
        self.waiting = 0  # items queued, not yet sent
        self.timer: asyncio.TimerHandle | None = None
        self.pumping = False
        self.again = False
        self.hook: Callable[[int, DNSResult], None] | None = None
        self.delivered: set[int] = set()  # request numbers whose result the hook has seen
        # While run() still reads the caller's request iterator, results wait here: the
        # caller's state for them may not be complete yet (a list's test points can span
        # two admission chunks).
        self.held: list[tuple[int, DNSResult]] | None = None
        self.closed = False
        self.skipped: dict[Hashable, str] = {}  # group -> why its unsent names are not asked

    # ------------------------------------------------------------------ entry
    async def run(
        self,
        requests: Iterable[tuple[str, str, Hashable]],
        on_result: Callable[[int, DNSResult], None] | None = None,
    ) -> list[DNSResult]:
        futures: list[asyncio.Future[DNSResult]] = []
        for host, port in dict.fromkeys(self.r.plan()[0]):
            try:
                mux_now(host, port)  # open the socket pool before sending from callbacks
            except OSError:
                pass  # unreachable server: each lookup's attempt on it ends as ERROR in _send
        self.hook = on_result
        self.held = []
        self.slots.listen(self.pump)
        try:
            # Admit in chunks and start sending at once: admitting thousands of names
            # first would leave the network idle meanwhile.
            pending = iter(requests)
            while chunk := list(islice(pending, ADMIT_CHUNK)):
                for name, rdtype, group in chunk:
                    futures.append(self._admit(name, rdtype, group, len(futures)))
                self.pump()
                if len(chunk) == ADMIT_CHUNK:
                    await asyncio.sleep(0)  # let answers in while admitting the rest
        except BaseException:
            self._abandon()
            self.slots.unlisten(self.pump)
            raise
        held, self.held = self.held, None
        for i, res in held:
            self._deliver(i, res)
        if on_result is not None:
            # Results reach the caller as they come (its work overlaps the network wait);
            # every call happens before run() returns. Our own sends report from _finish;
            # the rest (cache hits, names shared with another check, names ended at
            # admission) through their future.
            def relay(i: int) -> Callable[[asyncio.Future[DNSResult]], None]:
                def call(done: asyncio.Future[DNSResult]) -> None:
                    if not done.cancelled() and done.exception() is None:
                        self._deliver(i, done.result())

                return call

            for i, f in enumerate(futures):
                if f.done():
                    relay(i)(f)
                else:
                    f.add_done_callback(relay(i))
        if self.waiting or any(not f.done() for f in futures):
            try:
                # asyncio.wait, not gather: a cancelled caller must not cancel cache
                # futures that other askers share.
                await asyncio.wait(set(futures))
            except BaseException:
                self._abandon()
                raise
            finally:
                self.closed = True
                self.slots.unlisten(self.pump)
                if self.timer is not None:
                    self.timer.cancel()
        else:
            self.closed = True
            self.slots.unlisten(self.pump)
        return [f.result() for f in futures]

    def _admit(self, name: str, rdtype: str, group: Hashable, index: int) -> asyncio.Future[DNSResult]:
        fut, res = self.r.begin(name, rdtype)
        if res is None:
            return fut  # a cache hit, or ended at once (invalid name, budget spent)
        if group in self.skipped:
            res.finish(DNSResult(res.name, res.tname, Outcome.SKIPPED, error=self.skipped[group]))
            return fut
        g = self.groups.get(group)
        if g is None:
            limit = self.limits.get(group) or GroupLimit(in_flight=10**9, qps=float("inf"), burst=10**9)
            bucket = self.buckets.get(id(limit))
            if bucket is None:
                bucket = self.buckets[id(limit)] = _Bucket(limit, tokens=float(limit.burst), stamp=time.monotonic())
            g = self.groups[group] = _Group(bucket)
        if not g.queue:
            self.order.append(group)
        g.queue.append(_Item(res, group, index))
        self.waiting += 1
        return fut

    # ------------------------------------------------------------------ sending
    def pump(self) -> None:
        """Send queued queries while slots, group caps and rates allow."""
        if self.closed:
            return
        if self.pumping:  # re-entered from a release inside the loop below
            self.again = True
            return
        self.pumping = True
        try:
            while True:
                self.again = False
                self._pump_once()
                if not self.again:
                    break
        finally:
            self.pumping = False

    def _pump_once(self) -> None:
        now = time.monotonic()
        earliest: float | None = None
        blocked = 0  # groups passed over in this round (cap or rate)
        while self.order and blocked < len(self.order):
            group = self.order[0]
            g = self.groups[group]
            b = g.bucket
            lim = b.limit
            if b.in_flight >= lim.in_flight:
                self.order.rotate(-1)
                blocked += 1
                continue
            if lim.qps != float("inf"):
                b.tokens = min(float(lim.burst), b.tokens + (now - b.stamp) * lim.qps)
                b.stamp = now
                if b.tokens < 1.0:
                    wait = (1.0 - b.tokens) / lim.qps
                    earliest = wait if earliest is None else min(earliest, wait)
                    self.order.rotate(-1)
                    blocked += 1
                    continue
            if not self.slots.try_acquire():
                return  # a release calls pump() again
            item = g.queue.popleft()
            self.waiting -= 1
            b.in_flight += 1
            b.tokens -= 1.0
            if g.queue:
                self.order.rotate(-1)  # next group's turn: fair between lists
            else:
                self.order.popleft()
            blocked = 0
            self._send(item)
        if earliest is not None:
            when = self.loop.time() + earliest
            if self.timer is None or when < self.timer.when():
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self.pump()

    def _send(self, item: _Item) -> None:
        """Send the item's next attempt, or end it (its slot and group place are held)."""
        req = item.res.next_request()
        if isinstance(req, DNSResult):
            self._finish(item, req)
            return
        mux = pooled_mux(req.host, req.port)
        if mux is None:
            try:
                mux = mux_now(req.host, req.port)  # the pool is not full yet: open a socket
            except OSError as exc:
                # Next loop pass, not now: _send runs inside pump() and must not recurse.
                self.loop.call_soon(self._on_answer, item, req, exc)
                return
        qid = mux.new_id()
        datagram = query_datagram(qid, item.res.question)
        resend = None if req.resend_after is None else (req.resend_after, datagram)  # same ID: either copy counts

        def answered(outcome: bytes | BaseException) -> None:
            # Called by the socket itself (datagram, ICMP error or reaper timeout): no
            # future and no extra trip through the event loop per answer.
            self._on_answer(item, req, outcome)

        mux.expect(qid, answered, req.wait, item.res.question, resend=resend, on_resend=self.r.count_resend)
        mux.send(datagram)

    # ------------------------------------------------------------------ answers
    def _on_answer(self, item: _Item, req: Request, outcome: bytes | BaseException) -> None:
        res = item.res
        if isinstance(outcome, bytes):
            if truncated(outcome):
                self.loop.create_task(self._tcp(item, req))  # rare: one task for it
                return
            try:
                self._settle(item, req, parse_answer(outcome, len(res.question), res.rdtype))
            except dns.exception.DNSException as exc:
                self._settle(item, req, exc)
            return
        self._settle(item, req, outcome)

    def _settle(self, item: _Item, req: Request, outcome: FastAnswer | dns.message.Message | BaseException) -> None:
        result = item.res.query_result(req, outcome)
        if result is None:
            self._send(item)  # the next attempt
        else:
            self._finish(item, result)

    async def _tcp(self, item: _Item, req: Request) -> None:
        res = item.res
        try:
            answer = await tcp_exchange(res.question, res.rdtype, req.host, req.port, req.wait)
        except EXCHANGE_ERRORS as exc:
            self._settle(item, req, exc)
        except BaseException:
            # Always end it: the slot and the cache future must not leak.
            self._finish(item, DNSResult(res.name, res.tname, Outcome.ERROR,
                                         error=f"{req.host}:{req.port}: TCP retry did not complete", server=req.host))
            raise
        else:
            self._settle(item, req, answer)

    def _finish(self, item: _Item, res: DNSResult) -> None:
        item.res.finish(res)
        self.groups[item.group].bucket.in_flight -= 1
        try:
            # The caller hears of it before the freed slot is refilled, so what it decides
            # from this answer (a list that failed its test points: skip the rest of its
            # names) holds for the very next send.
            self._deliver(item.index, res)
        finally:
            self.slots.release()  # may re-enter pump() through the listener
            self.pump()

    def _deliver(self, i: int, res: DNSResult) -> None:
        if self.hook is None or self.abandoned or i < 0 or i in self.delivered:
            return
        if self.held is not None:
            self.held.append((i, res))
            return
        self.delivered.add(i)
        try:
            self.hook(i, res)
        except Exception as exc:  # as a future callback would: reported, not fatal to the run
            self.loop.call_exception_handler({"message": "DNS result hook failed", "exception": exc})

    def skip(self, group: Hashable, reason: str) -> int:
        """End the group's unsent names as SKIPPED (and those admitted later); how many."""
        self.skipped[group] = reason
        g = self.groups.get(group)
        if g is None or not g.queue:
            return 0
        dropped = 0
        while g.queue:
            item = g.queue.popleft()
            dropped += 1
            item.res.finish(DNSResult(item.res.name, item.res.tname, Outcome.SKIPPED, error=reason))
        self.waiting -= dropped
        if group in self.order:
            self.order.remove(group)
        return dropped

    def _abandon(self) -> None:
        """The caller was cancelled: drop what was never sent, so the cache holds no
        future that nobody will complete (a later ask retries the name)."""
        self.closed = True
        self.abandoned = True  # no more on_result calls
        for g in self.groups.values():
            while g.queue:
                # Others may share these futures (another check on the same resolver):
                # they get a non-definitive answer, never our cancellation.
                self.r.abandon(g.queue.popleft().res)
        self.waiting = 0

