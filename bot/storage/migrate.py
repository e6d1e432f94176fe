"""Run the shipped Alembic migrations programmatically (no alembic.ini).

`Store.open()` calls `upgrade_engine()` on every start: a no-op when the schema
is current. Several processes starting at once are serialised: PostgreSQL by
a transaction-scoped advisory lock, SQLite by `BEGIN IMMEDIATE` (see
`engine.py`), so exactly one of them creates the tables.
"""

from __future__ import annotations

import asyncio
import weakref

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = "bot.storage:migrations"
VERSION_TABLE = "mailcheck_alembic_version"
_PG_LOCK_KEY = 0x6D61696C636865  # "mailche": arbitrary, fixed


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _upgrade(connection: Connection, revision: str = "head") -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    if revision == "head" and current_revision(connection) == head_revision():
        return
    command.upgrade(alembic_config(connection=connection), revision)


# Alembic's `context` is a process-wide proxy: two migrations interleaving on one
# event loop (run_sync yields to the loop on every database round trip) would
# configure each other's environment. One migration at a time per loop.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _migration_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _loop_locks.get(loop)
    if lock is None:
        lock = _loop_locks[loop] = asyncio.Lock()
    return lock


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    async with _migration_lock(), engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def downgrade_engine(engine: AsyncEngine, revision: str = "base") -> None:
    def _down(connection: Connection, rev: str) -> None:
        command.downgrade(alembic_config(connection=connection), rev)

    async with _migration_lock(), engine.begin() as conn:
        await conn.run_sync(_down, revision)


