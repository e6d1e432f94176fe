"""The one way mailcheck builds a Slack `AsyncWebClient` (the app, OAuth
per-workspace clients — bolt copies these handlers — and digest posting):

- 429 `ratelimited`: waits `Retry-After` and retries (AsyncRateLimitErrorRetryHandler);
- 5xx (500/503 ...): retried with backoff (AsyncServerErrorRetryHandler);
- connection errors (reset, refused, timeouts): retried (AsyncConnectionErrorRetryHandler).

`SLACK_API_URL` (or `base_url`) points it at another Web API (tests, proxies).
"""

from __future__ import annotations

import os
from typing import Any

RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2
CONNECTION_RETRIES = 2


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


def make_web_client(token: str | None, base_url: str | None = None) -> Any:
    """An AsyncWebClient with mailcheck's retry handlers (replacing slack_sdk's default list)."""
    from slack_sdk.web.async_client import AsyncWebClient

    kwargs: dict[str, Any] = {"token": token, "retry_handlers": retry_handlers()}
    base = api_base_url(base_url)
    if base:
        kwargs["base_url"] = base
    return AsyncWebClient(**kwargs)
