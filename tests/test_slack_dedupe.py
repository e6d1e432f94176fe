"""One answer per slash command and per button click: a resend with
`X-Slack-Retry-Num`, a byte-for-byte replay within the signature window, or the
same invocation reaching another replica is acked but runs nothing. Claims
live in the shared store, so this holds on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.serve import build_web_app
from bot.slack import SlackSettings, create_app, runtime_of
from bot.slack.runtime import Runtime
from bot.storage import Store
from tests import test_storage_backends as backends
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, FakeSlack, action_body, signed_headers, slash_body
from tests.test_slack_app import Harness, harness

db_url = backends.db_url  # fixture: SQLite and PostgreSQL
__all__ = ["harness"]


@dataclass
class Replica:
    rt: Runtime
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("/slack/events"))


@dataclass
class Cluster:
    fake: FakeSlack
    replicas: list[Replica]
    session: aiohttp.ClientSession

    async def post(self, i: int, body: str, headers: dict[str, str]) -> tuple[int, str]:
        async with self.session.post(self.replicas[i].url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def settle(self) -> None:
        for r in self.replicas:
            await r.rt.idle(30)

    def hooks_to(self, hook: str) -> list[dict[str, Any]]:
        suffix = hook.rsplit("/", 1)[-1]
        return [c.params for c in self.fake.hooks if c.method == f"hook/{suffix}"]


@pytest.fixture
async def cluster(db_url: str, dns_world: Any) -> AsyncIterator[Cluster]:
    """Two replicas of the app behind one database, as behind a load balancer."""
    fake = await FakeSlack().start()
    stores = [await Store.open(db_url), await Store.open(db_url)]
    replicas = []
    for store in stores:
        settings = SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=fake.api_url,
                                 nameservers=dns_world.nameserver_spec, dns_timeout=1.0, check_deadline=20.0)
        app = create_app(settings, store=store)
        server = TestServer(build_web_app(app), host="127.0.0.1")
        await server.start_server()
        replicas.append(Replica(runtime_of(app), server))
    session = aiohttp.ClientSession()
    c = Cluster(fake, replicas, session)
    try:
        yield c
    finally:
        for r in replicas:
            await r.rt.shutdown(30)
            await r.server.close()
        await session.close()
        for s in stores:
            await s.close()
        await fake.close()


async def test_resent_and_replayed_commands_answer_once(cluster: Cluster) -> None:
    hooks = [cluster.fake.new_hook() for _ in range(5)]
    for hook in hooks:
        body = slash_body("ip 192.0.2.1", hook)
        headers = signed_headers(body)
        status, ack = await cluster.post(0, body, headers)
        assert status == 200 and "192.0.2.1" in json.loads(ack)["text"]
        # Slack's resend (new timestamp and signature, same invocation) to the other replica ...
        retry = signed_headers(body) | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        assert (await cluster.post(1, body, retry))[0] == 200
        # ... and a byte-for-byte replay of the original request to both.
        for i in (0, 1):
            assert (await cluster.post(i, body, headers))[0] == 200
    await cluster.fake.wait_for(lambda: all(cluster.hooks_to(h) for h in hooks), timeout=40)
    await cluster.settle()
    await asyncio.sleep(0.2)
    for hook in hooks:
        assert len(cluster.hooks_to(hook)) == 1, hook  # one report per invocation
    analyses = sum(r.rt.metrics.analyses.labels("ip", "command")._value.get() for r in cluster.replicas)
    assert analyses == len(hooks)  # the duplicates ran nothing


async def test_a_new_invocation_of_the_same_command_runs_again(harness: Harness) -> None:
    first = await harness.command("ip 192.0.2.1")
    second = await harness.command("ip 192.0.2.1")
    await harness.fake.wait_for(lambda: harness.hooks_to(first[3]) and harness.hooks_to(second[3]), timeout=40)
    await harness.settle()
    assert len(harness.hooks_to(first[3])) == 1 and len(harness.hooks_to(second[3])) == 1


async def test_replayed_watch_changes_nothing_twice(harness: Harness) -> None:
    hook = harness.fake.new_hook()
    body = slash_body("watch good.example daily 09:00 tz=UTC", hook)
    headers = signed_headers(body)
    status, first, _ = await harness.post(body, headers)
    assert status == 200 and first
    status, raw, _ = await harness.post(body, headers)
    assert status == 200 and raw == ""  # the replay is acked with nothing to show
    await harness.settle()
    watches = await harness.store.list_watches(team_id="T1", channel_id="C1")
    assert [w.target for w in watches] == ["good.example"]
    assert harness.rt.metrics.events.labels("slash_command", "duplicate")._value.get() == 1


async def test_replayed_recheck_click_runs_once(harness: Harness) -> None:
    from bot.render_blocks import ACTION_RECHECK

    hook = harness.fake.new_hook()
    value = json.dumps({"v": 1, "c": "ip 192.0.2.1", "l": "en"})
    body = action_body(ACTION_RECHECK, value, hook)
    headers = signed_headers(body)
    for extra in ({}, {"X-Slack-Retry-Num": "1"}, {}):
        async with harness.session.post(harness.url, data=body.encode(), headers=headers | extra) as resp:
            assert resp.status == 200
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=40)
    await harness.settle()
    await asyncio.sleep(0.2)
    assert len(harness.hooks_to(hook)) == 1


async def test_socket_mode_redacts_and_answers_a_resent_command_once(dns_world: Any, tmp_path: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Socket Mode goes through the same listeners: the ack envelope and the report are
    redacted, and a command resent over the socket (retry_attempt) runs once."""
    from urllib.parse import parse_qsl

    from tests.test_slack_serve import _start

    monkeypatch.delenv("PORT", raising=False)
    fake = await FakeSlack().start()
    settings = SlackSettings(bot_token=BOT_TOKEN, app_token="xapp-1-A1-test", api_url=fake.api_url,
                             database_url=f"sqlite:///{tmp_path}/db.sqlite", run_scheduler=False,
                             nameservers=dns_world.nameserver_spec, dns_timeout=1.0)
    task, stop, _info = await _start(settings)
    try:
        await fake.wait_for(lambda: fake.ws is not None)
        leak = "xoxp-9999-8888-7777-abcdefabcdef"
        hook = fake.new_hook()
        payload = dict(parse_qsl(slash_body(f"{leak} {BOT_TOKEN}", hook)))
        for attempt in (0, 1):
            await fake.send_envelope({"envelope_id": f"env-u{attempt}", "type": "slash_commands",
                                      "payload": payload, "accepts_response_payload": True,
                                      "retry_attempt": attempt, "retry_reason": "timeout" if attempt else ""})
        await fake.wait_for(lambda: {m.get("envelope_id") for m in fake.ws_received} >= {"env-u0", "env-u1"})
        acks = {m["envelope_id"]: m for m in fake.ws_received if m.get("envelope_id")}
        shown = json.dumps(acks["env-u0"].get("payload"))
        assert "[REDACTED]" in shown and leak not in shown and BOT_TOKEN not in shown

        hook = fake.new_hook()
        payload = dict(parse_qsl(slash_body("ip 192.0.2.1", hook)))
        for attempt in (0, 1, 2):
            await fake.send_envelope({"envelope_id": f"env-c{attempt}", "type": "slash_commands",
                                      "payload": payload, "accepts_response_payload": True,
                                      "retry_attempt": attempt, "retry_reason": "timeout" if attempt else ""})
        await fake.wait_for(lambda: fake.hooks, timeout=30)
        await asyncio.sleep(0.5)
        assert len(fake.hooks) == 1
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
        await fake.close()
