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

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage import tables as t
from bot.storage.common import (  # noqa: F401  (the storage API as it was before the split)
    DEFAULT_LEASE_S,
    DEFAULT_SCHEDULE,
    EVENT_TTL,
    MAX_ATTEMPTS,
    RATE_LIMIT_TTL,
    DigestJob,
    StoreBase,
    StoreError,
    Watch,
    WatchInputError,
    _aware,
    _db,
    _install_sqlite_hooks,
    _iso,
    _utcnow,
    _watch,
    classify_target,
    is_transient_error,
)
from bot.storage.digest_queue import DigestQueueStore
from bot.storage.installations import InstallationsStore
from bot.storage.migrate import upgrade_engine
from bot.storage.settings import SettingsStore
from bot.storage.url import resolve_url

log = logging.getLogger(__name__)


class Store(SettingsStore, DigestQueueStore, InstallationsStore):
    """Async storage. Create with `await Store.open()`; share one per process.

    One object, its parts by concern: settings and events (bot/storage/settings.py),
    watches and snapshots (watches.py), the digest queue (digest_queue.py), Slack
    installations (installations.py)."""

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
