"""`/mailcheck` listener: parse, ack at once, work in a background task."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.render_blocks import render_text
from bot.slack import flows
from bot.slack.dedupe import invocation_key
from bot.slack.messages import BOUNCE_HOWTO, HELP, MESSAGE_HOWTO, text
from bot.slack.router import Command, parse_command
from bot.slack.runtime import Runtime
from bot.slack.text import escape_slack

log = logging.getLogger("mailcheck.slack")

QUICK_WAIT = 1.5  # store work answered inside the ack if done by then


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.command("/mailcheck")
    async def on_mailcheck(ack: Any, command: dict[str, Any], respond: Any, client: Any, context: Any,
                           req: Any) -> None:
        t0 = time.perf_counter()
        cmd = parse_command(command.get("text"))
        rt.metrics.commands.labels(cmd.name).inc()
        team = context.team_id or command.get("team_id") or ""
        user = command.get("user_id") or ""
        channel = command.get("channel_id")
        lang = await rt.lang_for(team, user, quick=True)
        origin = flows.Origin(team_id=team, channel_id=channel, user_id=user, respond=respond)

        async def acked(**kw: Any) -> None:
            await ack(**kw)
            if getattr(req, "mode", "") == "socket_mode":
                rt.metrics.ack_latency.labels("socket_mode").observe(time.perf_counter() - t0)

        if cmd.name in ("help", "usage", "bounce", "message"):
            await acked(**_static(cmd, lang))  # the ack is the whole answer: nothing runs, nothing to claim
            return
        # A resend or replay of this invocation is acked but runs nothing (bot/slack/dedupe.py).
        # This process's look is instant; the store's claim runs alongside and is awaited
        # before any work, so the ack never waits for the database.
        key = invocation_key("cmd", command, req)
        if not rt.claim_here(team, key):
            rt.metrics.events.labels("slash_command", "duplicate").inc()
            await acked()
            return
        first = asyncio.ensure_future(rt.claim_shared(team, key))
        if cmd.is_check:
            # The shared (database) limit is counted in the task, after the ack; this
            # in-process look only spares a task when this replica already saw the limit.
            wait = rt.precheck_limit(team, user)
            if wait:
                await acked(text=text(lang, "rate_limited", seconds=math.ceil(wait)), response_type="ephemeral")
                return
            await acked(text=text(lang, "checking", what=f"`{cmd.label()}`"), response_type="ephemeral")
            rt.spawn(_check_task(rt, client, cmd, team, user, origin, first), name=f"check:{cmd.name}")
            return
        handler = _STATEFUL[cmd.name]

        async def once() -> str | None:
            if not await first:
                rt.metrics.events.labels("slash_command", "duplicate").inc()
                return None
            return await handler(rt, client, cmd, team, channel, user, lang)

        await _quick(rt, client, acked, origin, lang, once)


def _static(cmd: Command, lang: str) -> dict[str, Any]:
    if cmd.name == "bounce":
        body = BOUNCE_HOWTO[lang]
    elif cmd.name == "message":
        body = MESSAGE_HOWTO[lang]
    elif cmd.name == "usage":
        body = text(lang, "usage", error=escape_slack(cmd.error)) + "\n\n" + HELP[lang]
    else:
        body = HELP[lang]
    msg = render_text(body)[0]
    return {"text": msg.text, "blocks": msg.block_dicts(), "response_type": "ephemeral"}


async def _check_task(rt: Runtime, client: Any, cmd: Command, team: str, user: str, origin: flows.Origin,
                      first: Awaitable[bool]) -> None:
    if not await first:  # another replica got this invocation first
        rt.metrics.events.labels("slash_command", "duplicate").inc()
        return
    lang = await rt.lang_for(team, user, client)
    await flows.run_command(rt, client, cmd, lang, origin)


async def _quick(
    rt: Runtime,
    client: Any,
    acked: Callable[..., Awaitable[None]],
    origin: flows.Origin,
    lang: str,
    work: Callable[[], Awaitable[str | None]],
) -> None:
    """Store-backed subcommands: answer inside the ack when quick, else ack then respond.
    `work` returning None (a duplicate invocation) answers nothing."""
    task = asyncio.ensure_future(_safe(rt, work, lang))
    done, _ = await asyncio.wait({task}, timeout=QUICK_WAIT)
    if done:
        result = task.result()
        if result is None:
            await acked()
            return
        msg = render_text(result)[0]
        await acked(text=msg.text, blocks=msg.block_dicts(), response_type="ephemeral")
        return
    await acked(text=text(lang, "working"), response_type="ephemeral")

    async def later() -> None:
        result = await task
        if result is not None:
            await flows.notice(rt, client, origin, result)

    rt.spawn(later(), name="command:later")


async def _safe(rt: Runtime, work: Callable[[], Awaitable[str | None]], lang: str) -> str | None:
    try:
        return await work()
    except ValueError as exc:  # validation from the store / schedule parser
        return text(lang, "usage", error=str(exc))
    except Exception:
        rt.metrics.errors.labels("command").inc()
        log.exception("command failed")
        return text(lang, "failed", what="/mailcheck")



# -- stateful subcommands ---------------------------------------------------------
Handler = Callable[[Runtime, Any, Command, str, str | None, str, str], Awaitable[str]]


async def _lang(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                lang: str) -> str:
    scope = "team" if cmd.scope == "team" else f"user:{user}"
    if not await rt.set_setting(team, scope, "lang", cmd.value):
        return text(cmd.value, "no_store")
    who = text(cmd.value, "workspace" if cmd.scope == "team" else "you")
    return text(cmd.value, "lang_set", who=who)


async def _autodetect(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                      lang: str) -> str:
    if cmd.value in ("on", "off"):
        if not await rt.set_setting(team, f"channel:{channel}", "autodetect", cmd.value):
            return text(lang, "no_store")
        return text(lang, f"autodetect_{cmd.value}")
    return text(lang, "autodetect_on" if await rt.autodetect_on(team, channel or "") else "autodetect_off")


async def _watch(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                 lang: str) -> str:
    store = await rt.store()
    if store is None or not channel:
        return text(lang, "no_store")
    tz = cmd.tz
    if tz is None:
        tz = (await rt.profile(client, team, user, timeout=1.0)).get("tz") or "UTC"
    schedule = cmd.schedule
    watch = await store.add_watch(team, channel, cmd.target, schedule=schedule, tz=tz,
                                  selectors=list(cmd.selectors) or None, created_by=user)
    out = text(lang, "watching", target=cmd.target, schedule=getattr(watch, "schedule", schedule),
               tz=getattr(watch, "tz", tz))
    nxt = getattr(watch, "next_run_at", None)
    if nxt is not None:
        out += text(lang, "watch_next", when=_local_time(nxt, getattr(watch, "tz", tz)))
    return out


async def _unwatch(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                   lang: str) -> str:
    store = await rt.store()
    if store is None or not channel:
        return text(lang, "no_store")
    removed = await store.remove_watch(team, channel, cmd.target)
    return text(lang, "unwatched" if removed else "not_watched", target=cmd.target)


async def _watches(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                   lang: str) -> str:
    store = await rt.store()
    if store is None or not channel:
        return text(lang, "no_store")
    watches = await store.list_watches(team_id=team, channel_id=channel)
    if not watches:
        return text(lang, "no_watches")
    lines = [text(lang, "watches")]
    for w in watches:
        sel = getattr(w, "selectors", None)
        extra = f" selector={','.join(sel)}" if sel else ""
        lines.append(f"• `{w.target}` — {w.schedule} ({w.tz}){extra}")
    return "\n".join(lines)


async def _digest(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                  lang: str) -> str:
    from bot import digest as mod

    store = await rt.store()
    if store is None or not channel:
        return text(lang, "digest_missing")
    watches = await store.list_watches(team_id=team, channel_id=channel)
    if not watches:
        return text(lang, "digest_none")

    async def run() -> None:
        try:
            # The audits run in the check thread's loop, like every other check.
            runner = rt.check_loop.run if rt.check_loop is not None else None
            await mod.run_now(store, team, channel, post=_poster(client, mod), resolver=rt.resolver(),
                              audit_runner=runner)
        except Exception:
            rt.metrics.errors.labels("digest").inc()
            log.exception("digest now failed")

    rt.spawn(run(), name="digest:now")
    return text(lang, "digest_started")


def _poster(client: Any, digest_mod: Any) -> Callable[[str, str, dict[str, Any]], Awaitable[str | None]]:
    """bot.digest's PostFn on this request's client (its token and SLACK_API_URL)."""

    async def post(team_id: str, channel_id: str, message: dict[str, Any]) -> str | None:
        from slack_sdk.errors import SlackApiError

        try:
            resp = await client.chat_postMessage(channel=channel_id, text=message["text"],
                                                 blocks=message["blocks"], unfurl_links=False,
                                                 unfurl_media=False)
        except SlackApiError as exc:
            err = str(exc.response.get("error", "error")) if exc.response is not None else "error"
            final = err in digest_mod._FINAL_ERRORS
            raise digest_mod.DigestPostError(f"chat.postMessage failed: {err}", final=final) from None
        ts = resp.get("ts")
        return str(ts) if ts else None

    return post


def _local_time(when: Any, tz: str) -> str:
    try:
        from zoneinfo import ZoneInfo

        return str(when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z"))
    except Exception:
        return str(when)


async def _reports(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                   lang: str) -> str:
    from bot.slack.reports_intake import reports_command

    return await reports_command(rt, client, team, channel, user, lang)


async def _logs(rt: Runtime, client: Any, cmd: Command, team: str, channel: str | None, user: str,
                lang: str) -> str:
    from bot.slack.logs_intake import logs_command

    return await logs_command(rt, client, team, channel, user, lang)


_STATEFUL: dict[str, Handler] = {
    "reports": _reports,
    "logs": _logs,
    "lang": _lang,
    "autodetect": _autodetect,
    "watch": _watch,
    "unwatch": _unwatch,
    "watches": _watches,
    "digest": _digest,
}
