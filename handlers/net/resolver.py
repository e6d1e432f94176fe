"""The resolver every check uses: the core (handlers/net/core.py) driven by coroutines.

Why not dns.asyncresolver directly: its exceptions fold SERVFAIL, REFUSED and
timeouts into one `NoNameservers`, and a check must tell "the name does not
exist" from "we got no answer" (SPEC: never a verdict from an answer not
received). So we send queries at the message level (handlers/net/transport.py)
and the core maps each response to an explicit `Outcome`.

Two transports drive the same core: `query()` (a coroutine per lookup: the checks)
and `query_many()` (callbacks per datagram: the blocklist engine's bulk path,
handlers/net/bulk.py). Both share this run's cache, stats, budget, deadline, bound
on queries in flight and dead-resolver breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

from handlers.net import transport
from handlers.net.bulk import Bulk
from handlers.net.core import BaseResolver, Resolution
from handlers.net.results import DNSResult, GroupLimit
from handlers.net.servers import nameservers_from_env, system_nameservers
from handlers.net.wire import reverse_name


@dataclass
class Resolver(BaseResolver):
    """A per-run resolver. Create one per audit; share it between the audit's checks."""

    def __post_init__(self) -> None:
        if not self.nameservers:
            self.nameservers = nameservers_from_env() or system_nameservers()
        super().__post_init__()
        self._bulks: set[Bulk] = set()  # query_many runs in progress

    def heard_since(self, when: float) -> bool:
        return transport.heard_since(self.nameservers, when)

    # ------------------------------------------------------------------ one lookup
    async def query(self, name: str, rdtype: str) -> DNSResult:
        """Ask (name, type) once per run; always returns a DNSResult, never raises."""
        fut, res = self.begin(name, rdtype)
        if res is None:
            return await asyncio.shield(fut)
        try:
            result = await self._ask(res)
        except BaseException:  # our caller was cancelled: let later askers retry
            self.abandon(res)
            raise
        res.finish(result)
        return result

    async def txt(self, name: str) -> DNSResult:
        return await self.query(name, "TXT")

    async def ptr(self, ip: str) -> DNSResult:
        return await self.query(reverse_name(ip), "PTR")

    async def addresses(self, name: str, families: Iterable[str] = ("A", "AAAA")) -> list[DNSResult]:
        return list(await asyncio.gather(*(self.query(name, t) for t in families)))

    async def _ask(self, res: Resolution) -> DNSResult:
        slots = self.slots()
        await slots.acquire()
        try:
            return await self.resolve(res)
        finally:
            slots.release()

    async def resolve(self, res: Resolution) -> DNSResult:
        """Drive one lookup's attempts to its end (the caller holds a slot)."""
        while True:
            req = res.next_request()
            if isinstance(req, DNSResult):
                return req
            try:
                answer = await transport.udp_exchange(
                    res.question, res.rdtype, req.host, req.port, req.wait, req.resend_after, self.count_resend
                )
            except transport.EXCHANGE_ERRORS as exc:
                result = res.query_result(req, exc)
            else:
                result = res.query_result(req, answer)
            if result is not None:
                return result

    # ------------------------------------------------------------------ many lookups
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
