"""Stored receiver reports (DMARC aggregate / failure reports, TLS-RPT).

    reports = ReportStore.of(store)           # same engine as the Store
    new = await reports.add("T1", parsed.reports, source="upload")   # [True, False, ...]
    rows = await reports.find("T1", domain="example.com", since=dt)

De-duplication: a report is identified by its type, its reporter (`org_name`,
case-folded) and its `report_id` (RFC 7489 appendix C `report_metadata/report_id`,
RFC 8460 section 4.4 `report-id`). The same report that arrives by mail, by an
upload and by the CLI is one row per scope (unique constraint, `ON CONFLICT DO
NOTHING`), so storing again is a no-op: the IMAP worker relies on that to be
idempotent when it re-reads a message it stored but could not mark.

Scope: `team_id` is the Slack workspace; the operator's mailbox (the IMAP worker
without `MAILCHECK_REPORTS_TEAM`) stores under `OPERATOR_SCOPE` (""), which
`find(..., with_operator=True)` merges in (counted once per report).

Failure reports (RFC 6591) carry parts of the failed message: addresses,
subjects, headers. Only the fields in `FAILURE_FIELDS` are stored (SECURITY.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import tables as t

if TYPE_CHECKING:
    from bot.storage.store import Store

OPERATOR_SCOPE = ""
SOURCES = ("imap", "upload", "cli")

# What a failure report keeps: how authentication failed and for which domain and IP.
# Never the original sender/recipient addresses, subject, headers or body.
FAILURE_FIELDS = frozenset({
    "type", "org_name", "report_id", "domain", "begin", "end", "source_ip", "auth_failure",
    "feedback_type", "delivery_result", "dkim_domain", "dkim_selector", "spf_domain",
    "arrival_date", "reported_domain", "identity_alignment", "spf_dns", "reporting_mta", "version",
})


@dataclass
class StoredReport:
    team_id: str
    type: str
    org_name: str
    report_id: str
    domain: str
    begin: datetime | None
    end: datetime | None
    received_at: datetime
    source: str
    data: dict[str, Any]
    key: str


def _as_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, dict):
        return dict(report)
    to_dict = getattr(report, "to_dict", None)
    if to_dict is None:
        raise TypeError(f"not a report: {type(report).__name__}")
    return dict(to_dict())


def storable(report: Any) -> dict[str, Any]:
    """The report as stored: its dict, minus the personal data of failure reports."""
    d = _as_dict(report)
    if d.get("type") == "dmarc-failure":
        d = {k: v for k, v in d.items() if k in FAILURE_FIELDS}
    return d


def dedupe_key(d: dict[str, Any]) -> str:
    """sha256 of type + reporter + report id; a report without an id (failure reports
    have none) is keyed by its stored content instead."""
    rtype = str(d.get("type") or "")
    org = str(d.get("org_name") or "").strip().casefold()
    rid = str(d.get("report_id") or "").strip()
    if rid:
        basis = "\x00".join((rtype, org, rid))
    else:
        basis = "\x00".join((rtype, org, json.dumps(d, sort_keys=True, default=str, ensure_ascii=False)))
    return hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()


def _when(value: Any) -> datetime | None:
    """ISO 8601 text ("2026-11-30T00:00:00Z"), epoch seconds or a datetime -> naive UTC."""
    if value is None or value == "":
        return None
    dt: datetime
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float):
        try:
            dt = datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=UTC)


def _clip(value: Any, n: int) -> str:
    # PostgreSQL text cannot hold NUL; a quirky reporter's NUL must not make a report unstorable
    # (the mailbox worker would retry that message for ever).
    return str(value or "").replace("\x00", "")[:n]


class ReportStore:
    """Receiver reports on the Store's database (same engine, same migrations)."""

    def __init__(self, engine: AsyncEngine, dialect: str) -> None:
        self.engine = engine
        self.dialect = dialect

    @classmethod
    def of(cls, store: Store) -> ReportStore:
        return cls(store.engine, store.dialect)

    def _insert(self) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(t.reports)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(t.reports)

    async def add(
        self, team_id: str, reports: Iterable[Any], *, source: str, now: datetime | None = None
    ) -> list[bool]:
        """Store `reports` (ParsedReport or their dicts) in one transaction; per report,
        True when it was new, False when this scope already had it."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}")
        received = _when(now or datetime.now(UTC))
        out: list[bool] = []
        async with self.engine.begin() as conn:
            for report in reports:
                d = storable(report)
                stmt = (
                    self._insert()
                    .values(
                        team_id=team_id,
                        dedupe_key=dedupe_key(d),
                        type=_clip(d.get("type"), 32),
                        org_name=_clip(d.get("org_name"), 255),
                        report_id=_clip(d.get("report_id"), 255),
                        domain=_clip(d.get("domain"), 255).lower(),
                        begin_at=_when(d.get("begin")),
                        end_at=_when(d.get("end")),
                        received_at=received,
                        source=source,
                        data=json.dumps(d, ensure_ascii=False, default=str),
                    )
                    .on_conflict_do_nothing(index_elements=["team_id", "dedupe_key"])
                    .returning(t.reports.c.id)
                )
                out.append((await conn.execute(stmt)).first() is not None)
        return out

    async def find(
        self,
        team_id: str,
        *,
        domain: str | None = None,
        domains: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        with_operator: bool = True,
        limit: int = 10_000,
    ) -> list[StoredReport]:
        """Reports of a scope (plus the operator's mailbox), oldest period first; `since`
        and `until` bound the report's end of period (else its received time). `domains`
        asks for several policy domains in one query (a digest's watched domains)."""
        c = t.reports.c
        scopes = [team_id] + ([OPERATOR_SCOPE] if with_operator and team_id != OPERATOR_SCOPE else [])
        cond: list[ColumnElement[bool]] = [c.team_id.in_(scopes)]
        if domain:
            cond.append(c.domain == domain.lower())
        if domains is not None:
            cond.append(c.domain.in_(sorted({d.lower() for d in domains})))
        if since is not None:
            s = _when(since)
            cond.append(or_(c.end_at >= s, and_(c.end_at.is_(None), c.received_at >= s)))
        if until is not None:
            u = _when(until)
            cond.append(or_(c.end_at < u, and_(c.end_at.is_(None), c.received_at < u)))
        stmt = select(t.reports).where(and_(*cond)).order_by(c.end_at, c.id).limit(limit)
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        seen: set[str] = set()
        out: list[StoredReport] = []
        for r in rows:
            m = r._mapping
            if m["dedupe_key"] in seen:  # the same report in the workspace and the mailbox
                continue
            seen.add(m["dedupe_key"])
            out.append(StoredReport(
                team_id=m["team_id"], type=m["type"], org_name=m["org_name"], report_id=m["report_id"],
                domain=m["domain"], begin=_aware(m["begin_at"]), end=_aware(m["end_at"]),
                received_at=_aware(m["received_at"]) or datetime.now(UTC), source=m["source"],
                data=json.loads(m["data"]), key=m["dedupe_key"],
            ))
        return out

    async def count(self, team_id: str, *, with_operator: bool = True) -> int:
        return len(await self.find(team_id, with_operator=with_operator))
