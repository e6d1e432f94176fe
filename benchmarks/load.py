"""Load: `mailcheck serve` (HTTP mode, its own process) under signed Slack requests.

Scenarios (`--scenario`):
- `mix` (default): 200 signed requests spread over 60 s, described below.
- `burst`: 500 slash commands from 500 users sent at once (the MIX's commands):
  every one acked and answered once, 0 errors; ack p99 (goal < 300 ms) beside a
  bare slack-bolt app's under the same burst, in the same run (benchmarks/bare_bolt.py).
- `hostile`: 20 users each audit `hostile.example` (1,000 MX hosts, see
  tools/gen_hostile_zone.py) and, while those run, `/mailcheck help` is sent every
  50 ms: its ack p99 (goal < 300 ms) beside the bare app's for the same help
  requests; every audit answered (none past the deadline), RSS before and after.

The server is the real `python -m bot serve --mode http` on loopback, talking to
the local fake Slack Web API (tests/slack_fakes.py) and the real DNS test world
(tests/dnsworld.py: NSD + rbldnsd + dnsmasq; `slow.example` never answers, so
its audits hit the check deadline). The mix: domain audits of the fixture
domains (incl. slow.example), `ip`, `spf`, `bounce` (help text) and pasted
bounces (signed Events API message events, answered in a thread).

Recorded: every ack latency (target: all < 3 s), errors (target: 0 — a non-200
answer, a request that failed, a report that never arrived, an "unexpectedly
failed" answer, or a non-timeout count in mailcheck_errors_total), and the
server's RSS (/proc/PID/status VmRSS) after start-up and at the end (target:
growth < 20 %).

    python benchmarks/load.py [-n 200] [--seconds 60]
    python benchmarks/load.py --scenario burst [-n 500]
    python benchmarks/load.py --scenario hostile [--audits 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dnsworld import daemons_available, running_world  # noqa: E402
from tests.slack_fakes import (  # noqa: E402
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    event_body,
    signed_headers,
    slack_escape,
    slash_body,
)

BOUNCE = """<someone@gmail.com>: host gmail-smtp-in.l.google.com[142.250.102.27] said:
    550-5.7.26 This mail has been blocked because the sender is
    unauthenticated. Gmail requires all senders to authenticate with either
    SPF or DKIM. 550 5.7.26 https://support.google.com/mail/answer/81126 - gsmtp
    (in reply to end of DATA command)
