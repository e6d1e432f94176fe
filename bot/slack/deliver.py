"""Posting rendered messages: response_url first, chat.postMessage as fallback.

`response_url` works 5 times within 30 minutes; after that (or when Slack
answers anything but 200) the rest goes out with chat.postMessage to the
channel, which needs the bot in the channel (or chat:write.public).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bot.render_blocks import RenderedMessage

log = logging.getLogger("mailcheck.slack")


async def via_response_url(
    messages: Sequence[RenderedMessage],
    *,
    respond: Any | None,
    client: Any,
    channel: str | None,
    response_type: str = "ephemeral",
    replace_first: bool = False,
    thread_ts: str | None = None,
) -> int:
    """Send each message with `respond`; on failure fall back to chat.postMessage. Returns messages sent."""
    sent = 0
    use_url = respond is not None and getattr(respond, "response_url", None)
    for i, msg in enumerate(messages):
        blocks = msg.block_dicts()
        if use_url:
            try:
                kwargs: dict[str, Any] = {"text": msg.text, "blocks": blocks, "response_type": response_type}
                if i == 0 and replace_first:
                    kwargs["replace_original"] = True
                elif replace_first:
                    kwargs["replace_original"] = False
                resp = await respond(**kwargs)  # type: ignore[misc]
                if getattr(resp, "status_code", 200) == 200:
                    sent += 1
                    continue
                log.warning("response_url answered %s; falling back to chat.postMessage",
                            getattr(resp, "status_code", "?"))
            except Exception as exc:
                log.warning("response_url failed (%s); falling back to chat.postMessage", type(exc).__name__)
            use_url = False
        if channel and await post(client, channel, msg, thread_ts=thread_ts):
            sent += 1
    return sent


async def post(client: Any, channel: str, msg: RenderedMessage, *, thread_ts: str | None = None) -> bool:
    try:
        kwargs: dict[str, Any] = {"channel": channel, "text": msg.text, "blocks": msg.block_dicts(),
                                  "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        await client.chat_postMessage(**kwargs)
        return True
    except Exception as exc:
        error = getattr(getattr(exc, "response", None), "get", lambda _k, _d=None: None)("error")
        log.error("chat.postMessage to %s failed: %s", channel, error or type(exc).__name__)
        return False


async def post_all(client: Any, channel: str, messages: Sequence[RenderedMessage], *,
                   thread_ts: str | None = None) -> int:
    n = 0
    for msg in messages:
        n += await post(client, channel, msg, thread_ts=thread_ts)
    return n
