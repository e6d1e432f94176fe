"""Buttons under every report: Re-check, Details, language switch."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.render_blocks import ACTION_DETAILS, ACTION_LANG, ACTION_RECHECK
from bot.slack import flows
from bot.slack.dedupe import invocation_key
from bot.slack.messages import decode_value
from bot.slack.router import parse_command
from bot.slack.runtime import Runtime
from bot.slack.threads import _fetch_message

log = logging.getLogger("mailcheck.slack")


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.action(ACTION_RECHECK)
    async def on_recheck(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any,
                         context: Any, req: Any) -> None:
        await ack()
        _once(rt, body, context, req, lambda: _recheck(rt, client, body, action, respond, context), "action:recheck")

    @app.action(ACTION_DETAILS)
    async def on_details(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any,
                         context: Any, req: Any) -> None:
        await ack()
        _once(rt, body, context, req,
              lambda: _rerender(rt, client, body, action, respond, context, detailed=True), "action:details")

    @app.action(ACTION_LANG)
    async def on_lang(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any,
                      context: Any, req: Any) -> None:
        await ack()
        _once(rt, body, context, req,
              lambda: _rerender(rt, client, body, action, respond, context, detailed=False), "action:lang")


def _once(rt: Runtime, body: dict[str, Any], context: Any, req: Any,
          work: Callable[[], Awaitable[None]], name: str) -> None:
    """Run a click's work once: a resent or replayed click is acked and does nothing."""
    team = _ids(body, context)[0]
    key = invocation_key("action", body, req)
    if not rt.claim_here(team, key):
        rt.metrics.events.labels("block_actions", "duplicate").inc()
        return

    async def run() -> None:
        if not await rt.claim_shared(team, key):
            rt.metrics.events.labels("block_actions", "duplicate").inc()
            return
        await work()

    rt.spawn(run(), name=name)


def _ids(body: dict[str, Any], context: Any) -> tuple[str, str | None, str | None, str | None]:
    team = context.team_id or (body.get("team") or {}).get("id") or ""
    user = (body.get("user") or {}).get("id")
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    thread = container.get("thread_ts") or container.get("message_ts")
    return team, user, channel, thread


def _is_ephemeral(body: dict[str, Any]) -> bool:
    return bool((body.get("container") or {}).get("is_ephemeral"))


async def _recheck(rt: Runtime, client: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
                   context: Any) -> None:
    value = decode_value(action.get("value"))
    if not value and action.get("value"):
        value = {"c": str(action["value"])}  # digest rows carry the bare target
    team, user, channel, _thread = _ids(body, context)
    lang: str = value["l"] if value.get("l") in ("en", "ja") else await rt.lang_for(team, user, client)
    if value.get("c"):
        cmd = parse_command(value["c"])
        if cmd.is_check:
            origin = flows.Origin(team_id=team, channel_id=channel, user_id=user, respond=respond)
            await flows.run_command(rt, client, cmd, lang, origin, origin_kind="recheck")
            return
    if value.get("ch") and value.get("ts"):
        msg = await _fetch_message(client, value["ch"], value["ts"])
        if msg is None:
            return
        msg.setdefault("channel", value["ch"])
        # A re-check of a thread analysis is visible to the clicker only.
        origin = flows.Origin(team_id=team, channel_id=value["ch"], user_id=user, respond=respond)
        await flows.analyse_message_event(rt, client, msg, lang, origin, explicit=True)


async def _rerender(rt: Runtime, client: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
                    context: Any, *, detailed: bool) -> None:
    """Details (full report, ephemeral) or the same report in the other language (in place)."""
    value = decode_value(action.get("value"))
    team, user, channel, thread = _ids(body, context)
    lang: str = value["l"] if value.get("l") in ("en", "ja") else "en"
    cached = await rt.cache.aget(value.get("r"))
    if cached is None:
        # Another replica or a restart: run it again.
        if detailed:
            await _recheck(rt, client, body, action, respond, context)
        else:
            await _recheck(rt, client, body, {"value": action.get("value")}, respond, context)
        return
    if detailed:
        origin = flows.Origin(team_id=team, channel_id=channel, user_id=user, respond=respond)
    else:
        public = not _is_ephemeral(body)
        origin = flows.Origin(team_id=team, channel_id=channel, user_id=user, respond=respond,
                              response_type="in_channel" if public else "ephemeral",
                              replace_first=True, thread_ts=thread if public else None)
    await flows.present(rt, client, cached.report, lang, cached.source, origin, detailed=detailed,
                        rid=value.get("r"))
