"""Storage on real databases: SQLite file and the machine's PostgreSQL.

Exactly-once digests under concurrent runners (asyncio tasks and OS
processes), restarts between claim and post, missed slots, time zones,
cross-workspace isolation, event dedupe, rate limits, Slack OAuth stores.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import bot.digest as digest
from bot.storage import DigestJob, Store, WatchInputError, default_sqlite_path, resolve_url
from bot.storage.migrate import current_revision, head_revision
from tests import test_storage_backends as backends
from tests.test_storage_backends import Recorder, fake_report

db_url = backends.db_url  # fixtures: SQLite and PostgreSQL
store = backends.store

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def fake_audits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Digests without DNS: every target 'audits' to one warning (the claim logic is under test)."""
    seen: list[str] = []

    async def fake(watch: Any, resolver: Any) -> Any:
        seen.append(watch.target)
        return fake_report(watch.target)

    monkeypatch.setattr(digest, "audit_target", fake)
    return seen


# -- URLs and migrations ------------------------------------------------------------------
def test_default_url_and_rewrites(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_sqlite_path() == tmp_path / "mailcheck" / "mailcheck.db"
    assert resolve_url().url == f"sqlite+aiosqlite:///{tmp_path}/mailcheck/mailcheck.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert str(default_sqlite_path()).endswith(".local/share/mailcheck/mailcheck.db")
    assert resolve_url("sqlite:////abs/x.db").url == "sqlite+aiosqlite:////abs/x.db"
    assert resolve_url("sqlite:///rel.db").url == "sqlite+aiosqlite:///rel.db"
    pg = resolve_url("postgres://u:secret@db.example:5432/app?sslmode=require")
    assert pg.url.startswith("postgresql+asyncpg://u:secret@db.example:5432/app") and "ssl=require" in pg.url
    assert "secret" not in pg.redacted()
    assert resolve_url("postgresql://u@h/d").dialect == "postgresql"
    sp = resolve_url("postgresql://u@h/d?options=-csearch_path%3Dmine")
    assert sp.connect_args == {"server_settings": {"search_path": "mine"}} and "options" not in sp.url
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/d")
    assert resolve_url().dialect == "postgresql"
    with pytest.raises(ValueError):
        resolve_url("mysql://u@h/d")


async def test_migrates_once_idempotent(db_url: str) -> None:
    opened = await asyncio.gather(*(Store.open(db_url) for _ in range(3)), return_exceptions=True)  # concurrent first use
    stores = [s for s in opened if isinstance(s, Store)]
    try:
        failures = [s for s in opened if not isinstance(s, Store)]
        assert not failures, f"a concurrent first open failed: {failures!r}"
        async with stores[0].engine.begin() as conn:
            rev = await conn.run_sync(current_revision)
        assert rev == head_revision() == "0004_target_checks"
    finally:
        for s in stores:
            await s.close()
    again = await Store.open(db_url)
    await again.close()


# -- dedupe, settings, rate limits ---------------------------------------------------------
async def test_claim_event_once_across_replicas(db_url: str) -> None:
    a, b = await Store.open(db_url), await Store.open(db_url)
    try:
        results = await asyncio.gather(*((a if i % 2 else b).claim_event("T1", "Ev1") for i in range(20)))
        assert sorted(results) == [False] * 19 + [True]
        assert await a.claim_event("T2", "Ev1") is True  # another workspace's event id space
        assert await b.claim_event("T1", "Ev2") is True
    finally:
        await a.close()
        await b.close()


async def test_settings_are_scoped(store: Store) -> None:
    await store.set_setting("T1", "team", "lang", "ja")
    await store.set_setting("T1", "channel:C1", "autodetect", "off")
    await store.set_setting("T1", "user:U1", "lang", "en")
    await store.set_setting("T1", "team", "lang", "en")  # update
    assert await store.get_setting("T1", "team", "lang") == "en"
    assert await store.get_setting("T1", "channel:C1", "autodetect") == "off"
    assert await store.get_setting("T1", "user:U1", "lang") == "en"
    assert await store.get_setting("T2", "team", "lang") is None
    assert await store.get_setting("T2", "channel:C1", "autodetect") is None


async def test_rate_limit_shared_and_atomic(db_url: str, mid_window_clock: None) -> None:
    a, b = await Store.open(db_url), await Store.open(db_url)
    try:
        waits = await asyncio.gather(*((a if i % 2 else b).rate_limit("T1:user:U1", 10, 3600) for i in range(30)))
        assert sum(w == 0 for w in waits) == 10 and sum(w > 0 for w in waits) == 20
        assert await a.rate_limit("T2:user:U1", 10, 3600) == 0
    finally:
        await a.close()
        await b.close()


# -- watches -----------------------------------------------------------------------------
async def test_watch_crud_and_isolation(store: Store) -> None:
    w = await store.add_watch("T1", "C1", "Example.COM.", "weekly mon 09:00", "Asia/Tokyo", ["s1"], "U1", now=T0)
    assert (w.target, w.kind, w.schedule, w.tz, w.selectors, w.created_by) == (
        "example.com", "domain", "weekly mon 09:00", "Asia/Tokyo", ["s1"], "U1")
    ip = await store.add_watch("T1", "C1", "2001:DB8:0::10", now=T0)
    assert (ip.target, ip.kind, ip.schedule, ip.tz) == ("2001:db8::10", "ip", "daily 09:00", "UTC")
    await store.add_watch("T2", "C9", "other.example", now=T0)
    # re-adding updates the schedule (one watch per channel and target)
    w2 = await store.add_watch("T1", "C1", "example.com", "daily 18:00", "UTC", now=T0)
    assert w2.id == w.id and w2.schedule == "daily 18:00"
    assert [x.target for x in await store.list_watches("T1")] == ["2001:db8::10", "example.com"]
    assert [x.target for x in await store.list_watches("T2")] == ["other.example"]
    assert await store.list_watches("T3") == []
    assert len(await store.list_watches()) == 3  # operator view
    # another workspace cannot remove it, even with the same channel id
    assert await store.remove_watch("T2", "C1", "example.com") is False
    assert await store.remove_watch("T1", "C1", "EXAMPLE.com") is True
    assert await store.remove_watch("T1", "C1", "example.com") is False
    assert sorted(await store.team_ids()) == ["T1", "T2"]
    for bad in ("not a domain!", "-x.example"):
        with pytest.raises(WatchInputError):
            await store.add_watch("T1", "C1", bad)
    with pytest.raises(WatchInputError, match="schedule"):
        await store.add_watch("T1", "C1", "a.example", "every hour")
    with pytest.raises(WatchInputError, match="time zone"):
        await store.add_watch("T1", "C1", "a.example", "daily 09:00", "Nowhere/City")


async def test_first_digest_is_next_slot_and_missed_slots_post_once(store: Store, fake_audits: list[str]) -> None:
    w = await store.add_watch("T1", "C1", "a.example", "daily 09:00", "Asia/Tokyo", now=T0 + timedelta(hours=1))
    # added at 10:00 JST -> first digest tomorrow 09:00 JST
    assert w.next_run_at == T0 + timedelta(days=1)
    assert await store.claim_due(T0 + timedelta(hours=23)) == []
    # down for 5 days: one digest when back, not five
    back = T0 + timedelta(days=6, hours=3)
    jobs = await store.claim_due(back)
    assert len(jobs) == 1 and jobs[0].slot == T0 + timedelta(days=6)
    assert await store.claim_due(back) == []
    rec = Recorder()
    stats = await digest.run_jobs(store, jobs, post=rec, now=back)
    assert stats.posted == 1 and len(rec.posts) == 1
    (watch,) = await store.list_watches("T1")
    assert watch.next_run_at == T0 + timedelta(days=7) and watch.last_run_at is not None
    assert await store.claim_due(back + timedelta(hours=12)) == []
    assert len(await store.claim_due(T0 + timedelta(days=7))) == 1


async def test_new_york_slots_across_dst(store: Store) -> None:
    await store.add_watch("T1", "C1", "ny.example", "daily 09:00", "America/New_York",
                          now=datetime(2026, 3, 5, 20, tzinfo=UTC))
    await store.add_watch("T1", "C2", "jp.example", "weekdays 09:00", "Asia/Tokyo",
                          now=datetime(2026, 3, 5, 20, tzinfo=UTC))
    ny_slots, jp_slots = [], []
    t = datetime(2026, 3, 5, 20, tzinfo=UTC)
    while t < datetime(2026, 3, 11, tzinfo=UTC):
        t += timedelta(minutes=30)
        for job in await store.claim_due(t, lease_s=86400 * 30):  # never posted here: keep the leases
            (ny_slots if job.channel_id == "C1" else jp_slots).append(job.slot)
    assert [s.hour for s in ny_slots] == [14, 14, 13, 13, 13]  # EST -> EDT on 2026-03-08
    assert [s.astimezone(UTC).hour for s in jp_slots] == [0] * 4  # Fri, Mon, Tue, Wed (no weekend)
    assert [s.weekday() for s in jp_slots] == [4, 0, 1, 2]


# -- exactly once -------------------------------------------------------------------------------
async def _seed(store: Store, channels: int, per_channel: int, team: str = "T1") -> None:
    for c in range(channels):
        for i in range(per_channel):
            await store.add_watch(team, f"C{c}", f"t{i}.c{c}.example", "daily 09:00", "UTC",
                                  now=datetime.now(UTC) - timedelta(days=2))


async def test_concurrent_tasks_claim_each_digest_once(db_url: str, fake_audits: list[str]) -> None:
    seed = await Store.open(db_url)
    await _seed(seed, channels=12, per_channel=3)
    await _seed(seed, channels=3, per_channel=2, team="T2")
    runners = [await Store.open(db_url) for _ in range(5)]
    rec = Recorder()
    try:
        results = await asyncio.gather(*(digest.run_due(s, post=rec, batch=4) for s in runners))
        assert sum(r.posted for r in results) == 15
        channels = [(team, ch) for team, ch, _m in rec.posts]
        assert len(channels) == len(set(channels)) == 15
        runs = await seed.digest_runs()
        assert {r["status"] for r in runs} == {"posted"} and len(runs) == 15
        assert await seed.claim_due() == []
    finally:
        for s in [seed, *runners]:
            await s.close()


def _spawn(url: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.test_storage_backends", url, str(out), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []


async def test_two_processes_post_each_digest_once(db_url: str, tmp_path: Path) -> None:
    seed = await Store.open(db_url)
    await _seed(seed, channels=20, per_channel=2)
    await _seed(seed, channels=2, per_channel=60, team="T2")  # two long digests: 2 messages each
    out = tmp_path / "posts.jsonl"
    procs = [_spawn(db_url, out) for _ in range(2)]
    for p in procs:
        _stdout, err = await asyncio.to_thread(p.communicate, timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    posts = _lines(out)
    keys = [(p["team"], p["channel"], p["text"]) for p in posts]
    assert len(keys) == len(set(keys)) == 20 + 2 * 2
    assert {(p["team"], p["channel"]) for p in posts} == {("T1", f"C{i}") for i in range(20)} | {
        ("T2", "C0"), ("T2", "C1")}
    assert all(p["blocks"] <= 50 for p in posts)
    runs = await seed.digest_runs()
    assert len(runs) == 22 and {r["status"] for r in runs} == {"posted"}
    await seed.close()


async def test_process_killed_after_claim_is_recovered_once(db_url: str, tmp_path: Path) -> None:
    seed = await Store.open(db_url)
    await _seed(seed, channels=3, per_channel=1)
    out = tmp_path / "posts.jsonl"
    crashed = _spawn(db_url, out, "--lease", "1", "--crash-after-claim")
    await asyncio.to_thread(crashed.communicate, timeout=60)
    assert crashed.returncode == 17 and _lines(out) == []
    assert len(await seed.claim_due(lease_s=1)) == 0  # leases still valid: nobody else takes them
    await asyncio.sleep(1.2)
    good = _spawn(db_url, out, "--lease", "30")
    await asyncio.to_thread(good.communicate, timeout=60)
    posts = _lines(out)
    assert sorted(p["channel"] for p in posts) == ["C0", "C1", "C2"]
    runs = await seed.digest_runs()
    assert {r["status"] for r in runs} == {"posted"} and {r["attempts"] for r in runs} == {2}
    await seed.close()


async def test_process_killed_mid_post_resumes_without_repeating(db_url: str, tmp_path: Path) -> None:
    seed = await Store.open(db_url)
    await _seed(seed, channels=1, per_channel=60)  # one digest, two messages
    out = tmp_path / "posts.jsonl"
    crashed = _spawn(db_url, out, "--lease", "1", "--crash-after-part", "1")
    await asyncio.to_thread(crashed.communicate, timeout=60)
    assert crashed.returncode == 17
    assert [p["text"].endswith("(part 2 of 2)") for p in _lines(out)] == [False]
    await asyncio.sleep(1.2)
    good = _spawn(db_url, out, "--lease", "30")
    await asyncio.to_thread(good.communicate, timeout=60)
    posts = _lines(out)
    assert len(posts) == 2 and posts[1]["text"].endswith("(part 2 of 2)")
    assert posts[0]["pid"] != posts[1]["pid"]
    (run,) = await seed.digest_runs()
    assert run["status"] == "posted" and run["parts_posted"] == 2 and len(json.loads(run["message_ts"])) == 2
    await seed.close()


async def test_restart_between_claim_and_post_in_process(store: Store, fake_audits: list[str]) -> None:
    await store.add_watch("T1", "C1", "a.example", now=datetime.now(UTC) - timedelta(days=2))
    jobs = await store.claim_due(lease_s=1)
    assert len(jobs) == 1  # ... and the runner "dies" here
    assert await store.claim_due(lease_s=1) == []  # lease held: nobody else takes it
    await asyncio.sleep(1.1)
    again = await store.claim_due(lease_s=1)
    assert [j.run_id for j in again] == [jobs[0].run_id] and again[0].attempts == 2
    with pytest.raises(RuntimeError):  # this runner computes the digest, then dies while posting
        await digest.run_jobs(store, again, post=Recorder(fail_after=0), lease_s=1)
    await asyncio.sleep(1.1)
    final = await store.claim_due(lease_s=30)
    assert len(final) == 1 and final[0].status == "ready" and final[0].payload  # kept, not recomputed
    audits_before = len(fake_audits)
    rec = Recorder()
    assert (await digest.run_jobs(store, final, post=rec, lease_s=30)).posted == 1
    assert len(rec.posts) == 1 and len(fake_audits) == audits_before
    # the stale claims can no longer mark or post anything
    assert await store.mark_posted(jobs[0]) is False
    assert await store.renew(again[0]) is False
    assert await store.claim_due() == []


async def test_failing_digest_gives_up_after_max_attempts(store: Store, fake_audits: list[str]) -> None:
    await store.add_watch("T1", "C1", "a.example", now=T0)
    t = T0 + timedelta(days=1, hours=1)
    for _ in range(5):
        jobs = await store.claim_due(t)
        assert len(jobs) == 1
        t += timedelta(minutes=11)
    assert await store.claim_due(t) == []
    (run,) = await store.digest_runs()
    assert run["status"] == "failed"


async def test_snapshots_are_per_workspace_and_channel(store: Store) -> None:
    await store.put_snapshot("T1", "C1", "a.example", {"subject": "a.example", "v": 1})
    await store.put_snapshot("T1", "C1", "a.example", {"subject": "a.example", "v": 2})
    got = await store.get_snapshot("T1", "C1", "a.example")
    assert got is not None and got[1]["v"] == 2
    assert await store.get_snapshot("T2", "C1", "a.example") is None
    assert await store.get_snapshot("T1", "C2", "a.example") is None
    assert await store.get_snapshots("T2", "C1", ["a.example"]) == {}


async def test_claim_now_does_not_touch_schedule(store: Store) -> None:
    w = await store.add_watch("T1", "C1", "a.example", now=T0)
    await store.add_watch("T2", "C1", "b.example", now=T0)
    jobs = await store.claim_now("T1")
    assert [(j.team_id, j.kind, j.targets) for j in jobs] == [("T1", "manual", ["a.example"])]
    again = await store.claim_now("T1")  # a second "digest now" is a second digest
    assert again[0].run_id != jobs[0].run_id
    (w2,) = await store.list_watches("T1")
    assert w2.next_run_at == w.next_run_at


# -- Slack OAuth stores on the same database ---------------------------------------------------------
async def test_installation_and_state_stores(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from slack_sdk.oauth.installation_store import Installation

    monkeypatch.delenv("SLACK_CLIENT_ID", raising=False)
    inst_store = store.installation_store("111.222")
    await inst_store.async_save(Installation(app_id="A1", team_id="T9", user_id="U1", bot_token="xoxb-nine",
                                             bot_id="B1", bot_user_id="UB1", installed_at=time.time()))
    bot = await inst_store.async_find_bot(enterprise_id=None, team_id="T9")
    assert bot is not None and bot.bot_token == "xoxb-nine"
    assert await store.bot_token("T9") == "xoxb-nine"
    assert await store.bot_token("T1") is None
    assert await store.installed_team_ids() == ["T9"]
    states = store.oauth_state_store(expiration_seconds=60)
    state = await states.async_issue()
    results = await asyncio.gather(*(states.async_consume(state) for _ in range(5)))
    assert results.count(True) == 1
    assert await states.async_consume("nope") is False


def test_sqlite_default_file_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    code = ("import asyncio\nfrom bot.storage import Store\n"
            "async def m():\n s = await Store.open()\n await s.add_watch('T1','C1','a.example')\n await s.close()\n"
            "asyncio.run(m())\n")
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    assert (tmp_path / "xdg" / "mailcheck" / "mailcheck.db").exists()


# -- the database going away mid-run (benchmarks/chaos.py does it with a real PostgreSQL restart) ----
class _PgGate:
    """A TCP proxy to the machine's PostgreSQL that can be cut like a restart: its
    backends are terminated (pg_terminate_backend, from a separate admin connection)
    and new connections are refused until it reopens."""

    def __init__(self) -> None:
        self.port = 0
        self.server: asyncio.base_events.Server | None = None
        self.upstream_ports: set[int] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(backends.PG_HOST, backends.PG_PORT)
        except OSError:
            cw.close()
            return
        self.upstream_ports.add(uw.get_extra_info("sockname")[1])

        async def copy(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                w.close()

        await asyncio.gather(copy(cr, uw), copy(ur, cw))

    async def cut(self, admin: Any, down_s: float) -> int:
        assert self.server is not None
        self.server.close()  # refuse new connections ...
        killed = await admin.fetchval(  # ... and drop the live ones server-side, as a restart does
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
            list(self.upstream_ports))
        asyncio.get_running_loop().call_later(down_s, lambda: asyncio.ensure_future(self.open()))
        return int(killed)


async def test_scheduler_survives_dropped_connections_and_posts_once(fake_audits: list[str]) -> None:
    got = await backends.pg_connect()
    assert got is not None
    admin, user = got
    schema = f"mc_test_{os.urandom(6).hex()}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    gate = _PgGate()
    await gate.open()
    url = f"postgresql://{user}@127.0.0.1:{gate.port}/{backends.PG_DB}?options=-csearch_path%3D{schema}"
    store = await Store.open(url)
    try:
        await _seed(store, channels=3, per_channel=1)
        posts: list[str] = []
        cuts: list[int] = []
        admin_lock = asyncio.Lock()  # one asyncpg connection: one operation at a time

        async def post(team_id: str, channel_id: str, message: dict[str, Any]) -> str | None:
            posts.append(channel_id)
            if len(posts) == 1:  # Slack took the message; the database goes away before it is recorded
                async with admin_lock:
                    cuts.append(await gate.cut(admin, down_s=1.0))
            return f"{len(posts)}.000"

        stop = asyncio.Event()
        task = asyncio.create_task(digest.run_scheduler(store, stop, interval=0.2, post=post, lease_s=30))
        deadline = time.monotonic() + 30
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            async with admin_lock:  # the scheduler's post() may be cutting connections with it
                rows = await admin.fetch(f'SELECT status, attempts FROM "{schema}".digest_runs')
            runs = [dict(r) for r in rows]
            if len(runs) == 3 and all(r["status"] == "posted" for r in runs):
                break
        stop.set()
        await asyncio.wait_for(task, 10)
        assert cuts and cuts[0] >= 1  # the store's connections really were terminated
        assert sorted(posts) == ["C0", "C1", "C2"]  # each digest once: none lost, none repeated
        assert [(r["status"], r["attempts"]) for r in runs] == [("posted", 1)] * 3  # the claim was kept
    finally:
        await store.close()
        if gate.server is not None:
            gate.server.close()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def test_store_calls_are_safe_to_retry(store: Store, fake_audits: list[str]) -> None:
    """A retry after a lost commit acknowledgement: same outcome, nothing doubled."""
    from bot.storage import is_transient_error

    await _seed(store, channels=1, per_channel=1)
    (job,) = await store.claim_due(lease_s=30)
    payload = {"messages": [{"text": "a", "blocks": []}, {"text": "b", "blocks": []}]}
    assert await store.save_prepared(job, payload, {}, lease_s=30)
    assert await store.save_prepared(job, payload, {}, lease_s=30)  # retried: still ours
    assert await store.mark_part_posted(job, 0, "1.0") and await store.mark_part_posted(job, 0, "1.0")
    assert job.message_ts == ["1.0"] and job.parts_posted == 1
    assert not await store.save_prepared(job, payload, {}, lease_s=30)  # a part is out: no rewrite
    assert await store.mark_part_posted(job, 1, "2.0")
    assert await store.mark_posted(job) and await store.mark_posted(job)  # retried: still True
    (run,) = await store.digest_runs()
    assert run["status"] == "posted" and json.loads(run["message_ts"]) == ["1.0", "2.0"]
    assert is_transient_error(ConnectionRefusedError()) and not is_transient_error(ValueError("x"))


async def _orphaned_part(store: Store) -> tuple[DigestJob, list[dict[str, Any]]]:
    """A digest whose runner died after handing part 0 to Slack, before recording it."""
    await _seed(store, channels=1, per_channel=1)
    (job,) = await store.claim_due(lease_s=1)
    channel_history: list[dict[str, Any]] = []

    async def dying_post(team_id: str, channel_id: str, message: dict[str, Any]) -> str | None:
        channel_history.append(message)
        raise RuntimeError("killed before the answer")

    with pytest.raises(RuntimeError):
        await digest.run_jobs(store, [job], post=dying_post, lease_s=1)
    await asyncio.sleep(1.1)
    (again,) = await store.claim_due(lease_s=30)
    return again, channel_history


async def test_resumed_digest_does_not_repost_a_part_slack_already_has(store: Store, fake_audits: list[str]) -> None:
    """Killed after Slack accepted part 0 but before it was recorded: the next runner finds it
    by its metadata (conversations.history) and records it instead of posting it again."""
    again, channel_history = await _orphaned_part(store)
    assert again.attempts == 2 and again.status == "ready" and again.parts_posted == 0
    rec = Recorder()
    looked: list[tuple[int, int]] = []

    async def find_posted(team_id: str, channel_id: str, run_id: int, part: int, since: datetime) -> str | None:
        looked.append((run_id, part))
        for m in channel_history:
            if m["metadata"]["event_payload"] == {"run_id": run_id, "part": part}:
                return "9.000"
        return None

    rec.find_posted = find_posted  # type: ignore[attr-defined]
    assert (await digest.run_jobs(store, [again], post=rec, lease_s=30)).posted == 1
    assert rec.posts == [] and looked == [(again.run_id, 0)]
    (run,) = await store.digest_runs()
    assert run["status"] == "posted" and json.loads(run["message_ts"]) == ["9.000"]


class _HistoryError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.response = {"ok": False, "error": error}


async def test_a_part_in_doubt_waits_while_slack_history_cannot_be_read(
    store: Store, fake_audits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """History unreadable for a passing reason (Slack 5xx, rate limit after retries): the
    digest is retried later instead of posting what may already be in the channel."""
    monkeypatch.setattr(digest, "FIND_RETRY_S", 1)
    job, channel_history = await _orphaned_part(store)
    rec = Recorder()
    outage = [True]

    async def find_posted(team_id: str, channel_id: str, run_id: int, part: int, since: datetime) -> str | None:
        if outage[0]:
            raise _HistoryError("internal_error")
        hit = [m for m in channel_history if m["metadata"]["event_payload"] == {"run_id": run_id, "part": part}]
        return "9.000" if hit else None

    rec.find_posted = find_posted  # type: ignore[attr-defined]
    stats = await digest.run_jobs(store, [job], post=rec, lease_s=30)
    assert stats.posted == 0 and rec.posts == []
    (run,) = await store.digest_runs()
    assert run["status"] != "posted" and "could not check Slack" in run["error"]
    outage[0] = False
    await asyncio.sleep(1.1)
    (third,) = await store.claim_due(lease_s=30)
    assert (await digest.run_jobs(store, [third], post=rec, lease_s=30)).posted == 1
    assert rec.posts == []  # found in the channel: recorded, not posted again
    (run,) = await store.digest_runs()
    assert run["status"] == "posted" and json.loads(run["message_ts"]) == ["9.000"]


async def test_a_part_in_doubt_is_posted_when_history_can_never_be_read(
    store: Store, fake_audits: list[str]
) -> None:
    """Without the history scope there is no way to tell: post (at least once beats never)."""
    job, _ = await _orphaned_part(store)
    rec = Recorder()

    async def find_posted(team_id: str, channel_id: str, run_id: int, part: int, since: datetime) -> str | None:
        raise _HistoryError("missing_scope")

    rec.find_posted = find_posted  # type: ignore[attr-defined]
    assert (await digest.run_jobs(store, [job], post=rec, lease_s=30)).posted == 1
    assert len(rec.posts) == 1


async def test_a_part_in_doubt_is_posted_on_the_last_claim_if_history_never_comes_back(
    store: Store, fake_audits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for history must not cost the digest itself: the last claim the store
    allows posts it (late, and perhaps twice, beats never)."""
    from bot.storage.store import MAX_ATTEMPTS

    monkeypatch.setattr(digest, "FIND_RETRY_S", 1)
    job, _ = await _orphaned_part(store)
    rec = Recorder()

    async def find_posted(team_id: str, channel_id: str, run_id: int, part: int, since: datetime) -> str | None:
        raise _HistoryError("ratelimited")

    rec.find_posted = find_posted  # type: ignore[attr-defined]
    while True:
        stats = await digest.run_jobs(store, [job], post=rec, lease_s=30)
        if stats.posted:
            break
        assert job.attempts < MAX_ATTEMPTS and rec.posts == []
        await asyncio.sleep(1.1)
        (job,) = await store.claim_due(lease_s=30)
    assert job.attempts == MAX_ATTEMPTS and len(rec.posts) == 1
    (run,) = await store.digest_runs()
    assert run["status"] == "posted"
