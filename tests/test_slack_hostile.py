"""Slack under hostile audits: while several users audit a zone built to be expensive
(`hostile.example`: 1,000 MX hosts), another user's `/mailcheck help` is acked within
Slack's 3 s, every audit is answered with the bounded report, and the cache behind the
buttons stays small."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.slack.runtime import ReportCache
from handlers.model import Finding, Report
from tests.slack_fakes import TEAM
from tests.test_slack_app import Harness, block_text, harness  # noqa: F401  (the fixture)

HOSTILE_AUDITS = 6


# Six audits of 1,000 MX hosts each keep a loaded 2-core CI machine busy: with a 1 s DNS
# timeout the 30 KB MX answer itself could time out (an honest `unknown`, but then the test
# checks nothing). This test is about the ack and the bounded report, so answers get time.
@pytest.mark.parametrize("harness", [{"dns_timeout": 5.0, "check_deadline": 40.0}], indirect=True)
async def test_help_is_acked_while_hostile_audits_run(harness: Harness) -> None:  # noqa: F811
    started = await asyncio.gather(*(harness.command("hostile.example", user=f"UH{i}")
                                     for i in range(HOSTILE_AUDITS)))
    assert all(status == 200 for status, _ack, _e, _hook in started)
    assert harness.rt.tasks  # the audits are running ...
    status, ack, elapsed, _hook = await harness.command("help", user="UHELP")
    assert status == 200 and elapsed < 3.0, elapsed  # ... and help is acked within Slack's limit
    assert "/mailcheck example.com" in block_text(ack)

    hooks = [hook for _s, _a, _e, hook in started]
    await harness.fake.wait_for(lambda: all(harness.hooks_to(h) for h in hooks), timeout=60)
    await harness.settle()
    for hook in hooks:
        text = "".join(block_text(m) for m in harness.hooks_to(hook))
        assert "hostile.example publishes 1000 MX hosts" in text, text[:500]
        assert "took too long" not in text
    # the cached reports (behind Details / language buttons) are the bounded ones
    assert len(harness.rt.cache._items) == HOSTILE_AUDITS
    assert all(len(blob) < 100_000 for blob, _src in harness.rt.cache._items.values())


def test_a_report_too_big_to_cache_is_not_kept() -> None:
    """Its buttons then run the check again, as after a restart."""
    big = Report(kind="domain", subject="big.example",
                 findings=[Finding(code="mx.ok", severity="ok", title=f"row {i} " + "x" * 200) for i in range(5000)])
    cache = ReportCache(max_bytes=10_000)
    rid = cache.put(big, {"c": "domain big.example"})
    assert rid and cache.get(rid) is None
    small = Report(kind="domain", subject="small.example")
    assert cache.get(cache.put(small, {"c": "domain small.example"})) is not None


async def test_cache_packs_in_a_worker_thread() -> None:
    cache = ReportCache()
    report = Report(kind="domain", subject="good.example", findings=[Finding("spf.ok", "ok", "fine")])
    rid = await cache.aput(report, {"c": "domain good.example"})
    got = await cache.aget(rid)
    assert got is not None and got.report.findings[0].title == "fine" and got.report is not report


async def test_ack_language_comes_from_memory(harness: Harness, monkeypatch: Any) -> None:  # noqa: F811
    """A user's stored language is known before their first command: the ack reads it
    from the directory loaded at start-up, with no database round trip (under load,
    those lookups were the slowest part of the ack)."""
    await harness.store.set_setting(TEAM, "user:UJA", "lang", "ja")
    await harness.rt.warm_langs()
    lookups: list[tuple[str, ...]] = []
    real = harness.store.get_setting

    async def counted(*args: str) -> str | None:
        lookups.append(args)
        return await real(*args)

    monkeypatch.setattr(harness.store, "get_setting", counted)
    status, ack, elapsed, _hook = await harness.command("help", user="UJA")
    assert status == 200 and elapsed < 3.0
    assert "メール" in block_text(ack)
    status, ack, _e, _hook = await harness.command("help", user="UEN")  # no setting: the default
    assert "/mailcheck example.com" in block_text(ack) and "メール" not in block_text(ack)
    assert lookups == []
    # a language set through the bot is seen at once by the next ack
    await harness.answer("lang ja", user="UEN")
    status, ack, _e, _hook = await harness.command("help", user="UEN")
    assert "メール" in block_text(ack)


async def test_background_work_waits_for_acks_in_flight() -> None:
    """A burst of commands is acked before their checks start: spawned work begins
    once no request is being acked (or after ACK_PRIORITY_WAIT at the latest)."""
    from bot.slack import SlackSettings
    from bot.slack.runtime import Runtime

    rt = Runtime(SlackSettings(signing_secret="x", bot_token="xoxb-test", check_thread=False))
    started: list[str] = []

    async def work() -> None:
        started.append("work")

    rt.ack_started()
    rt.ack_started()
    task = rt.spawn(work())
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == []  # two acks still in flight
    rt.ack_done()
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == []  # one still in flight
    rt.ack_done()
    await task
    assert started == ["work"]
