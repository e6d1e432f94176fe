"""What a digest reads from stored receiver reports: DKIM selectors seen signing for a
watched domain, and the last WINDOW_DAYS of totals per domain, a few queries per workspace."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.storage import Store, Watch
from handlers.digest_reports import (
    WINDOW_DAYS,
    reports_state,
    selectors_seen,
)

log = logging.getLogger(__name__)


# Domains per stored-reports query: bound parameters stay far under SQLite's and
# asyncpg's limits, and one query serves a whole batch of watches.
_REPORTS_QUERY_CHUNK = 500


async def _reports_by_domain(
    store: Store, team_id: str, domains: Sequence[str], since: datetime, until: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """{domain: [stored report data, ...]} of one workspace, a few queries for many domains."""
    from bot.storage.reports import ReportStore

    rs = ReportStore.of(store)
    wanted = sorted({d.lower() for d in domains})
    out: dict[str, list[dict[str, Any]]] = {}
    for i in range(0, len(wanted), _REPORTS_QUERY_CHUNK):
        rows = await rs.find(team_id, domains=wanted[i : i + _REPORTS_QUERY_CHUNK], since=since, until=until,
                             limit=1_000_000)
        for r in rows:
            out.setdefault(r.domain.lower(), []).append(r.data)
    return out


async def with_reported_selectors(store: Store, watches: list[Watch]) -> list[Watch]:
    """The watches with the DKIM selectors their workspace's receiver reports saw signing
    for the domain (handlers/digest_reports.py selectors_seen), so a digest checks those
    keys as well as the common names. Per workspace: one team's reports never widen
    another's audit. The database being away leaves the watches as they are."""
    since = datetime.now(UTC) - timedelta(days=WINDOW_DAYS)
    by_team: dict[str, list[str]] = {}
    for w in watches:
        if w.kind == "domain":
            by_team.setdefault(w.team_id, []).append(w.target)
    seen: dict[tuple[str, str], list[str]] = {}
    for team_id, domains in by_team.items():
        try:
            found = await _reports_by_domain(store, team_id, domains, since)
        except Exception as exc:
            log.warning("digest: stored reports of %s unavailable: %s", team_id, type(exc).__name__)
            found = {}
        for domain in domains:
            seen[(team_id, domain)] = selectors_seen(found.get(domain.lower(), []), domain)
    out: list[Watch] = []
    for w in watches:
        extra = [sel for sel in seen.get((w.team_id, w.target), []) if sel not in w.selectors]
        out.append(dataclasses.replace(w, selectors=[*w.selectors, *extra]) if extra else w)
    return out


async def reports_states(store: Store, team_id: str, domains: Sequence[str], until: datetime
                         ) -> dict[str, dict[str, Any]]:
    """{domain: totals of its stored receiver reports whose period ended in the last
    WINDOW_DAYS} for the domains that have any. The database being away costs the digest
    its reports section, never the digest."""
    since = until - timedelta(days=WINDOW_DAYS)
    try:
        found = await _reports_by_domain(store, team_id, domains, since, until + timedelta(days=1))
    except Exception as exc:
        log.warning("digest: stored reports of %s unavailable: %s", team_id, type(exc).__name__)
        return {}
    out: dict[str, dict[str, Any]] = {}
    for domain in dict.fromkeys(domains):
        state = reports_state(found.get(domain.lower(), []))
        if state is not None:
            out[domain] = state
    return out


