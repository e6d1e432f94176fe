"""Hostile HTTP requests against `mailcheck serve` (real server on loopback, local Slack Web API).

1. malformed: N unsigned requests (bad JSON, `payload=` that isn't JSON, a non-numeric
   timestamp) and N signed ones with the same bodies -> status codes and log lines written;
2. slow clients: headers trickled / a body that never completes -> how long the server
   holds the connection and what it answers (MAILCHECK_HTTP_READ_TIMEOUT, default 10 s);
3. duplicates: N `/mailcheck ip` commands, each resent with X-Slack-Retry-Num and replayed
   byte for byte -> reports posted per command.

    python benchmarks/hostile_http.py [-n 100] [--hold-limit 100]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.serve import serve
from bot.slack import SlackSettings
from tests.dnsworld import running_world
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signed_headers, slash_body

BODIES = [("{not json", "application/json"), ("payload=%7Bnot-json", "application/x-www-form-urlencoded")]


async def malformed(base: str, n: int, log: io.StringIO) -> None:
    url = base + "/slack/events"
    statuses: Counter[str] = Counter()
    start = len(log.getvalue().splitlines())
    async with aiohttp.ClientSession() as s:
        for i in range(n):
            body, ctype = BODIES[i % 2]
            kinds = {
                "unsigned": {"Content-Type": ctype},
                "bad timestamp": {"Content-Type": ctype, "X-Slack-Request-Timestamp": "soon",
                                  "X-Slack-Signature": "v0=00"},
                "signed": signed_headers(body, content_type=ctype),
            }
            for kind, headers in kinds.items():
                async with s.post(url, data=body.encode(), headers=headers) as r:
                    statuses[f"{kind}:{r.status}"] += 1
    await asyncio.sleep(0.2)
    lines = log.getvalue().splitlines()[start:]
    tracebacks = sum(1 for ln in lines if ln.startswith("Traceback"))
    print(f"malformed: {3 * n} requests -> {dict(sorted(statuses.items()))}; "
          f"{len(lines)} log lines ({len(lines) / (3 * n):.1f} per request), {tracebacks} tracebacks")


async def slow(port: int, what: str, limit: float) -> None:
    body = slash_body("good.example", "http://127.0.0.1:9/hook")
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body).items())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    answer = b""
    try:
        if what == "headers":
            writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
            i = 0
            while time.monotonic() - t0 < limit and not reader.at_eof():
                writer.write(f"X-Pad-{i}: a\r\n".encode())
                await writer.drain()
                i += 1
                try:
                    answer += await asyncio.wait_for(reader.read(1024), 1.0)
                except TimeoutError:
                    continue
                if answer:
                    break
        else:
            writer.write(f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n"
                         f"{body[:10]}".encode())
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(1024), limit)
            except TimeoutError:
                pass
        with_status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed, no answer)"
        held = time.monotonic() - t0
        still = " — still open at the limit" if held >= limit else ""
        print(f"slow {what}: held {held:.1f} s, answer {with_status}{still}")
    except ConnectionError as exc:
        print(f"slow {what}: connection dropped after {time.monotonic() - t0:.1f} s ({type(exc).__name__})")
    finally:
        writer.close()


async def duplicates(base: str, fake: FakeSlack, n: int) -> None:
    url = base + "/slack/events"
    hooks = [fake.new_hook() for _ in range(n)]
    async with aiohttp.ClientSession() as s:
        for hook in hooks:
            body = slash_body("ip 192.0.2.1", hook)
            headers = signed_headers(body)
            for h in (headers, signed_headers(body) | {"X-Slack-Retry-Num": "1"}, headers):
                async with s.post(url, data=body.encode(), headers=h) as r:
                    await r.read()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(_hooks(fake, h) for h in hooks):
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    per = Counter(len(_hooks(fake, h)) for h in hooks)
    print(f"duplicates: {n} commands sent 3 times each (original, X-Slack-Retry-Num resend, replay) -> "
          f"reports per command: {dict(sorted(per.items()))}")


def _hooks(fake: FakeSlack, hook: str) -> list[Any]:
    suffix = hook.rsplit("/", 1)[-1]
    return [c for c in fake.hooks if c.method == f"hook/{suffix}"]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="malformed requests per kind (default 100)")
    ap.add_argument("--commands", type=int, default=30, help="commands for the duplicate test (default 30)")
    ap.add_argument("--hold-limit", type=float, default=100.0, help="give up on a slow connection after (s)")
    args = ap.parse_args()
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    with running_world() as world, tempfile.TemporaryDirectory() as tmp:
        fake = await FakeSlack().start()
        try:
            settings = SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=fake.api_url,
                                     port=0, host="127.0.0.1", database_url=f"sqlite:///{tmp}/db.sqlite",
                                     nameservers=world.nameserver_spec, dns_timeout=1.0, run_scheduler=False)
            stop = asyncio.Event()
            ready = asyncio.Event()
            info: dict[str, Any] = {}
            task = asyncio.ensure_future(serve(settings, stop=stop,
                                               ready=lambda i: (info.update(i), ready.set())))
            await asyncio.wait_for(ready.wait(), 30)
            base = f"http://127.0.0.1:{info['port']}"
            await malformed(base, args.n, log)
            await slow(info["port"], "headers", args.hold_limit)
            await slow(info["port"], "body", args.hold_limit)
            await duplicates(base, fake, args.commands)
            stop.set()
            await asyncio.wait_for(task, 30)
        finally:
            await fake.close()


if __name__ == "__main__":
    asyncio.run(main())
