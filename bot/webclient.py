"""The one way mailcheck builds a Slack `AsyncWebClient` (the app, OAuth
per-workspace clients — bolt copies these handlers — and digest posting):

- 429 `ratelimited`: waits `Retry-After` and retries (AsyncRateLimitErrorRetryHandler);
- 5xx (500/503 ...): retried with backoff (AsyncServerErrorRetryHandler);
- connection errors (reset, refused, timeouts): retried (AsyncConnectionErrorRetryHandler).

Every call it makes is redacted first (`RedactingWebClient`, bot/redact.py): a
posted text, block or attachment never carries a Slack token, webhook URL or the
bot's own configured secrets, whatever the pasted input quoted.

`SLACK_API_URL` (or `base_url`) points it at another Web API (tests, proxies).
"""

from __future__ import annotations

import os
from typing import Any

RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2
CONNECTION_RETRIES = 2


# Parameters that are the credentials of the call itself (oauth.v2.access, token
# rotation): sent as given, never masked.
CREDENTIAL_PARAMS = frozenset({"token", "client_id", "client_secret", "code", "refresh_token", "grant_type",
                               "redirect_uri", "code_verifier"})


def scrub_params(params: Any) -> Any:
    """A Web API call's json/data/params with every content string redacted."""
    from bot import redact

    if not isinstance(params, dict):
        return params
    return {k: (v if k in CREDENTIAL_PARAMS else redact.scrub(v)) for k, v in params.items()}


def _redacting_class() -> type:
    from slack_sdk.web.async_client import AsyncWebClient
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    class RedactingWebClient(AsyncWebClient):
        """AsyncWebClient whose every api_call goes out redacted (all chat.*, views.*, files.* ... go
        through api_call)."""

        async def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict[str, Any] | None = None,
                           data: Any = None, params: dict[str, Any] | None = None,
                           json: dict[str, Any] | None = None, headers: dict[str, Any] | None = None,
                           auth: dict[str, Any] | None = None) -> AsyncSlackResponse:
            health = getattr(self, "mc_health", None)
            try:
                response = await super().api_call(api_method, http_verb=http_verb, files=files,
                                                  data=scrub_params(data), params=scrub_params(params),
                                                  json=scrub_params(json), headers=headers, auth=auth)
            except Exception as exc:  # reported, then raised as before (a cancel is no outcome)
                if health is not None:
                    health.observe(api_method, exc)
                raise
            if health is not None:
                health.observe(api_method, None)
            return response

    return RedactingWebClient


_CLASS: type | None = None


def redacting_class() -> type:
    global _CLASS
    if _CLASS is None:
        _CLASS = _redacting_class()
    return _CLASS


def redacting_copy(client: Any, health: Any = None) -> Any:
    """The same client (token, base URL, session, retry handlers ...) as a RedactingWebClient,
    reporting each call's outcome to `health` (bot/slack/health.py) when given."""
    cls = redacting_class()
    health = health if health is not None else getattr(client, "mc_health", None)
    if isinstance(client, cls):
        if health is not None and getattr(client, "mc_health", None) is None:
            setattr(client, "mc_health", health)  # noqa: B010 (a type-less attribute)
        return client
    copy = cls(
        token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl, proxy=client.proxy,
        session=client.session, trust_env_in_session=client.trust_env_in_session, headers=client.headers,
        team_id=getattr(client, "team_id", None), logger=client.logger,
        retry_handlers=list(client.retry_handlers) if client.retry_handlers is not None else None,
    )
    copy.mc_health = health
    return copy


def retry_handlers() -> list[Any]:
    from slack_sdk.http_retry.builtin_async_handlers import (
        AsyncConnectionErrorRetryHandler,
        AsyncRateLimitErrorRetryHandler,
        AsyncServerErrorRetryHandler,
    )

    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
    ]


def api_base_url(explicit: str | None = None) -> str | None:
    base = explicit or os.environ.get("SLACK_API_URL") or None
    if base and not base.endswith("/"):
        base += "/"  # slack_sdk joins with urljoin: without it the last segment is lost
    return base


def make_web_client(token: str | None, base_url: str | None = None, health: Any = None) -> Any:
    """A redacting AsyncWebClient with mailcheck's retry handlers (replacing slack_sdk's default list);
    each call's outcome goes to `health` (bot/slack/health.py) when given."""
    kwargs: dict[str, Any] = {"token": token, "retry_handlers": retry_handlers()}
    base = api_base_url(base_url)
    if base:
        kwargs["base_url"] = base
    client = redacting_class()(**kwargs)
    client.mc_health = health
    return client
