"""The digest queue: claims with leases, prepared messages, posted parts (exactly once)."""


from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, true, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import tables as t
from bot.storage.common import (
    DEFAULT_LEASE_S,
    MAX_ATTEMPTS,
    DigestJob,
    Watch,
    _aware,
    _db,
    _utcnow,
    _watch,
)
from bot.storage.watches import WatchesStore
from handlers.schedule import ScheduleError, next_run, parse_schedule, parse_tz, previous_run

log = logging.getLogger(__name__)


class DigestQueueStore(WatchesStore):
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

