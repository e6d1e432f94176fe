"""Slack ack latency while audits run (DESIGN.md "Benchmarks").

Starts the real app in HTTP mode on loopback, the local Slack Web API and the
real DNS test world (NSD + rbldnsd + dnsmasq; `slow.example` never answers),
then:
1. starts BACKGROUND domain audits (good/weak/slow.example ...) and, while they run,
2. fires N concurrent signed `/mailcheck` slash commands (audits, IP and SPF checks),
3. records the HTTP time of each ack, and waits until every report is posted.
Peer in the same run: a bare slack-bolt AsyncApp whose listener only acks,
under the same concurrency and signing. Target: p99 < 300 ms (Slack allows 3 s).

    python benchmarks/slack_ack.py [-n 50] [--background 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.serve import build_web_app
from bot.slack import SlackSettings, create_app, runtime_of
from bot.storage import Store
from tests.dnsworld import daemons_available, running_world
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signed_headers, slash_body

COMMANDS = ["good.example", "weak.example", "ip 192.0.2.1", "spf good.example 192.0.2.1", "slow.example",
            "domain multi.example", "help", "nothing.example"]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


async def fire(session: aiohttp.ClientSession, url: str, fake: FakeSlack, texts: list[str]) -> list[float]:
    async def one(i: int, text: str) -> float:
        body = slash_body(text, fake.new_hook(), user=f"U{i}")
        headers = signed_headers(body)
        t0 = time.perf_counter()
        async with session.post(url, data=body.encode(), headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return time.perf_counter() - t0

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(texts))))


async def peer_latencies(n: int) -> list[float]:
    """A bare Bolt app that only acks: the floor for signing + dispatch on this machine."""
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    fake = await FakeSlack().start()
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url))

    @app.command("/mailcheck")
    async def only_ack(ack: Any) -> None:
        await ack("ok")

    server = TestServer(app.web_app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        url = str(server.make_url("/slack/events"))
        await fire(session, url, fake, ["help"])  # auth.test once
        lat = await fire(session, url, fake, ["good.example"] * n)
    await server.close()
    await fake.close()
    return lat


async def main(n: int, background: int) -> int:
    if not daemons_available():
        print("needs nsd, rbldnsd and dnsmasq (apt-get install -y nsd rbldnsd dnsmasq-base)", file=sys.stderr)
        return 2
    with running_world() as world, tempfile.TemporaryDirectory() as tmp:
        fake = await FakeSlack().start()
        store = await Store.open(f"sqlite:///{tmp}/bench.db")
        settings = SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=fake.api_url,
                                 nameservers=world.nameserver_spec, dns_timeout=2.0, check_deadline=30.0)
        app = create_app(settings, store=store)
        rt = runtime_of(app)
        await rt.warm()  # as `mailcheck serve` does before listening
        server = TestServer(build_web_app(app), host="127.0.0.1")
        await server.start_server()
        url = str(server.make_url("/slack/events"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await fire(session, url, fake, ["help"])  # auth.test once, like a warm server
            t0 = time.perf_counter()
            bg = await fire(session, url, fake, [COMMANDS[i % 5] for i in range(background)])
            running = len(rt.tasks)
            lat = await fire(session, url, fake, [COMMANDS[i % len(COMMANDS)] for i in range(n)])
            during = len(rt.tasks)
            expected = background + n - sum(1 for i in range(n) if COMMANDS[i % len(COMMANDS)] == "help")
            await fake.wait_for(lambda: len({c.method for c in fake.hooks}) >= expected, timeout=120)
            total = time.perf_counter() - t0
            await rt.idle(60)
        await server.close()
        await store.close()
        await fake.close()
    peer = await peer_latencies(n)
    p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
    q50, q99 = pct(peer, 50) * 1000, pct(peer, 99) * 1000
    print(f"background audits started: {background} (ack p50 {pct(bg, 50) * 1000:.1f} ms); "
          f"checks running when the burst began: {running}, right after it: {during}")
    print(f"mailcheck: {n} concurrent slash commands: ack p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
          f"max {max(lat) * 1000:.1f} ms  mean {statistics.mean(lat) * 1000:.1f} ms")
    print(f"peer (bare slack-bolt app, ack only, same concurrency): p50 {q50:.1f} ms  p99 {q99:.1f} ms")
    print(f"ratio mailcheck/peer: p50 {p50 / q50:.2f}x  p99 {p99 / q99:.2f}x")
    print(f"all {expected} reports posted via response_url after {total:.1f} s")
    ok = p99 < 300
    print(f"target p99 < 300 ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="concurrent slash commands (default 50)")
    ap.add_argument("--background", type=int, default=20, help="audits started before the burst (default 20)")
    a = ap.parse_args()
    raise SystemExit(asyncio.run(main(a.n, a.background)))
