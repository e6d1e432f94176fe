"""Rate limits shared by replicas: two real app instances (each its own Store
engine, HTTP server and Runtime) on ONE database — SQLite file and PostgreSQL —
enforce one per-user and one per-workspace limit. The ack never waits for the
database: the limit is counted in the background task, which answers
"rate limited, try again in N s" through the response_url instead of checking."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.serve import build_web_app
from bot.slack import SlackSettings, create_app, runtime_of
from bot.slack.runtime import Runtime
from bot.slack.settings import parse_rate
from bot.storage import Store
from tests import test_storage_backends as backends
from tests.slack_fakes import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    event_body,
    signed_headers,
    slack_escape,
    slash_body,
)
from tests.test_slack_app import GMAIL_BOUNCE

db_url = backends.db_url  # fixture: SQLite and PostgreSQL

# An hour-long window: a fixed window boundary inside a one-second test is ~1/3600.
WINDOW = 3600


@dataclass
class Replica:
    rt: Runtime
    server: TestServer
    store: Store

    @property
    def url(self) -> str:
        return str(self.server.make_url("/slack/events"))


@dataclass
class Cluster:
    fake: FakeSlack
    replicas: list[Replica]
    session: aiohttp.ClientSession

    async def command(self, i: int, text: str, user: str = "U1") -> tuple[dict[str, Any], float, str]:
        hook = self.fake.new_hook()
        body = slash_body(text, hook, user=user)
        t0 = time.perf_counter()
        async with self.session.post(self.replicas[i].url, data=body.encode(), headers=signed_headers(body)) as r:
            assert r.status == 200
            raw = await r.text()
        return (json.loads(raw) if raw else {}), time.perf_counter() - t0, hook

    def answers(self, hook: str) -> list[dict[str, Any]]:
        suffix = hook.rsplit("/", 1)[-1]
        return [c.params for c in self.fake.hooks if c.method == f"hook/{suffix}"]

    async def settle(self) -> None:
        for r in self.replicas:
            await r.rt.idle(30)


async def start_cluster(db_url: str, dns_world: Any, **limits: Any) -> Cluster:
    fake = await FakeSlack().start()
    replicas = []
    for _ in range(2):
        store = await Store.open(db_url)
        settings = SlackSettings(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=fake.api_url,
                                 nameservers=dns_world.nameserver_spec, dns_timeout=1.0, check_deadline=10.0,
                                 **limits)
        app = create_app(settings, store=store)
        server = TestServer(build_web_app(app), host="127.0.0.1")
        await server.start_server()
        replicas.append(Replica(runtime_of(app), server, store))
    return Cluster(fake, replicas, aiohttp.ClientSession())


@pytest.fixture
async def make_cluster(db_url: str, dns_world: Any, mid_window_clock: None) -> AsyncIterator[Any]:
    made: list[Cluster] = []

    async def make(**limits: Any) -> Cluster:
        c = await start_cluster(db_url, dns_world, **limits)
        made.append(c)
        return c

    yield make
    for c in made:
        for r in c.replicas:
            await r.rt.shutdown(30)
            await r.server.close()
            await r.store.close()
        await c.session.close()
        await c.fake.close()


def limited_text(msgs: list[dict[str, Any]]) -> str | None:
    for m in msgs:
        if "Rate limited" in (m.get("text") or ""):
            return str(m["text"])
    return None


async def test_per_user_limit_is_shared_by_two_replicas(make_cluster: Any) -> None:
    c: Cluster = await make_cluster(rate_user=(3, WINDOW), rate_team=(100, WINDOW))
    hooks = []
    for i in range(4):  # alternate replicas: neither alone sees more than 2 requests
        ack, elapsed, hook = await c.command(i % 2, "spf good.example 192.0.2.1")
        assert "Checking" in ack["text"] and elapsed < 3.0, (ack, elapsed)  # Slack's ack limit
        hooks.append(hook)
        await c.settle()
    for hook in hooks[:3]:
        assert c.answers(hook) and limited_text(c.answers(hook)) is None
    over = limited_text(c.answers(hooks[3]))
    assert over is not None, c.answers(hooks[3])
    seconds = int(re.search(r"Try again in (\d+) s", over).group(1))  # type: ignore[union-attr]
    assert 0 < seconds <= WINDOW
    assert len(c.answers(hooks[3])) == 1  # the limit message only: no check ran
    # Another user of the same workspace is not affected.
    _ack, _e, other = await c.command(1, "spf good.example 192.0.2.1", user="U2")
    await c.settle()
    assert c.answers(other) and limited_text(c.answers(other)) is None
    # Replica 1 has now seen the limit locally: its ack says so at once, without a task.
    _ack, _e, _h = await c.command(1, "spf good.example 192.0.2.1")
    await c.settle()
    ack, _e, _h = await c.command(1, "spf good.example 192.0.2.1")
    assert "Rate limited" in ack["text"]


async def test_per_workspace_limit_is_shared_by_two_replicas(make_cluster: Any) -> None:
    c: Cluster = await make_cluster(rate_user=(100, WINDOW), rate_team=(2, WINDOW))
    hooks = []
    for i, user in enumerate(("U1", "U2", "U3")):
        _ack, _e, hook = await c.command(i % 2, "spf good.example 192.0.2.1", user=user)
        hooks.append(hook)
        await c.settle()
    assert limited_text(c.answers(hooks[0])) is None and limited_text(c.answers(hooks[1])) is None
    assert limited_text(c.answers(hooks[2])) is not None


async def test_limited_pastes_get_one_notice_per_window(make_cluster: Any) -> None:
    c: Cluster = await make_cluster(rate_user=(1, WINDOW), rate_team=(100, WINDOW))
    bounce = slack_escape(GMAIL_BOUNCE)
    for i in range(4):
        ev = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
              "ts": f"17000050{i:02d}.000100", "text": bounce}
        body = event_body(ev, event_id=f"EvLimit{i}")
        async with c.session.post(c.replicas[i % 2].url, data=body.encode(),
                                  headers=signed_headers(body, content_type="application/json")) as r:
            assert r.status == 200
    # Events are acked before their listener runs: wait until the replicas took all four.
    answered = [r.rt.metrics.events.labels("message", "answered") for r in c.replicas]
    deadline = time.monotonic() + 15
    while sum(a._value.get() for a in answered) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await c.fake.wait_for(lambda: len(c.fake.posts()) >= 2, timeout=30)
    await c.settle()
    posts = c.fake.posts()
    notices = [p for p in posts if "Rate limited" in (p.params.get("text") or "")]
    analyses = [p for p in posts if "Rate limited" not in (p.params.get("text") or "")]
    assert analyses, [p.params.get("text") for p in posts]
    assert len({p.params["thread_ts"] for p in analyses}) == 1  # one paste analysed, three limited
    # replica 1 tells once, replica 0 tells once: at most one notice per replica per window
    assert 1 <= len(notices) <= 2, [p.params.get("text") for p in posts]


def test_rate_settings_from_env() -> None:
    s = SlackSettings.from_env({"MAILCHECK_RATE_USER": "5/10", "MAILCHECK_RATE_TEAM": "off"})
    assert s.rate_user == (5, 10) and s.rate_team == (0, 60)
    assert SlackSettings.from_env({}).rate_user == (30, 60)
    assert parse_rate("7", (1, 30)) == (7, 30)
    with pytest.raises(ValueError):
        parse_rate("lots", (1, 30))
