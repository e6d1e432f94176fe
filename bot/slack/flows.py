"""Run a check or an analysis, then render and deliver it — shared by the
slash command, the thread listeners and the buttons. Everything here runs in
background tasks (Runtime.spawn), after the ack."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from bot.render_blocks import ActionValues, RenderedMessage, render_report, render_text
from bot.slack import deliver
from bot.slack.messages import encode_value, text
from bot.slack.router import Command
from bot.slack.runtime import CheckTimeout, Runtime, classify
from bot.slack.text import unescape_slack
from handlers.charsets import to_utf8

if TYPE_CHECKING:
    from handlers.model import Report

log = logging.getLogger("mailcheck.slack")

TEXT_FILE_SUFFIXES = (".eml", ".txt", ".log", ".msg.txt", ".mbox", ".dsn")
TEXT_FILETYPES = {"email", "eml", "text", "txt", "log", "plain", "mbox"}


@dataclass
class Origin:
    """Where an answer goes: the response_url of a command/button, or a thread."""

    team_id: str
    channel_id: str | None
    user_id: str | None
    thread_ts: str | None = None
    respond: Any | None = None
    response_type: str = "ephemeral"
    replace_first: bool = False

    @property
    def in_thread(self) -> bool:
        return self.respond is None


async def send(rt: Runtime, client: Any, origin: Origin, messages: list[RenderedMessage]) -> int:
    if origin.respond is not None:
        return await deliver.via_response_url(
            messages, respond=origin.respond, client=client, channel=origin.channel_id,
            response_type=origin.response_type, replace_first=origin.replace_first,
            thread_ts=origin.thread_ts,
        )
    if not origin.channel_id:
        return 0
    return await deliver.post_all(client, origin.channel_id, messages, thread_ts=origin.thread_ts)


async def notice(rt: Runtime, client: Any, origin: Origin, message: str) -> None:
    await send(rt, client, origin, render_text(message))


async def present(
    rt: Runtime,
    client: Any,
    report: Report,
    lang: str,
    source: dict[str, Any],
    origin: Origin,
    *,
    detailed: bool = False,
    rid: str | None = None,
) -> int:
    """Cache the (English) report, localise, render with buttons, deliver.

    Packing for the cache, localising and rendering are CPU work proportional to the
    report: they run in worker threads, so a big report never holds up the loop that
    acks other users' commands."""
    rid = rid or await rt.cache.aput(report, source)
    base = {"v": 1, **source, "r": rid}
    values = ActionValues(
        recheck=encode_value({**base, "l": lang}),
        details=encode_value({**base, "l": lang}),
        lang=encode_value({**base, "l": "en" if lang == "ja" else "ja"}),
    )
    max_messages = 5 if detailed else (3 if origin.in_thread else 4)

    def build() -> list[RenderedMessage]:
        return render_report(rt.localized(report, lang), lang, actions=None if detailed else values,
                             detailed=detailed, max_messages=max_messages)

    messages = await asyncio.to_thread(build)
    return await send(rt, client, origin, messages)


async def limited(rt: Runtime, client: Any, origin: Origin, lang: str, *, quiet: bool = False) -> bool:
    """Count one check/analysis against the shared per-user and per-workspace limits.
    True = over the limit: the user is told when to try again (once per window when
    `quiet`, i.e. for auto-detected pastes) and nothing runs."""
    wait = await rt.admit(origin.team_id, origin.user_id)
    if not wait:
        return False
    rt.metrics.events.labels("limit", "rate_limited").inc()
    if not quiet or rt.first_notice(f"{origin.team_id}:{origin.user_id}:{origin.channel_id}", wait):
        await notice(rt, client, origin, text(lang, "rate_limited", seconds=math.ceil(wait)))
    return True


async def run_command(rt: Runtime, client: Any, cmd: Command, lang: str, origin: Origin,
                      origin_kind: str = "command") -> None:
    """A domain / ip / spf check, answered at `origin`; failures become a short message."""
    what = cmd.label()
    if await limited(rt, client, origin, lang):
        return
    try:
        report = await rt.run_check(cmd, origin_kind, team_id=origin.team_id)
    except CheckTimeout:
        rt.metrics.errors.labels("timeout").inc()
        await notice(rt, client, origin, text(lang, "timeout", what=what))
        return
    except Exception:
        rt.metrics.errors.labels("check").inc()
        log.exception("check %s failed", cmd.name)
        await notice(rt, client, origin, text(lang, "failed", what=what))
        return
    await present(rt, client, report, lang, {"c": cmd.canonical()}, origin)


async def analyse_and_reply(
    rt: Runtime,
    client: Any,
    data: bytes | str,
    kind: str,
    lang: str,
    origin: Origin,
    source: dict[str, Any],
    *,
    quiet_if_empty: bool = False,
    origin_kind: str = "thread",
) -> bool:
    """Analyse a pasted bounce/message and reply; False when nothing was said."""
    if await limited(rt, client, origin, lang, quiet=quiet_if_empty):
        return True
    try:
        report = await rt.analyse(data, kind, origin_kind)
    except CheckTimeout:
        rt.metrics.errors.labels("timeout").inc()
        await notice(rt, client, origin, text(lang, "timeout", what=kind))
        return True
    except Exception:
        rt.metrics.errors.labels("analysis").inc()
        log.exception("%s analysis failed", kind)
        await notice(rt, client, origin, text(lang, "failed", what=kind))
        return True
    if not report.bounces and not report.findings:
        if quiet_if_empty:
            return False
        await notice(rt, client, origin, text(lang, "no_bounce"))
        return True
    await present(rt, client, report, lang, {**source, "k": kind}, origin)
    return True


