"""`mailcheck logs --follow FILE --post CHANNEL`: the real CLI as a process, following a
file the test appends to and rotates, posting to the local Slack Web API."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.slack_fakes import BOT_TOKEN, Call, FakeSlack
from tests.support.maillogs import gmail_day, yahoo_bounces

ROOT = Path(__file__).parent.parent


class Follow:
    def __init__(self, proc: asyncio.subprocess.Process, fake: FakeSlack) -> None:
        self.proc, self.fake = proc, fake
        self.stderr: list[str] = []

    async def line(self, predicate: Callable[[str], bool]) -> str:
        assert self.proc.stderr is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stderr.readline(), 60)  # a hang guard
            assert raw, f"the process ended: {self.stderr}"
            text = raw.decode()
            self.stderr.append(text)
            if predicate(text):
                return text

    def posts(self, *, thread: bool | None = None) -> list[dict[str, object]]:
        out = [c.params for c in self.fake.posts()]
        if thread is not None:
            out = [p for p in out if bool(p.get("thread_ts")) == thread]
        return out

    def posted(self) -> str:
        return "\n".join(str(c.params) for c in self.fake.calls)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 60)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    f = await FakeSlack().start()
    try:
        yield f
    finally:
        await f.close()


async def follow(fake: FakeSlack, log: Path, *extra: str) -> Follow:
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.api_url,
           "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "logs", "--follow", str(log), "--post", "C9", "--period", "0.3s", *extra,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    f = Follow(proc, fake)
    await f.line(lambda s: "following" in s)  # the file is open at its end: what is appended now counts
    return f


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


async def test_follow_posts_a_summary_each_period_and_follows_the_log_across_rotation(
        fake: FakeSlack, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(yahoo_bounces(hour=7))  # already there before --follow started: not summarised
    f = await follow(fake, log)
    append(log, gmail_day(hours=range(8, 10), limited_from=99))
    await fake.wait_for(lambda: any("delivered 40" in str(p.get("text")) for p in f.posts()))
    # logrotate: the file is renamed, the MTA writes its last lines to the old one, then a new file.
    log.rename(tmp_path / "mail.log.1")
    append(tmp_path / "mail.log.1", gmail_day(hours=range(10, 11), limited_from=99, prefix="8"))
    log.write_text(yahoo_bounces(hour=15, count=4))
    await f.line(lambda s: "rotated" in s)
    await fake.wait_for(lambda: any("bounced 4" in str(p.get("text")) for p in f.posts()))
    texts = [str(p.get("text")) for p in f.posts(thread=False)]
    assert not any("bounced 3" in t for t in texts)  # the lines before --follow started
    assert any("delivered 20" in t for t in texts)  # what went to the old file after the rename
    assert all(p["channel"] == "C9" for p in f.posts())
    # Each summary's chart is uploaded in its thread.
    summaries = {c.answer["ts"] for c in fake.posts() if "Mail log" in str(c.params.get("text"))}
    charts = [c.params for c in fake.api("files.completeUploadExternal")]
    assert charts and all(c["thread_ts"] in summaries and c["channel_id"] == "C9" for c in charts)
    assert await f.stop() == 0
    await f.line(lambda s: "stopped following" in s)


async def test_a_rate_jump_is_one_alert_and_later_trouble_goes_to_its_thread(fake: FakeSlack, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    f = await follow(fake, log)
    append(log, gmail_day())  # Gmail starts rate limiting at 11:00
    await fake.wait_for(lambda: alerts(fake))
    [alert] = alerts(fake)
    assert "11:00" in str(alert.params["text"]) and "google" in str(alert.params["text"])
    append(log, gmail_day(hours=range(13, 15), limited_from=13, prefix="9"))  # still going on
    await fake.wait_for(lambda: any("Still going on" in str(p.get("text")) for p in f.posts(thread=True)))
    update = next(p for p in f.posts(thread=True) if "Still going on" in str(p.get("text")))
    assert update["thread_ts"] == alert.answer["ts"]  # a reply in the alert's thread ...
    assert alerts(fake) == [alert]  # ... not a second alert
    assert await f.stop() == 0


def alerts(fake: FakeSlack) -> list[Call]:
    """Top-level alert posts (summaries carry the finding too, but are no alert)."""
    return [c for c in fake.posts() if not c.params.get("thread_ts")
            and str(c.params.get("text", "")).startswith(":warning:")]


async def test_posted_summaries_mask_addresses_unless_asked(fake: FakeSlack, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    f = await follow(fake, log)
    append(log, yahoo_bounces(count=3))
    await fake.wait_for(lambda: any("bounced 3" in str(p.get("text")) for p in f.posts()))
    assert await f.stop() == 0
    assert "bob.y" not in f.posted() and "***@yahoo.com" in f.posted()
    assert "Addresses are masked" in f.posted()

    shown = await follow(fake, log, "--show-addresses")
    append(log, yahoo_bounces(hour=16, count=2))
    await fake.wait_for(lambda: "bob.y0@yahoo.com" in shown.posted())
    assert await shown.stop() == 0


async def test_follow_without_a_token_or_with_a_bad_period_says_so_in_one_line(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "SLACK_BOT_TOKEN"}
    for args, expected in ((["--post", "C9"], "SLACK_BOT_TOKEN"), (["--period", "soon"], "no duration"),
                           (["--json"], "--follow summarises each period")):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "logs", "--follow", str(log), *args, cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in lines[0]


async def test_a_token_slack_refuses_is_one_line_before_anything_is_followed(fake: FakeSlack, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    env = {**os.environ, "SLACK_BOT_TOKEN": "not-a-bot-token", "SLACK_API_URL": fake.api_url, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "logs", "--follow", str(log), "--post", "C9", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert err.decode().strip() == "mailcheck: error: Slack refused the token in SLACK_BOT_TOKEN (not_authed)"
    assert fake.posts() == []


async def test_a_line_of_10_mb_is_skipped_with_a_message_and_the_lines_after_it_count(
        fake: FakeSlack, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    f = await follow(fake, log)
    append(log, "Dec  4 09:00:00 mta postfix/smtp[1]: " + "x" * (10 << 20) + "\n" + yahoo_bounces(count=2))
    await f.line(lambda s: "longer than" in s)
    await fake.wait_for(lambda: any("bounced 2" in str(p.get("text")) for p in f.posts()))
    assert await f.stop() == 0
