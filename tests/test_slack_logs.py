"""Whole mail logs shared in Slack: the real app over HTTP with signed requests, the
local Slack Web API serving the file and receiving the chart upload."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from tests import test_slack_app as slack_app
from tests.slack_fakes import BOT_USER
from tests.support.maillogs import gmail_day, yahoo_bounces
from tests.test_slack_app import Harness, paste_event

harness = slack_app.harness  # fixture: the real app over HTTP with the local Slack Web API

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def shared(harness: Harness, ts: str, file_id: str, name: str, data: bytes, mimetype: str = "text/plain",
           **extra: Any) -> dict[str, Any]:
    harness.fake.files[file_id] = data
    f = {"id": file_id, "name": name, "mimetype": mimetype, "size": len(data),
         "url_private": harness.fake.file_url(file_id)}
    return paste_event(ts, "", subtype="file_share", files=[f], **extra)


async def thread_posts(harness: Harness, ts: str, *, uploads: int = 0) -> list[dict[str, Any]]:
    """The bot's messages in the thread of ``ts`` once it is done (and ``uploads`` charts arrived)."""
    await harness.fake.wait_for(lambda: [p for p in harness.fake.posts() if p.params.get("thread_ts") == ts]
                                and len(harness.fake.api("files.completeUploadExternal")) >= uploads)
    await harness.settle()
    return [p.params for p in harness.fake.posts() if p.params.get("thread_ts") == ts]


def everything_posted(harness: Harness) -> str:
    return "\n".join(str(c.params) for c in harness.fake.calls)


async def test_a_shared_mail_log_gets_its_summary_and_a_chart_in_the_thread(harness: Harness) -> None:
    log = (gmail_day() + yahoo_bounces()).encode()
    await harness.event(shared(harness, "1700200000.000100", "FL1", "mail.log", log), "EvL1")
    posts = await thread_posts(harness, "1700200000.000100", uploads=1)
    body = posts[0]["text"]
    assert "delivered 80" in body and "bounced 3" in body  # pflogsumm's totals
    assert "google" in body and "421-4.7.28" in body and "yahoo" in body  # top reasons, an example each
    assert "started deferring or refusing mail" in body  # the rate jump, with when
    # The chart: a PNG uploaded to the URL Slack gave, then shared in the same thread.
    done = harness.fake.api("files.completeUploadExternal")[0].params
    assert done["channel_id"] == "C1" and done["thread_ts"] == "1700200000.000100"
    [png] = harness.fake.uploads.values()
    assert png.startswith(PNG_MAGIC) and len(png) > 5000


async def test_addresses_in_a_shared_log_are_masked_in_everything_posted(harness: Harness) -> None:
    log = (gmail_day() + yahoo_bounces()).encode()
    await harness.event(shared(harness, "1700200100.000100", "FL2", "mail.log", log), "EvL2")
    posts = await thread_posts(harness, "1700200100.000100", uploads=1)
    sent = everything_posted(harness)
    assert "alice.u" not in sent and "bob.y" not in sent and "u1@gmail.com" not in sent
    assert "***@yahoo.com" in sent  # the domain stays: it is what the admin acts on
    assert "Addresses are masked" in posts[0]["text"]


async def test_a_gzipped_rotated_log_is_summarised_in_japanese_for_a_japanese_user(harness: Harness) -> None:
    harness.fake.locales["U1"] = "ja-JP"
    log = gzip.compress(gmail_day().encode())
    await harness.event(shared(harness, "1700200200.000100", "FL3", "mail.log.2.gz", log, "application/gzip"),
                        "EvL3")
    posts = await thread_posts(harness, "1700200200.000100", uploads=1)
    assert "メールログ" in posts[0]["text"] and "配送 80件" in posts[0]["text"]


async def test_a_text_file_that_is_one_bounce_still_gets_the_bounce_analysis(harness: Harness) -> None:
    bounce = (b"Dec  4 09:00:02 mta postfix/smtp[1104]: 4Y1A2B3C4D: to=<bob@gmail.com>, relay=gmail-smtp-in.l."
              b"google.com[142.250.4.27]:25, delay=0.9, delays=0.08/0/0.4/0.42, dsn=5.7.26, status=bounced (host "
              b"gmail-smtp-in.l.google.com[142.250.4.27] said: 550-5.7.26 This mail has been blocked because the "
              b"sender is unauthenticated. (in reply to end of DATA command))\n")
    await harness.event(shared(harness, "1700200300.000100", "FL4", "bounce.txt", bounce), "EvL4")
    posts = await thread_posts(harness, "1700200300.000100")
    assert harness.fake.uploads == {}  # no chart: this is a bounce, not a day of log
    assert "Mail log" not in posts[0]["text"]


@pytest.mark.parametrize("harness", [{"max_log_bytes": 50_000}], indirect=True)
async def test_a_log_larger_than_the_log_limit_is_refused_with_the_limit(harness: Harness) -> None:
    log = (gmail_day() * 2).encode()
    await harness.event(shared(harness, "1700200400.000100", "FL5", "mail.log", log), "EvL5")
    posts = await thread_posts(harness, "1700200400.000100")
    assert posts[0]["text"].startswith("`mail.log` is larger than 0.0477 MB; share a shorter period")
    assert harness.fake.uploads == {}


async def test_slash_logs_summarises_the_latest_log_file_in_its_thread(harness: Harness) -> None:
    ev = shared(harness, "1700200500.000100", "FL6", "maillog", gmail_day().encode())
    harness.fake.messages[("C1", "1700200500.000100")] = ev
    harness.fake.messages[("C1", "1700200600.000100")] = paste_event("1700200600.000100", "any idea?")
    reply = await harness.answer("logs")
    assert "maillog" in reply["text"]
    posts = await thread_posts(harness, "1700200500.000100", uploads=1)
    assert "google" in posts[0]["text"]


async def test_slash_logs_without_a_log_file_says_how_to_share_one(harness: Harness) -> None:
    harness.fake.messages[("C1", "1700200700.000100")] = paste_event("1700200700.000100", "hello")
    reply = await harness.answer("logs")
    assert "No mail log file" in reply["text"]


async def test_a_mention_in_the_thread_of_a_log_file_gets_its_summary(harness: Harness) -> None:
    parent = shared(harness, "1700200800.000100", "FL7", "mail.log.1", gmail_day().encode())
    harness.fake.messages[("C1", "1700200800.000100")] = parent
    mention = {"type": "app_mention", "channel": "C1", "user": "U2", "ts": "1700200900.000100",
               "thread_ts": "1700200800.000100", "text": f"<@{BOT_USER}> what went wrong?"}
    await harness.event(mention, "EvL7")
    posts = await thread_posts(harness, "1700200800.000100", uploads=1)
    assert "4.7.28" in posts[0]["text"]
