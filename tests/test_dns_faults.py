"""DNS faults (issue 8): odd, lame and missing answers are `unknown`, never a verdict; budgets and deadlines hold."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from handlers.dmarc import audit_dmarc
from handlers.net import DEFAULT_MAX_QUERIES, Outcome, Resolver
from tests.support.ports import udp_tcp_pair
from tests.support.zonedns import ZoneServer

Responder = Callable[[dns.message.Message], bytes | None]


class OddServer:
    """A UDP-only DNS server answering through `responder` (no TCP listener unless `tcp_closes`)."""

    def __init__(self, responder: Responder, tcp_closes: bool = False) -> None:
        self.responder = responder
        self.tcp: socket.socket | None = None
        if tcp_closes:  # accepts TCP and hangs up at once: the TCP retry fails
            self.udp, self.tcp, self.port = udp_tcp_pair()
        else:
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True)]
        if self.tcp:
            self.threads.append(threading.Thread(target=self._serve_tcp, daemon=True))
        for t in self.threads:
            t.start()

    def _serve_udp(self) -> None:
        self.udp.settimeout(0.05)
        while not self.stop.is_set():
            try:
                data, addr = self.udp.recvfrom(4096)
            except OSError:
                continue
            reply = self.responder(dns.message.from_wire(data))
            if reply is not None:
                self.udp.sendto(reply, addr)

    def _serve_tcp(self) -> None:
        assert self.tcp is not None
        self.tcp.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            conn.close()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(1)
        self.udp.close()
        if self.tcp:
            self.tcp.close()


@pytest.fixture
def odd() -> Iterator[Callable[..., OddServer]]:
    servers: list[OddServer] = []

    def make(responder: Responder, tcp_closes: bool = False) -> OddServer:
        servers.append(OddServer(responder, tcp_closes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _a_answer(q: dns.message.Message) -> dns.message.Message:
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.1"))
    return r


def wrong_question(q: dns.message.Message) -> bytes:
    other = dns.message.make_query("other.example.", "A")
    other.id = q.id
    return _a_answer(other).to_wire()


def truncated(q: dns.message.Message) -> bytes:
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA | dns.flags.TC
    return r.to_wire()


def truncated_mid_record(q: dns.message.Message) -> bytes:
    wire = _a_answer(q).to_wire()
    wire = wire[:2] + bytes([wire[2] | 0x02]) + wire[3:]  # TC, and cut inside the answer record
    return wire[:-3]


def rcode(code: dns.rcode.Rcode) -> Responder:
    def respond(q: dns.message.Message) -> bytes:
        r = dns.message.make_response(q)
        r.set_rcode(code)
        return r.to_wire()

    return respond


def lame_referral(q: dns.message.Message) -> bytes:
    r = dns.message.make_response(q)
    r.flags &= ~(dns.flags.AA | dns.flags.RA)
    r.authority.append(dns.rrset.from_text("example.", 60, "IN", "NS", "ns.elsewhere.example."))
    return r.to_wire()


ODD = {
    "wrong question": (wrong_question, False),
    "TC set, no TCP server": (truncated, False),
    "TC set, TCP hangs up": (truncated, True),
    "TC set, cut mid-record, no TCP": (truncated_mid_record, False),
    "NOTIMP": (rcode(dns.rcode.NOTIMP), False),
    "FORMERR": (rcode(dns.rcode.FORMERR), False),
    "YXDOMAIN": (rcode(dns.rcode.YXDOMAIN), False),
    "lame referral": (lame_referral, False),
}


@pytest.mark.parametrize("case", sorted(ODD))
@pytest.mark.parametrize("rdtype", ["A", "TXT", "MX"])
async def test_odd_answers_are_never_definitive(odd: Callable[..., OddServer], case: str, rdtype: str) -> None:
    responder, tcp_closes = ODD[case]
    server = odd(responder, tcp_closes)
    resolver = Resolver(nameservers=[("127.0.0.1", server.port)], timeout=0.6)
    t0 = time.monotonic()
    res = await resolver.query("x.example", rdtype)
    assert time.monotonic() - t0 < 5  # bounded by the timeout, not hanging
    assert not res.definitive and not res.ok, res
    assert res.outcome in (Outcome.ERROR, Outcome.TIMEOUT)
    assert res.describe()


async def test_odd_answers_make_checks_unknown(odd: Callable[..., OddServer]) -> None:
    for responder, tcp_closes in ODD.values():
        server = odd(responder, tcp_closes)
        resolver = Resolver(nameservers=[("127.0.0.1", server.port)], timeout=0.4)
        found, _ = await audit_dmarc(resolver, "x.example")
        assert {f.severity for f in found} == {"unknown"}, [f.code for f in found]


async def test_a_truncated_answer_is_retried_over_tcp() -> None:
    big = [f"v=spf1 ip4:192.0.2.{i} " + "x" * 200 for i in range(12)]
    with ZoneServer({("big.example", "TXT"): big}) as server:
        resolver = Resolver(nameservers=[server.address], timeout=1.0)
        res = await resolver.txt("big.example")
        assert res.ok and len(res.texts) == 12
        assert ("big.example.", "TXT", "tcp") in server.queries


# -- query budget ------------------------------------------------------------------
async def test_the_query_budget_stops_sending() -> None:
    records = {(f"n{i}.example", "A"): ["192.0.2.1"] for i in range(20)}
    with ZoneServer(records) as server:
        resolver = Resolver(nameservers=[server.address], timeout=5.0, max_queries=5)  # no retry packets
        results = await asyncio.gather(*(resolver.query(f"n{i}.example", "A") for i in range(20)))
        assert sum(r.ok for r in results) == 5
        over = [r for r in results if not r.ok]
        assert len(over) == 15 and all(r.outcome is Outcome.BUDGET and not r.definitive for r in over)
        assert "budget" in over[0].describe()
        assert len(server.queries) == 5  # nothing beyond the budget went out
        assert resolver.over_budget == 15
        again = await resolver.query("n0.example", "A")  # cached answers stay free
        assert again.ok


async def test_an_exhausted_budget_makes_checks_unknown() -> None:
    with ZoneServer({("_dmarc.x.example", "TXT"): ["v=DMARC1; p=reject; rua=mailto:d@x.example"]}) as server:
        resolver = Resolver(nameservers=[server.address], timeout=1.0, max_queries=0)
        found, _ = await audit_dmarc(resolver, "x.example")
        assert {f.severity for f in found} == {"unknown"}
        assert not server.queries


def test_budget_defaults() -> None:
    assert Resolver(nameservers=[("127.0.0.1", 53)], deadline=30).max_queries == DEFAULT_MAX_QUERIES
    assert Resolver(nameservers=[("127.0.0.1", 53)]).max_queries is None  # shared digest/benchmark resolvers
    r = Resolver(nameservers=[("127.0.0.1", 53)], deadline=30)
    r.ensure_budget(5000)
    assert r.max_queries == 5000


# -- dead resolver ---------------------------------------------------------------------
@pytest.fixture
def blackhole() -> Iterator[int]:
    """A nameserver address that takes UDP and TCP and never answers."""
    u, t, port = udp_tcp_pair()
    yield port
    u.close()
    t.close()


async def test_a_silent_resolver_trips_the_breaker(blackhole: int) -> None:
    resolver = Resolver(nameservers=[("127.0.0.1", blackhole)], timeout=0.4)
    t0 = time.monotonic()
    first = await resolver.query("a.example", "A")
    second = await resolver.query("b.example", "A")  # asked after a whole silent timeout
    assert first.outcome is Outcome.TIMEOUT and second.outcome is Outcome.TIMEOUT
    assert time.monotonic() - t0 < 3  # the second lookup was not sent (error says so)
    assert "not asked" in second.error


def test_a_domain_audit_against_a_dead_resolver_exits_3_within_a_few_timeouts(blackhole: int) -> None:
    timeout = 2.0
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "bot", "--json", "--nameserver", f"127.0.0.1:{blackhole}", "--timeout", str(timeout),
         "domain", "good.example"],
        capture_output=True, text=True, timeout=30,
    )
    took = time.monotonic() - t0
    assert p.returncode == 3, p.stderr
    # The breaker's point: not one timeout per lookup (hundreds of lookups, tens of
    # seconds). The bound leaves room for interpreter start-up on a loaded CI machine.
    assert took < 3 * timeout + 1, f"{took:.2f}s"
    report = json.loads(p.stdout)
    assert not any(f["severity"] == "ok" for f in report["findings"])


# -- query IDs are reused: a finished query must never strand a newer one -------------------
async def test_every_query_ends_when_ids_are_reused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a query that timed out dropped, on resuming, the socket entry of a
    newer query that had drawn the same ID meanwhile; that query then waited forever
    (a domain audit hung in CI). With four IDs in play every ID is reused constantly."""
    import handlers.net.transport as dnsmod

    ids = iter(range(10**9))
    monkeypatch.setattr(dnsmod, "random_id", lambda: next(ids) % 4)
    # A generous timeout: the names meant to answer must answer however slow the machine
    # (the test server answers from threads); four IDs still make every send a reuse.
    records = {(f"n{i}.example", "TXT"): (["ok"] if i % 10 else "TIMEOUT") for i in range(60)}
    with ZoneServer(records) as server:
        resolver = Resolver(nameservers=[server.address], timeout=2.0, concurrency=4)
        results = await asyncio.wait_for(
            asyncio.gather(*(resolver.txt(f"n{i}.example") for i in range(60))), 60
        )
    for i, r in enumerate(results):
        assert r.outcome is (Outcome.ANSWER if i % 10 else Outcome.TIMEOUT), (i, r)


