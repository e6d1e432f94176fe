"""Watched domains' digests gain a receiver-reports section: pass rate and its change,
new failing sources, TLS failures. The first digest is the baseline; later ones lead
with what changed. Real stored reports (SQLite and PostgreSQL), the real DNS world,
a local fake Slack Web API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import bot.digest as digest
from bot.storage import Store
from bot.storage.reports import ReportStore
from handlers.digest_reports import reports_changes, reports_state, reports_status_line
from handlers.reports.api import parse_blob
from tests import test_digest
from tests import test_storage_backends as backends
from tests.test_digest import FakeSlack
from tests.test_reports_imap import aggregate_xml
from tests.test_slack_reports import TLS_RPT

db_url = backends.db_url  # fixtures: SQLite and PostgreSQL
store = backends.store
fake_slack = test_digest.fake_slack

DOMAIN = "good.example"


def _agg(rid: str, sources: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """A stored aggregate report: {ip: (messages, passed)}."""
    return {"type": "dmarc-aggregate", "org_name": "google.com", "report_id": rid, "domain": DOMAIN,
            "messages": sum(m for m, _ in sources.values()), "dmarc_pass": sum(p for _, p in sources.values()),
            "sources": [{"ip": ip, "messages": m, "dmarc_pass": p, "dmarc": "pass" if p == m else "fail"}
                        for ip, (m, p) in sources.items()]}


def test_state_sums_reports_and_names_failing_sources() -> None:
    tls = {"type": "tls-rpt", "successful_sessions": 90, "failed_sessions": 10,
           "failures": [{"result_type": "certificate-expired", "sessions": 10}]}
    state = reports_state([_agg("a", {"192.0.2.1": (100, 100)}), _agg("b", {"203.0.113.9": (20, 5)}), tls])
    assert state is not None
    assert (state["messages"], state["dmarc_pass"], state["failing"]) == (120, 105, {"203.0.113.9": 15})
    line = reports_status_line(state)
    assert line == ("87.5% of 120 messages passed DMARC, 1 source failing DMARC, TLS: 10 of 100 sessions failed")
    assert "87.5%" in reports_status_line(state, "ja") and "TLS" in reports_status_line(state, "ja")
    assert reports_state([]) is None


def test_changes_need_a_previous_state_and_say_what_moved() -> None:
    before = reports_state([_agg("a", {"192.0.2.1": (100, 100)})])
    after = reports_state([_agg("a", {"192.0.2.1": (100, 100)}), _agg("b", {"203.0.113.9": (20, 0)})])
    assert reports_changes(None, after, DOMAIN) == []  # the first digest is the baseline
    texts = [c.text for c in reports_changes(before, after, DOMAIN)]
    assert texts == ["DMARC pass rate in receivers' reports fell to 83.3% (was 100.0%)",
                     "new source failing DMARC in receivers' reports: 203.0.113.9 (20 messages failed)"]
    assert reports_changes(after, after, DOMAIN) == []  # nothing new: nothing said
    steady = reports_state([_agg("c", {"192.0.2.1": (1000, 995)})])
    assert reports_changes(steady, reports_state([_agg("d", {"192.0.2.1": (1000, 992)})]), DOMAIN) == []  # noise


def _text(call: dict[str, Any]) -> str:
    return json.dumps(call["body"]["blocks"], ensure_ascii=False)


async def _stored(store: Store, *blobs: tuple[str, bytes]) -> None:
    for name, data in blobs:
        parsed = parse_blob(name, data)
        assert parsed.reports, parsed.errors
        await ReportStore.of(store).add("T1", parsed.reports, source="upload")


async def test_a_digest_shows_a_new_failing_source_and_tls_failures(store: Store, fake_slack: FakeSlack,
                                                                     dns_world: Any) -> None:
    now = int(time.time())
    day = 86400
    past = datetime.now(UTC) - timedelta(days=2)
    await store.add_watch("T1", "C1", DOMAIN, "daily 09:00", "Asia/Tokyo", now=past)
    await _stored(store, ("a.xml", aggregate_xml("d-1", domain=DOMAIN, ip="192.0.2.1", count=50,
                                                 begin=now - 2 * day, end=now - day)))

    stats = await digest.run_due(store, resolver_factory=lambda: dns_world.resolver(timeout=5.0))
    assert stats.posted == 1, stats
    first = _text(fake_slack.posts("C1")[-1])
    assert "Receiver reports" in first and "100.0% of 50 messages passed DMARC" in first
    assert "What changed" not in first  # the first digest is quiet: a baseline

    # New reports: a source failing DMARC (no aligned DKIM, SPF fails), and a TLS report with failures
    await _stored(store, ("b.xml", aggregate_xml("d-2", domain=DOMAIN, ip="203.0.113.9", count=25, dkim="fail",
                                                 begin=now - day, end=now - 60)))
    tls = json.loads(json.dumps(TLS_RPT).replace("example.com", DOMAIN))
    await _stored(store, ("t.json", json.dumps(tls).encode()))
    stats = await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=5.0))
    assert stats.posted == 1
    second = _text(fake_slack.posts("C1")[-1])
    assert "What changed" in second
    assert "new source failing DMARC in receivers' reports: 203.0.113.9 (25 messages failed)" in second
    assert "DMARC pass rate in receivers' reports fell to 66.7% (was 100.0%)" in second
    assert "TLS reports: 4 sessions to your MX failed (certificate-expired)" in second
    assert second.index("What changed") < second.index("Receiver reports")

    # Nothing new since: no report change is repeated
    await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=5.0))
    third = _text(fake_slack.posts("C1")[-1])
    assert "203.0.113.9 (25" not in third.split("Receiver reports")[0]
    assert "66.7% of 75 messages passed DMARC" in third


def test_the_reports_lines_read_in_japanese() -> None:
    from handlers.digest_diff import describe

    before = reports_state([_agg("a", {"192.0.2.1": (100, 100)})])
    after = reports_state([_agg("a", {"192.0.2.1": (100, 100)}), _agg("b", {"203.0.113.9": (20, 0)})])
    lines = [describe(c, "ja") for c in reports_changes(before, after, DOMAIN)]
    assert lines == ["受信側レポートのDMARC合格率が 83.3% に下がりました（前回 100.0%）",
                     "受信側レポートにDMARC不合格の新しい送信元: 203.0.113.9（不合格 20通）"]
    assert reports_status_line(after or {}, "ja") == "DMARC合格 83.3%（120通中）、DMARC不合格の送信元 1件"
