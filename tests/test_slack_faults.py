"""Slack faults: the local Slack Web API answers 429 with Retry-After, or 503,
before answering normally; the app's client (thread replies, fallback posts)
and the digest client retry and the message is posted exactly once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)

import bot.digest as digest
from bot.slack import SlackSettings, create_app
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, FakeSlack, slack_escape
from tests.test_slack_app import GMAIL_BOUNCE, Harness, harness, paste_event

__all__ = ["harness"]  # the fixture, re-used


def _kinds(client: Any) -> set[type]:
    return {type(h) for h in client.retry_handlers}


def test_every_client_has_the_retry_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = {AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler, AsyncConnectionErrorRetryHandler}
    app = create_app(SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN))
    assert wanted <= _kinds(app.client)
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    client = digest.make_web_client(BOT_TOKEN)
    assert wanted <= _kinds(client)
    assert client.base_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize("fault", [(429, {"Retry-After": "1"}), (503, {})], ids=["429-retry-after", "503"])
async def test_thread_reply_survives_a_slack_fault(harness: Harness, fault: tuple[int, dict[str, str]]) -> None:
    fake = harness.fake
    fake.faults["chat.postMessage"] = [fault]
    t0 = time.monotonic()
    status, _ = await harness.event(paste_event("1700007000.000100", slack_escape(GMAIL_BOUNCE)), f"EvFault{fault[0]}")
    assert status == 200
    await fake.wait_for(lambda: len(fake.posts()) >= 2, timeout=30)
    await harness.settle()
    posts = fake.posts()
    assert len(posts) == 2, [p.params.get("text") for p in posts]  # the faulted try + one retry
    assert posts[0].params["thread_ts"] == posts[1].params["thread_ts"] == "1700007000.000100"
    assert not fake.faults["chat.postMessage"]
    if fault[0] == 429:
        assert posts[1].at - posts[0].at >= 0.9, "Retry-After: 1 was not honoured"
    assert time.monotonic() - t0 < 30
    assert harness.rt.metrics.errors.labels("task")._value.get() == 0


@pytest.mark.parametrize("fault", [(429, {"Retry-After": "1"}), (503, {})], ids=["429-retry-after", "503"])
async def test_digest_client_retries(monkeypatch: pytest.MonkeyPatch, fault: tuple[int, dict[str, str]]) -> None:
    fake = await FakeSlack().start()
    try:
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        client = digest.make_web_client(BOT_TOKEN)
        fake.faults["chat.postMessage"] = [fault]
        resp = await client.chat_postMessage(channel="C1", text="digest")
        assert resp["ok"] is True and resp["ts"]
        posts = fake.posts()
        assert len(posts) == 2
        if fault[0] == 429:
            assert posts[1].at - posts[0].at >= 0.9
    finally:
        await fake.close()