# -- files ------------------------------------------------------------------------
def is_text_file(f: dict[str, Any]) -> bool:
    name = str(f.get("name") or "").lower()
    mimetype = str(f.get("mimetype") or "").lower()
    filetype = str(f.get("filetype") or "").lower()
    return (
        name.endswith(TEXT_FILE_SUFFIXES)
        or filetype in TEXT_FILETYPES
        or mimetype.startswith("text/")
        or mimetype in ("message/rfc822", "message/delivery-status", "application/mbox")
    )


def trusted_file_host(url: str, api_url: str | None) -> bool:
    """The bot token goes only to Slack's file hosts (or the configured API host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if api_url:
        api = urlsplit(api_url)
        if host == (api.hostname or "").lower() and parts.port == api.port:
            return True
    return parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")
                                        or host.endswith(".slack-edge.com"))


async def download_file(rt: Runtime, client: Any, f: dict[str, Any], cap: int | None = None
                        ) -> tuple[bytes | None, str | None]:
    """(content, error message key) of a shared text file, size-capped (max_file_bytes
    unless `cap` says otherwise: a mail log may be larger)."""
    cap = cap or rt.settings.max_file_bytes
    if not f.get("url_private_download") and not f.get("url_private") and f.get("id"):
        try:
            info = await client.files_info(file=f["id"])
            f = {**f, **(info.get("file") or {})}
        except Exception as exc:
            log.info("files.info failed: %s", type(exc).__name__)
            return None, "file_failed"
    if int(f.get("size") or 0) > cap:
        return None, "file_too_big"
    url = str(f.get("url_private_download") or f.get("url_private") or "")
    if not url or not trusted_file_host(url, rt.settings.api_url):
        log.warning("refusing to fetch a file from an untrusted host")
        return None, "file_failed"
    headers = {"Authorization": f"Bearer {client.token}"} if getattr(client, "token", None) else {}
    try:
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
            url, headers=headers, allow_redirects=False
        ) as resp:
            if resp.status != 200:
                return None, "file_failed"
            data = await resp.content.read(cap + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("file download failed: %s", type(exc).__name__)
        return None, "file_failed"
    if len(data) > cap:
        return None, "file_too_big"
    return data, None


async def analyse_message_event(
    rt: Runtime,
    client: Any,
    msg: dict[str, Any],
    lang: str,
    origin: Origin,
    *,
    explicit: bool,
    exclude_user: str | None = None,
) -> bool:
    """Analyse a Slack message (its text, else its text files). explicit=False: autodetect (quiet)."""
    channel = origin.channel_id or msg.get("channel") or ""
    source = {"ch": channel, "ts": msg.get("ts", "")}
    raw = msg.get("text") or ""
    if exclude_user:
        from bot.slack.text import strip_mentions

        raw = strip_mentions(raw, exclude_user)
    body = unescape_slack(raw)
    kind = classify(body)
    if kind:
        return await analyse_and_reply(rt, client, body, kind, lang, origin, source,
                                       quiet_if_empty=not explicit)
    from bot.slack import logs_intake, reports_intake

    for f in (msg.get("files") or [])[:3]:
        if not isinstance(f, dict):
            continue
        report_file = reports_intake.is_report_file(f)
        log_named = logs_intake.is_log_file(f)
        if not report_file and not is_text_file(f) and not log_named:
            continue
        cap = rt.settings.max_log_bytes if log_named else rt.settings.max_file_bytes
        data, err = await download_file(rt, client, f, cap)
        if data is None:
            if explicit or err == "file_too_big":
                await notice(rt, client, origin, logs_intake.download_error(
                    lang, err or "file_failed", str(f.get("name") or "file"), cap, log_named=log_named))
                return True
            continue
        # A whole mail log gets its summary and chart; a DMARC / TLS-RPT report (or a
        # report email) its report summary; anything else that is text goes on to the
        # bounce / message analysis.
        if await logs_intake.answer_file(rt, client, f, data, lang, origin, explicit=explicit):
            return True
        if len(data) > rt.settings.max_file_bytes:  # fetched as a log, but it is none
            await notice(rt, client, origin, text(lang, "file_too_big", name=str(f.get("name") or "file"),
                                                  mb=rt.settings.max_file_bytes // (1024 * 1024)))
            return True
        if report_file and await reports_intake.answer_file(rt, client, f, data, lang, origin, source,
                                                            explicit=explicit):
            return True
        if not is_text_file(f):
            continue
        data = to_utf8(data)  # a file saved as UTF-16/32 ("Unicode" on Windows) reads as its text
        decoded = data.decode("utf-8", "replace")
        fkind = classify(decoded) or ("message" if str(f.get("name", "")).lower().endswith(".eml") else None)
        if fkind is None and not explicit:
            continue
        return await analyse_and_reply(rt, client, data, fkind or "bounce", lang, origin, source,
                                       quiet_if_empty=not explicit)
    if explicit and body.strip():
        # Asked explicitly: let the engine try even when detection was unsure.
        return await analyse_and_reply(rt, client, body, "bounce", lang, origin, source)
    return False
