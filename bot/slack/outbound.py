"""Everything the app says to Slack is redacted (bot/redact.py) — one Bolt
middleware, run for every request in HTTP and Socket Mode alike, swaps the
three ways a listener talks back for redacting ones before any listener runs:

- `client` (and `say`, built from it): every Web API call (chat.postMessage,
  chat.update, views ...) goes through `RedactingWebClient.api_call`;
- `respond`: the body posted to the response_url;
- `ack`: the HTTP response (or Socket Mode envelope reply) of the request.

So a pasted bounce quoting `xoxb-...`, a webhook URL or the bot's own signing
secret is answered without them, whichever path the answer takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import redact
from bot.webclient import redacting_copy


class RedactingAck(AsyncAck):
    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:  # type: ignore[override]
        return await super().__call__(*redact.scrub(args), **redact.scrub(kwargs))


class RedactingRespond(AsyncRespond):
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await super().__call__(*redact.scrub(args), **redact.scrub(kwargs))


def redact_outbound_for(health: Any = None) -> Callable[..., Awaitable[BoltResponse | None]]:
    """`redact_outbound` whose clients also report each call's outcome to `health`."""

    async def middleware(req: AsyncBoltRequest, resp: BoltResponse,
                         next: Callable[[], Awaitable[BoltResponse | None]]) -> BoltResponse | None:
        return await redact_outbound(req, resp, next, health=health)

    return middleware


async def redact_outbound(req: AsyncBoltRequest, resp: BoltResponse,
                          next: Callable[[], Awaitable[BoltResponse | None]], *, health: Any = None
                          ) -> BoltResponse | None:
    """Global middleware (registered before the listeners, after Bolt's authorization:
    the per-request client already carries the workspace's token)."""
    ctx = req.context
    client = ctx.get("client")
    if client is not None:
        ctx["client"] = redacting_copy(client, health)
        ctx.pop("say", None)  # rebuilt lazily from the redacting client
    ack = ctx.get("ack")
    if ack is None or (type(ack) is AsyncAck and ack.response is None):
        ctx["ack"] = RedactingAck()
    url = ctx.response_url
    if url:
        ctx["respond"] = RedactingRespond(response_url=url, proxy=ctx.client.proxy, ssl=ctx.client.ssl)
    return await next()
