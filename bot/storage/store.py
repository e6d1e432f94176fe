"""The one storage API shared by the Slack app, the CLI and the digest scheduler.

SQLAlchemy 2 (async, Core): SQLite by default (a file, zero setup), PostgreSQL
through `DATABASE_URL` for several replicas. The schema is migrated with the
shipped Alembic revisions on `Store.open()`.

Isolation: every method that reads workspace data takes `team_id` and filters
on it (`list_watches(None)` is the operator's "all workspaces" view used by the
CLI and the scheduler only).

Exactly-once digests (see `claim_due`): due watches are claimed and their
`next_run_at` advanced in ONE transaction (PostgreSQL: row locks — `FOR
UPDATE` on the channel's due watches, `FOR UPDATE SKIP LOCKED` + `UPDATE ...
RETURNING` for expired claims; SQLite: `BEGIN IMMEDIATE`), producing a
`digest_runs` row with a lease. The runner computes the digest, stores the rendered messages in the
row (`save_prepared`), posts them one by one recording progress
(`mark_part_posted`) and finally marks the row `posted` together with the new
snapshots (`mark_posted`). A runner that dies leaves a row whose lease
expires; the next `claim_due` re-claims it (`UPDATE ... RETURNING`), and the
new runner resumes from the first part not yet posted, so nothing is lost and
nothing marked posted is posted again.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, event, func, insert, or_, select, true, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.storage import tables as t
from bot.storage.migrate import upgrade_engine
from bot.storage.url import DatabaseTarget, resolve_url
from handlers.schedule import ScheduleError, next_run, parse_schedule, parse_tz, previous_run

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "daily 09:00"
DEFAULT_LEASE_S = 600  # a claimed digest is re-claimable after 10 minutes
MAX_ATTEMPTS = 5  # claims of one digest before it is marked failed
EVENT_TTL = timedelta(days=2)  # Slack retries within minutes; keep two days
RATE_LIMIT_TTL = timedelta(days=1)  # rate-limit windows are at most minutes long; purge() drops older rows


class StoreError(Exception):
    """A storage operation could not be done (one-line message)."""


# SQLSTATEs worth retrying the whole (single-transaction) operation for: connection
# exceptions (08xxx), the server shutting down / starting up (57P01-57P03),
# serialization failures and deadlocks (40001, 40P01).
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")


def is_transient_error(exc: BaseException) -> bool:
    """True when `exc` means "the database is (briefly) unreachable", e.g. PostgreSQL
    restarting: refused/reset connections, terminated backends, "the database system
    is starting up". Every Store method is one transaction, so the caller may retry it."""
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError):  # ConnectionRefusedError, ConnectionResetError, TimeoutError
            return True
        if isinstance(e, sa_exc.DBAPIError) and (
            e.connection_invalidated or isinstance(e, sa_exc.OperationalError | sa_exc.InterfaceError)
        ):
            return True
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_TRANSIENT_SQLSTATES):
            return True
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return False


class WatchInputError(ValueError):
    """Bad target, schedule or time zone for a watch (one-line message)."""


@dataclass
class Watch:
    id: int
    team_id: str
    channel_id: str
    target: str
    schedule: str
    tz: str
    selectors: list[str]
    next_run_at: datetime  # aware UTC
    last_run_at: datetime | None
    created_at: datetime
    created_by: str | None = None
    kind: str = "domain"  # domain | ip

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "channel_id": self.channel_id,
            "target": self.target,
            "kind": self.kind,
            "schedule": self.schedule,
            "tz": self.tz,
            "selectors": list(self.selectors),
            "next_run_at": _iso(self.next_run_at),
            "last_run_at": _iso(self.last_run_at),
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
        }


