"""Alembic environment for mailcheck's storage.

Run programmatically by `bot.storage.migrate.upgrade()`, which hands over an
open connection in `config.attributes["connection"]` (async engines run this
through `AsyncConnection.run_sync`). Offline mode (`--sql`) is supported for
reviewing the DDL.
"""

from __future__ import annotations

from alembic import context

config = context.config


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through bot.storage.migrate.upgrade() (needs a connection)")
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table="mailcheck_alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
