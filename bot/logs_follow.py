"""`mailcheck logs --follow FILE [--post CHANNEL]`: a mail host's log read as it grows.

Every `--period` (default 1h) the lines of that period are summarised -- printed, or
posted to the Slack channel with the chart in its thread. When a provider's deferral or
bounce rate jumps (the `logs.rate_jump` rule, measured over the last 24 hours of log
time) an alert is posted; for `--cooldown` (default 6h) after it, that provider's
trouble is the same incident: a new jump and each period's counts for it go as replies
in the alert's thread instead of new alerts.

The file is followed across rotation (renamed and re-created, or truncated); SIGTERM or
SIGINT ends it after a last summary of what was read. Token: SLACK_BOT_TOKEN; Web API:
SLACK_API_URL (tests, proxies), as for the bot. Addresses are masked unless
--show-addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from handlers.logs.reader import MAX_LINE
from knowledge.engine_texts import engine_text

EXIT_OK, EXIT_USAGE = 0, 2
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_PERIOD = 0.05
POLL = 1.0  # seconds between looks at the file (less when the period is shorter)
SEND_TIMEOUT = 30.0  # a post that takes longer is given up: the follow goes on


def parse_duration(value: str) -> float:
    """`90s`, `15m`, `1h`, `1d`, or seconds; ValueError otherwise."""
    m = _DURATION.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is no duration (90s, 15m, 1h, 1d)")
    seconds = float(m.group(1)) * _UNIT[(m.group(2) or "s").lower()]
    if seconds < MIN_PERIOD:
        raise ValueError(f"{value!r} is too short")
    return seconds


@dataclass
class Incident:
    provider: str
    when: str  # the hour the jump started (log time)
    ts: str | None  # the alert's message: its thread holds the updates
    last: float  # monotonic time of the last alert or new jump


class Poster:
    """Where summaries and alerts go: a Slack channel, or stdout."""

    def __init__(self, channel: str | None, client: Any, lang: str) -> None:
        self.channel, self.client, self.lang = channel, client, lang

    async def post(self, text: str, thread_ts: str | None = None) -> str | None:
        if self.channel is None:
            print(text, flush=True)
            return None
        from bot.render_blocks import render_text

        msg = render_text(text)[0]
        try:
            resp = await asyncio.wait_for(self.client.chat_postMessage(
                channel=self.channel, text=msg.text, blocks=msg.block_dicts(), thread_ts=thread_ts,
                unfurl_links=False), SEND_TIMEOUT)
        except Exception as exc:
            _warn(f"posting to {self.channel} failed ({_why(exc)}); still following")
            return None
        return str(resp.get("ts") or "") or None

    async def chart(self, data: dict[str, Any], thread_ts: str | None) -> None:
        if self.channel is None or thread_ts is None:
            return
        from bot.render_logs import has_chart, render_chart
        from bot.slack.logs_intake import upload_png

        if has_chart(data):
            png = await asyncio.to_thread(render_chart, data, self.lang)
            await asyncio.wait_for(upload_png(self.client, self.channel, thread_ts, "mail-log-chart.png", png,
                                              engine_text("logs_chart_title", self.lang)), SEND_TIMEOUT)


class Follower:
    def __init__(self, path: str, poster: Poster, *, period: float, cooldown: float, lang: str,
                 show_addresses: bool) -> None:
        from handlers.logs import LiveLog, Tail

        self.path, self.poster, self.period, self.cooldown = path, poster, period, cooldown
        self.lang, self.show = lang, show_addresses
        self.tail = Tail(path)
        self.live = LiveLog()
        self.incidents: dict[str, Incident] = {}
        self.alerted: set[tuple[str, str]] = set()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        next_summary = time.monotonic() + self.period
        rotations = 0
        while True:
            fed = self._feed()
            if self.tail.rotations != rotations:
                rotations = self.tail.rotations
                _warn(engine_text("logs_follow_rotated", self.lang, path=self.path))
            if fed:
                await self._alerts()
            if self.stop.is_set():
                break
            if time.monotonic() >= next_summary:
                await self._summary()
                next_summary = max(next_summary + self.period, time.monotonic())
            wait = max(0.0, min(POLL, self.period / 4, next_summary - time.monotonic()))
            try:
                await asyncio.wait_for(self.stop.wait(), wait)
            except TimeoutError:
                pass
        await self._summary()
        self.tail.close()

    def _feed(self) -> bool:
        fed = False
        long_lines = self.tail.long_lines
        for _ in range(64):  # at most 64 reads (256 MB) before looking at the clock again
            block = self.tail.read()
            if not block:
                break
            self.live.feed(block, self.tail.clock)
            fed = True
        if self.tail.long_lines > long_lines:
            _warn(f"{self.path}: {self.tail.long_lines - long_lines} line(s) longer than "
                  f"{MAX_LINE // 1024} KB skipped")
        return fed

    async def _summary(self) -> None:
        from bot import redact
        from bot.cli_logs import localize
        from bot.render_logs import summary_text
        from bot.slack.text import escape_slack

        report = self.live.take_period(show_addresses=self.show, lang=self.lang)
        if report is None:
            return
        localize(report, self.lang)
        data = redact.scrub(report.to_dict())
        if self.poster.channel is None:
            from bot.cli_logs import render

            render(data, self.lang)
            print(flush=True)
        else:
            ts = await self.poster.post(summary_text(data, self.lang, escape=escape_slack, masked=not self.show))
            try:
                await self.poster.chart(data, ts)
            except Exception as exc:
                _warn(f"the chart was not uploaded ({_why(exc)})")
        await self._updates(data)

    async def _updates(self, data: dict[str, Any]) -> None:
        """Each open incident's provider, this period: a reply in the incident's thread."""
        now = time.monotonic()
        for key, inc in list(self.incidents.items()):
            if now - inc.last >= self.cooldown:
                del self.incidents[key]
                continue
            row = next((p for p in data["providers"] if p["provider"] == key), None)
            if row is None or not (row["deferred"] or row["bounced"] or row["expired"]):
                continue
            counts = engine_text("logs_provider", self.lang, **{k: row[k] for k in
                                 ("provider", "delivered", "deferred", "bounced", "expired")})
            await self.poster.post(engine_text("logs_follow_update", self.lang, provider=key) + "\n" + counts,
                                   thread_ts=inc.ts)

    async def _alerts(self) -> None:
        import knowledge
        from bot import redact
        from bot.slack.text import escape_slack

        now = time.monotonic()
        for f in self.live.jumps(show_addresses=self.show):
            provider, when = str(f.evidence.get("provider")), str(f.evidence.get("when"))
            if (provider, when) in self.alerted:
                continue
            self.alerted.add((provider, when))
            title, detail = knowledge.localize_finding(f.code, self.lang, f.evidence, f.title, f.detail)
            body = redact.redact(f":warning: *{escape_slack(title)}*\n{escape_slack(detail)}")
            inc = self.incidents.get(provider)
            if inc is not None and now - inc.last < self.cooldown:
                inc.last = now  # the same incident: told in its thread
                await self.poster.post(body, thread_ts=inc.ts)
                continue
            ts = await self.poster.post(body)
            self.incidents[provider] = Incident(provider, when, ts, now)


def run_follow(args: argparse.Namespace) -> int:
    from bot.cli_logs import fail

    files = [f for f in (args.files or []) if f]
    if not args.follow:
        return fail("--post needs --follow FILE (it posts summaries of a log as it grows)")
    if len(files) != 1 or files[0] == "-":
        return fail("--follow takes one log file (the one the MTA writes, e.g. /var/log/mail.log)")
    if args.since or args.until or args.json:
        return fail("--follow summarises each period as it comes: --since, --until and --json are for whole logs")
    path = files[0]
    if not os.path.isfile(path):
        return fail(f"cannot read {path}: no such file")
    try:
        period = parse_duration(args.period)
        cooldown = parse_duration(args.cooldown)
    except ValueError as exc:
        return fail(f"--period/--cooldown: {exc}")
    client = None
    if args.post:
        token = os.environ.get("SLACK_BOT_TOKEN")
        if not token:
            return fail("--post needs the bot token in SLACK_BOT_TOKEN")
        from bot.webclient import make_web_client

        client = make_web_client(token)
    try:
        return asyncio.run(_main(path, args, client, period, cooldown))
    except KeyboardInterrupt:
        return 130


async def _main(path: str, args: argparse.Namespace, client: Any, period: float, cooldown: float) -> int:
    from bot.cli_logs import fail

    if client is not None:
        try:
            await asyncio.wait_for(client.auth_test(), SEND_TIMEOUT)
        except Exception as exc:
            return fail(f"Slack refused the token in SLACK_BOT_TOKEN ({_why(exc)})")
    try:
        follower = Follower(path, Poster(args.post, client, args.lang), period=period, cooldown=cooldown,
                            lang=args.lang, show_addresses=args.show_addresses)
    except OSError as exc:
        return fail(f"cannot read {path}: {exc.strerror or exc}")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, follower.stop.set)
    post = engine_text("logs_follow_post", args.lang, channel=args.post) if args.post else ""
    _warn(engine_text("logs_follow_ready", args.lang, path=path, period=args.period, post=post))
    await follower.run()
    _warn(engine_text("logs_follow_stopped", args.lang, path=path))
    return EXIT_OK


def _warn(message: str) -> None:
    from bot import redact

    print(f"mailcheck: {redact.redact(message)}", file=sys.stderr, flush=True)


def _why(exc: BaseException) -> str:
    err = getattr(getattr(exc, "response", None), "get", None)
    if callable(err):
        code = err("error")
        if code:
            return str(code)
    return type(exc).__name__
