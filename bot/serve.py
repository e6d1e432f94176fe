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
import hashlib
import hmac
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
MAX_SKEW_S = 300  # Slack: reject requests whose timestamp is more than five minutes off
DEFAULT_READ_TIMEOUT = 10.0
STOP_GRACE_S = 4.0  # SIGTERM to exit, at most (a little more for the HTTP runner's close)
SOCKET_CONNECT_TIMEOUT_S = 15.0


def signature_problem(secret: str, headers: Any, body: bytes, now: float) -> str | None:
    """Why a request is not from Slack, or None: the v0 HMAC-SHA256 of `v0:{timestamp}:{raw body}`
    with the signing secret, and a timestamp within 5 minutes (replays), as in Slack's
    "Verifying requests from Slack". Checked on the raw bytes before anything parses them."""
    ts = headers.get("X-Slack-Request-Timestamp") or ""
    sig = headers.get("X-Slack-Signature") or ""
    if not secret:
        return "no signing secret configured"
    if not ts or not sig:
        return "missing signature headers"
    if not (ts.isascii() and ts.isdigit()) or len(ts) > 12:
        return "malformed timestamp"
    if abs(now - int(ts)) > MAX_SKEW_S:
        return "stale timestamp"
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        return "bad signature"
    return None


def _peer(request: web.Request) -> str:
    return str(request.remote or "?")


