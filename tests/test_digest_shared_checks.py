"""Digests past one worker: a target is audited once per slot, however many workspaces,
channels and worker processes need it (bot/storage/target_checks.py), on SQLite and
PostgreSQL, against the real test DNS world."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import bot.digest as digest
from bot.storage import Store
from bot.storage.target_checks import TargetChecks, check_key
from tests import test_digest
from tests import test_storage_backends as backends
from tests.test_digest import FakeSlack

db_url = backends.db_url  # fixtures: SQLite and PostgreSQL
store = backends.store
fake_slack = test_digest.fake_slack

ZONE = "digest-a.example"
ZONE_FILE = Path(__file__).parent / "fixtures" / "zones" / f"{ZONE}.zone"


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets really audited (the real audit runs; this only counts the calls)."""
    seen: list[str] = []
    real = digest.audit_target

    async def counting(watch: Any, resolver: Any) -> Any:
        seen.append(watch.target)
        return await real(watch, resolver)

    monkeypatch.setattr(digest, "audit_target", counting)
    return seen


async def _watch_everywhere(s: Store, workspaces: int) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    for i in range(workspaces):
        await s.add_watch(f"T{i}", f"C{i}", ZONE, "daily 09:00", "Asia/Tokyo", now=past)


async def test_two_workers_audit_a_target_watched_by_four_workspaces_once(
    db_url: str, store: Store, fake_slack: FakeSlack, dns_world: Any, audits: list[str]
) -> None:
    dns_world.write_zone(ZONE, ZONE_FILE.read_text())
    await _watch_everywhere(store, 4)
    other = await Store.open(db_url)  # a second worker process's own store
    try:
        runs = await asyncio.gather(
            digest.run_due(store, batch=1, resolver_factory=lambda: dns_world.resolver(timeout=2.0)),
            digest.run_due(other, batch=1, resolver_factory=lambda: dns_world.resolver(timeout=2.0)),
        )
    finally:
        await other.close()
    assert sum(r.posted for r in runs) == 4
    assert audits == [ZONE]
    assert len(fake_slack.posts()) == 4


async def test_a_worker_that_died_holding_a_check_is_taken_over_when_its_lease_ends(
    store: Store, fake_slack: FakeSlack, dns_world: Any, audits: list[str]
) -> None:
    dns_world.write_zone(ZONE, ZONE_FILE.read_text())
    await _watch_everywhere(store, 1)
    checks = TargetChecks.of(store)
    key = check_key("domain", ZONE)
    dead = await checks.claim(key, target=ZONE, owner="dead-worker", fresh_after=datetime.now(UTC), lease_s=0.05)
    assert dead.state == "mine"
    await asyncio.sleep(0.1)
    stats = await digest.run_due(store, resolver_factory=lambda: dns_world.resolver(timeout=2.0))
    assert stats.posted == 1 and audits == [ZONE]
    assert not await checks.finish(key, "dead-worker", {"kind": "domain"})  # its claim is gone


async def test_a_digest_waits_for_the_worker_auditing_its_target_and_uses_that_result(
    store: Store, fake_slack: FakeSlack, dns_world: Any, audits: list[str]
) -> None:
    dns_world.write_zone(ZONE, ZONE_FILE.read_text())
    await _watch_everywhere(store, 1)
    checks = TargetChecks.of(store)
    key = check_key("domain", ZONE)
    slot_before = datetime.now(UTC) - timedelta(days=3)
    busy = await checks.claim(key, target=ZONE, owner="busy-worker", fresh_after=slot_before, lease_s=60)
    assert busy.state == "mine"
    run = asyncio.ensure_future(digest.run_due(store, resolver_factory=lambda: dns_world.resolver(timeout=2.0)))
    await asyncio.sleep(0.5)
    assert not run.done()  # waiting for the other worker, not auditing it again
    from handlers import api

    report = await api.run("domain", api.CheckRequest(target=ZONE), dns_world.resolver(timeout=2.0))
    assert await checks.finish(key, "busy-worker", report.to_dict())
    stats = await asyncio.wait_for(run, 30)
    assert stats.posted == 1 and audits == []
    assert ZONE in str(fake_slack.posts()[-1]["body"]["blocks"])


async def test_a_check_nobody_answered_is_not_reused(store: Store) -> None:
    checks = TargetChecks.of(store)
    key = check_key("domain", "quiet.example")
    now = datetime.now(UTC)
    assert (await checks.claim(key, target="quiet.example", owner="a", fresh_after=now, lease_s=60)).state == "mine"
    assert await checks.finish(key, "a", None)  # nothing determined: nothing kept
    again = await checks.claim(key, target="quiet.example", owner="b", fresh_after=now - timedelta(minutes=5),
                               lease_s=60)
    assert again.state == "unanswered"  # the next digest audits it itself, without waiting for a claim
