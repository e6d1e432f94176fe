"""Digests past one worker: 1, 2 and 4 worker processes on one PostgreSQL, the curve.

    python benchmarks/digest_workers.py [--targets 10000] [--shared 2000] [--delay 0.020]
                                        [--workers 1,2,4] [--concurrency 64] [--database URL]

Generates a zone with `targets` domains (as benchmarks/digest_scale.py does), serves it
with the real test DNS world behind the delaying proxy (one proxy process per worker, so
the proxy's own CPU is not the limit), and watches every domain in workspace T1 (20 per
channel); the first `shared` domains are watched again by workspace T2, so the run has
more watches than distinct targets. For each worker count, every watch is made due,
the shared checks, runs and snapshots are cleared, and that many worker processes run
one `run_due` pass each (claim, audit, diff, render; posting is a no-op: Slack is not
part of the figure) against PostgreSQL (a fresh schema in 127.0.0.1:5432/test unless
--database is given). Printed: wall time, targets/s and its ratio to one worker (goal
>= 3.5x at 4 workers), DNS queries per distinct target, and the audits run in all
against the distinct targets (goal: equal — no target checked twice in the interval).
The machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.digest_scale import ZONE, _world_without_rrl, start_proxy, zone_text  # noqa: E402

PER_CHANNEL = 20


async def _setup(url: str, targets: int, shared: int) -> None:
    from sqlalchemy import insert

    from bot.storage import Store
    from bot.storage import tables as t

    store = await Store.open(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    past = now - timedelta(days=2)
    rows = [
        {"team_id": team, "channel_id": f"C{i // PER_CHANNEL:04d}", "target": f"d{i:05d}.{ZONE}", "kind": "domain",
         "schedule": "daily 09:00", "tz": "UTC", "selectors": "[]", "created_at": now, "next_run_at": past,
         "last_run_at": None}
        for team, n in (("T1", targets), ("T2", shared))
        for i in range(n)
    ]
    async with store.engine.begin() as conn:
        await conn.execute(insert(t.watches), rows)
    await store.close()


async def _reset(url: str) -> None:
    from sqlalchemy import delete, update

    from bot.storage import Store
    from bot.storage import tables as t

    store = await Store.open(url)
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)
    async with store.engine.begin() as conn:
        for table in (t.target_checks, t.digest_runs, t.snapshots):
            await conn.execute(delete(table))
        await conn.execute(update(t.watches).values(next_run_at=past, last_run_at=None))
    await store.close()


async def _worker(url: str, nameserver: tuple[str, int], concurrency: int) -> dict[str, Any]:
    import bot.digest as digest
    from bot.storage import Store
    from handlers.net import Resolver

    audited = 0
    real = digest.audit_target

    async def counting(watch: Any, resolver: Any) -> Any:
        nonlocal audited
        audited += 1
        return await real(watch, resolver)

    digest.audit_target = counting  # type: ignore[assignment]  # counts; the real audit runs
    resolvers: list[Resolver] = []

    def factory() -> Resolver:
        r = Resolver(nameservers=[nameserver], timeout=3.0, concurrency=concurrency)
        resolvers.append(r)
        return r

    async def post(team: str, channel: str, message: dict[str, Any]) -> str | None:
        return f"{time.time():.6f}"

    store = await Store.open(url)
    t0 = time.monotonic()
    stats = await digest.run_due(store, post=post, resolver_factory=factory, batch=50)
    wall = time.monotonic() - t0
    await store.close()
    asked = sum(r.stats.as_dict().get("asked", 0) for r in resolvers)
    cpu = time.process_time()
    return {"wall": wall, "audited": audited, "asked": asked, "posted": stats.posted, "jobs": stats.jobs, "cpu": cpu}


def _run_workers(n: int, url: str, proxies: list[tuple[str, int]], concurrency: int) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", url, f"{proxies[i][0]}:{proxies[i][1]}", str(concurrency)],
            stdout=subprocess.PIPE, cwd=ROOT,
        )
        for i in range(n)
    ]
    t0 = time.monotonic()
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        outs.append(json.loads(out.decode().strip().splitlines()[-1]))
    wall = time.monotonic() - t0
    return {"wall": wall, "workers": outs}


async def _schema() -> tuple[str, Any]:
    from tests.test_storage_backends import PG_DB, PG_HOST, PG_PORT, pg_connect

    got = await pg_connect()
    if got is None:
        raise SystemExit("PostgreSQL at 127.0.0.1:5432 (database test) is needed")
    conn, user = got
    schema = f"mc_bench_{uuid.uuid4().hex[:10]}"
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    return f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}?options=-csearch_path%3D{schema}", schema


async def _drop(schema: str) -> None:
    from tests.test_storage_backends import pg_connect

    got = await pg_connect()
    if got is not None:
        conn, _ = got
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        url, ns, conc = sys.argv[2], sys.argv[3], int(sys.argv[4])
        host, _, port = ns.rpartition(":")
        if os.environ.get("DIGEST_WORKERS_PROFILE"):
            from pyinstrument import Profiler

            with Profiler(async_mode="disabled") as prof:
                out = asyncio.run(_worker(url, (host, int(port)), conc))
            Path(os.environ["DIGEST_WORKERS_PROFILE"]).write_text(prof.output_text(unicode=False, color=False))
        else:
            out = asyncio.run(_worker(url, (host, int(port)), conc))
        print(json.dumps(out))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--shared", type=int, default=2_000, help="of those, watched by a second workspace too")
    ap.add_argument("--delay", type=float, default=0.020)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--concurrency", type=int, default=64, help="DNS queries in flight per worker")
    ap.add_argument("--database", help="PostgreSQL URL (default: a fresh schema in 127.0.0.1:5432/test)")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]

    import tests.dnsworld as dw

    schema = None
    url = args.database
    if url is None:
        url, schema = asyncio.run(_schema())
    zones = Path(tempfile.mkdtemp(prefix="mailcheck-workers-zones-"))
    for p in dw.ZONES.iterdir():
        shutil.copy(p, zones / p.name)
    (zones / f"{ZONE}.zone").write_text(zone_text(args.targets))
    dw.ZONES = zones
    world = _world_without_rrl(dw)(Path(tempfile.mkdtemp(prefix="mailcheck-workers-dns-")))
    stops = []
    results: dict[int, dict[str, Any]] = {}
    try:
        world.start()
        proxies = []
        for _ in range(max(counts)):
            host, port, stop = start_proxy(("127.0.0.1", world.port), args.delay)
            proxies.append((host, port))
            stops.append(stop)
        asyncio.run(_setup(url, args.targets, args.shared))
        for n in counts:
            asyncio.run(_reset(url))
            results[n] = _run_workers(n, url, proxies, args.concurrency)
    finally:
        for stop in stops:
            stop()
        world.stop()
        shutil.rmtree(world.workdir, ignore_errors=True)
        shutil.rmtree(zones, ignore_errors=True)
        if schema:
            asyncio.run(_drop(schema))
    load = os.getloadavg()
    print(f"digest_workers: {args.targets} distinct targets ({args.targets + args.shared} watches, two workspaces), "
          f"{args.delay * 1000:.0f} ms per DNS answer, {args.concurrency} queries in flight per worker, PostgreSQL")
    print(f"  machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    base = None
    ok = True
    for n, r in results.items():
        audited = sum(w["audited"] for w in r["workers"])
        asked = sum(w["asked"] for w in r["workers"])
        posted = sum(w["posted"] for w in r["workers"])
        jobs = sum(w["jobs"] for w in r["workers"])
        rate = args.targets / r["wall"]
        base = base or rate
        ok = ok and audited == args.targets and posted == jobs
        print(f"  {n} worker(s): {r['wall']:6.1f} s  {rate:7.1f} targets/s  {rate / base:4.2f}x  "
              f"audits {audited} for {args.targets} targets  {asked / args.targets:5.1f} DNS queries/target  "
              f"digests {posted}/{jobs}  worker CPU {sum(w['cpu'] for w in r['workers']):.1f} s")
        print("      per worker: " + ", ".join(f"{w['jobs']} digests/{w['audited']} audits in {w['wall']:.1f} s"
                                          for w in r["workers"]))
    if len(results) > 1:
        last = max(results)
        print(f"  scaling 1 -> {last} workers: {args.targets / results[last]['wall'] / base:.2f}x (goal >= 3.5x at 4)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