def test_an_answer_to_another_question_never_ends_a_query() -> None:
    """A late answer to an earlier user of an ID is ignored; the real answer still counts."""
    from handlers.net.transport import UDPMux as _UDPMux
    from handlers.net.wire import encode_question

    async def run() -> None:
        loop = asyncio.get_running_loop()
        mux = _UDPMux(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        q_new = encode_question("new.example", 16)
        fut: asyncio.Future[bytes] = loop.create_future()
        mux.expect(7, fut, 5.0, q_new)
        stale = b"\x00\x07\x81\x80" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + encode_question("old.example", 16)
        mux.datagram_received(stale)
        assert not fut.done()
        old_fut: asyncio.Future[bytes] = loop.create_future()
        mux.forget(7, old_fut)  # the older query's cleanup leaves the newer entry alone
        real = b"\x00\x07\x81\x80" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + q_new
        mux.datagram_received(real)
        mux.sock.close()
        assert fut.done() and fut.result() == real

    asyncio.run(run())


# -- a slow server inside the timeout is answering, not dead ---------------------------
# `--timeout` is how long the user waits for one answer. Delays here are modest (the test
# server holds each answer `delay` seconds); assertions are about outcomes, never speed.
SLOW_RECORDS = {
    **{(f"n{i}.example", "A"): ["192.0.2.1"] for i in range(12)},
    ("1.2.0.192.in-addr.arpa", "PTR"): ["mail.slow.example"],
    ("mail.slow.example", "A"): ["192.0.2.1"],
}


async def test_an_answer_late_within_the_timeout_is_accepted() -> None:
    # The retransmission at half the timeout goes out first; the answer to the first
    # datagram still counts (same ID, same question).
    with ZoneServer(SLOW_RECORDS, delay=1.2) as server:
        resolver = Resolver(nameservers=[server.address], timeout=2.0)
        result = await resolver.query("n0.example", "A")
        assert result.outcome is Outcome.ANSWER, result
        assert result.addresses == ["192.0.2.1"]
        assert len(server.queries) == 2  # the datagram and its retransmission
        assert resolver.stats.asked == 2 and resolver.stats.answered == 1


async def test_bulk_lookups_accept_late_answers_within_the_timeout() -> None:
    with ZoneServer(SLOW_RECORDS, delay=1.2) as server:
        resolver = Resolver(nameservers=[server.address], timeout=2.0)
        results = await resolver.query_many([(f"n{i}.example", "A", "group") for i in range(12)])
    assert [r.outcome for r in results] == [Outcome.ANSWER] * 12


async def test_a_server_that_answers_after_the_timeout_is_slow_not_dead() -> None:
    # Each answer comes after the lookup gave up; but it came, so the breaker must not
    # stop asking (a later lookup is still sent and waits its own timeout).
    with ZoneServer(SLOW_RECORDS, delay=0.9) as server:
        resolver = Resolver(nameservers=[server.address], timeout=0.6)
        first = await resolver.query("n0.example", "A")
        await asyncio.sleep(0.6)  # the late answer arrives meanwhile
        second = await resolver.query("n1.example", "A")
    assert first.outcome is Outcome.TIMEOUT and second.outcome is Outcome.TIMEOUT
    assert "not asked" not in second.error
    assert ("n1.example.", "A", "udp") in server.queries


async def test_a_never_answering_server_still_ends_in_one_timeout(blackhole: int) -> None:
    resolver = Resolver(nameservers=[("127.0.0.1", blackhole)], timeout=0.6)
    t0 = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(
        resolver.query("a.example", "A"),
        resolver.query_many([(f"b{i}.example", "A", "g") for i in range(5)]),
    ), 10)
    assert results[0].outcome is Outcome.TIMEOUT
    assert {r.outcome for r in results[1]} == {Outcome.TIMEOUT}
    assert resolver.stats.asked == 12  # each datagram once more at half the timeout, no other query
    assert time.monotonic() - t0 < 5  # no hang


