"""The HTTP endpoint under hostile requests, over real HTTP: the signature is
checked on the raw body before anything parses it (401), a signed body that
can't be read is a 400, each with one log line and no traceback; clients that
send their headers or body too slowly get a 408 and lose the connection."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.serve import signature_problem
from bot.slack import SlackSettings
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signed_headers, slash_body
from tests.test_slack_app import Harness, harness
from tests.test_slack_serve import _start

__all__ = ["harness"]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def _assert_one_line_each(caplog: pytest.LogCaptureFixture, n: int) -> None:
    records = _records(caplog)
    assert len(records) == n, [r.getMessage() for r in records]
    for r in records:
        assert r.exc_info is None and not r.exc_text and "Traceback" not in r.getMessage()
        assert "\n" not in r.getMessage()


async def test_unsigned_garbage_is_401_with_one_log_line_each(harness: Harness,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    now = str(int(time.time()))
    cases: list[tuple[str, dict[str, str]]] = [
        ("{not json", {"Content-Type": JSON}),  # bad JSON, no signature
        ("payload=%7Bnot-json", {"Content-Type": FORM}),  # payload= that isn't JSON
        ("{not json", {"Content-Type": JSON, "X-Slack-Request-Timestamp": "soon",
                       "X-Slack-Signature": "v0=00"}),  # non-numeric timestamp
        ("{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": "１２３",  # full-width digits
                "X-Slack-Signature": "v0=00"}),
        ("{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=ünïcode"}),
        ("{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=00"}),
        ("\xff\xfe garbage", {"Content-Type": FORM}),
    ]
    with caplog.at_level(logging.INFO):
        for body, headers in cases:
            status, _raw, _ = await harness.post(body, headers)
            assert status == 401, (body, headers)
    _assert_one_line_each(caplog, len(cases))
    assert not harness.fake.calls and not harness.rt.tasks


async def test_signed_but_malformed_is_400_with_one_log_line_each(harness: Harness,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    cases = [
        ("{not json", JSON),
        ("payload=%7Bnot-json", FORM),
        (urlencode({"payload": "[1, 2]"}), FORM),  # JSON, but not an object
        ("[1, 2, 3]", JSON),
        ('"just a string"', JSON),
    ]
    with caplog.at_level(logging.INFO):
        for body, ctype in cases:
            status, _raw, _ = await harness.post(body, signed_headers(body, content_type=ctype))
            assert status == 400, body
        # Signed bytes that aren't UTF-8.
        raw = b"payload=\xff\xfe"
        headers = signed_headers(raw.decode("latin-1"), content_type=FORM)
        from tests.slack_fakes import signature

        headers["X-Slack-Signature"] = signature(SIGNING_SECRET, headers["X-Slack-Request-Timestamp"], raw)
        async with harness.session.post(harness.url, data=raw, headers=headers) as resp:
            assert resp.status == 400
    _assert_one_line_each(caplog, len(cases) + 1)
    assert not harness.fake.calls and not harness.rt.tasks


async def test_a_valid_request_still_works_after_garbage(harness: Harness) -> None:
    await harness.post("{not json", {"Content-Type": JSON})
    status, ack, _elapsed, _hook = await harness.command("help")
    assert status == 200 and "mailcheck" in ack["text"]


def test_signature_check_is_slacks_v0_scheme() -> None:
    body = b"token=x&text=hi"
    now = 1_700_000_000.0
    good = signed_headers(body.decode(), timestamp=int(now))
    assert signature_problem(SIGNING_SECRET, good, body, now) is None
    assert signature_problem(SIGNING_SECRET, good, body + b"x", now) == "bad signature"
    assert signature_problem(SIGNING_SECRET, good, body, now + 301) == "stale timestamp"
    assert signature_problem(SIGNING_SECRET, good, body, now - 301) == "stale timestamp"
    assert signature_problem("", good, body, now) == "no signing secret configured"
    assert signature_problem(SIGNING_SECRET, {}, body, now) == "missing signature headers"
    assert signature_problem(SIGNING_SECRET, {**good, "X-Slack-Request-Timestamp": "1e9"}, body,
                             now) == "malformed timestamp"


# -- slow clients ----------------------------------------------------------------------------
@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch, dns_world: Any, tmp_path: Path) -> Any:
    monkeypatch.setenv("MAILCHECK_HTTP_READ_TIMEOUT", "1")
    fake = await FakeSlack().start()
    settings = SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=fake.api_url,
                             port=0, host="127.0.0.1", database_url=f"sqlite:///{tmp_path}/db.sqlite",
                             nameservers=dns_world.nameserver_spec, dns_timeout=1.0, run_scheduler=False)
    task, stop, info = await _start(settings)
    try:
        yield info["port"], fake
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await fake.close()


async def _read_all(reader: asyncio.StreamReader, limit: float = 15.0) -> bytes:
    """Everything until the server closes; the limit is a hang guard, far above the 1 s timeout."""
    return await asyncio.wait_for(reader.read(), limit)


async def test_slow_headers_get_408_and_the_connection_closed(server: Any,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    port, fake = server
    with caplog.at_level(logging.INFO):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        answer = b""
        # Keep trickling header bytes: each arrives before the timeout, the headers never complete.
        for i in range(40):
            try:
                writer.write(f"X-Pad-{i}: a\r\n".encode())
                await writer.drain()
            except ConnectionError:
                break
            try:
                answer += await asyncio.wait_for(reader.read(1024), 0.4)
            except TimeoutError:
                continue
            if answer or reader.at_eof():
                break
        answer += await _read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    slow = [r for r in _records(caplog) if "slow client" in r.getMessage()]
    assert len(slow) == 1 and slow[0].exc_info is None
    assert not after_start(fake)  # the slow request reached nothing behind the HTTP layer


def after_start(fake: Any) -> list[Any]:
    """Web API calls other than the bot's start-up auth.test (bot/slack/health.py)."""
    return [c for c in fake.calls if c.method != "auth.test"]


async def test_slow_body_gets_408(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    port, fake = server
    body = slash_body("good.example", "http://127.0.0.1:9/hook")
    headers = signed_headers(body)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with caplog.at_level(logging.INFO):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n"
                     .encode())
        writer.write(body[:10].encode())  # and the rest never comes
        await writer.drain()
        answer = await _read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    slow = [r for r in _records(caplog) if "slow client" in r.getMessage()]
    assert len(slow) == 1 and slow[0].exc_info is None
    assert not after_start(fake)  # the slow request reached nothing behind the HTTP layer


async def test_idle_and_prompt_clients_are_served(server: Any) -> None:
    port, _fake = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await _read_all(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
