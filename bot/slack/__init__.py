"""The Slack app: `create_app(settings, client=..., store=...)` builds a
slack-bolt AsyncApp with the listeners of commands.py, threads.py, actions.py.

HTTP/Socket Mode serving lives in bot/serve.py.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import redact
from bot.slack.metrics import Metrics
from bot.slack.runtime import Runtime
from bot.slack.settings import SlackSettings
from bot.webclient import make_web_client

__all__ = ["SlackSettings", "create_app", "runtime_of"]

log = logging.getLogger("mailcheck.slack")


def _web_client(settings: SlackSettings, token: str | None) -> AsyncWebClient:
    """Retries 429 (Retry-After), 5xx and connection errors (bot/webclient.py). In OAuth
    mode bolt builds each workspace's client from this one, copying its retry handlers."""
    client: AsyncWebClient = make_web_client(token, settings.api_url)
    return client


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
        kwargs["client"] = client or _web_client(settings, None)
        kwargs["oauth_settings"] = _oauth_settings(settings, store)
    else:
        kwargs["client"] = client or _web_client(settings, settings.bot_token)
    app = AsyncApp(**kwargs)
    if settings.oauth_enabled:
        app.enable_token_revocation_listeners()
    app._mailcheck_runtime = rt  # type: ignore[attr-defined]
    from bot.slack.outbound import redact_outbound

    app.use(redact_outbound)  # every ack, respond and Web API call of the listeners is redacted

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

