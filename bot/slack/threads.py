"""Thread paste: bounces / MTA logs / message headers pasted into channels the
bot is in, and @mentions. One reply per message, in its thread.

Rules (research/slack_bolt.md §8): never answer bots (other apps' messages have
`bot_id` and often no subtype) or edits; a mention is delivered both as
`app_mention` and `message` (bolt-python #941): only `app_mention` answers it;
Slack retries and replicas are deduplicated on the event id and on the message
(channel, ts) in the shared store.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import flows
from bot.slack.messages import text
from bot.slack.router import parse_command
from bot.slack.runtime import Runtime, classify
from bot.slack.text import mentions_user, strip_mentions, unescape_slack

log = logging.getLogger("mailcheck.slack")

ANSWERED_SUBTYPES = (None, "file_share", "thread_broadcast")


def is_from_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message")


def thread_of(event: dict[str, Any]) -> str:
    return str(event.get("thread_ts") or event.get("ts") or "")


async def claim_message(rt: Runtime, team: str, body: dict[str, Any], event: dict[str, Any]) -> bool:
    """First delivery of this event AND first answer to this message?"""
    event_id = body.get("event_id")
    if event_id and not await rt.claim(team, f"event:{event_id}"):
        return False
    return await rt.claim(team, f"msg:{event.get('channel')}:{event.get('ts')}")


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], context: Any, client: Any) -> None:
        etype = "message"
        if event.get("subtype") not in ANSWERED_SUBTYPES or is_from_bot(event):
            rt.metrics.events.labels(etype, "ignored").inc()
            return
        raw = event.get("text") or ""
        if mentions_user(raw, context.bot_user_id):
            rt.metrics.events.labels(etype, "mention").inc()  # app_mention answers it
            return
        team = context.team_id or body.get("team_id") or ""
        if event.get("channel_type") == "im":
            # A direct message to the bot is always meant for it: answer like a mention.
            if await claim_message(rt, team, body, event):
                rt.metrics.events.labels(etype, "answered").inc()
                rt.spawn(_mention(rt, client, team, event, context.bot_user_id), name="thread:dm")
            return
        has_files = bool(event.get("files"))
        if not has_files and classify(unescape_slack(raw)) is None:
            rt.metrics.events.labels(etype, "not_bounce").inc()
            return
        channel = event.get("channel") or ""
        if not await rt.autodetect_on(team, channel):
            rt.metrics.events.labels(etype, "autodetect_off").inc()
            return
        if not await claim_message(rt, team, body, event):
            rt.metrics.events.labels(etype, "duplicate").inc()
            return
        rt.metrics.events.labels(etype, "answered").inc()
        rt.spawn(_paste(rt, client, team, event), name="thread:paste")

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], context: Any, client: Any) -> None:
        etype = "app_mention"
        if is_from_bot(event) or event.get("subtype") not in ANSWERED_SUBTYPES:
            rt.metrics.events.labels(etype, "ignored").inc()
            return
        team = context.team_id or body.get("team_id") or ""
        if not await claim_message(rt, team, body, event):
            rt.metrics.events.labels(etype, "duplicate").inc()
            return
        rt.metrics.events.labels(etype, "answered").inc()
        rt.spawn(_mention(rt, client, team, event, context.bot_user_id), name="thread:mention")


def _origin(team: str, event: dict[str, Any]) -> flows.Origin:
    return flows.Origin(team_id=team, channel_id=event.get("channel"), user_id=event.get("user"),
                        thread_ts=thread_of(event))


async def _paste(rt: Runtime, client: Any, team: str, event: dict[str, Any]) -> None:
    lang = await rt.lang_for(team, event.get("user"), client)
    await flows.analyse_message_event(rt, client, event, lang, _origin(team, event), explicit=False)


async def _mention(rt: Runtime, client: Any, team: str, event: dict[str, Any], bot_user_id: str | None) -> None:
    lang = await rt.lang_for(team, event.get("user"), client)
    origin = _origin(team, event)
    own = unescape_slack(strip_mentions(event.get("text") or "", bot_user_id))
    # 1. The mention's own text or files hold a bounce / message.
    if classify(own) or event.get("files"):
        if await flows.analyse_message_event(rt, client, event, lang, origin, explicit=False,
                                             exclude_user=bot_user_id):
            return
    # 2. `@mailcheck example.com` / `@mailcheck ip 192.0.2.1`: a check, answered in the thread.
    cmd = parse_command(own) if own.strip() else None
    if cmd is not None and cmd.is_check:
        await flows.run_command(rt, client, cmd, lang, origin, origin_kind="mention")
        return
    # 3. In a thread: analyse the thread's parent.
    thread_ts = event.get("thread_ts")
    if thread_ts and thread_ts != event.get("ts"):
        parent = await _fetch_message(client, event.get("channel") or "", thread_ts)
        if parent is not None and not is_from_bot(parent):
            parent.setdefault("channel", event.get("channel"))
            await flows.analyse_message_event(rt, client, parent, lang, origin, explicit=True)
            return
    if cmd is not None and cmd.name in ("help", "usage", "bounce", "message") and own.strip():
        from bot.slack.messages import BOUNCE_HOWTO, HELP, MESSAGE_HOWTO

        body = {"bounce": BOUNCE_HOWTO, "message": MESSAGE_HOWTO}.get(cmd.name, HELP)[lang]
        await flows.notice(rt, client, origin, body)
        return
    await flows.notice(rt, client, origin, text(lang, "mention_help"))


async def _fetch_message(client: Any, channel: str, ts: str) -> dict[str, Any] | None:
    """The message `ts` (a thread parent or reply) via conversations.replies."""
    try:
        resp = await client.conversations_replies(channel=channel, ts=ts, limit=1, inclusive=True)
    except Exception as exc:
        log.info("conversations.replies failed: %s", type(exc).__name__)
        return None
    for m in resp.get("messages") or []:
        if m.get("ts") == ts:
            return dict(m)
    msgs = resp.get("messages") or []
    return dict(msgs[0]) if msgs else None
