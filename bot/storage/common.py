"""Storage pieces every part of the store shares: limits, the Watch and DigestJob records,
time conversions, input classification, SQLite connection set-up and the base class."""


from __future__ import annotations

import ipaddress
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.url import DatabaseTarget

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


class StoreBase:
    """What every part of the store shares: the engine, the dialect, ON CONFLICT inserts."""

    def __init__(self, engine: AsyncEngine, target: DatabaseTarget) -> None:
        self.engine = engine
        self.target = target
        self.dialect = target.dialect
        self._events_seen = 0

    def _insert(self, table: Any) -> Any:
        """Dialect insert with ON CONFLICT support (SQLite and PostgreSQL both have it)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