def test_the_cli_gets_verdicts_from_a_slow_server_inside_the_timeout() -> None:
    with ZoneServer(SLOW_RECORDS, delay=1.2) as server:
        p = subprocess.run(
            [sys.executable, "-m", "bot", "--json", "--nameserver", f"{server.host}:{server.port}",
             "--timeout", "2", "ip", "192.0.2.1"],
            capture_output=True, text=True, timeout=120,
        )
    assert p.returncode in (0, 1), p.stderr
    report = json.loads(p.stdout)
    ptr = [f for f in report["findings"] if f["code"].startswith("ptr.")]
    assert [f["severity"] for f in ptr] == ["ok"], ptr  # FCrDNS verified through the slow server


# -- the bulk path (query_many) drives the same core: same outcomes for the same answers --
@pytest.mark.parametrize("case", sorted(ODD))
async def test_odd_answers_are_never_definitive_in_bulk_lookups(odd: Callable[..., OddServer], case: str) -> None:
    responder, tcp_closes = ODD[case]
    server = odd(responder, tcp_closes)
    resolver = Resolver(nameservers=[("127.0.0.1", server.port)], timeout=0.6)
    out = await asyncio.wait_for(resolver.query_many([("x.example", "A", "g"), ("y.example", "TXT", "g")]), 10)
    for res in out:
        assert not res.definitive and res.outcome in (Outcome.ERROR, Outcome.TIMEOUT), res
        assert res.describe()


async def test_a_truncated_answer_in_bulk_lookups_is_asked_again_over_tcp() -> None:
    big = [f"v=spf1 ip4:192.0.2.{i} " + "x" * 200 for i in range(12)]
    with ZoneServer({("big.example", "TXT"): big, ("a.example", "A"): ["192.0.2.1"]}) as server:
        resolver = Resolver(nameservers=[server.address], timeout=2.0)
        big_res, a_res = await asyncio.wait_for(
            resolver.query_many([("big.example", "TXT", "g"), ("a.example", "A", "g")]), 20
        )
        assert big_res.ok and len(big_res.texts) == 12
        assert a_res.addresses == ["192.0.2.1"]
        assert ("big.example.", "TXT", "tcp") in server.queries
        assert resolver.slots().free == resolver.concurrency  # the TCP retry gave its slot back
