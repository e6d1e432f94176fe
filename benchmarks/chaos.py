"""Chaos: PostgreSQL restarted and a runner SIGKILLed during a digest run -> every due
digest posted exactly once.

    python benchmarks/chaos.py [--channels 20] [--per-channel 2] [--long-channels 2]
                               [--runners 2] [--lease 10] [--interval 1] [--batch 4]
                               [--latency 0.15] [--pg-down 3] [--timeout 300] [--keep-schema]

NOT part of the pytest suite: it restarts the machine's PostgreSQL
(`pg_ctlcluster --skip-systemctl-redirect <version> main restart`).

1. a fresh schema in 127.0.0.1:5432/test; the fake Slack Web API
   (tests/slack_fakes.py, in a thread of this process, answering each
   chat.postMessage after `--latency` s and keeping the channel history with
   message metadata for conversations.history, real-clock ts); the real DNS world
   (tests/dnsworld.py, NSD rate limiting off as in digest_scale.py); `channels` x `per-channel` watches on world domains plus
   `long-channels` channels with 60 watches (multi-part digests), all due now;
2. `runners` runner processes (`python benchmarks/chaos.py runner`: run_scheduler
   with `--lease`, `--interval`, `--batch`), each with its own bot token so the fake
   knows who posted; DATABASE_URL, SLACK_API_URL, SLACK_BOT_TOKEN and
   MAILCHECK_NAMESERVERS set as in production;
3. worst-case timing, chosen by the fake itself: at the post that is 1/4 through,
   it SIGKILLs the posting runner AFTER recording the message and BEFORE answering
   (the message is in the channel, the runner never learns it: the at-least-once
   window); a replacement runner is started. At the post 1/2 through it restarts
   PostgreSQL (stop, `--pg-down` s, start; `pg_ctlcluster restart` alone is down
   ~0.2 s, which the pool's pre-ping hides) and answers only once PostgreSQL
   refuses connections (pg_isready), so that runner's `mark_part_posted` meets
   the database down;
4. waits until every due digest is `posted` in the store (or `--timeout`), stops
   the runners (SIGTERM), and checks the fake's record against the stored
   digests: every part of every due digest posted exactly once, nothing else.

Prints a summary table; exit 0 only with no duplicate, no missing part, no stray post.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
TEAM = "T1"
DOMAINS = ["good.example", "weak.example", "badspf.example", "badmx.example", "broken.example",
           "digest-a.example", "internal.example", "isp.example", "lookups.example", "msg.example",
           "multi.example", "nomx.example", "nothing.example", "nullmx.example", "plusall.example",
           "revoked.example", "thirdparty.example"]


def pg_restart_cmd(down_s: float) -> list[str]:
    """`pg_ctlcluster ... restart`, or with `down_s` > 0: stop, stay down that long, start."""
    ctl = f"pg_ctlcluster --skip-systemctl-redirect {sorted(os.listdir('/etc/postgresql'))[-1]} main"
    if down_s <= 0:
        return ["sh", "-c", f"{ctl} restart"]
    return ["sh", "-c", f"{ctl} stop && sleep {down_s} && {ctl} start"]


# -- the runner process --------------------------------------------------------------------
async def runner_main(lease: int, interval: float, batch: int) -> int:
    import logging

    from bot.digest import DIGEST_QUERY_CONCURRENCY, run_scheduler
    from bot.storage import Store, StoreError
    from handlers.net import Resolver, nameservers_from_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = nameservers_from_env()

    def resolver() -> Resolver:
        return Resolver(nameservers=servers, timeout=2.0, concurrency=DIGEST_QUERY_CONCURRENCY)

    delay = 0.5
    while True:  # the database may be restarting when we start
        try:
            store = await Store.open()
            break
        except StoreError as exc:
            logging.warning("store not available yet: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
    try:
        await run_scheduler(store, stop, interval=interval, lease_s=lease, batch=batch, resolver_factory=resolver)
    finally:
        await store.close()
    return 0


# -- the fake Slack, in a thread ------------------------------------------------------------
@dataclass
class Chaos:
    kill_at: int  # kill the runner posting the kill_at-th message (1-based), before answering it
    restart_at: int  # start a PG restart at the restart_at-th message
    latency: float
    pg_down: float
    runners: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # token -> process
    killed: list[tuple[str, float]] = field(default_factory=list)
    restarts: list[subprocess.Popen[bytes]] = field(default_factory=list)
    restart_started: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_fake(chaos: Chaos) -> Any:
    from aiohttp import web

    from tests.slack_fakes import FakeSlack

    class ChaosSlack(FakeSlack):
        """FakeSlack + a channel history with metadata + the chaos triggers."""

        def __init__(self) -> None:
            super().__init__()
            self.history: dict[str, list[dict[str, Any]]] = {}
            self.n_posts = 0
            self.last_ts = 0.0

        def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
            out = super()._answer(method, params)
            if method == "chat.postMessage":
                # a real-clock ts (as Slack's), so `oldest=` in conversations.history means what it does there
                self.last_ts = max(time.time(), self.last_ts + 1e-6)
                out["ts"] = f"{self.last_ts:.6f}"
                meta = params.get("metadata")
                if isinstance(meta, str):
                    meta = json.loads(meta)
                self.history.setdefault(str(params.get("channel")), []).append(
                    {"type": "message", "ts": out["ts"], "text": params.get("text"), "bot_id": "BBOT",
                     "metadata": meta})
            if method == "conversations.history":
                with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
                oldest = float(params.get("oldest") or 0)
                msgs = [dict(m) for m in reversed(self.history.get(str(params.get("channel")), []))
                        if float(m["ts"]) >= oldest]
                for m in msgs:
                    if not with_meta or not m.get("metadata"):
                        m.pop("metadata", None)
                out = {"ok": True, "messages": msgs, "has_more": False}
            return out

        async def _api(self, request: web.Request) -> web.Response:
            method = request.match_info["method"]
            resp = await super()._api(request)  # recorded (and in the history) from here on
            if method != "chat.postMessage":
                return resp
            self.n_posts += 1
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            with chaos.lock:
                if self.n_posts == chaos.kill_at and not chaos.killed:
                    proc = chaos.runners.get(token)
                    if proc is not None and proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)  # Slack has the message; the runner never hears back
                        chaos.killed.append((token, time.monotonic()))
                restart = self.n_posts == chaos.restart_at and not chaos.restarts
                if restart:
                    chaos.restart_started.append(time.monotonic())
                    chaos.restarts.append(subprocess.Popen(pg_restart_cmd(chaos.pg_down), stdout=subprocess.DEVNULL,
                                                           stderr=subprocess.PIPE))
            if restart:  # answer once PostgreSQL refuses: the runner's mark_part_posted meets the outage
                for _ in range(200):
                    probe = await asyncio.create_subprocess_exec(
                        "pg_isready", "-h", PG_HOST, "-p", str(PG_PORT), "-t", "1",
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                    if await probe.wait() != 0:
                        break
                    await asyncio.sleep(0.02)
                return resp
            await asyncio.sleep(chaos.latency)
            return resp

    return ChaosSlack()


class FakeThread(threading.Thread):
    def __init__(self, chaos: Chaos) -> None:
        super().__init__(daemon=True)
        self.chaos = chaos
        self.ready = threading.Event()
        self.fake: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.fake = make_fake(self.chaos)
        self.loop.run_until_complete(self.fake.start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.fake.close())

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(10)

    def posts(self) -> list[Any]:
        return [c for c in list(self.fake.calls) if c.method == "chat.postMessage"]


# -- orchestration ----------------------------------------------------------------------------
@contextlib.contextmanager
def _stopping(world: Any) -> Iterator[Any]:
    try:
        yield world
    finally:
        world.stop()
        shutil.rmtree(world.workdir, ignore_errors=True)


async def pg_admin() -> Any:
    import asyncpg

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database=PG_DB, timeout=5)
        except Exception as exc:
            last = exc
    raise SystemExit(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}/{PG_DB}: {last}")


async def seed(store: Any, channels: int, per_channel: int, long_channels: int) -> list[str]:
    past = datetime.now(UTC) - timedelta(days=2)
    sched = f"daily {(datetime.now(UTC) - timedelta(hours=1)):%H:%M}"  # due now; next slot ~23 h away
    chans: list[str] = []
    k = 0
    for c in range(channels):
        ch = f"C{c:03d}"
        chans.append(ch)
        for _ in range(per_channel):
            await store.add_watch(TEAM, ch, DOMAINS[k % len(DOMAINS)], sched, "UTC", now=past)
            k += 1
    for c in range(long_channels):
        ch = f"CL{c:02d}"
        chans.append(ch)
        for i in range(60):  # 60 problem targets: more blocks than one message holds
            await store.add_watch(TEAM, ch, f"h{i}.{DOMAINS[(c + i) % len(DOMAINS)]}", sched, "UTC", now=past)
    return chans


async def runs_by_channel(store: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from bot.storage import tables as t

    d = t.digest_runs.c
    async with store.engine.begin() as conn:
        rows = (await conn.execute(select(d.channel_id, d.kind, d.status, d.attempts, d.parts_posted,
                                          d.payload))).all()
    return [dict(r._mapping) for r in rows]


def spawn_runner(i: int, args: argparse.Namespace, env: dict[str, str], logdir: Path,
                 chaos: Chaos) -> subprocess.Popen[bytes]:
    token = f"xoxb-chaos-runner-{i}"
    with (logdir / f"runner{i}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "runner", "--lease", str(args.lease),
             "--interval", str(args.interval), "--batch", str(args.batch)],
            cwd=ROOT, env={**env, "SLACK_BOT_TOKEN": token}, stdout=log, stderr=subprocess.STDOUT)
    with chaos.lock:
        chaos.runners[token] = proc
    return proc


async def orchestrate(args: argparse.Namespace) -> int:
    import tests.dnsworld as dw
    from benchmarks.digest_scale import _world_without_rrl
    from bot.storage import Store

    if not dw.daemons_available():
        print("needs nsd, rbldnsd and dnsmasq (tests/dnsworld.py)", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    admin = await pg_admin()
    user = await admin.fetchval("select current_user")
    schema = f"mc_chaos_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await admin.close()
    url = f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}?options=-csearch_path%3D{schema}"
    n_digests = args.channels + args.long_channels
    chaos = Chaos(kill_at=max(2, n_digests // 4), restart_at=max(3, n_digests // 2), latency=args.latency,
                  pg_down=args.pg_down)
    fake = FakeThread(chaos)
    fake.start()
    fake.ready.wait(30)
    procs: list[subprocess.Popen[bytes]] = []
    store = await Store.open(url)
    result = 1
    try:
        # NSD's response rate limiting off (as in digest_scale.py): 120 NXDOMAIN targets from several
        # runners at once otherwise get answers dropped and an audit runs into its 120 s timeout
        world = _world_without_rrl(dw)(Path(tempfile.mkdtemp(prefix="mailcheck-chaos-dns-")))
        world.start()
        with _stopping(world), tempfile.TemporaryDirectory(prefix="mailcheck-chaos-") as tmp:
            chans = await seed(store, args.channels, args.per_channel, args.long_channels)
            logdir = Path(args.logs) if args.logs else Path(tmp)
            logdir.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, DATABASE_URL=url, SLACK_API_URL=fake.fake.api_url,
                       MAILCHECK_NAMESERVERS=world.nameserver_spec, PYTHONUNBUFFERED="1")
            for k in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "MAILCHECK_SECRET_KEY"):
                env.pop(k, None)
            t_run = time.monotonic()
            procs = [spawn_runner(i, args, env, logdir, chaos) for i in range(args.runners)]
            replaced = False
            done = False
            pg_down_s = 0.0
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                if chaos.killed and not replaced:
                    procs.append(spawn_runner(len(procs), args, env, logdir, chaos))
                    replaced = True
                if chaos.restarts and not pg_down_s and chaos.restarts[0].poll() is not None:
                    pg_down_s = time.monotonic() - chaos.restart_started[0]
                    if chaos.restarts[0].returncode != 0:
                        err = chaos.restarts[0].stderr.read().decode() if chaos.restarts[0].stderr else ""
                        print(f"PostgreSQL restart failed: {err}", file=sys.stderr)
                try:
                    runs = await runs_by_channel(store)
                except Exception:  # PostgreSQL restarting: ask again
                    continue
                posted = {r["channel_id"] for r in runs if r["status"] == "posted"}
                open_runs = [r for r in runs if r["status"] in ("claimed", "ready")]
                if posted >= set(chans) and not open_runs and (not chaos.restarts or pg_down_s):
                    done = True
                    break
            t_done = time.monotonic() - t_run
            await asyncio.sleep(max(1.0, args.interval * 2))  # anything late would show up now
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
            runs = await runs_by_channel(store)
            logs = "".join(f.read_text(errors="replace") for f in sorted(logdir.glob("runner*.log")))
            result = report(args, chans, runs, fake.posts(), chaos, procs, logs, done=done,
                            t_done=t_done, pg_down_s=pg_down_s, wall=time.monotonic() - t_start)
            if result and not args.logs:
                for f in sorted(logdir.glob("runner*.log")):
                    print(f"--- {f.name} (last 40 lines)\n" + "\n".join(f.read_text().splitlines()[-40:]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        await store.close()
        fake.stop()
        for r in chaos.restarts:
            r.wait(120)
        subprocess.run(["pg_isready", "-h", PG_HOST, "-t", "60"], check=False, stdout=subprocess.DEVNULL)
        if not args.keep_schema:
            admin = await pg_admin()
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.close()
    return result


def report(args: argparse.Namespace, chans: list[str], runs: list[dict[str, Any]], posts: list[Any],
           chaos: Chaos, procs: list[subprocess.Popen[bytes]], logs: str, *, done: bool, t_done: float,
           pg_down_s: float, wall: float) -> int:
    by_chan: dict[str, list[Any]] = {}
    for p in posts:
        by_chan.setdefault(str(p.params.get("channel")), []).append(p)
    once = duplicated = missing_digests = 0
    missing_parts = dup_parts = stray = parts_total = 0
    problems: list[str] = []
    for ch in chans:
        ch_runs = [r for r in runs if r["channel_id"] == ch]
        posted_runs = [r for r in ch_runs if r["status"] == "posted"]
        if len(posted_runs) != 1 or len(ch_runs) != 1:
            problems.append(f"{ch}: {len(ch_runs)} digest run(s), {len(posted_runs)} posted")
        want = [json.dumps([m["text"], m["blocks"]], sort_keys=True)
                for r in posted_runs for m in json.loads(r["payload"] or "{}").get("messages", [])]
        parts_total += len(want)
        got = Counter(json.dumps([p.params.get("text"), p.params.get("blocks")], sort_keys=True)
                      for p in by_chan.get(ch, []))
        d = sum(max(0, got[w] - 1) for w in set(want))
        m = sum(1 for w in set(want) if got[w] == 0)
        s = sum(n for k, n in got.items() if k not in set(want))
        dup_parts, missing_parts, stray = dup_parts + d, missing_parts + m, stray + s
        if not posted_runs or m:
            missing_digests += 1
        elif d or s or len(posted_runs) > 1:
            duplicated += 1
        else:
            once += 1
        if d or m or s:
            problems.append(f"{ch}: {len(want)} part(s), {d} duplicated, {m} missing, {s} stray")
    stray += sum(len(v) for k, v in by_chan.items() if k not in set(chans))
    reclaimed = sum(1 for r in runs if r["attempts"] > 1)
    found = logs.count("already in Slack")
    retries = logs.count("database unavailable")
    tracebacks = logs.count("Traceback")
    rows = [
        ("digests due", n := len(chans)),
        ("message parts due", parts_total),
        ("digests posted exactly once", once),
        ("digests duplicated", duplicated),
        ("digests missing / incomplete", missing_digests),
        ("parts duplicated", dup_parts),
        ("parts missing", missing_parts),
        ("stray posts", stray),
        ("chat.postMessage calls", len(posts)),
        ("posts per runner", " ".join(f"{k.rsplit('-', 1)[-1]}:{v}" for k, v in sorted(Counter(
            p.headers.get("Authorization", "").rsplit("-", 1)[-1] for p in posts).items()))),
        ("PostgreSQL restarts", len(chaos.restarts)),
        ("PostgreSQL restart took (s)", f"{pg_down_s:.1f} ({'stop, ' + str(args.pg_down) + ' s, start' if args.pg_down > 0 else 'restart'})"),
        ("runners SIGKILLed mid-post", len(chaos.killed)),
        ("runner processes started", len(procs)),
        ("digests re-claimed (attempts > 1)", reclaimed),
        ("in-doubt parts found in Slack, not re-posted", found),
        ("store calls retried (database away)", retries),
        ("tracebacks in runner logs", tracebacks),
        ("lease / interval / batch", f"{args.lease} s / {args.interval} s / {args.batch}"),
        ("all posted after (s)", f"{t_done:.1f}" if done else f"TIMEOUT {t_done:.0f}"),
        ("wall time (s)", f"{wall:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nchaos: PostgreSQL restart + SIGKILL during a digest run")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    ok = done and once == n and not (dup_parts or missing_parts or stray) and len(chaos.restarts) == 1 \
        and len(chaos.killed) == 1
    for p in problems:
        print("  !", p)
    if not chaos.killed or not chaos.restarts:
        print("  ! chaos not fully injected (fewer posts than the trigger points?)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("runner", help="(internal) one digest runner process")
    for p in (ap, r):
        p.add_argument("--lease", type=int, default=10, help="claim lease, seconds (default 10)")
        p.add_argument("--interval", type=float, default=1.0, help="scheduler interval, seconds (default 1)")
        p.add_argument("--batch", type=int, default=4, help="channels per claim (default 4)")
    ap.add_argument("--channels", type=int, default=20)
    ap.add_argument("--per-channel", type=int, default=2)
    ap.add_argument("--long-channels", type=int, default=2, help="channels with 60 watches (multi-part)")
    ap.add_argument("--runners", type=int, default=2)
    ap.add_argument("--latency", type=float, default=0.15, help="fake Slack answer delay, seconds")
    ap.add_argument("--pg-down", type=float, default=3.0,
                    help="restart = stop, stay down this long, start (0: `pg_ctlcluster restart`, ~0.2 s down)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--keep-schema", action="store_true")
    ap.add_argument("--logs", help="keep the runner logs in this directory")
    args = ap.parse_args(argv)
    if args.cmd == "runner":
        return asyncio.run(runner_main(args.lease, args.interval, args.batch))
    return asyncio.run(orchestrate(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