Final-Recipient: rfc822; someone@gmail.com
Status: 5.7.26
"""
# (kind, text); weights give a realistic mix
MIX: list[tuple[str, str, int]] = [
    ("command", "good.example", 4),
    ("command", "weak.example", 3),
    ("command", "domain multi.example", 2),
    ("command", "nothing.example", 2),
    ("command", "slow.example", 2),
    ("command", "ip 192.0.2.1", 3),
    ("command", "ip 198.51.100.7", 1),
    ("command", "spf good.example 192.0.2.1", 2),
    ("command", "spf weak.example 192.0.2.10", 1),
    ("command", "bounce", 1),
    ("paste", BOUNCE, 4),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


async def wait_healthy(session: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            async with session.get(base + "/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("server did not become healthy in 60 s")


async def wait_idle(session: aiohttp.ClientSession, base: str, *, seconds: float) -> None:
    """Until /healthz reports no background task left (or `seconds` pass)."""
    for _ in range(int(seconds / 0.2)):
        async with session.get(base + "/healthz") as r:
            if (await r.json()).get("tasks") == 0:
                return
        await asyncio.sleep(0.2)


async def metrics_errors(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(base + "/metrics") as r:
        text = await r.text()
    out: dict[str, float] = {}
    for m in re.finditer(r'^mailcheck_errors_total\{where="([^"]+)"\} ([0-9.e+]+)$', text, re.MULTILINE):
        out[m.group(1)] = float(m.group(2))
    return out


async def main(n: int, seconds: float, deadline_s: float) -> int:
    if not daemons_available():
        print("needs nsd, rbldnsd and dnsmasq (apt-get install -y nsd rbldnsd dnsmasq-base)", file=sys.stderr)
        return 2
    rng = random.Random(8)
    plan: list[tuple[str, str]] = []
    population = [(k, t) for k, t, w in MIX for _ in range(w)]
    for _ in range(n):
        plan.append(rng.choice(population))
    with running_world() as world, tempfile.TemporaryDirectory() as tmp:
        fake = await FakeSlack().start()
        port = free_port()
        env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake.api_url,
                   DATABASE_URL=f"sqlite:///{tmp}/load.db", MAILCHECK_NAMESERVERS=world.nameserver_spec,
                   MAILCHECK_DNS_TIMEOUT="2", MAILCHECK_CHECK_DEADLINE=str(deadline_s), LOG_LEVEL="WARNING")
        for k in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
            env.pop(k, None)
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--mode", "http"], cwd=ROOT, env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        url = base + "/slack/events"
        latencies: list[float] = []
        errors: list[str] = []
        expected_hooks: set[str] = set()
        expected_threads: set[str] = set()
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                await wait_healthy(session, base, proc)
                rss_start = rss_kb(proc.pid)

                async def one(i: int, kind: str, text: str) -> None:
                    user = f"U{i % 40}"
                    if kind == "command":
                        hook = fake.new_hook()
                        body = slash_body(text, hook, user=user)
                        headers = signed_headers(body)
                        if text != "bounce":
                            expected_hooks.add(hook.rsplit("/", 1)[-1])
                    else:
                        ts = f"{1700100000 + i}.000100"
                        ev = {"type": "message", "channel": "C1", "channel_type": "channel", "user": user,
                              "ts": ts, "text": slack_escape(text)}
                        body = event_body(ev, event_id=f"EvLoad{i}")
                        headers = signed_headers(body, content_type="application/json")
                        expected_threads.add(ts)
                    t0 = time.perf_counter()
                    try:
                        async with session.post(url, data=body.encode(), headers=headers,
                                                timeout=aiohttp.ClientTimeout(total=10)) as resp:
                            await resp.read()
                            if resp.status != 200:
                                errors.append(f"#{i} {text[:20]!r}: HTTP {resp.status}")
                    except Exception as exc:  # a refused / timed-out ack is an error
                        errors.append(f"#{i} {text[:20]!r}: {type(exc).__name__}")
                    latencies.append(time.perf_counter() - t0)

                t_start = time.perf_counter()
                tasks = []
                for i, (kind, text) in enumerate(plan):
                    at = t_start + seconds * i / n
                    await asyncio.sleep(max(0.0, at - time.perf_counter()))
                    tasks.append(asyncio.ensure_future(one(i, kind, text)))
                await asyncio.gather(*tasks)
                sent_in = time.perf_counter() - t_start

                def arrived() -> bool:
                    hooks = {c.method.split("/", 1)[1] for c in fake.hooks}
                    threads = {c.params.get("thread_ts") for c in fake.posts()}
                    return expected_hooks <= hooks and expected_threads <= threads

                try:
                    await fake.wait_for(arrived, timeout=deadline_s + 60)
                except AssertionError:
                    hooks = {c.method.split("/", 1)[1] for c in fake.hooks}
                    threads = {c.params.get("thread_ts") for c in fake.posts()}
                    errors.append(f"missing answers: {len(expected_hooks - hooks)} commands, "
                                  f"{len(expected_threads - threads)} pastes")
                done_in = time.perf_counter() - t_start
                # idle: no background task left
                await wait_idle(session, base, seconds=20)
                rss_end = rss_kb(proc.pid)
                errs = await metrics_errors(session, base)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            await fake.close()
        answers = [json.dumps(c.params, ensure_ascii=False) for c in fake.hooks + fake.posts()]
        failed_answers = sum("failed unexpectedly" in a for a in answers)
        timeouts = sum("took too long" in a for a in answers)
        if failed_answers:
            errors.append(f"{failed_answers} answers said the check failed unexpectedly")
        for where, count in errs.items():
            if where != "timeout" and count:
                errors.append(f"mailcheck_errors_total{{where={where!r}}} = {count:g}")
        server_log = log_path.read_text(errors="replace") if log_path.exists() else ""

    kinds = {t: sum(1 for _k, x in plan if x == t) for _k, t, _w in MIX}
    print(f"requests: {n} over {sent_in:.1f} s (" + ", ".join(
        f"{('paste' if t == BOUNCE else t)}: {c}" for t, c in kinds.items()) + ")")
    print(f"ack latency: p50 {pct(latencies, 50) * 1000:.1f} ms  p99 {pct(latencies, 99) * 1000:.1f} ms  "
          f"max {max(latencies) * 1000:.1f} ms  mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"answers: {len(fake.hooks)} via response_url, {len(fake.posts())} chat.postMessage; "
          f"{timeouts} answered 'took too long' (past the deadline); all answered after {done_in:.1f} s")
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start else 0.0
    print(f"server RSS: start {rss_start / 1024:.1f} MiB  end {rss_end / 1024:.1f} MiB  growth {growth:+.1f} %")
    print(f"errors: {len(errors)}")
    for e in errors[:20]:
        print(f"  {e}")
    if "Traceback" in server_log:
        print("server log has tracebacks:\n" + server_log[-3000:])
    ok = not errors and max(latencies) < 3.0 and growth < 20.0
    print(f"targets (every ack < 3 s, 0 errors, RSS growth < 20 %): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


# ----------------------------------------------------------------- burst / hostile
def server_env(world_ns: str, api_url: str, port: int, tmp: str, deadline_s: float) -> dict[str, str]:
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=api_url,
               DATABASE_URL=f"sqlite:///{tmp}/load.db", MAILCHECK_NAMESERVERS=world_ns,
               MAILCHECK_DNS_TIMEOUT="2", MAILCHECK_CHECK_DEADLINE=str(deadline_s), LOG_LEVEL="WARNING",
               # the scenarios measure acks under load, not the per-user limit
               MAILCHECK_RATE_USER="1000/60", MAILCHECK_RATE_TEAM="100000/60")
    for k in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        env.pop(k, None)
    return env


def start(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


async def post_command(session: aiohttp.ClientSession, url: str, text: str, hook: str, user: str
                       ) -> tuple[float, int, str]:
    body = slash_body(text, hook, user=user)
    headers = signed_headers(body)
    t0 = time.perf_counter()
    try:
        async with session.post(url, data=body.encode(), headers=headers,
                                timeout=aiohttp.ClientTimeout(total=30)) as resp:
            raw = await resp.text()
            return time.perf_counter() - t0, resp.status, raw
    except Exception as exc:
        return time.perf_counter() - t0, 0, type(exc).__name__


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def summary(name: str, lat: list[float]) -> str:
    return (f"{name}: ack p50 {pct(lat, 50) * 1000:.1f} ms  p99 {pct(lat, 99) * 1000:.1f} ms  "
            f"max {max(lat) * 1000:.1f} ms  (n={len(lat)})")


async def scenario(kind: str, n: int, audits: int, deadline_s: float) -> int:
    if not daemons_available():
        print("needs nsd, rbldnsd and dnsmasq (apt-get install -y nsd rbldnsd dnsmasq-base)", file=sys.stderr)
        return 2
    rng = random.Random(8)
    commands = [t for k, t, w in MIX if k == "command" for _ in range(w)]
    print(f"machine: {os.cpu_count()} CPUs, load average before: {loadavg()}")
    with running_world() as world, tempfile.TemporaryDirectory() as tmp:
        fake = await FakeSlack().start()
        port, peer_port = free_port(), free_port()
        env = server_env(world.nameserver_spec, fake.api_url, port, tmp, deadline_s)
        log_path = Path(tmp) / "server.log"
        proc = start([sys.executable, "-m", "bot", "serve", "--mode", "http"], env, log_path)
        peer = start([sys.executable, str(ROOT / "benchmarks" / "bare_bolt.py")], dict(env, PORT=str(peer_port)),
                     Path(tmp) / "peer.log")
        base, peer_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
        errors: list[str] = []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                await wait_healthy(session, base, proc)
                await wait_healthy(session, peer_base, peer)
                url, peer_url = base + "/slack/events", peer_base + "/slack/events"
                for u in (url, peer_url):  # auth.test once, like a warm server
                    await post_command(session, u, "help", fake.new_hook(), "UWARM")
                rss_start = rss_kb(proc.pid)
                expected: list[str] = []
                if kind == "burst":
                    plan = [rng.choice(commands) for _ in range(n)]
                    hooks = [fake.new_hook() for _ in plan]
                    expected = [h for h, t in zip(hooks, plan, strict=True) if t != "bounce"]
                    # The bare app first, while the mailcheck server is idle (its checks
                    # must not take the CPU from the reference).
                    peer_res = await asyncio.gather(*(post_command(session, peer_url, t, fake.new_hook(), f"UB{i}")
                                                      for i, t in enumerate(plan)))
                    await asyncio.sleep(1.0)
                    t0 = time.perf_counter()
                    res = await asyncio.gather(*(post_command(session, url, t, h, f"UB{i}")
                                                 for i, (t, h) in enumerate(zip(plan, hooks, strict=True))))
                    sent = time.perf_counter() - t0
                    print(f"burst: {n} slash commands from {n} users at once (sent and acked in {sent:.1f} s)")
                else:
                    hooks = [fake.new_hook() for _ in range(audits)]
                    expected = list(hooks)
                    bg = await asyncio.gather(*(post_command(session, url, "hostile.example", h, f"UH{i}")
                                                for i, h in enumerate(hooks)))
                    for _lat, status, raw in bg:
                        if status != 200:
                            errors.append(f"hostile audit ack: HTTP {status} {raw[:80]}")

                    def answered() -> int:
                        got = {c.method.split("/", 1)[1] for c in fake.hooks}
                        return sum(1 for h in hooks if h.rsplit("/", 1)[-1] in got)

                    res = []
                    t0 = time.perf_counter()
                    # help every 50 ms while the audits run (at least n of them)
                    pending: list[asyncio.Future[tuple[float, int, str]]] = []
                    i = 0
                    while (answered() < audits or i < n) and time.perf_counter() - t0 < deadline_s + 30:
                        pending.append(asyncio.ensure_future(
                            post_command(session, url, "help", fake.new_hook(), f"UHELP{i % 50}")))
                        i += 1
                        await asyncio.sleep(0.05)
                    res = list(await asyncio.gather(*pending))
                    busy = time.perf_counter() - t0
                    rss_peak_note = rss_kb(proc.pid)
                    peer_res = []
                    for j in range(len(res)):
                        peer_res.append(await post_command(session, peer_url, "help", fake.new_hook(),
                                                           f"UHELP{j % 50}"))
                        await asyncio.sleep(0.0)
                    print(f"hostile: {audits} users audit hostile.example; {len(res)} `/mailcheck help` "
                          f"sent every 50 ms over {busy:.1f} s while they ran")
                    print(f"server RSS right after the audits: {rss_peak_note / 1024:.1f} MiB")
                for _lat, status, raw in res:
                    if status != 200:
                        errors.append(f"ack HTTP {status}: {raw[:80]}")
                for _lat, status, raw in peer_res:
                    if status != 200:
                        errors.append(f"peer ack HTTP {status}: {raw[:80]}")

                def arrived() -> bool:
                    got = {c.method.split("/", 1)[1] for c in fake.hooks}
                    return all(h.rsplit("/", 1)[-1] in got for h in expected)

                try:
                    await fake.wait_for(arrived, timeout=deadline_s + 120)
                except AssertionError:
                    got = {c.method.split("/", 1)[1] for c in fake.hooks}
                    errors.append(f"missing answers: {sum(1 for h in expected if h.rsplit('/', 1)[-1] not in got)}")
                await wait_idle(session, base, seconds=30)
                rss_end = rss_kb(proc.pid)
                errs = await metrics_errors(session, base)
                load_after = loadavg()
        finally:
            stop(proc)
            stop(peer)
            await fake.close()
        per_hook: dict[str, list[str]] = {}
        for c in fake.hooks:
            per_hook.setdefault(c.method.split("/", 1)[1], []).append(json.dumps(c.params, ensure_ascii=False))
        ids = [h.rsplit("/", 1)[-1] for h in expected]
        first_answers = [(per_hook.get(h) or [""])[0] for h in ids]
        timeouts = sum("took too long" in a for a in first_answers)
        failed = sum("failed unexpectedly" in a for a in first_answers)
        if failed:
            errors.append(f"{failed} answers said the check failed unexpectedly")
        if timeouts:
            errors.append(f"{timeouts} answers said the check took too long")
        for where, count in errs.items():
            if count:
                errors.append(f"mailcheck_errors_total{{where={where!r}}} = {count:g}")
        server_log = log_path.read_text(errors="replace")
        if "didn't call ack()" in server_log or "Traceback" in server_log:
            errors.append("server log: " + server_log[-500:])
    lat = [r[0] for r in res]
    peer_lat = [r[0] for r in peer_res]
    print(summary("mailcheck", lat))
    print(summary("bare bolt", peer_lat))
    print(f"answers: {len(ids)} expected, {sum(1 for h in ids if h in per_hook)} answered "
          f"({timeouts} past the deadline)")
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start else 0.0
    print(f"server RSS: start {rss_start / 1024:.1f} MiB  end {rss_end / 1024:.1f} MiB  growth {growth:+.1f} %")
    print(f"load average after: {load_after}")
    print(f"errors: {len(errors)}")
    for e in errors[:20]:
        print(f"  {e}")
    ok = not errors and pct(lat, 99) < 0.3 and max(lat) < 3.0
    print(f"targets (ack p99 < 300 ms, every ack < 3 s, 0 errors): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="signed requests (default 200)")
    ap.add_argument("--seconds", type=float, default=60.0, help="spread over this many seconds (default 60)")
    ap.add_argument("--deadline", type=float, default=20.0, help="MAILCHECK_CHECK_DEADLINE for the server (20)")
    ap.add_argument("--scenario", choices=("mix", "burst", "hostile"), default="mix")
    ap.add_argument("--audits", type=int, default=20, help="hostile: concurrent hostile audits (default 20)")
    a = ap.parse_args()
    if a.scenario == "mix":
        raise SystemExit(asyncio.run(main(a.n, a.seconds, a.deadline)))
    n = a.n if a.n != 200 else (500 if a.scenario == "burst" else 60)
    raise SystemExit(asyncio.run(scenario(a.scenario, n, a.audits, a.deadline)))
