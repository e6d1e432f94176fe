"""DMARC / TLS reports shared in Slack: the real app over HTTP, the local Slack Web API
serving the files, the real DNS world for the enrichment lookups."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from typing import Any

from bot.storage.reports import OPERATOR_SCOPE, ReportStore
from tests import test_slack_app as slack_app
from tests.slack_fakes import BOT_USER, TEAM
from tests.test_reports_imap import aggregate_xml, report_mail
from tests.test_slack_app import Harness, block_text, paste_event

harness = slack_app.harness  # fixture: the real app over HTTP with the local Slack Web API

TLS_RPT = {
    "organization-name": "Google Inc.", "report-id": "2026-12-01T00:00:00Z_example.com",
    "date-range": {"start-datetime": "2026-12-01T00:00:00Z", "end-datetime": "2026-12-01T23:59:59Z"},
    "contact-info": "smtp-tls-reporting@google.com",
    "policies": [{
        "policy": {"policy-type": "sts", "policy-domain": "example.com", "mx-host": ["mx.example.com"]},
        "summary": {"total-successful-session-count": 120, "total-failure-session-count": 4},
        "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "209.85.220.41",
                             "receiving-mx-hostname": "mx.example.com", "failed-session-count": 4}],
    }],
}


def shared(harness: Harness, ts: str, file_id: str, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
    harness.fake.files[file_id] = data
    f = {"id": file_id, "name": name, "mimetype": mimetype, "size": len(data),
         "url_private": harness.fake.file_url(file_id)}
    return paste_event(ts, "", subtype="file_share", files=[f])


async def reply_to(harness: Harness, ts: str) -> dict[str, Any]:
    await harness.fake.wait_for(lambda: [p for p in harness.fake.posts() if p.params.get("thread_ts") == ts])
    await harness.settle()
    return next(p.params for p in harness.fake.posts() if p.params.get("thread_ts") == ts)


async def stored_ids(harness: Harness) -> list[str]:
    return sorted(r.report_id for r in await ReportStore.of(harness.store).find(TEAM))


async def test_a_shared_dmarc_report_gets_its_summary_in_the_thread(harness: Harness) -> None:
    ev = shared(harness, "1700100000.000100", "FR1", "google.com!example.com!1764460800!1764547199.xml.gz",
                gzip.compress(aggregate_xml("up-1", dkim="fail", count=7)), "application/gzip")
    await harness.event(ev, "EvR1")
    post = await reply_to(harness, "1700100000.000100")
    body = block_text(post)
    assert "example.com" in body and "203.0.113.7" in body  # the failing source is named
    assert "DMARC" in body
    assert await stored_ids(harness) == ["up-1"]


async def test_the_same_report_shared_twice_is_stored_once(harness: Harness) -> None:
    data = gzip.compress(aggregate_xml("up-2"))
    await harness.event(shared(harness, "1700100100.000100", "FR2", "r.xml.gz", data, "application/gzip"), "EvR2")
    await reply_to(harness, "1700100100.000100")
    await harness.event(shared(harness, "1700100200.000100", "FR3", "again.xml.gz", data, "application/gzip"), "EvR3")
    await reply_to(harness, "1700100200.000100")  # still answered ...
    assert await stored_ids(harness) == ["up-2"]  # ... but counted once


async def test_a_report_already_read_from_the_mailbox_counts_once_when_uploaded(harness: Harness) -> None:
    from handlers.reports.api import parse_blob

    raw = report_mail("mail-1")
    await ReportStore.of(harness.store).add(OPERATOR_SCOPE, parse_blob("m.eml", raw).reports, source="imap")
    await harness.event(shared(harness, "1700100300.000100", "FR4", "report.eml", raw, "message/rfc822"), "EvR4")
    await reply_to(harness, "1700100300.000100")
    rows = await ReportStore.of(harness.store).find(TEAM)
    assert [r.report_id for r in rows] == ["mail-1"]


async def test_a_zipped_report_and_a_tls_report_are_summarised(harness: Harness) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("microsoft.com!example.com!1764460800!1764547199.xml", aggregate_xml("ms-1", org="microsoft.com"))
    await harness.event(shared(harness, "1700100400.000100", "FR5", "report.zip", buf.getvalue(),
                               "application/zip"), "EvR5")
    await reply_to(harness, "1700100400.000100")
    tls = json.dumps(TLS_RPT).encode()
    await harness.event(shared(harness, "1700100500.000100", "FR6", "google.com!example.com!1764547200.json",
                               tls, "application/json"), "EvR6")
    post = await reply_to(harness, "1700100500.000100")
    assert "certificate-expired" in block_text(post)
    assert await stored_ids(harness) == ["2026-12-01T00:00:00Z_example.com", "ms-1"]


async def test_a_file_that_is_no_report_gets_no_reply_unless_asked(harness: Harness) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("holiday.jpg", b"\xff\xd8\xff\xe0 not a report")
    ev = shared(harness, "1700100600.000100", "FR7", "photos.zip", buf.getvalue(), "application/zip")
    await harness.event(ev, "EvR7")
    await harness.settle()
    assert harness.fake.posts() == []
    assert await stored_ids(harness) == []


async def test_slash_reports_summarises_the_latest_report_file_in_its_thread(harness: Harness) -> None:
    ev = shared(harness, "1700100700.000100", "FR8", "yahoo.xml", aggregate_xml("y-1", org="yahoo.com"),
                "application/xml")
    harness.fake.messages[("C1", "1700100700.000100")] = ev
    harness.fake.messages[("C1", "1700100800.000100")] = paste_event("1700100800.000100", "thanks!")
    reply = await harness.answer("reports")
    assert "yahoo.xml" in reply["text"]
    post = await reply_to(harness, "1700100700.000100")
    assert "example.com" in block_text(post)
    assert await stored_ids(harness) == ["y-1"]


async def test_slash_reports_without_a_report_file_says_how_to_share_one(harness: Harness) -> None:
    harness.fake.messages[("C1", "1700100900.000100")] = paste_event("1700100900.000100", "hello")
    reply = await harness.answer("reports")
    assert "No DMARC or TLS report file" in reply["text"]


async def test_a_mention_in_the_thread_of_a_report_file_gets_its_summary(harness: Harness) -> None:
    parent = shared(harness, "1700101000.000100", "FR9", "report.xml.gz",
                    gzip.compress(aggregate_xml("m-1", dkim="fail")), "application/gzip")
    harness.fake.messages[("C1", "1700101000.000100")] = parent  # posted before the bot joined
    mention = {"type": "app_mention", "channel": "C1", "user": "U2", "ts": "1700101100.000100",
               "thread_ts": "1700101000.000100", "text": f"<@{BOT_USER}> what does this say?"}
    await harness.event(mention, "EvR9")
    post = await reply_to(harness, "1700101000.000100")
    assert "203.0.113.7" in block_text(post)
    assert await stored_ids(harness) == ["m-1"]


async def test_asked_about_a_file_that_is_no_report_says_so(harness: Harness) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("holiday.jpg", b"\xff\xd8\xff\xe0 not a report")
    parent = shared(harness, "1700101200.000100", "FR10", "photos.zip", buf.getvalue(), "application/zip")
    harness.fake.messages[("C1", "1700101200.000100")] = parent
    mention = {"type": "app_mention", "channel": "C1", "user": "U2", "ts": "1700101300.000100",
               "thread_ts": "1700101200.000100", "text": f"<@{BOT_USER}> summary please"}
    await harness.event(mention, "EvR10")
    post = await reply_to(harness, "1700101200.000100")
    assert "`photos.zip` holds no DMARC or TLS report I can read" in post["text"]


async def test_a_report_sent_to_the_bot_in_a_direct_message_is_summarised(harness: Harness) -> None:
    ev = shared(harness, "1700101400.000100", "FR11", "report.xml", aggregate_xml("dm-1"), "application/xml")
    ev.update(channel="D1", channel_type="im")
    await harness.event(ev, "EvR11")
    post = await reply_to(harness, "1700101400.000100")
    assert post["channel"] == "D1" and "example.com" in block_text(post)
    assert await stored_ids(harness) == ["dm-1"]
