"""Is Slack answering? What `/healthz` and the ack's error line say when it is not.

Two things can go wrong on the bot's side of Slack:
- the Web API (`https://slack.com/api/...`) cannot be reached, or answers 5xx, or rejects
  the bot token; every Web API call the app makes reports its outcome here
  (`bot/webclient.py`), so `/healthz` turns 503 with the reason while it lasts and
  recovers with the next call that succeeds;
- in Socket Mode, the WebSocket is down (`serve.py` owns the reconnect loop).

`SlackIdentity` runs before Bolt's single-workspace authorization: Bolt's own calls
`auth.test` on the first request, inside the ack, with the client's retries (2-30 s),
and answers a failure with "your installation is no longer available, reinstall" —
wrong for an outage. Here `auth.test` runs at start-up, is cached, and a request that
finds no identity tries again within `deadline` seconds at most, then gets a one-line
error in the ack (Slack's limit for the ack is 3 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("mailcheck.slack.health")

# Slack's `error` values that mean the token itself is refused, not the call.
TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                          "no_permission", "missing_scope", "ekm_access_denied"})
WARM_DEADLINE_S = 15.0
RETRY_S = 10.0  # while auth.test fails, requests in between are answered from the last failure


class SlackUnavailable(Exception):
    """The app cannot act in Slack right now; the message says why, in one line."""


def describe(exc: BaseException) -> str:
    """One line for a failed call: Slack's error code, the HTTP status, or the exception kind."""
    response = getattr(exc, "response", None)
    if response is not None:
        status = getattr(response, "status_code", None)
        error = None
        try:
            error = response.get("error")
        except Exception:  # a non-JSON body (an HTML 502 page)
            error = None
        if error:
            return f"{error} (HTTP {status})" if status and status != 200 else str(error)
        if status:
            return f"HTTP {status}"
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name


def is_transport_failure(exc: BaseException) -> bool:
    """True when Slack could not be reached or failed on its side (not: the call was wrong)."""
    response = getattr(exc, "response", None)
    if response is not None:
        status = int(getattr(response, "status_code", 0) or 0)
        return status >= 500 or status == 429
    return isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)) or type(exc).__module__.startswith("aiohttp")


@dataclass
class SlackHealth:
    """The Web API's state as the app's own calls last saw it."""

    down_since: float | None = None
    reason: str = ""
    failures: int = 0

    def ok(self) -> None:
        if self.down_since is not None:
            log.info("Slack Web API reachable again (was down for %.0f s)", time.time() - self.down_since)
        self.down_since, self.reason = None, ""

    def failed(self, method: str, reason: str) -> None:
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.time()
            log.warning("Slack Web API call %s failed: %s", method, reason)
        self.reason = f"{method}: {reason}"

    def observe(self, method: str, exc: BaseException | None) -> None:
        """The outcome of one Web API call (after the client's own retries)."""
        if exc is None:
            self.ok()
            return
        error = ""
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                error = str(response.get("error") or "")
            except Exception:
                error = ""
        if is_transport_failure(exc) or (method == "auth.test" and error in TOKEN_ERRORS):
            self.failed(method, describe(exc))
        else:
            self.ok()  # Slack answered: the call was refused for its own reasons (channel_not_found ...)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def headline(self) -> str:
        if self.down_since is None:
            return ""
        since = datetime.fromtimestamp(self.down_since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"Slack Web API unreachable since {since} ({self.reason})"

    def status(self) -> dict[str, Any]:
        if self.down_since is None:
            return {"slack_web_api": "ok"}
        return {"ok": False, "slack_web_api": "unreachable", "reason": self.headline()}


class SlackIdentity:
    """The bot's own `auth.test` answer (team, bot user), fetched once and cached."""

    def __init__(self, client: Any, health: SlackHealth, *, deadline: float = 1.5) -> None:
        self.client = client
        self.health = health
        self.deadline = deadline
        self._result: Any = None
        self._tried_at = 0.0
        self._lock = asyncio.Lock()
        self.bolt_steps: list[Any] = []  # the app's middleware (create_app), to share the answer

    async def get(self, deadline: float | None = None) -> Any:
        if self._result is not None:
            return self._result
        if self._tried_at and time.monotonic() - self._tried_at < RETRY_S and self.health.down:
            raise SlackUnavailable(self.health.headline())
        async with self._lock:
            if self._result is not None:
                return self._result
            self._tried_at = time.monotonic()
            try:
                result = await asyncio.wait_for(self.client.auth_test(), deadline or self.deadline)
            except Exception as exc:  # every kind of failure ends as one line, never in the ack's traceback
                if not self.health.down:
                    self.health.failed("auth.test", describe(exc))
                raise SlackUnavailable(self.health.headline() or describe(exc)) from None
            self._result = result
            self.health.ok()
            return result

    async def warm(self) -> None:
        """At start-up: learn the identity now, or log why not (serving starts anyway). The
        client's retries may run their course here (nobody waits on an ack yet), so the
        reason logged is the real one (connection refused, invalid_auth ...), not a timeout."""
        try:
            await self.get(deadline=WARM_DEADLINE_S)
        except SlackUnavailable as exc:
            log.warning("could not confirm the bot token with Slack at start-up: %s; commands will say so "
                        "until it works", exc)
