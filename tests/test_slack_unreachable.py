"""The bot when Slack's Web API cannot be reached or refuses the token: a slash command
still gets its ack with one line saying so (never Slack's bare "dispatch_failed", never a
500 with a traceback), the failure is counted, `/healthz` turns 503 with the reason while
it lasts and recovers by itself; Socket Mode keeps trying to connect, one log line per
attempt, and stops promptly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.slack import SlackSettings, create_app, health
from bot.webclient import make_web_client
from tests.dnsworld import free_port
from tests.slack_fakes import BOT_TOKEN, FakeSlack
from tests.test_slack_app import Harness, block_text, harness  # noqa: F401  (the fixture)
from tests.test_slack_serve import _start, fake  # noqa: F401  (the fixture)

UNANSWERED = [(500, {})] * 30  # every try of auth.test (the client retries 5xx twice) fails


async def healthz(h: Harness) -> tuple[int, dict[str, Any]]:
    async with h.session.get(str(h.server.make_url("/healthz"))) as resp:
        return resp.status, await resp.json()


def no_tracebacks(records: list[logging.LogRecord]) -> bool:
    return not any(r.exc_info for r in records if r.levelno >= logging.WARNING)


async def test_a_command_is_acked_with_one_line_while_slack_answers_500(
        harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    harness.fake.faults["auth.test"] = list(UNANSWERED)
    with caplog.at_level(logging.INFO):
        status, ack, elapsed, hook = await harness.command("ip 192.0.2.1")
    assert status == 200 and elapsed < 3.0  # Slack's limit for the ack
    assert "cannot reach Slack" in ack["text"] and ack.get("response_type") == "ephemeral"
    assert "reinstall" not in block_text(ack)  # an outage is not a lost installation
    assert no_tracebacks(caplog.records)
    code, body = await healthz(harness)
    assert code == 503 and body["ok"] is False
    assert body["reason"].startswith("Slack Web API unreachable since") and "auth.test" in body["reason"]
    assert 'mailcheck_errors_total{where="slack_api"}' in harness.rt.metrics.render().decode()
    # The next command in the same minute is answered at once, from the known outage.
    calls = len(harness.fake.api("auth.test"))
    status, ack, _e, _h = await harness.command("help")
    assert status == 200 and "cannot reach Slack" in ack["text"]
    assert len(harness.fake.api("auth.test")) == calls

    # Slack is back: the next attempt works, the command runs, /healthz is healthy again.
    harness.fake.faults["auth.test"] = []
    monkeypatch.setattr(health, "RETRY_S", 0.0)
    status, ack, _e, hook = await harness.command("ip 192.0.2.1")
    assert status == 200 and "cannot reach Slack" not in block_text(ack) and "192.0.2.1" in block_text(ack)
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=30)
    assert (await healthz(harness))[0] == 200


@pytest.mark.parametrize("harness", [{"api_url": f"http://127.0.0.1:{free_port()}/api/"}], indirect=True)
async def test_a_command_is_acked_with_one_line_when_the_web_api_refuses_connections(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    with caplog.at_level(logging.INFO):
        status, ack, elapsed, _hook = await harness.command("help", user="UJA2")
    assert status == 200 and elapsed < 3.0
    assert "cannot reach Slack" in ack["text"]
    assert no_tracebacks(caplog.records)
    code, body = await healthz(harness)
    assert code == 503 and "Slack Web API unreachable" in body["reason"]


async def test_a_failed_post_marks_the_web_api_down_until_a_call_succeeds(fake: FakeSlack) -> None:  # noqa: F811
    state = health.SlackHealth()
    client = make_web_client(BOT_TOKEN, fake.api_url, health=state)
    fake.faults["chat.postMessage"] = [(503, {})] * 3
    with pytest.raises(Exception):  # noqa: B017 (slack_sdk's error for a 503 after its retries)
        await client.chat_postMessage(channel="C1", text="digest")
    assert state.down and "chat.postMessage" in state.headline() and "503" in state.headline()
    # Slack answered (even a refusal such as channel_not_found means it is reachable).
    await client.chat_postMessage(channel="C1", text="digest")
    assert not state.down and state.status() == {"slack_web_api": "ok"}


def test_bolt_does_not_warn_that_the_token_is_unused(caplog: pytest.LogCaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with caplog.at_level(logging.WARNING):
        create_app(SlackSettings(signing_secret="s", bot_token=BOT_TOKEN, api_url="http://127.0.0.1:9/api/"))
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
    import os

    assert os.environ["SLACK_BOT_TOKEN"] == BOT_TOKEN  # the environment is as it was


async def test_socket_mode_keeps_trying_to_connect_and_healthz_says_so(
        fake: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "0")
    fake.faults["apps.connections.open"] = [(500, {})] * 6  # the first two attempts (3 tries each)
    settings = SlackSettings(bot_token=BOT_TOKEN, app_token="xapp-1-A1-test", api_url=fake.api_url, port=0,
                             host="127.0.0.1", database_url=f"sqlite:///{tmp_path}/db.sqlite",
                             run_scheduler=False)
    with caplog.at_level(logging.INFO):
        task, stop, info = await _start(settings)
        url = f"http://127.0.0.1:{info['port']}/healthz"
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                first = (r.status, await r.json())
            await fake.wait_for(lambda: fake.ws is not None, timeout=30)
            for _ in range(100):  # the handler notices the hello message
                async with s.get(url) as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
            last = r.status
        stop.set()
        assert await asyncio.wait_for(task, 15) == 0  # a hang guard; stopping takes well under it
    assert first[0] == 503 and first[1]["socket_connected"] is False
    assert "Socket Mode disconnected since" in first[1]["reason"]
    assert last == 200
    attempts = [r.getMessage() for r in caplog.records if "Socket Mode: could not connect" in r.getMessage()]
    assert len(attempts) == 2 and "attempt 1" in attempts[0] and "next try in 1 s" in attempts[0]
    assert no_tracebacks(caplog.records)


def test_serve_in_socket_mode_stops_on_sigterm_while_slack_is_unreachable(tmp_path: Path) -> None:
    """`mailcheck serve` with no way to Slack: one line per connection attempt, no
    traceback, and SIGTERM ends it with exit 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-1-A1-test",
               SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/", PORT="0", HOST="127.0.0.1",
               DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite", MAILCHECK_SCHEDULER="off")
    env.pop("SLACK_SIGNING_SECRET", None)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--mode", "socket", "--no-scheduler"],
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    deadline = time.monotonic() + 60  # a hang guard: imports on a loaded machine take a few seconds
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "Socket Mode: could not connect" in line:
            break
    proc.send_signal(signal.SIGTERM)
    try:
        rest = proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "Socket Mode: could not connect to Slack (attempt 1" in log
    assert "could not confirm the bot token with Slack at start-up" in log
    assert "Traceback" not in log
