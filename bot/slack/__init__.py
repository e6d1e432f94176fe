"""The Slack app: `create_app(settings, client=..., store=...)` builds a
slack-bolt AsyncApp with the listeners of commands.py, threads.py, actions.py.

HTTP/Socket Mode serving lives in bot/serve.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import redact
from bot.slack.health import SlackIdentity
from bot.slack.metrics import Metrics
from bot.slack.runtime import Runtime
from bot.slack.settings import SlackSettings
from bot.webclient import make_web_client

__all__ = ["SlackSettings", "create_app", "runtime_of"]

log = logging.getLogger("mailcheck.slack")


def _web_client(settings: SlackSettings, token: str | None, health: Any = None) -> AsyncWebClient:
    """Retries 429 (Retry-After), 5xx and connection errors (bot/webclient.py). In OAuth
    mode bolt builds each workspace's client from this one, copying its retry handlers."""
    client: AsyncWebClient = make_web_client(token, settings.api_url, health=health)
    return client


@contextlib.contextmanager
def _bolt_reads_no_token_from_env() -> Iterator[None]:
    """AsyncApp falls back to $SLACK_BOT_TOKEN when no token is passed and then warns "As you
    gave `client` as well, `token` will be unused" although the client carries that very token.
    The token is already in the client (and the settings): hide the variable while Bolt reads it."""
    saved = os.environ.pop("SLACK_BOT_TOKEN", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["SLACK_BOT_TOKEN"] = saved


def _identity_first(identity: SlackIdentity) -> Any:
    """Runs before Bolt's single-workspace authorization: the bot's identity comes from the
    auth.test cached at start-up (bot/slack/health.py), so a request never waits on Slack's
    retries and an outage is answered in one line (SlackUnavailable, bot/slack/failures.py)
    instead of Bolt's "installation no longer available, reinstall"."""
    from slack_bolt.middleware.authorization.async_internals import _is_no_auth_required
    from slack_bolt.middleware.authorization.async_single_team_authorization import (
        AsyncSingleTeamAuthorization,
    )
    from slack_bolt.middleware.authorization.internals import _is_no_auth_test_call_required

    async def middleware(req: Any, resp: Any, next: Any) -> Any:
        # The requests Bolt itself answers without auth.test (url_verification, ssl_check,
        # app_uninstalled ...) need no identity either: Bolt's own tests, reused.
        if _is_no_auth_required(req) or _is_no_auth_test_call_required(req):
            return await next()
        answer = await identity.get()
        for step in identity.bolt_steps:  # Bolt's own auth.test cache, so it does not ask again
            if isinstance(step, AsyncSingleTeamAuthorization) and step.auth_test_result is None:
                step.auth_test_result = answer
        return await next()

    return middleware


def create_app(
    settings: SlackSettings | None = None,
    *,
    client: AsyncWebClient | None = None,
    store: Any | None = None,
    metrics: Metrics | None = None,
) -> AsyncApp:
    """Build the app. Single workspace with `SLACK_BOT_TOKEN`; OAuth (multi-workspace)
    when SLACK_CLIENT_ID/SECRET are set — then `store` must provide the installation
    and OAuth state stores (bot.storage)."""
    settings = settings or SlackSettings.from_env()
    # Never logged (once bot.redact.install() ran: serve, CLI) and never posted (outbound.py).
    redact.secrets_from_env()
    for secret in (settings.signing_secret, settings.client_secret, settings.bot_token, settings.app_token,
                   redact.url_password(settings.database_url)):
        redact.add_secret(secret)
    rt = Runtime(settings, store=store, metrics=metrics)
    kwargs: dict[str, Any] = {
        "signing_secret": settings.signing_secret,
        "name": "mailcheck",
        "logger": logging.getLogger("mailcheck.slack.bolt"),
    }
    if settings.oauth_enabled:
        kwargs["client"] = client or _web_client(settings, None, rt.health)
        kwargs["oauth_settings"] = _oauth_settings(settings, store)
    else:
        kwargs["client"] = client or _web_client(settings, settings.bot_token, rt.health)
        rt.identity = SlackIdentity(kwargs["client"], rt.health)
        kwargs["before_authorize"] = _identity_first(rt.identity)
    with _bolt_reads_no_token_from_env():
        app = AsyncApp(**kwargs)
    if rt.identity is not None:
        rt.identity.bolt_steps = list(app._async_middleware_list)
    if settings.oauth_enabled:
        app.enable_token_revocation_listeners()
    app._mailcheck_runtime = rt  # type: ignore[attr-defined]
    from bot.slack.failures import error_handler

    app.error(error_handler(rt))
    from bot.slack.outbound import redact_outbound_for

    app.use(redact_outbound_for(rt.health))  # every ack, respond and Web API call of the listeners is redacted

    from bot.slack import actions, commands, threads

    commands.register(app, rt)
    threads.register(app, rt)
    actions.register(app, rt)

    return app


def runtime_of(app: AsyncApp) -> Runtime:
    rt: Runtime = app._mailcheck_runtime  # type: ignore[attr-defined]
    return rt


def _oauth_settings(settings: SlackSettings, store: Any | None) -> Any:
    from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings

    if store is None:
        raise RuntimeError("OAuth (SLACK_CLIENT_ID/SLACK_CLIENT_SECRET) needs the shared store: pass store=")
    installation_store = store.installation_store(settings.client_id)
    state_store = store.oauth_state_store()
    return AsyncOAuthSettings(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=list(settings.scopes),
        redirect_uri=settings.redirect_uri,
        installation_store=installation_store,
        state_store=state_store,
    )

