"""`mailcheck serve` end to end: HTTP mode on an ephemeral port, Socket Mode
against a local WebSocket endpoint, start-up checks, the signing vector."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.serve import add_serve_command, serve
from bot.slack import SlackSettings
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signature, signed_headers, slash_body

# Slack's published example ("Verifying requests from Slack").
VECTOR_TS = "1531420618"
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_signing_vector() -> None:
    assert signature(SIGNING_SECRET, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    verifier = SignatureVerifier(SIGNING_SECRET, clock=type("C", (), {"now": lambda self: 1531420618.0})())
    assert verifier.is_valid(VECTOR_BODY, VECTOR_TS, VECTOR_SIG)
    assert not verifier.is_valid(VECTOR_BODY + "x", VECTOR_TS, VECTOR_SIG)
    late = SignatureVerifier(SIGNING_SECRET, clock=type("C", (), {"now": lambda self: 1531420618.0 + 301})())
    assert not late.is_valid(VECTOR_BODY, VECTOR_TS, VECTOR_SIG)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    f = await FakeSlack().start()
    try:
        yield f
    finally:
        await f.close()


async def _start(settings: SlackSettings) -> tuple[asyncio.Task[int], asyncio.Event, dict[str, Any]]:
    stop = asyncio.Event()
    info: dict[str, Any] = {}
    ready = asyncio.Event()

    def on_ready(i: dict[str, Any]) -> None:
        info.update(i)
        ready.set()

    task = asyncio.ensure_future(serve(settings, stop=stop, ready=on_ready))
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, timeout=20,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        raise AssertionError(f"serve() ended early: {task.result()}")
    return task, stop, info


async def test_serve_http_mode(fake: FakeSlack, dns_world: Any, tmp_path: Path) -> None:
    settings = SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=fake.api_url,
                             port=0, host="127.0.0.1", database_url=f"sqlite:///{tmp_path}/db.sqlite",
                             nameservers=dns_world.nameserver_spec, dns_timeout=1.0)
    task, stop, info = await _start(settings)
    assert info["mode"] == "http"
    base = f"http://127.0.0.1:{info['port']}"
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/healthz") as r:
            assert r.status == 200 and (await r.json())["mode"] == "http"
        hook = fake.new_hook()
        body = slash_body("ip 192.0.2.1", hook)
        async with s.post(base + "/slack/events", data=body, headers=signed_headers(body)) as r:
            assert r.status == 200 and "192.0.2.1" in (await r.json())["text"]
        await fake.wait_for(lambda: fake.hooks, timeout=30)
        async with s.post(base + "/slack/events", data=body, headers=signed_headers(body, secret="x")) as r:
            assert r.status == 401
        async with s.get(base + "/metrics") as r:
            metrics = await r.text()
        assert 'mailcheck_slack_commands_total{subcommand="ip"} 1.0' in metrics
        assert 'mailcheck_slack_ack_seconds_count{mode="http"}' in metrics
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0


async def test_serve_refuses_incomplete_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert await serve(SlackSettings(signing_secret="", bot_token=BOT_TOKEN)) == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err
    assert await serve(SlackSettings(signing_secret="s", bot_token=None)) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN" in err
    assert await serve(SlackSettings(bot_token=BOT_TOKEN, app_token="xoxb-wrong")) == 2


async def test_serve_socket_mode(fake: FakeSlack, dns_world: Any, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    settings = SlackSettings(bot_token=BOT_TOKEN, app_token="xapp-1-A1-test", api_url=fake.api_url,
                             database_url=f"sqlite:///{tmp_path}/db.sqlite", run_scheduler=False,
                             nameservers=dns_world.nameserver_spec, dns_timeout=1.0)
    task, stop, info = await _start(settings)
    assert info["mode"] == "socket" and "port" not in info
    await fake.wait_for(lambda: fake.ws is not None)
    opened = fake.api("apps.connections.open")
    assert opened and opened[0].headers["Authorization"] == "Bearer xapp-1-A1-test"
    hook = fake.new_hook()
    payload = dict(pair.split("=", 1) for pair in slash_body("ip 192.0.2.1", hook).split("&"))
    from urllib.parse import unquote_plus

    payload = {k: unquote_plus(v) for k, v in payload.items()}
    await fake.send_envelope({"envelope_id": "env-1", "type": "slash_commands", "payload": payload,
                              "accepts_response_payload": True})
    await fake.wait_for(lambda: any(m.get("envelope_id") == "env-1" for m in fake.ws_received))
    ack = next(m for m in fake.ws_received if m.get("envelope_id") == "env-1")
    assert "192.0.2.1" in json.dumps(ack["payload"])
    await fake.wait_for(lambda: fake.hooks, timeout=30)
    assert "IP reputation" in json.dumps(fake.hooks[0].params)
    # An event retried over the socket (retry_attempt -> x-slack-retry-num) is answered once.
    from tests.slack_fakes import event_body, slack_escape
    from tests.test_slack_app import GMAIL_BOUNCE

    ev = json.loads(event_body({"type": "message", "channel": "C1", "user": "U1", "ts": "1700002000.000100",
                                "text": slack_escape(GMAIL_BOUNCE)}, event_id="EvSock"))
    for attempt in (0, 1):
        await fake.send_envelope({"envelope_id": f"env-ev{attempt}", "type": "events_api", "payload": ev,
                                  "accepts_response_payload": False, "retry_attempt": attempt,
                                  "retry_reason": "timeout" if attempt else ""})
    await fake.wait_for(lambda: fake.posts(), timeout=30)
    await asyncio.sleep(0.5)
    assert len(fake.posts()) == 1 and fake.posts()[0].params["thread_ts"] == "1700002000.000100"
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0


def test_cli_hook() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    subs = parser.add_subparsers(dest="command")
    add_serve_command(subs, common)
    args = parser.parse_args(["serve", "--port", "8080", "--no-scheduler"])
    assert args.command == "serve" and args.port == 8080 and args.no_scheduler and callable(args.run)


def test_manifest_matches_the_app() -> None:
    import yaml

    from bot.slack.settings import DEFAULT_SCOPES

    root = Path(__file__).resolve().parent.parent
    manifest = yaml.safe_load((root / "manifest.yml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(DEFAULT_SCOPES)
    assert manifest["features"]["slash_commands"][0]["command"] == "/mailcheck"
    assert {"app_mention", "message.channels"} <= set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    procfile = (root / "Procfile").read_text()
    assert "web: mailcheck serve" in procfile and "worker:" in procfile and "clock:" in procfile


async def test_oauth_install_then_answer_with_the_installed_token(fake: FakeSlack, dns_world: Any,
                                                                  tmp_path: Path) -> None:
    from aiohttp.test_utils import TestServer

    from bot.serve import build_web_app
    from bot.slack import create_app, runtime_of
    from bot.storage import Store
    from tests.slack_fakes import event_body, slack_escape
    from tests.test_slack_app import GMAIL_BOUNCE

    store = await Store.open(f"sqlite:///{tmp_path}/oauth.db")
    settings = SlackSettings(signing_secret=SIGNING_SECRET, client_id="111.222", client_secret="oauth-secret",
                             api_url=fake.api_url, nameservers=dns_world.nameserver_spec, dns_timeout=1.0)
    app = create_app(settings, store=store)
    server = TestServer(build_web_app(app), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(server.make_url("/slack/install"), allow_redirects=False) as r:
                assert r.status in (200, 302)
                state = r.cookies["slack-app-oauth-state"].value
                assert "111.222" in (await r.text()) or "111.222" in r.headers.get("Location", "")
            url = server.make_url("/slack/oauth_redirect").with_query(code="the-code", state=state)
            async with s.get(url, headers={"Cookie": f"slack-app-oauth-state={state}"},
                             allow_redirects=False) as r:
                assert r.status == 200, await r.text()
            assert fake.api("oauth.v2.access")
            # A replayed callback (same state) is refused: the state is single-use.
            async with s.get(url, headers={"Cookie": f"slack-app-oauth-state={state}"},
                             allow_redirects=False) as r:
                assert r.status >= 400
            body = event_body({"type": "message", "channel": "C1", "user": "U1", "ts": "1700004000.000100",
                               "text": slack_escape(GMAIL_BOUNCE)}, event_id="EvOauth", team="T2")
            async with s.post(server.make_url("/slack/events"), data=body,
                              headers=signed_headers(body, content_type="application/json")) as r:
                assert r.status == 200
        await fake.wait_for(lambda: fake.posts(), timeout=30)
        assert fake.posts()[0].headers["Authorization"] == "Bearer xoxb-installed-T2"
        await runtime_of(app).shutdown(30)
    finally:
        await server.close()
        await store.close()
