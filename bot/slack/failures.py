"""What Slack gets back when a request cannot be handled.

A slash command gets a 200 with a one-line ephemeral explanation: Slack shows an ack's
text to the user who typed the command, while a 500 shows only "dispatch_failed". An
event gets a 503, so Slack delivers it again later (event dedupe keeps that to one
answer). One log line says why; a traceback is logged only for a bug in our own code,
never for Slack being unreachable, and nothing of the request is logged."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.response import BoltResponse

from bot.slack.health import SlackUnavailable, describe
from bot.slack.messages import text

log = logging.getLogger("mailcheck.slack")


async def failure_answer(rt: Any, body: Any, exc: BaseException) -> tuple[int, dict[str, Any] | str]:
    unavailable = isinstance(exc, SlackUnavailable)
    rt.metrics.errors.labels("slack_api" if unavailable else "dispatch").inc()
    payload = body if isinstance(body, dict) else {}
    what = payload.get("command") or payload.get("type") or "request"
    if unavailable:
        log.warning("could not handle %s: %s", what, exc)
    else:
        log.error("could not handle %s: %s", what, describe(exc), exc_info=exc)
    if payload.get("command"):
        lang = await rt.lang_for(str(payload.get("team_id") or ""), str(payload.get("user_id") or "") or None,
                                 quick=True)
        key = "slack_unavailable" if unavailable else "failed_request"
        return 200, {"response_type": "ephemeral", "text": text(lang, key)}
    if payload.get("type") == "event_callback":
        return 503, "temporarily unavailable"
    return 200, ""


def error_handler(rt: Any) -> Any:
    """For `app.error(...)`: Bolt calls it for its middleware's errors (authorization
    included) and its listeners' errors, and sends the BoltResponse it returns."""

    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        status, answer = await failure_answer(rt, body, error)
        if isinstance(answer, dict):
            return BoltResponse(status=status, body=answer)
        return BoltResponse(status=status, body=answer)

    return on_error
