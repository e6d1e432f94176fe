"""Slack event dedupe, per-scope settings and shared rate limits (one row per window)."""


from __future__ import annotations

import logging

from sqlalchemy import and_, delete, select

from bot.storage import tables as t
from bot.storage.common import (
    EVENT_TTL,
    StoreBase,
    _db,
    _utcnow,
)

log = logging.getLogger(__name__)


class SettingsStore(StoreBase):
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

    # -- rate limits ----------------------------------------------------------------
    async def rate_limit(self, key: str, limit: int, window_s: float) -> float:
        """Count one hit on `key`; 0.0 when within `limit` per fixed window of `window_s`
        seconds, else the seconds until the window ends (try again then).

        Shared by every replica (an atomic upsert). Put the team in the key
        ("T123:user:U1:audit") so workspaces don't share budgets."""
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

