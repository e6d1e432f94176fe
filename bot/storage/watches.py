"""Watched targets and the digest snapshots of each (team, channel, target)."""


from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import tables as t
from bot.storage.common import (
    DEFAULT_SCHEDULE,
    StoreBase,
    Watch,
    WatchInputError,
    _aware,
    _db,
    _utcnow,
    _watch,
    classify_target,
)
from handlers.schedule import ScheduleError, next_run, parse_schedule, parse_tz

log = logging.getLogger(__name__)


class WatchesStore(StoreBase):
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

