"""Whole mail logs shared in Slack: a Postfix / Exim / Sendmail log file (plain or
`.gz`, `mail.log`, `mail.log.1`, `maillog`, `mainlog` ... or any text file that is
mostly mail-log lines) posted in a channel or DM the bot is in gets the summary and a
chart (PNG: outcomes per hour for the busiest providers) in its thread; `/mailcheck
logs` answers for the latest such file in the channel.

The file comes through the one download path (`flows.download_file`: only Slack's
hosts get the token), capped at `max_log_bytes` (MAILCHECK_MAX_LOG_MB) rather than the
paste limit; the engine reads it from a temporary file as a stream. Addresses are
always masked in what is posted (logs carry personal data), and the text goes through
the redacting client like every other post.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from typing import TYPE_CHECKING, Any

from bot.slack.messages import text
from knowledge.engine_texts import engine_text

if TYPE_CHECKING:
    from bot.slack.flows import Origin
    from bot.slack.runtime import Runtime

log = logging.getLogger("mailcheck.slack")

# mail.log, mail.log.1, mail.log.2.gz, maillog-20261204, mail.err, exim mainlog, anything.log(.gz)
_LOG_NAME = re.compile(r"(?:^|[/_.-])(?:mail\.(?:log|err|warn|info)|maillog|mainlog|exim_mainlog|syslog)"
                       r"(?:[.-]\d[\w.-]*)?(?:\.gz)?$|\.log(?:\.\d+)?(?:\.gz)?$", re.IGNORECASE)
HISTORY_LIMIT = 20  # messages looked through by `/mailcheck logs`


def is_log_file(f: dict[str, Any]) -> bool:
    """Is this shared file named like a mail log? (The content decides: looks_like_log.)"""
    return bool(_LOG_NAME.search(str(f.get("name") or "")))


def log_files(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in (msg.get("files") or [])[:3] if isinstance(f, dict) and is_log_file(f)]


def download_error(lang: str, err: str, name: str, cap: int, *, log_named: bool) -> str:
    if err == "file_too_big" and log_named:
        return engine_text("logs_file_too_big", lang, name=name, mb=f"{cap / (1024 * 1024):.3g}")
    return text(lang, err, name=name, mb=cap // (1024 * 1024))


def summarise_bytes(data: bytes, name: str, lang: str) -> dict[str, Any]:
    """The engine's SPEC dict of a downloaded log, addresses masked, findings in `lang`,
    redacted. Runs in a worker thread: the log is read from a temporary file as a stream."""
    from bot import redact
    from bot.cli_logs import localize
    from handlers.logs import analyse_logs

    suffix = ".gz" if data[:2] == b"\x1f\x8b" else ".log"
    fd, path = tempfile.mkstemp(prefix="mailcheck-log-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        report = analyse_logs([path], show_addresses=False, lang=lang)
    finally:
        os.unlink(path)
    report.sources = [name]
    localize(report, lang)
    data_out: dict[str, Any] = redact.scrub(report.to_dict())
    return data_out


async def answer_file(rt: Runtime, client: Any, f: dict[str, Any], data: bytes, lang: str, origin: Origin,
                      *, explicit: bool) -> bool:
    """Summarise a downloaded file that is a mail log: the summary, then the chart, in
    the thread. False (nothing said) when the file is no mail log."""
    from bot.render_logs import has_chart, render_chart, summary_text
    from bot.slack import flows
    from bot.slack.text import escape_slack
    from handlers.logs import looks_like_log

    if not await asyncio.to_thread(looks_like_log, data):
        if explicit and is_log_file(f) and not flows.is_text_file(f):
            await flows.notice(rt, client, origin, engine_text("logs_file_none", lang, name=str(f.get("name"))))
            return True
        return False
    if await flows.limited(rt, client, origin, lang, quiet=not explicit):
        return True
    name = str(f.get("name") or "file")
    rt.metrics.analyses.labels("logs", "thread").inc()
    try:
        summary = await asyncio.wait_for(asyncio.to_thread(summarise_bytes, data, name, lang),
                                         rt.settings.check_deadline + 5)
    except TimeoutError:
        rt.metrics.errors.labels("timeout").inc()
        await flows.notice(rt, client, origin, text(lang, "timeout", what=name))
        return True
    except Exception:
        rt.metrics.errors.labels("analysis").inc()
        log.exception("log summary failed")
        await flows.notice(rt, client, origin, text(lang, "failed", what=name))
        return True
    await flows.notice(rt, client, origin, summary_text(summary, lang, escape=escape_slack))
    if origin.channel_id and has_chart(summary):
        try:
            png = await asyncio.to_thread(render_chart, summary, lang)
        except Exception:
            log.exception("log chart failed")
            return True
        await upload_png(client, origin.channel_id, origin.thread_ts, "mail-log-chart.png", png,
                         engine_text("logs_chart_title", lang))
    return True


async def upload_png(client: Any, channel: str, thread_ts: str | None, filename: str, data: bytes,
                     title: str) -> bool:
    """Upload an image into a channel (thread): files.getUploadURLExternal, the upload,
    files.completeUploadExternal. A failure is logged: the summary was already posted."""
    try:
        await client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=filename, content=data,
                                     title=title)
    except Exception as exc:
        log.warning("chart upload failed: %s", type(exc).__name__)
        return False
    return True


async def latest_log_message(client: Any, channel: str) -> dict[str, Any] | None:
    """The newest message among the channel's last HISTORY_LIMIT with a mail log file."""
    try:
        resp = await client.conversations_history(channel=channel, limit=HISTORY_LIMIT)
    except Exception as exc:
        log.info("conversations.history failed: %s", type(exc).__name__)
        return None
    for m in resp.get("messages") or []:
        if isinstance(m, dict) and log_files(m):
            return dict(m)
    return None


async def logs_command(rt: Runtime, client: Any, team: str, channel: str | None, user: str, lang: str) -> str:
    """`/mailcheck logs`: summarise the latest shared mail log here, in its thread."""
    from bot.slack import flows

    msg = await latest_log_message(client, channel) if channel else None
    if msg is None or not channel:
        return engine_text("logs_no_file", lang)
    msg.setdefault("channel", channel)
    origin = flows.Origin(team_id=team, channel_id=channel, user_id=user, thread_ts=str(msg.get("ts") or ""))
    name = str(log_files(msg)[0].get("name") or "file")
    rt.spawn(flows.analyse_message_event(rt, client, msg, lang, origin, explicit=True), name="logs:command")
    return engine_text("logs_summarising", lang, name=name)
