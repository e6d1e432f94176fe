"""`mailcheck serve`: run the Slack app.

- Socket Mode when SLACK_APP_TOKEN is set (no public URL needed); if PORT is
  also set, /healthz and /metrics (and the OAuth pages) are served on it.
- HTTP mode otherwise, on $PORT (default 3000): POST /slack/events, GET /healthz,
  GET /metrics, and GET /slack/install + /slack/oauth_redirect with OAuth.
- The digest scheduler (bot.digest.run_scheduler) runs alongside unless
  MAILCHECK_SCHEDULER=off (digest runs are claimed in the database, so several
  replicas still post each digest once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp

    from bot.slack.settings import SlackSettings

log = logging.getLogger("mailcheck.serve")
EVENTS_PATH = "/slack/events"


def build_web_app(app: AsyncApp, *, port: int = 3000, status: Callable[[], dict[str, Any]] | None = None
                  ) -> web.Application:
    """Bolt's aiohttp application plus /healthz, /metrics and ack-latency timing."""
    from aiohttp import web

    from bot.slack import runtime_of

    rt = runtime_of(app)
    web_app = app.web_app(path=EVENTS_PATH, port=port)

    @web.middleware
    async def timing(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        if request.method != "POST" or request.path != EVENTS_PATH:
            return await handler(request)
        t0 = time.perf_counter()
        rt.ack_started()  # background work waits for in-flight acks (Runtime.after_acks)
        try:
            return await handler(request)
        finally:
            rt.ack_done()
            rt.metrics.ack_latency.labels("http").observe(time.perf_counter() - t0)

    async def healthz(_request: web.Request) -> web.Response:
        body: dict[str, Any] = {"ok": True, "tasks": len(rt.tasks)}
        if status is not None:
            body.update(status())
        return web.json_response(body, status=200 if body.get("ok") else 503)

    async def metrics(_request: web.Request) -> web.Response:
        resp = web.Response(body=rt.metrics.render())
        resp.headers["Content-Type"] = rt.metrics.content_type
        return resp

    web_app.middlewares.append(timing)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics)
    return web_app


def _check_settings(settings: SlackSettings) -> str | None:
    if not settings.socket_mode and not settings.signing_secret:
        return "SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
    if not settings.oauth_enabled and not settings.bot_token:
        return "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth)"
    if settings.socket_mode and not (settings.app_token or "").startswith("xapp-"):
        return "SLACK_APP_TOKEN must be an app-level token (xapp-...) with connections:write"
    return None


async def _open_store(settings: SlackSettings) -> Any | None:
    try:
        from bot.storage import Store
    except ImportError:
        log.warning("bot.storage is not available: settings, watches and dedupe across replicas are off")
        return None
    return await Store.open(settings.database_url)


def _start_scheduler(store: Any, stop: asyncio.Event) -> asyncio.Task[Any] | None:
    try:
        from bot.digest import run_scheduler
    except ImportError:
        log.info("bot.digest.run_scheduler not available: no digests from this process")
        return None
    return asyncio.ensure_future(run_scheduler(store, stop))


async def serve(
    settings: SlackSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or `stop` is set). Returns a process exit code."""
    from aiohttp import web

    from bot import redact
    from bot.slack import SlackSettings, create_app, runtime_of

    redact.install()
    settings = settings or SlackSettings.from_env()
    problem = _check_settings(settings)
    if problem:
        print(f"mailcheck serve: {problem}", file=sys.stderr)
        return 2
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    store = await _open_store(settings)
    app = create_app(settings, store=store)
    rt = runtime_of(app)
    handler: Any = None
    runner: web.AppRunner | None = None
    scheduler: asyncio.Task[Any] | None = None
    info: dict[str, Any] = {"mode": "socket" if settings.socket_mode else "http"}

    def status() -> dict[str, Any]:
        out: dict[str, Any] = {"mode": info["mode"]}
        if handler is not None:
            connected = bool(handler.client.is_connected())
            out.update(socket_connected=connected, ok=connected)
        return out

    try:
        await rt.warm()
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(app, app_token=settings.app_token)
            await handler.connect_async()
            log.info("connected in Socket Mode")
        serve_http = not settings.socket_mode or "PORT" in os.environ
        if serve_http:
            runner = web.AppRunner(build_web_app(app, port=settings.port, status=status), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or []  # actual port when PORT=0
            info["port"] = sockets[0].getsockname()[1] if sockets else settings.port
            log.info("HTTP on %s:%s (%s)", settings.host, info["port"], EVENTS_PATH)
        if settings.run_scheduler and store is not None:
            scheduler = _start_scheduler(store, stop)
        if ready is not None:
            ready(info)
        await stop.wait()
    finally:
        stop.set()
        if handler is not None:
            with contextlib.suppress(Exception):
                await handler.close_async()
        if runner is not None:
            await runner.cleanup()
        await rt.shutdown(timeout=10)
        if scheduler is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(scheduler, 10)
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
    return 0


def run_serve(settings: SlackSettings | None = None) -> int:
    from bot import redact

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130


# -- CLI hook ---------------------------------------------------------------------
def add_serve_command(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`mailcheck serve [--mode auto|http|socket] [--port N] [--host H] [--no-scheduler]`;
    sets `run=serve_command` on the parsed namespace."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", parents=[common_parent],
        help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP on $PORT)",
        description="Run the Slack bot. Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT "
                    "(default 3000): POST /slack/events, GET /healthz, GET /metrics.",
    )
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000)")
    p.add_argument("--host", default=None, help="HTTP bind address (default 0.0.0.0)")
    p.add_argument("--mode", choices=("auto", "http", "socket"), default="auto",
                   help="auto: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (default); "
                        "http: ignore SLACK_APP_TOKEN; socket: require it")
    p.add_argument("--no-scheduler", action="store_true",
                   help="don't post digests from this process (run `mailcheck digest run --loop` instead)")
    p.set_defaults(run=serve_command)
    return p


def serve_command(args: argparse.Namespace) -> int:
    """Entry from bot.cli once global options are merged (args.nameservers, args.lang, args.timeout)."""
    from bot.slack.settings import SlackSettings

    settings = SlackSettings.from_env()
    changes: dict[str, Any] = {}
    if getattr(args, "port", None) is not None:
        changes["port"] = args.port
        os.environ.setdefault("PORT", str(args.port))
    if getattr(args, "host", None):
        changes["host"] = args.host
    mode = getattr(args, "mode", "auto")
    if mode == "http":
        changes["app_token"] = None
    elif mode == "socket" and not settings.app_token:
        print("mailcheck serve: --mode socket needs SLACK_APP_TOKEN (an xapp-... app-level token)", file=sys.stderr)
        return 2
    if getattr(args, "no_scheduler", False):
        changes["run_scheduler"] = False
    if getattr(args, "nameservers", None):
        changes["nameservers"] = ",".join(args.nameservers)
    if getattr(args, "lang", None) in ("en", "ja"):
        changes["default_lang"] = args.lang
    if getattr(args, "timeout", None):
        changes["dns_timeout"] = float(args.timeout)
    return run_serve(dataclasses.replace(settings, **changes))