@dataclass
class DigestJob:
    """One claimed digest: a channel's due watches at one slot."""

    run_id: int
    team_id: str
    channel_id: str
    slot: datetime  # aware UTC: the scheduled time (or the request time for manual runs)
    kind: str  # scheduled | manual
    watches: list[Watch]
    claim_token: str
    attempts: int = 1
    status: str = "claimed"  # claimed | ready (messages computed, maybe partly posted)
    payload: dict[str, Any] | None = None
    parts_posted: int = 0
    message_ts: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        return [w.target for w in self.watches]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _db(dt: datetime) -> datetime:
    """Aware -> naive UTC for the database (naive input is taken as UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def classify_target(raw: str) -> tuple[str, str]:
    """'Example.COM.' -> ('example.com', 'domain'); '2001:DB8::1' -> ('2001:db8::1', 'ip')."""
    from handlers.inputs import InputError, normalize_domain, normalize_ip

    text = (raw or "").strip()
    try:
        ipaddress.ip_address(text.strip("[]"))
        is_ip = True
    except ValueError:
        is_ip = False
    try:
        if is_ip:
            return normalize_ip(text), "ip"
        return normalize_domain(text).value, "domain"
    except InputError as exc:
        raise WatchInputError(str(exc)) from exc


def _watch(row: Row[Any]) -> Watch:
    m = row._mapping
    return Watch(
        id=int(m["id"]),
        team_id=m["team_id"],
        channel_id=m["channel_id"],
        target=m["target"],
        schedule=m["schedule"],
        tz=m["tz"],
        selectors=list(json.loads(m["selectors"] or "[]")),
        next_run_at=_aware(m["next_run_at"]) or _utcnow(),
        last_run_at=_aware(m["last_run_at"]),
        created_at=_aware(m["created_at"]) or _utcnow(),
        created_by=m["created_by"],
        kind=m["kind"],
    )


def _enable_wal(cur: Any, patience: float = 30.0) -> None:
    """Switch the file to WAL, waiting out a concurrent first opener.

    Converting to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once (without the busy handler, to avoid a lock-upgrade deadlock)
    when another process is converting or migrating the fresh file at the same
    moment. The mode is persistent, so once any opener has switched it the
    pragma is a no-op; retrying briefly is enough.
    """
    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """SQLite: real transactions that take the write lock up front.

    pysqlite/aiosqlite defer BEGIN; two processes that both read then write
    would deadlock ("database is locked"). BEGIN IMMEDIATE serialises writers
    (claims are short), WAL lets the file be read meanwhile, and the busy
    timeout makes a second process wait instead of failing.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute("PRAGMA busy_timeout = 30000")
            _enable_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """Async storage. Create with `await Store.open()`; share one per process."""

    def __init__(self, engine: AsyncEngine, target: DatabaseTarget) -> None:
        self.engine = engine
        self.target = target
        self.dialect = target.dialect
        self._events_seen = 0

    # -- lifecycle -------------------------------------------------------------
    @classmethod
    async def open(cls, url: str | None = None) -> Store:
        """url None -> $DATABASE_URL -> default SQLite file; migrates the schema."""
        target = resolve_url(url)
        kwargs: dict[str, Any] = {"connect_args": dict(target.connect_args)}
        if target.dialect == "sqlite":
            if target.sqlite_path is not None:
                target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"].setdefault("timeout", 30)
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        engine = create_async_engine(target.url, **kwargs)
        if target.dialect == "sqlite":
            _install_sqlite_hooks(engine)
        store = cls(engine, target)
        try:
            await upgrade_engine(engine)
        except Exception as exc:
            await engine.dispose()
            raise StoreError(f"cannot open database {target.redacted()}: {exc}") from exc
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _insert(self, table: Any) -> Any:
        """Dialect insert with ON CONFLICT support (SQLite and PostgreSQL both have it)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- Slack event dedupe -----------------------------------------------------
    async def claim_event(self, team_id: str, event_id: str) -> bool:
        """True only the first time (team_id, event_id) is seen, by any replica."""
        now = _db(_utcnow())
        stmt = (
            self._insert(t.events)
            .values(team_id=team_id, event_id=event_id[:128], seen_at=now)
            .on_conflict_do_nothing(index_elements=["team_id", "event_id"])
            .returning(t.events.c.event_id)
        )
        async with self.engine.begin() as conn:
            first = (await conn.execute(stmt)).first() is not None
            self._events_seen += 1
            if self._events_seen % 500 == 1:
                await conn.execute(delete(t.events).where(t.events.c.seen_at < now - EVENT_TTL))
        return first

    # -- settings ---------------------------------------------------------------
    async def get_setting(self, team_id: str, scope: str, key: str) -> str | None:
        s = t.settings.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(s.value).where(and_(s.team_id == team_id, s.scope == scope, s.key == key))
                )
            ).first()
        return None if row is None else str(row[0])

    async def set_setting(self, team_id: str, scope: str, key: str, value: str) -> None:
        stmt = self._insert(t.settings).values(
            team_id=team_id, scope=scope, key=key, value=value, updated_at=_db(_utcnow())
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["team_id", "scope", "key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def list_settings(self, key: str) -> dict[tuple[str, str], str]:
        """Every stored value of setting `key`: (team_id, scope) -> value. One query, so a
        process can hold all users' language choices and answer acks without the database."""
        s = t.settings.c
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(s.team_id, s.scope, s.value).where(s.key == key))).all()
        return {(str(r[0]), str(r[1])): str(r[2]) for r in rows}

    async def delete_setting(self, team_id: str, scope: str, key: str) -> None:
        s = t.settings.c
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(t.settings).where(and_(s.team_id == team_id, s.scope == scope, s.key == key))
            )

    # -- watches ------------------------------------------------------------------
    async def add_watch(
        self,
        team_id: str,
        channel_id: str,
        target: str,
        schedule: str = DEFAULT_SCHEDULE,
        tz: str = "UTC",
        selectors: list[str] | None = None,
        created_by: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Watch:
        """Add (or re-schedule) a watch; its first digest is the next slot after now.

        Raises WatchInputError (one line) on a bad target, schedule or time zone.
        """
        value, kind = classify_target(target)
        try:
            sched = parse_schedule(schedule or DEFAULT_SCHEDULE)
            zone = parse_tz(tz or "UTC")
        except ScheduleError as exc:
            raise WatchInputError(str(exc)) from exc
        now = now or _utcnow()
        nxt = next_run(sched, zone, now)
        sel = json.dumps(sorted(dict.fromkeys(selectors or [])))
        w = t.watches.c
        values = {
            "schedule": sched.text,
            "tz": zone.key,
            "selectors": sel,
            "next_run_at": _db(nxt),
        }
        async with self.engine.begin() as conn:
            existing = (
                await conn.execute(
                    select(w.id).where(
                        and_(w.team_id == team_id, w.channel_id == channel_id, w.target == value)
                    )
                )
            ).first()
            if existing is not None:
                await conn.execute(update(t.watches).where(w.id == existing[0]).values(**values))
                watch_id = int(existing[0])
            else:
                res = await conn.execute(
                    insert(t.watches)
                    .values(
                        team_id=team_id,
                        channel_id=channel_id,
                        target=value,
                        kind=kind,
                        created_by=created_by,
                        created_at=_db(now),
                        last_run_at=None,
                        **values,
                    )
                    .returning(w.id)
                )
                watch_id = int(res.scalar_one())
            row = (await conn.execute(select(t.watches).where(w.id == watch_id))).one()
        return _watch(row)

    async def remove_watch(self, team_id: str, channel_id: str, target: str) -> bool:
        try:
            value, _kind = classify_target(target)
        except WatchInputError:
            value = (target or "").strip().lower()
        w, s = t.watches.c, t.snapshots.c
        async with self.engine.begin() as conn:
            res = await conn.execute(
                delete(t.watches)
                .where(and_(w.team_id == team_id, w.channel_id == channel_id, w.target == value))
                .returning(w.id)
            )
            removed = res.first() is not None
            await conn.execute(
                delete(t.snapshots).where(and_(s.team_id == team_id, s.channel_id == channel_id, s.target == value))
            )
        return removed

    async def list_watches(self, team_id: str | None = None, channel_id: str | None = None) -> list[Watch]:
        """Watches of one workspace (team_id given) or of all (operator/scheduler view)."""
        w = t.watches.c
        q = select(t.watches)
        if team_id is not None:
            q = q.where(w.team_id == team_id)
        if channel_id is not None:
            q = q.where(w.channel_id == channel_id)
        q = q.order_by(w.team_id, w.channel_id, w.target)
        async with self.engine.begin() as conn:
            rows = (await conn.execute(q)).all()
        return [_watch(r) for r in rows]

    async def installed_team_ids(self) -> list[str]:
        """Workspaces with a bot installation in this database."""
        out: set[str] = set()
        async with self.engine.begin() as conn:
            for col in (t.slack_bots.c.team_id, t.slack_installations.c.team_id):
                out.update(r[0] for r in (await conn.execute(select(col).distinct())).all() if r[0])
        return sorted(out)

    async def team_ids(self) -> list[str]:
        """Every workspace known here: installations and watches."""
        out: set[str] = set()
        async with self.engine.begin() as conn:
            for col in (t.watches.c.team_id, t.slack_bots.c.team_id, t.slack_installations.c.team_id):
                out.update(r[0] for r in (await conn.execute(select(col).distinct())).all() if r[0])
        return sorted(out)

    # -- rate limits ----------------------------------------------------------------
    async def hit_rate_limit(self, key: str, limit: int, window_s: int) -> bool:
        """Count one hit on `key` in the current fixed window; True = over the limit.

        Shared by every replica (an atomic upsert). Put the team in the key
        ("T123:user:U1:audit") so workspaces don't share budgets.
        """
        return await self.rate_limit(key, limit, window_s) > 0

    async def rate_limit(self, key: str, limit: int, window_s: float) -> float:
        """Count one hit on `key`; 0.0 when within `limit` per fixed window of `window_s`
        seconds, else the seconds until the window ends (try again then)."""
        window = max(1, int(window_s))
        now_f = _utcnow().timestamp()
        now = int(now_f)
        start = now - now % window
        r = t.rate_limits.c
        stmt = self._insert(t.rate_limits).values(key=key[:255], window_start=start, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key", "window_start"], set_={"count": t.rate_limits.c.count + 1}
        ).returning(r.count)
        async with self.engine.begin() as conn:
            count = int((await conn.execute(stmt)).scalar_one())
            if count == 1:  # new window: drop this key's old windows
                await conn.execute(delete(t.rate_limits).where(and_(r.key == key[:255], r.window_start < start)))
        if count <= limit:
            return 0.0
        return max(0.001, start + window - now_f)

    # -- snapshots ------------------------------------------------------------------
    async def get_snapshot(self, team_id: str, channel_id: str, target: str) -> tuple[datetime, dict[str, Any]] | None:
        s = t.snapshots.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(s.taken_at, s.report).where(
                        and_(s.team_id == team_id, s.channel_id == channel_id, s.target == target)
                    )
                )
            ).first()
        if row is None:
            return None
        return _aware(row[0]) or _utcnow(), json.loads(row[1])

    async def get_snapshots(
        self, team_id: str, channel_id: str, targets: Sequence[str]
    ) -> dict[str, tuple[datetime, dict[str, Any]]]:
        if not targets:
            return {}
        s = t.snapshots.c
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(s.target, s.taken_at, s.report).where(
                        and_(s.team_id == team_id, s.channel_id == channel_id, s.target.in_(list(targets)))
                    )
                )
            ).all()
        return {r[0]: (_aware(r[1]) or _utcnow(), json.loads(r[2])) for r in rows}

    async def put_snapshot(
        self, team_id: str, channel_id: str, target: str, report: dict[str, Any], taken_at: datetime | None = None
    ) -> None:
        async with self.engine.begin() as conn:
            await self._put_snapshots(conn, team_id, channel_id, {target: report}, taken_at or _utcnow())

    async def _put_snapshots(
        self, conn: AsyncConnection, team_id: str, channel_id: str, reports: dict[str, Any], taken_at: datetime
    ) -> None:
        for target, report in reports.items():
            stmt = self._insert(t.snapshots).values(
                team_id=team_id,
                channel_id=channel_id,
                target=target,
                taken_at=_db(taken_at),
                report=json.dumps(report, ensure_ascii=False, default=str),
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["team_id", "channel_id", "target"],
                set_={"taken_at": stmt.excluded.taken_at, "report": stmt.excluded.report},
            )
            await conn.execute(stmt)

    # -- digest claims ------------------------------------------------------------------
    async def claim_due(
        self,
        now: datetime | None = None,
        *,
        lease_s: int = DEFAULT_LEASE_S,
        limit: int = 500,
        team_id: str | None = None,
    ) -> list[DigestJob]:
        """Atomically claim every digest due at `now` (and expired earlier claims).

        Due watches of one channel are grouped into one digest. Each watch's
        `next_run_at` moves to its next slot AFTER now, so slots missed while
        down collapse into this one digest. Safe with any number of concurrent
        callers (threads, processes, replicas): each digest goes to one caller.
        `team_id` limits the claim to one workspace (CLI `--team`).
        """
        now = now or _utcnow()
        ndb = _db(now)
        lease = ndb + timedelta(seconds=lease_s)
        token = uuid.uuid4().hex
        jobs: list[DigestJob] = []
        d, w = t.digest_runs.c, t.watches.c
        async with self.engine.begin() as conn:
            # 1. give up on digests that failed too often
            await conn.execute(
                update(t.digest_runs)
                .where(and_(d.status.in_(("claimed", "ready")), d.lease_until < ndb, d.attempts >= MAX_ATTEMPTS))
                .values(status="failed", error=func.coalesce(d.error, "too many attempts"))
            )
            # 2. re-claim expired leases (a runner died between claim and post)
            expired = (
                select(d.id)
                .where(and_(d.status.in_(("claimed", "ready")), d.lease_until < ndb))
                .where(d.team_id == team_id if team_id is not None else true())
                .order_by(d.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            reclaimed = (
                await conn.execute(
                    update(t.digest_runs)
                    .where(and_(d.id.in_(expired), d.status.in_(("claimed", "ready")), d.lease_until < ndb))
                    .values(claim_token=token, claimed_at=ndb, lease_until=lease, attempts=d.attempts + 1)
                    .returning(*t.digest_runs.c)
                )
            ).all()
            for row in reclaimed:
                jobs.append(await self._job_from_run(conn, row))
            # 3. new digests from due watches, whole channels at a time (`limit` channels).
            due_where = and_(w.next_run_at <= ndb, w.team_id == team_id if team_id is not None else true())
            chans = (
                await conn.execute(
                    select(w.team_id, w.channel_id)
                    .where(due_where)
                    .group_by(w.team_id, w.channel_id)
                    .order_by(func.min(w.next_run_at), w.team_id, w.channel_id)
                    .limit(limit)
                )
            ).all()
            due: list[Row[Any]] = []
            if chans:
                # Blocking FOR UPDATE in id order (not SKIP LOCKED): a concurrent claimer of the
                # same channel waits, then sees the rows no longer due, so a channel never splits.
                due = list(
                    (
                        await conn.execute(
                            select(t.watches)
                            .where(due_where)
                            .where(or_(*(and_(w.team_id == a, w.channel_id == b) for a, b in chans)))
                            .order_by(w.id)
                            .with_for_update()
                        )
                    ).all()
                )
            groups: dict[tuple[str, str], list[Watch]] = {}
            for row in due:
                watch = _watch(row)
                try:
                    sched, zone = parse_schedule(watch.schedule), parse_tz(watch.tz)
                    nxt = next_run(sched, zone, now)
                    # the digest stands for the latest slot passed (missed ones collapse into it)
                    watch.next_run_at = max(watch.next_run_at, previous_run(sched, zone, now))
                except ScheduleError as exc:  # stored before a rule changed: don't loop on it
                    log.warning("watch %s has a bad schedule (%s); retrying in a day", watch.id, exc)
                    nxt = now + timedelta(days=1)
                res = await conn.execute(
                    update(t.watches)
                    .where(and_(w.id == watch.id, w.next_run_at == row._mapping["next_run_at"]))
                    .values(next_run_at=_db(nxt))
                    .returning(w.id)
                )
                if res.first() is None:  # someone else advanced it first
                    continue
                groups.setdefault((watch.team_id, watch.channel_id), []).append(watch)
            for (tid, cid), group in groups.items():
                slot = max(x.next_run_at for x in group)
                jobs.append(await self._new_run(conn, tid, cid, slot, "scheduled", group, token, ndb, lease))
        return jobs

    async def claim_now(
        self,
        team_id: str | None = None,
        channel_id: str | None = None,
        now: datetime | None = None,
        *,
        lease_s: int = DEFAULT_LEASE_S,
    ) -> list[DigestJob]:
        """Claim an unscheduled digest now ("digest now", `digest run --all`).

        One job per channel with watches (of `team_id`, or all teams when None);
        schedules are not touched. Each call is a new digest.
        """
        now = now or _utcnow()
        ndb = _db(now)
        lease = ndb + timedelta(seconds=lease_s)
        token = uuid.uuid4().hex
        w = t.watches.c
        q = select(t.watches)
        if team_id is not None:
            q = q.where(w.team_id == team_id)
        if channel_id is not None:
            q = q.where(w.channel_id == channel_id)
        jobs: list[DigestJob] = []
        async with self.engine.begin() as conn:
            rows = (await conn.execute(q.order_by(w.team_id, w.channel_id, w.id))).all()
            groups: dict[tuple[str, str], list[Watch]] = {}
            for row in rows:
                watch = _watch(row)
                groups.setdefault((watch.team_id, watch.channel_id), []).append(watch)
            for (tid, cid), group in groups.items():
                jobs.append(await self._new_run(conn, tid, cid, now, "manual", group, token, ndb, lease))
        return jobs

    async def _new_run(
        self,
        conn: AsyncConnection,
        team_id: str,
        channel_id: str,
        slot: datetime,
        kind: str,
        group: list[Watch],
        token: str,
        ndb: datetime,
        lease: datetime,
    ) -> DigestJob:
        d = t.digest_runs.c
        slot_db = _db(slot)
        # unique per (channel, slot, kind): a second digest for one instant stays distinct
        while (
            await conn.execute(
                select(d.id).where(
                    and_(d.team_id == team_id, d.channel_id == channel_id, d.slot == slot_db, d.kind == kind)
                )
            )
        ).first() is not None:
            slot_db += timedelta(microseconds=1)
        res = await conn.execute(
            insert(t.digest_runs)
            .values(
                team_id=team_id,
                channel_id=channel_id,
                slot=slot_db,
                kind=kind,
                watch_ids=json.dumps([x.id for x in group]),
                status="claimed",
                claim_token=token,
                claimed_at=ndb,
                lease_until=lease,
                attempts=1,
                parts_posted=0,
            )
            .returning(d.id)
        )
        return DigestJob(
            run_id=int(res.scalar_one()),
            team_id=team_id,
            channel_id=channel_id,
            slot=_aware(slot_db) or slot,
            kind=kind,
            watches=group,
            claim_token=token,
        )

    async def _job_from_run(self, conn: AsyncConnection, row: Row[Any]) -> DigestJob:
        m = row._mapping
        ids = [int(i) for i in json.loads(m["watch_ids"] or "[]")]
        w = t.watches.c
        watches: list[Watch] = []
        if ids:
            rows = (
                await conn.execute(
                    select(t.watches).where(and_(w.team_id == m["team_id"], w.id.in_(ids))).order_by(w.id)
                )
            ).all()
            watches = [_watch(r) for r in rows]
        return DigestJob(
            run_id=int(m["id"]),
            team_id=m["team_id"],
            channel_id=m["channel_id"],
            slot=_aware(m["slot"]) or _utcnow(),
            kind=m["kind"],
            watches=watches,
            claim_token=m["claim_token"],
            attempts=int(m["attempts"]),
            status=m["status"],
            payload=json.loads(m["payload"]) if m["payload"] else None,
            parts_posted=int(m["parts_posted"] or 0),
            message_ts=json.loads(m["message_ts"]) if m["message_ts"] else [],
        )

    def _owned(self, job: DigestJob) -> Any:
        d = t.digest_runs.c
        return and_(d.id == job.run_id, d.claim_token == job.claim_token, d.status.in_(("claimed", "ready")))

    async def renew(self, job: DigestJob, *, lease_s: int = DEFAULT_LEASE_S) -> bool:
        """Extend the lease; False = the claim was lost (expired and taken by another runner)."""
        lease = _db(_utcnow() + timedelta(seconds=lease_s))
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(t.digest_runs).where(self._owned(job)).values(lease_until=lease).returning(t.digest_runs.c.id)
            )
            return res.first() is not None

    async def save_prepared(
        self,
        job: DigestJob,
        payload: dict[str, Any],
        snapshots: dict[str, Any],
        *,
        lease_s: int = DEFAULT_LEASE_S,
    ) -> bool:
        """Store the rendered digest and the snapshots to keep once it is posted."""
        lease = _db(_utcnow() + timedelta(seconds=lease_s))
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(t.digest_runs)
                # "ready" with nothing posted yet under this claim: a retry of this same call
                .where(and_(self._owned(job), or_(t.digest_runs.c.status == "claimed",
                                                  t.digest_runs.c.parts_posted == 0)))
                .values(
                    status="ready",
                    payload=json.dumps(payload, ensure_ascii=False, default=str),
                    snapshots=json.dumps(snapshots, ensure_ascii=False, default=str),
                    lease_until=lease,
                )
                .returning(t.digest_runs.c.id)
            )
            ok = res.first() is not None
        if ok:
            job.status, job.payload = "ready", payload
        return ok

    async def mark_part_posted(
        self, job: DigestJob, index: int, ts: str | None, *, lease_s: int = DEFAULT_LEASE_S
    ) -> bool:
        """Record that message part `index` (0-based) is posted; extends the lease."""
        # positional, so a retry after a lost commit acknowledgement records the part once
        job.message_ts = [*job.message_ts[:index], ts or ""]
        job.parts_posted = index + 1
        lease = _db(_utcnow() + timedelta(seconds=lease_s))
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(t.digest_runs)
                .where(self._owned(job))
                .values(parts_posted=index + 1, message_ts=json.dumps(job.message_ts), lease_until=lease)
                .returning(t.digest_runs.c.id)
            )
            return res.first() is not None

    async def mark_posted(self, job: DigestJob, *, now: datetime | None = None) -> bool:
        """Finish a digest: status posted, snapshots kept, watches' last_run_at set (one transaction)."""
        now = now or _utcnow()
        d, w = t.digest_runs.c, t.watches.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(t.digest_runs)
                    .where(self._owned(job))
                    .values(status="posted", posted_at=_db(now), error=None)
                    .returning(d.snapshots)
                )
            ).first()
            if row is None:  # lost -- or already posted by this claim (a retry after a lost commit ack)
                done = (
                    await conn.execute(
                        select(d.id).where(and_(d.id == job.run_id, d.claim_token == job.claim_token,
                                                d.status == "posted"))
                    )
                ).first()
                if done is not None:
                    job.status = "posted"
                return done is not None
            snaps = json.loads(row[0]) if row[0] else {}
            await self._put_snapshots(conn, job.team_id, job.channel_id, snaps, now)
            ids = [x.id for x in job.watches]
            if ids:
                await conn.execute(
                    update(t.watches)
                    .where(and_(w.team_id == job.team_id, w.id.in_(ids)))
                    .values(last_run_at=_db(now))
                )
        job.status = "posted"
        return True

    async def release(self, job: DigestJob, error: str, *, retry_in_s: int = 120, final: bool = False) -> None:
        """A run failed: retry after `retry_in_s` (lease shortened) or give up (`final`)."""
        values: dict[str, Any] = {"error": error[:2000]}
        if final:
            values["status"] = "failed"
        else:
            values["lease_until"] = _db(_utcnow() + timedelta(seconds=retry_in_s))
        async with self.engine.begin() as conn:
            await conn.execute(update(t.digest_runs).where(self._owned(job)).values(**values))

    async def digest_runs(self, team_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recent digest runs (operator view / tests)."""
        d = t.digest_runs.c
        q = select(
            d.id, d.team_id, d.channel_id, d.slot, d.kind, d.status, d.attempts, d.parts_posted,
            d.posted_at, d.message_ts, d.error,
        )
        if team_id is not None:
            q = q.where(d.team_id == team_id)
        async with self.engine.begin() as conn:
            rows = (await conn.execute(q.order_by(d.id.desc()).limit(limit))).all()
        return [dict(r._mapping) for r in rows]

    # -- installations ----------------------------------------------------------------
    async def bot_token(self, team_id: str, enterprise_id: str | None = None) -> str | None:
        """The newest bot token installed for a workspace (any client id), else None."""
        b = t.slack_bots.c
        q = select(b.bot_token).where(and_(b.team_id == team_id, b.bot_token.is_not(None)))
        client_id = os.environ.get("SLACK_CLIENT_ID")
        if client_id:
            q = q.where(b.client_id == client_id)
        if enterprise_id is not None:
            q = q.where(or_(b.enterprise_id == enterprise_id, b.enterprise_id.is_(None)))
        async with self.engine.begin() as conn:
            row = (await conn.execute(q.order_by(b.installed_at.desc()).limit(1))).first()
        if row is None:
            return None
        return self._decrypt_token(str(row[0]))

    def _decrypt_token(self, value: str | None) -> str | None:
        from bot.storage.crypto import TokenCipher, decrypt_without_key

        cipher = TokenCipher.from_env()
        return cipher.decrypt(value) if cipher is not None else decrypt_without_key(value)

    def installation_store(self, client_id: str | None = None) -> Any:
        """slack_sdk's AsyncSQLAlchemyInstallationStore on this database (tables already migrated);
        with MAILCHECK_SECRET_KEY set, bot/user tokens are encrypted at rest (bot/storage/crypto.py)."""
        from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

        from bot.storage.crypto import TokenCipher, encrypting_installation_store

        cid = client_id or os.environ.get("SLACK_CLIENT_ID") or "mailcheck"
        return encrypting_installation_store(AsyncSQLAlchemyInstallationStore, TokenCipher.from_env(),
                                             client_id=cid, engine=self.engine)

    def oauth_state_store(self, expiration_seconds: int = 600) -> Any:
        """slack_sdk's AsyncSQLAlchemyOAuthStateStore on this database, with a one-time consume
        that is atomic across replicas (DELETE ... RETURNING instead of select-then-delete)."""
        from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

        engine = self.engine

        class _AtomicStateStore(AsyncSQLAlchemyOAuthStateStore):
            async def async_consume(self, state: str) -> bool:
                c = self.oauth_states.c
                now = _db(_utcnow())
                try:
                    async with engine.begin() as conn:
                        res = await conn.execute(
                            delete(self.oauth_states)
                            .where(and_(c.state == state, c.expire_at > now))
                            .returning(c.id)
                        )
                        return res.first() is not None
                except Exception as exc:  # same contract as slack_sdk: False, logged
                    self.logger.warning("OAuth state lookup failed: %s", type(exc).__name__)
                    return False

        return _AtomicStateStore(expiration_seconds=expiration_seconds, engine=engine)

    # -- housekeeping -------------------------------------------------------------------
    async def purge(self, now: datetime | None = None, *, keep_runs_days: int = 30,
                    keep_rate_limits: timedelta = RATE_LIMIT_TTL) -> None:
        """Drop old event ids (EVENT_TTL), expired OAuth states, rate-limit windows older
        than `keep_rate_limits` and finished digest runs older than `keep_runs_days`."""
        ndb = _db(now or _utcnow())
        d = t.digest_runs.c
        oldest_window = int((now or _utcnow()).timestamp() - keep_rate_limits.total_seconds())
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.events).where(t.events.c.seen_at < ndb - EVENT_TTL))
            await conn.execute(delete(t.slack_oauth_states).where(t.slack_oauth_states.c.expire_at < ndb))
            await conn.execute(delete(t.rate_limits).where(t.rate_limits.c.window_start < oldest_window))
            # Shared target checks are reused for minutes (bot/storage/target_checks.py).
            await conn.execute(delete(t.target_checks).where(t.target_checks.c.lease_until < ndb - timedelta(days=1)))
            await conn.execute(
                delete(t.digest_runs).where(
                    and_(d.status.in_(("posted", "failed")), d.claimed_at < ndb - timedelta(days=keep_runs_days))
                )
            )


async def open_store(url: str | None = None) -> Store:
    """Convenience alias of `Store.open`."""
    return await Store.open(url)
