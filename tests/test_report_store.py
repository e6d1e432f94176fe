"""Stored receiver reports: one row per report however often it arrives (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.storage import Store
from bot.storage import tables as t
from bot.storage.reports import OPERATOR_SCOPE, ReportStore
from tests import test_storage_backends as backends

db_url = backends.db_url  # fixtures: SQLite and PostgreSQL


def aggregate(report_id: str = "r-1", org: str = "google.com", domain: str = "example.com",
              end: str = "2026-12-01T00:00:00Z", fail: int = 0) -> dict[str, Any]:
    return {"type": "dmarc-aggregate", "org_name": org, "report_id": report_id, "domain": domain,
            "begin": "2026-11-30T00:00:00Z", "end": end, "messages": 10 + fail, "dmarc_pass": 10,
            "dmarc_fail": fail, "sources": []}


async def test_the_same_report_by_mail_and_by_upload_is_stored_once(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        assert await reports.add("T1", [aggregate()], source="imap") == [True]
        assert await reports.add("T1", [aggregate(org="Google.com")], source="upload") == [False]
        assert await reports.add("T1", [aggregate("r-2")], source="cli") == [True]
        rows = await reports.find("T1", domain="EXAMPLE.com")
        assert [(r.report_id, r.source) for r in rows] == [("r-1", "imap"), ("r-2", "cli")]
        assert rows[0].end == datetime(2026, 12, 1, tzinfo=UTC)
        assert rows[0].data["dmarc_pass"] == 10
    finally:
        await store.close()


async def test_a_tls_report_with_the_same_id_as_a_dmarc_report_is_another_report(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        tls = {"type": "tls-rpt", "org_name": "google.com", "report_id": "r-1", "domain": "example.com",
               "begin": "2026-11-30T00:00:00Z", "end": "2026-12-01T00:00:00Z",
               "successful_sessions": 5, "failed_sessions": 0, "failures": []}
        assert await reports.add("T1", [aggregate(), tls], source="upload") == [True, True]
        assert await reports.count("T1") == 2
    finally:
        await store.close()


async def test_workspaces_do_not_see_each_others_reports_but_all_see_the_operator_mailbox(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        await reports.add("T1", [aggregate("mine"), aggregate("both")], source="upload")
        await reports.add("T2", [aggregate("theirs")], source="upload")
        await reports.add(OPERATOR_SCOPE, [aggregate("mailbox"), aggregate("both")], source="imap")
        assert sorted(r.report_id for r in await reports.find("T1")) == ["both", "mailbox", "mine"]  # "both" once
        assert sorted(r.report_id for r in await reports.find("T1", with_operator=False)) == ["both", "mine"]
        assert sorted(r.report_id for r in await reports.find("T2")) == ["both", "mailbox", "theirs"]
    finally:
        await store.close()


async def test_reports_are_found_by_their_period(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        await reports.add("T1", [aggregate("old", end="2026-11-01T00:00:00Z"),
                                 aggregate("new", end="2026-12-02T00:00:00Z")], source="upload")
        since = datetime(2026, 11, 15, tzinfo=UTC)
        assert [r.report_id for r in await reports.find("T1", since=since)] == ["new"]
        assert [r.report_id for r in await reports.find("T1", until=since)] == ["old"]
    finally:
        await store.close()


async def test_a_failure_report_keeps_no_personal_data(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        ruf = {"type": "dmarc-failure", "org_name": "", "report_id": "", "domain": "example.com",
               "source_ip": "203.0.113.9", "auth_failure": "dkim",
               "original_mail_from": "alice@example.com", "original_rcpt_to": "bob@example.net",
               "subject": "Your invoice", "headers": "From: alice@example.com"}
        assert await reports.add("T1", [ruf], source="imap") == [True]
        assert await reports.add("T1", [dict(ruf)], source="upload") == [False]  # same content, same report
        async with store.engine.begin() as conn:
            everything = repr((await conn.execute(select(t.reports))).all())
        assert "203.0.113.9" in everything
        for personal in ("alice@", "bob@", "Your invoice"):
            assert personal not in everything
    finally:
        await store.close()


async def test_concurrent_stores_of_one_report_keep_one_row(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        results = await asyncio.gather(*(reports.add("T1", [aggregate()], source="imap") for _ in range(5)))
        assert sorted(r[0] for r in results) == [False, False, False, False, True]
        assert await reports.count("T1") == 1
    finally:
        await store.close()


async def test_a_report_with_nul_characters_is_stored(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        reports = ReportStore.of(store)
        odd = aggregate("nul\x00id", org="quirky\x00.example")
        odd["sources"] = [{"ip": "192.0.2.1", "messages": 1, "reason": "bad\x00byte"}]
        assert await reports.add("T1", [odd], source="imap") == [True]
        assert await reports.add("T1", [odd], source="imap") == [False]
        [row] = await reports.find("T1")
        assert row.org_name == "quirky.example" and row.data["sources"][0]["reason"] == "bad\x00byte"
    finally:
        await store.close()
