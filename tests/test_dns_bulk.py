"""Many lookups at once (Resolver.query_many, the blocklist engine's path): the same
answers and manners as one-by-one queries, and every lookup ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from handlers.net import DNSResult, GroupLimit, Outcome, Resolver
from tests.support.zonedns import ZoneServer

RECORDS = {
    ("a.example", "A"): ["127.0.0.2"],
    ("t.example", "TXT"): ["listed for spam"],
    ("slow.example", "A"): "TIMEOUT",
    ("broken.example", "A"): "SERVFAIL",
    ("refused.example", "A"): "REFUSED",
    ("nodata.example", "TXT"): ["x"],
}
ASKED = [
    ("a.example", "A"),
    ("t.example", "TXT"),
    ("missing.example", "A"),
    ("nodata.example", "A"),
    ("slow.example", "A"),
    ("broken.example", "A"),
    ("refused.example", "A"),
    ("bad..name.example", "A"),
]


def summary(r: DNSResult) -> tuple[str, tuple[str, ...]]:
    return r.outcome.value, tuple(r.addresses) + tuple(r.texts)


async def test_bulk_answers_are_the_answers_of_single_queries() -> None:
    with ZoneServer(RECORDS) as server:
        one = Resolver(nameservers=[server.address], timeout=2.0)
        singles = [await one.query(n, t) for n, t in ASKED]
        many = Resolver(nameservers=[server.address], timeout=2.0)
        bulk = await many.query_many([(n, t, "g") for n, t in ASKED])
    assert [summary(r) for r in bulk] == [summary(r) for r in singles]
    assert [r.outcome for r in bulk] == [
        Outcome.ANSWER, Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA,
        Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED, Outcome.INVALID,
    ]  # fmt: skip
    assert many.stats.lookups == len(ASKED) and many.stats.answered == one.stats.answered


async def test_a_name_is_asked_once_per_run_across_both_paths() -> None:
    with ZoneServer(RECORDS) as server:
        r = Resolver(nameservers=[server.address], timeout=5.0)  # no retry packet
        first = asyncio.ensure_future(r.query("a.example", "A"))
        results = await r.query_many([("a.example", "A", "g"), ("A.EXAMPLE.", "A", "h"), ("t.example", "TXT", "g")])
        await first
        again = await r.query("t.example", "TXT")
        asked = [q for q in server.queries if q[0] in ("a.example.", "t.example.")]
    assert [x.outcome for x in results] == [Outcome.ANSWER] * 3 and again.ok
    assert len(asked) == 2, asked  # one packet per distinct (name, type)
    assert r.stats.lookups == len(r._cache) == 2


async def test_a_group_never_has_more_than_its_cap_in_flight() -> None:
    names = {(f"n{i}.example", "A"): ["127.0.0.2"] for i in range(24)}
    server = ZoneServer(names, delay=0.05)
    with server:
        r = Resolver(nameservers=[server.address], timeout=2.0, concurrency=64)
        out = await r.query_many([(f"n{i}.example", "A", "list") for i in range(24)],
                                 {"list": GroupLimit(in_flight=3, qps=10_000, burst=100)})
    assert all(x.ok for x in out)
    assert server.peak_in_flight <= 3, server.peak_in_flight


async def test_the_resolver_bound_holds_for_both_paths_together() -> None:
    names = {(f"n{i}.example", "A"): ["127.0.0.2"] for i in range(30)}
    server = ZoneServer(names, delay=0.05)
    with server:
        r = Resolver(nameservers=[server.address], timeout=2.0, concurrency=5)
        singles = [r.query(f"n{i}.example", "A") for i in range(15)]
        bulk = r.query_many([(f"n{i}.example", "A", "g") for i in range(15, 30)])
        results = await asyncio.gather(*singles, bulk)
    assert all(x.ok for x in results[:15]) and all(x.ok for x in results[15])  # type: ignore[union-attr]
    assert server.peak_in_flight <= 5, server.peak_in_flight


async def test_the_query_budget_applies() -> None:
    with ZoneServer(RECORDS) as server:
        r = Resolver(nameservers=[server.address], timeout=5.0, max_queries=2)
        out = await r.query_many([("a.example", "A", "g"), ("t.example", "TXT", "g"), ("missing.example", "A", "g")])
    assert [x.outcome for x in out] == [Outcome.ANSWER, Outcome.ANSWER, Outcome.BUDGET]


async def test_a_cancelled_bulk_leaves_nothing_unfinished_behind() -> None:
    names = {(f"n{i}.example", "A"): ["127.0.0.2"] for i in range(40)}
    server = ZoneServer(names, delay=0.2)
    with server:
        r = Resolver(nameservers=[server.address], timeout=2.0, concurrency=4)
        task = asyncio.ensure_future(r.query_many([(f"n{i}.example", "A", "g") for i in range(40)]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Nothing in the cache waits for a query that will never be sent: asking again works.
        again = await asyncio.wait_for(r.query("n39.example", "A"), 10)
        assert again.ok
        # The four that were in flight end on their own.
        await asyncio.wait_for(asyncio.wait(list(r._cache.values())), 10)
        assert all(f.done() for f in r._cache.values())
        assert r.slots().free == 4


async def test_results_reach_the_caller_as_they_arrive() -> None:
    with ZoneServer(RECORDS) as server:
        r = Resolver(nameservers=[server.address], timeout=2.0)
        seen: list[tuple[int, Outcome]] = []
        out = await r.query_many([(n, t, "g") for n, t in ASKED], on_result=lambda i, res: seen.append((i, res.outcome)))
    assert sorted(seen) == [(i, x.outcome) for i, x in enumerate(out)]


async def test_a_cancelled_check_never_cancels_another_checks_lookups() -> None:
    """Two checks share one resolver (a digest run): cancelling one must leave the other
    with answers (real, or non-definitive for names the cancelled one had not sent)."""
    names = {(f"n{i}.example", "A"): ["127.0.0.2"] for i in range(40)}
    server = ZoneServer(names, delay=0.1)
    with server:
        r = Resolver(nameservers=[server.address], timeout=2.0, concurrency=2)
        first = asyncio.ensure_future(r.query_many([(f"n{i}.example", "A", "a") for i in range(40)]))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(r.query_many([(f"n{i}.example", "A", "b") for i in range(40)]))
        single = asyncio.ensure_future(r.query("n30.example", "A"))
        await asyncio.sleep(0.02)
        first.cancel()
        out = await asyncio.wait_for(second, 30)
        one = await asyncio.wait_for(single, 30)
    assert len(out) == 40 and all(isinstance(x, DNSResult) for x in out)
    assert all(x.ok or (x.outcome is Outcome.TIMEOUT and "cancelled" in x.error) for x in out)
    assert isinstance(one, DNSResult)


async def test_a_cancelled_single_query_leaves_its_sharers_an_answer() -> None:
    # The answer is held long enough that the cancel surely comes first on a busy machine.
    with ZoneServer({("slow.example", "A"): ["127.0.0.2"]}, delay=1.0) as server:
        r = Resolver(nameservers=[server.address], timeout=2.0)
        owner = asyncio.ensure_future(r.query("slow.example", "A"))
        await asyncio.sleep(0.01)
        sharer = asyncio.ensure_future(r.query("slow.example", "A"))
        await asyncio.sleep(0.01)
        owner.cancel()
        res = await asyncio.wait_for(sharer, 10)
        again = await asyncio.wait_for(r.query("slow.example", "A"), 10)
    assert res.outcome is Outcome.TIMEOUT and "cancelled" in res.error
    assert again.ok  # the next asker asks again


async def test_an_unreachable_nameserver_gives_errors_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    import handlers.net.bulk as bulkmod
    import handlers.net.transport as dnsmod

    def unreachable(host: str, port: int) -> object:
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(dnsmod, "mux_now", unreachable)
    monkeypatch.setattr(bulkmod, "mux_now", unreachable)
    r = Resolver(nameservers=[("2001:db8::53", 53)], timeout=0.5)
    out = await asyncio.wait_for(r.query_many([("a.example", "A", "g"), ("b.example", "TXT", "g")]), 10)
    assert [x.outcome for x in out] == [Outcome.ERROR, Outcome.ERROR]
    assert "unreachable" in out[0].error


async def test_results_are_held_until_every_request_has_been_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller builds its state for a request as it yields it (the blocklist engine's
    test points): no result may reach it while its request iterator is still being read."""
    import handlers.net.bulk as bulkmod

    monkeypatch.setattr(bulkmod, "ADMIT_CHUNK", 2)  # answers arrive between admission chunks
    yielded: list[int] = []
    early: list[int] = []

    def requests() -> Iterator[tuple[str, str, str]]:
        for i in range(12):
            yielded.append(i)
            yield (f"n{i}.example", "A", "g")

    with ZoneServer({(f"n{i}.example", "A"): ["192.0.2.1"] for i in range(12)}) as server:
        # A spent deadline ends every lookup the moment it is sent, inside admission.
        r = Resolver(nameservers=[server.address], timeout=5.0, deadline=0.01)
        await asyncio.sleep(0.02)
        seen: list[int] = []

        def hook(i: int, res: DNSResult) -> None:
            if len(yielded) < 12:
                early.append(i)
            seen.append(i)

        out = await r.query_many(requests(), on_result=hook)
    assert sorted(seen) == list(range(12)) and all(x.outcome is Outcome.TIMEOUT for x in out)
    assert not early, early
