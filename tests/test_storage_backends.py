"""Database backends for the storage and digest tests (fixtures + a worker process).

Every test runs on SQLite (a temporary file) AND on the machine's PostgreSQL
(127.0.0.1:5432, database `test`, trust auth) in a schema of its own that is
dropped afterwards. PostgreSQL unreachable: the PG cases are skipped with the
reason, except in CI (CI=true), where they fail.

Run as a script it is a digest worker for the multi-process tests:
    python -m tests.test_storage_backends URL OUTFILE [--lease S] [--crash-after-claim] [--crash-after-part N]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"


async def pg_connect() -> tuple[Any, str] | None:
    import asyncpg

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database=PG_DB, timeout=3)
            return conn, user
        except Exception as exc:  # unreachable, auth, missing database
            last = exc
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the PostgreSQL tests: {PG_HOST}:{PG_PORT}/{PG_DB} unreachable ({last})")
    pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}/{PG_DB} ({type(last).__name__}: {last})")
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mailcheck.db"
        return
    got = await pg_connect()
    assert got is not None
    conn, user = got
    schema = f"mc_test_{uuid.uuid4().hex[:12]}"
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}?options=-csearch_path%3D{schema}"
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Any]:
    from bot.storage import Store

    s = await Store.open(db_url)
    try:
        yield s
    finally:
        await s.close()


def fake_report(target: str, severity: str = "warning") -> Any:
    from handlers.model import Finding, Report

    rep = Report(kind="domain", subject=target)
    rep.add(Finding("dmarc.policy_none", severity, f"DMARC of {target} is p=none", evidence={"target": target}))
    return rep


class Recorder:
    """A PostFn that records posts (and can fail after N posts to model a crash)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.posts: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_after = fail_after

    async def __call__(self, team_id: str, channel_id: str, message: dict[str, Any]) -> str | None:
        if self.fail_after is not None and len(self.posts) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.posts.append((team_id, channel_id, message))
        return f"{len(self.posts)}.000"


# -- worker process -----------------------------------------------------------------------
async def _worker(url: str, out: str, lease: int, crash_after_claim: bool, crash_after_part: int | None) -> None:
    import bot.digest as digest
    from bot.storage import Store

    async def fake_audit(watch: Any, resolver: Any) -> Any:
        await asyncio.sleep(0.01)
        return fake_report(watch.target)

    digest.audit_target = fake_audit  # type: ignore[assignment]
    store = await Store.open(url)
    posted = 0

    async def post(team_id: str, channel_id: str, message: dict[str, Any]) -> str | None:
        nonlocal posted
        if crash_after_part is not None and posted >= crash_after_part:
            os._exit(17)  # die mid-digest, no cleanup
        line = json.dumps({"pid": os.getpid(), "team": team_id, "channel": channel_id,
                           "text": message["text"], "blocks": len(message["blocks"])})
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        posted += 1
        await asyncio.sleep(0.005)
        return f"{os.getpid()}.{posted}"

    if crash_after_claim:
        await store.claim_due(lease_s=lease)
        os._exit(17)
    for _ in range(3):  # a few passes, as a scheduler would
        await digest.run_due(store, post=post, lease_s=lease, batch=7,
                             resolver_factory=lambda: digest.Resolver(nameservers=[("127.0.0.1", 9)]))
        await asyncio.sleep(0.05)
    await store.close()


def main(argv: list[str]) -> int:
    url, out = argv[0], argv[1]
    lease = 600
    crash_claim = "--crash-after-claim" in argv
    crash_part: int | None = None
    if "--lease" in argv:
        lease = int(argv[argv.index("--lease") + 1])
    if "--crash-after-part" in argv:
        crash_part = int(argv[argv.index("--crash-after-part") + 1])
    asyncio.run(_worker(url, out, lease, crash_claim, crash_part))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