def build_web_app(app: AsyncApp, *, port: int = 3000,
                  status: Callable[[], Awaitable[dict[str, Any]]] | None = None,
                  body_timeout: float | None = None) -> web.Application:
    """POST /slack/events (verified first, then Bolt), the OAuth pages, /healthz, /metrics,
    and ack-latency timing.

    Bolt's own aiohttp server parses the body before it checks the signature: a bad JSON
    body, a `payload=` that isn't JSON or a non-numeric timestamp ended in a 500 and a
    traceback. Here the signature is checked on the raw body first (401 otherwise), a
    signed body Bolt can't read is a 400, one log line each; a body that doesn't arrive
    within `body_timeout` seconds is a 408 (slow clients must not hold a connection)."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.slack import runtime_of

    rt = runtime_of(app)
    secret = rt.settings.signing_secret or ""
    read_timeout = body_timeout if body_timeout is not None else http_read_timeout()
    web_app = web.Application()

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

    async def events(request: web.Request) -> web.StreamResponse:
        try:
            raw = await asyncio.wait_for(request.read(), read_timeout)
        except TimeoutError:
            log.warning("slow client %s: request body not received within %.0f s; answered 408",
                        _peer(request), read_timeout)
            rt.metrics.errors.labels("http_slow_client").inc()
            resp = web.Response(status=408, text="request timeout")
            resp.force_close()  # no keep-alive, and no lingering read of the rest of the body
            return resp
        problem = signature_problem(secret, request.headers, raw, time.time())
        if problem:
            log.warning("rejected POST %s from %s: %s", EVENTS_PATH, _peer(request), problem)
            rt.metrics.errors.labels("http_unsigned").inc()
            return web.Response(status=401, text="invalid request signature")
        try:
            bolt_req = AsyncBoltRequest(body=raw.decode("utf-8"), query=request.query_string,
                                        headers=request.headers)  # type: ignore[arg-type]
            if not isinstance(bolt_req.body, dict):
                raise ValueError(f"body is a JSON {type(bolt_req.body).__name__}, not an object")
        except Exception as exc:  # a signed body Bolt can't read: the sender's bug, not ours
            log.warning("signed but malformed POST %s from %s: %s", EVENTS_PATH, _peer(request),
                        type(exc).__name__)
            rt.metrics.errors.labels("http_malformed").inc()
            return web.Response(status=400, text="malformed request body")
        try:
            bolt_resp = await app.async_dispatch(bolt_req)
        except Exception as exc:  # Slack unreachable, or a bug: one log line, an answer Slack can show
            return await _failed_dispatch(rt, bolt_req.body, exc)
        return await to_aiohttp_response(bolt_resp)

    async def oauth_page(request: web.Request) -> web.StreamResponse:
        flow = app.oauth_flow
        assert flow is not None
        bolt_req = await to_bolt_request(request)
        if request.path == flow.install_path:
            return await to_aiohttp_response(await flow.handle_installation(bolt_req))
        return await to_aiohttp_response(await flow.handle_callback(bolt_req))

    async def healthz(_request: web.Request) -> web.Response:
        body: dict[str, Any] = {"ok": True, "tasks": len(rt.tasks)}
        body.update(rt.health.status())
        if status is not None:
            extra = await status()
            if body.get("ok") is False:  # one unhealthy part keeps the answer unhealthy
                extra.pop("ok", None)
            if extra.get("reason") and body.get("reason"):
                extra["reason"] = f"{body['reason']}; {extra['reason']}"
            body.update(extra)
        return web.json_response(body, status=200 if body.get("ok") else 503)

    async def metrics(_request: web.Request) -> web.Response:
        resp = web.Response(body=rt.metrics.render())
        resp.headers["Content-Type"] = rt.metrics.content_type
        return resp

    web_app.middlewares.append(timing)
    web_app.router.add_post(EVENTS_PATH, events)
    if app.oauth_flow is not None:
        web_app.router.add_get(app.oauth_flow.install_path, oauth_page)
        web_app.router.add_get(app.oauth_flow.redirect_uri_path, oauth_page)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics)
    return web_app


async def _failed_dispatch(rt: Any, body: Any, exc: Exception) -> web.Response:
    """Bolt answers its own middleware's and listeners' errors (bot/slack/failures.py); this
    is the last resort for anything raised outside them."""
    import json

    from aiohttp import web

    from bot.slack.failures import failure_answer

    status, answer = await failure_answer(rt, body, exc)
    if isinstance(answer, dict):
        return web.Response(status=status, text=json.dumps(answer), content_type="application/json")
    return web.Response(status=status, text=answer)


def _guard_slow_headers(runner: web.AppRunner) -> None:
    """Answer 408 (one log line) to a client still sending a request's headers when the
    connection's idle deadline passes.

    aiohttp arms its keep-alive timer when a connection opens and re-arms it after each
    response; partial headers don't reset it (aiohttp web_protocol.py), so with
    `keepalive_timeout=MAILCHECK_HTTP_READ_TIMEOUT` it already closes such a connection —
    silently. This handler class only adds the 408 and the log line before that close."""
    from aiohttp import web
    from aiohttp.web_protocol import RequestHandler

    class SlowHeaderGuard(RequestHandler):  # type: ignore[type-arg]
        __slots__ = ("_mc_pending",)
        _mc_pending: int

        def data_received(self, data: bytes) -> None:
            before = self._request_count
            super().data_received(data)
            pending = getattr(self, "_mc_pending", 0)
            self._mc_pending = 0 if self._request_count != before else pending + len(data)

        def _process_keepalive(self) -> None:
            close_at: float = getattr(self, "_next_keepalive_close_time", 0.0)
            due = self._loop.time() >= close_at
            waiting = self._waiter is not None and not self._waiter.done()
            pending: int = getattr(self, "_mc_pending", 0)
            if due and waiting and pending > 0 and self.transport is not None:
                peer = self.transport.get_extra_info("peername")
                log.warning("slow client %s: request headers incomplete after %.0f s; answered 408",
                            peer[0] if peer else "?", self._keepalive_timeout)
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                     b"Content-Length: 0\r\n\r\n")
            super()._process_keepalive()

    class GuardedServer(web.Server):
        def __call__(self) -> RequestHandler:  # type: ignore[type-arg]
            return SlowHeaderGuard(self, loop=self._loop, **self._kwargs)

    server = runner.server
    if server is not None and type(server) is web.Server:
        server.__class__ = GuardedServer


def http_read_timeout(env: Any = None) -> float:
    """MAILCHECK_HTTP_READ_TIMEOUT (seconds, default 10): the longest a client may take to send
    a request's headers, and again its body. Slack sends a few KB at once."""
    e = os.environ if env is None else env
    try:
        value = float(e.get("MAILCHECK_HTTP_READ_TIMEOUT", "") or DEFAULT_READ_TIMEOUT)
    except ValueError:
        return DEFAULT_READ_TIMEOUT
    return value if 0 < value <= 300 else DEFAULT_READ_TIMEOUT


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


