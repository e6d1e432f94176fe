"""Shared target checks: each distinct check a digest needs runs once per reuse window.

    checks = TargetChecks.of(store)
    claim = await checks.claim(key, owner="worker-1", fresh_after=now - reuse, lease_s=150)
    if claim.state == "done":   report = claim.report          # someone checked it already
    elif claim.state == "mine": ... audit ...; await checks.finish(key, "worker-1", report.to_dict())
    elif claim.state == "busy": ... another worker is auditing it; ask again shortly
    else:                       ... "unanswered": its owner got no answers; audit it here

A check is identified by what it asks DNS (`check_key`: kind, target and the sorted DKIM
selectors), not by who watches it: two workspaces watching `example.com` share one audit,
while a workspace whose receiver reports add selectors gets its own (its selectors are
never shown to the other). DNS answers are public; nothing workspace-specific is kept.

Claims are compare-and-swap updates on one row, so they hold across processes on
PostgreSQL and SQLite alike. A worker that dies mid-audit holds its claim only until
its lease ends; then the next worker that needs the check takes it over.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import tables as t

if TYPE_CHECKING:
    from bot.storage.store import Store

# A report larger than this (compressed) is not kept: the others audit it themselves.
# Audits are bounded (MX hosts, addresses, blocklist rows), so this is the hostile case.
MAX_KEPT_BYTES = 512 * 1024

ClaimState = Literal["done", "mine", "busy", "unanswered"]


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    report: dict[str, Any] | None = None
    checked_at: datetime | None = None


def check_key(kind: str, target: str, selectors: Sequence[str] = ()) -> str:
    raw = "\0".join((kind, target.lower(), ",".join(sorted({s.lower() for s in selectors}))))
    return hashlib.sha256(raw.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored naive UTC, like the other tables


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


class TargetChecks:
    def __init__(self, engine: AsyncEngine, dialect: str) -> None:
        self.engine = engine
        self.dialect = dialect

    @classmethod
    def of(cls, store: Store) -> TargetChecks:
        return cls(store.engine, store.dialect)

    def _insert(self) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(t.target_checks)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(t.target_checks)

    async def claim(
        self, key: str, *, target: str, owner: str, fresh_after: datetime, lease_s: float
    ) -> Claim:
        """`done` with the report when a check newer than `fresh_after` is kept; `mine` when
        this owner is now the one to audit; `busy` while another owner's lease runs."""
        now = _now()
        fresh_after = _naive(fresh_after)
        lease = now + timedelta(seconds=lease_s)
        c = t.target_checks.c
        first = (
            self._insert()
            .values(key=key, target=target[:255], owner=owner[:64], lease_until=lease, checked_at=None, report=None)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(c.key)
        )
        async with self.engine.begin() as conn:
            if (await conn.execute(first)).first() is not None:
                return Claim("mine")
            row = (
                await conn.execute(select(c.owner, c.lease_until, c.checked_at, c.report).where(c.key == key))
            ).first()
            if row is None:  # purged between the two statements: ask again
                return Claim("busy")
            held_by, held_until, checked_at, blob = row
            if checked_at is not None and checked_at >= fresh_after:
                if blob is None:
                    # Its owner got no answers (or the report was too big to keep): each
                    # digest that needs it audits on its own now, side by side, rather
                    # than taking the claim over one worker after another.
                    return Claim("unanswered", None, checked_at.replace(tzinfo=UTC))
                report = json.loads(zlib.decompress(blob))
                return Claim("done", report, checked_at.replace(tzinfo=UTC))
            if checked_at is None and held_until >= now and held_by != owner[:64]:
                return Claim("busy")
            # Stale, not kept, or an expired claim: take it over, but only if nobody else
            # changed the row since it was read (compare and swap on owner + lease).
            took = await conn.execute(
                update(t.target_checks)
                .where(and_(c.key == key, c.owner == held_by, c.lease_until == held_until))
                .values(owner=owner[:64], lease_until=lease, checked_at=None, report=None)
            )
            return Claim("mine" if took.rowcount == 1 else "busy")

    async def finish(self, key: str, owner: str, report: dict[str, Any] | None) -> bool:
        """Keep the owner's result for the others; False when the claim was lost meanwhile
        (a lease that ran out: the result is still good for this owner's own digests)."""
        blob: bytes | None = None
        if report is not None:
            blob = zlib.compress(json.dumps(report, ensure_ascii=False, default=str).encode(), 6)
            if len(blob) > MAX_KEPT_BYTES:
                blob = None
        now = _now()
        c = t.target_checks.c
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(t.target_checks)
                .where(and_(c.key == key, c.owner == owner[:64]))
                .values(checked_at=now, lease_until=now, report=blob)
            )
        return done.rowcount == 1

    async def purge(self, older_than: datetime) -> int:
        """Forget checks (and claims) older than `older_than`."""
        c = t.target_checks.c
        cutoff = _naive(older_than)
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                delete(t.target_checks).where(
                    and_(c.lease_until < cutoff, (c.checked_at.is_(None)) | (c.checked_at < cutoff))
                )
            )
        return int(gone.rowcount or 0)