def _start_scheduler(store: Any, stop: asyncio.Event, audit_runner: Any = None) -> asyncio.Task[Any]:
    """Digests from this process; their audits run in the check thread (`audit_runner`)."""
    from bot.digest import run_scheduler

    return asyncio.ensure_future(run_scheduler(store, stop, audit_runner=audit_runner))


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

    socket_down_since = [time.time()]
    connector: asyncio.Task[None] | None = None

    async def status() -> dict[str, Any]:
        out: dict[str, Any] = {"mode": info["mode"]}
        if settings.socket_mode:
            # The async Socket Mode client's is_connected() is a coroutine (bool() of it is always True).
            connected = handler is not None and bool(await handler.client.is_connected())
            if connected:
                socket_down_since[0] = 0.0
            elif not socket_down_since[0]:
                socket_down_since[0] = time.time()
            out.update(socket_connected=connected, ok=connected)
            if not connected:
                since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(socket_down_since[0]))
                out["reason"] = f"Socket Mode disconnected since {since}"
        return out

    try:
        await rt.warm()
        if rt.identity is not None:
            await rt.identity.warm()
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(app, app_token=settings.app_token)
            connector = asyncio.ensure_future(_connect_socket_mode(handler, stop))
        serve_http = not settings.socket_mode or "PORT" in os.environ
        if serve_http:
            read_timeout = http_read_timeout()
            # keepalive_timeout bounds both an idle keep-alive connection and the time a
            # client may take to send a request's headers (see _guard_slow_headers).
            runner = web.AppRunner(build_web_app(app, port=settings.port, status=status,
                                                 body_timeout=read_timeout),
                                   access_log=None, keepalive_timeout=read_timeout)
            await runner.setup()
            _guard_slow_headers(runner)
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or []  # actual port when PORT=0
            info["port"] = sockets[0].getsockname()[1] if sockets else settings.port
            log.info("HTTP on %s:%s (%s)", settings.host, info["port"], EVENTS_PATH)
        if settings.run_scheduler and store is not None:
            scheduler = _start_scheduler(store, stop, rt.check_loop.run if rt.check_loop is not None else None)
        if ready is not None:
            ready(info)
        await stop.wait()
    finally:
        # SIGTERM/SIGINT: stopped within STOP_GRACE_S (platforms kill after 10-30 s; an
        # operator's Ctrl-C should not wait on a slow audit). Unfinished checks are cancelled.
        stop.set()
        if connector is not None:
            connector.cancel()
            with contextlib.suppress(BaseException):
                await connector
        if handler is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handler.close_async(), 1.0)
        if runner is not None:
            await runner.cleanup()
        await rt.shutdown(timeout=STOP_GRACE_S / 2)
        if scheduler is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(scheduler, STOP_GRACE_S / 4)
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
    return 0


class _OneLine(logging.Filter):
    """slack_sdk logs each failed reconnect of a dropped WebSocket with a traceback; the
    reason is in the message already."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith(("Failed to connect", "Failed to check the current session")):
            record.exc_info, record.exc_text = None, None
        return True


def _one_line_reconnects(logger: logging.Logger) -> None:
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())


async def _connect_socket_mode(handler: Any, stop: asyncio.Event) -> None:
    """Open the Socket Mode connection, trying again with back-off (1 s doubling to 60 s) and
    one log line per failed attempt, until it is up or the process stops. Once connected,
    slack_sdk's client reconnects a dropped WebSocket by itself."""
    from bot.slack.health import describe

    _one_line_reconnects(handler.client.logger)
    delay = 1.0
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            # First ask for a WebSocket URL ourselves: slack_sdk's connect() retries a failure
            # forever, every few seconds, logging a traceback each time.
            await asyncio.wait_for(handler.client.web_client.apps_connections_open(app_token=handler.app_token),
                                   SOCKET_CONNECT_TIMEOUT_S)
            await asyncio.wait_for(handler.connect_async(), SOCKET_CONNECT_TIMEOUT_S)
        except Exception as exc:
            log.warning("Socket Mode: could not connect to Slack (attempt %d: %s); next try in %.0f s",
                        attempt, describe(exc), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 60.0)
            continue
        log.info("connected in Socket Mode")
        return


def run_serve(settings: SlackSettings | None = None) -> int:
    from bot import redact

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130


def run_reports(*, once: bool = False) -> int:
    """The `reports` process (Procfile): see bot/reports_imap.py."""
    from bot import redact
    from bot.reports_imap import serve_reports

    # A cron run (--once) says what it did in one line; the messages it read are logged
    # only when asked (LOG_LEVEL=INFO).
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING" if once else "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()
    try:
        return asyncio.run(serve_reports(os.environ.get("MAILCHECK_REPORTS_IMAP"),
                                         team_id=os.environ.get("MAILCHECK_REPORTS_TEAM"), once=once))
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
    p.add_argument("--mode", choices=("auto", "http", "socket", "reports"), default="auto",
                   help="auto: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (default); "
                        "http: ignore SLACK_APP_TOKEN; socket: require it; "
                        "reports: store the receiver reports of the $MAILCHECK_REPORTS_IMAP mailbox (no Slack)")
    p.add_argument("--once", action="store_true",
                   help="with --mode reports: read the mailbox once and exit (for cron) instead of waiting for mail")
    p.add_argument("--no-scheduler", action="store_true",
                   help="don't post digests from this process (run `mailcheck digest run --loop` instead)")
    p.set_defaults(run=serve_command)
    return p


def serve_command(args: argparse.Namespace) -> int:
    """Entry from bot.cli once global options are merged (args.nameservers, args.lang, args.timeout)."""
    from bot.slack.settings import SlackSettings

    if getattr(args, "mode", "auto") == "reports":
        return run_reports(once=bool(getattr(args, "once", False)))
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
