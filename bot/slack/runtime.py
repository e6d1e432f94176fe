"""What the Slack listeners share: settings, store, metrics, background tasks,
the report cache behind the buttons, language resolution and the checks.

Listeners never await a check before acking: they call `Runtime.spawn(...)`.
The check engines run in their own event-loop thread (CheckLoop), and rendering,
localisation and the report cache's compression in worker threads, so one heavy
audit never holds up another user's ack.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
import sys
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot.slack.health import SlackHealth, SlackIdentity
from bot.slack.metrics import Metrics
from bot.slack.router import Command
from bot.slack.settings import SlackSettings
from handlers import api
from handlers.api import CheckRequest

if TYPE_CHECKING:
    from handlers.model import Report
    from handlers.net import Resolver

T = TypeVar("T")
log = logging.getLogger("mailcheck.slack")

LANG_TTL = 3600.0
SETTINGS_TTL = 300.0  # other replicas see a changed setting within this
ACK_PRIORITY_WAIT = 1.0  # seconds background work may wait for in-flight acks

class CheckTimeout(Exception):
    pass


class CheckLoop:
    """A second event loop, in its own thread, that runs the check engines (handlers/:
    DNS, parsing, verdicts) while the main loop acks Slack and talks to the store and
    the Web API.

    Under 20 concurrent audits the engines keep the main loop's ready queue full
    (tens of thousands of DNS packets, each a send() and a parse); an ack then waited
    behind all of it. In their own loop, the engines share the CPU with the ack path
    by the interpreter's thread switching instead (benchmarks/load.py --scenario
    hostile). Only handler coroutines run here: they take a Resolver made in this
    loop and return a Report, never touching Slack, the store or the main loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # How long one thread may hold the GIL while another waits for it (CPython's default
    # is 5 ms). The ack path needs the GIL for well under a millisecond at a time, but
    # several times per request; at 5 ms each wait behind the check thread added up to
    # p99 acks of 770 ms under 20 hostile audits, 190 ms at 1 ms (benchmarks/load.py).
    SWITCH_INTERVAL = 0.001

    def _started(self) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            sys.setswitchinterval(min(sys.getswitchinterval(), self.SWITCH_INTERVAL))
            self._thread = threading.Thread(target=self._run, name="mailcheck-checks", daemon=True)
            self._thread.start()
        self._ready.wait()
        assert self._loop is not None
        return self._loop

    async def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run `factory()` in the check loop; cancelling this cancels it there too."""
        loop = self._started()

        async def call() -> T:
            return await factory()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=5)
            self._thread = None
            self._loop = None
            self._ready.clear()


@dataclass
class CachedReport:
    report: Report  # as produced by the handlers, before localisation
    source: dict[str, Any]  # how to produce it again (command text or channel/ts)


class ReportCache:
    """Bounded LRU of recent reports: the Details / language buttons re-render
    without re-running the checks (another replica or a restart re-runs them).

    Reports are kept pickled and zlib-compressed (our own objects, never input
    from outside): a full domain audit is large as live objects, and keeping
    256 of them uncompressed was most of the server's RSS growth under load
    (benchmarks/load.py). A report whose compressed form is over `max_bytes` is
    not kept (its buttons run the check again), so the cache holds at most
    size x max_bytes (a bounded audit of a hostile zone packs to ~12 KB; the
    unbounded one was 0.9 MB). Each `get` returns a fresh copy. The async forms do the
    pickling and compression in a worker thread, off the loop that acks Slack."""

    def __init__(self, size: int = 256, max_bytes: int = 200_000) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def pack(report: Report) -> bytes:
        return zlib.compress(pickle.dumps(report, pickle.HIGHEST_PROTOCOL), 6)

    @staticmethod
    def unpack(blob: bytes) -> Report:
        report: Report = pickle.loads(zlib.decompress(blob))
        return report

    def keep(self, blob: bytes | None, source: dict[str, Any]) -> str:
        """Store a packed report (None or over max_bytes: not kept); its id either way."""
        rid = secrets.token_urlsafe(9)
        if blob is not None and len(blob) <= self.max_bytes:
            self._items[rid] = (blob, dict(source))
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return rid

    def put(self, report: Report, source: dict[str, Any]) -> str:
        return self.keep(self.pack(report), source)

    async def aput(self, report: Report, source: dict[str, Any]) -> str:
        return self.keep(await asyncio.to_thread(self.pack, report), source)

    def _blob(self, rid: str | None) -> tuple[bytes, dict[str, Any]] | None:
        if not rid or rid not in self._items:
            return None
        self._items.move_to_end(rid)
        return self._items[rid]

    def get(self, rid: str | None) -> CachedReport | None:
        item = self._blob(rid)
        return None if item is None else CachedReport(self.unpack(item[0]), dict(item[1]))

    async def aget(self, rid: str | None) -> CachedReport | None:
        item = self._blob(rid)
        if item is None:
            return None
        return CachedReport(await asyncio.to_thread(self.unpack, item[0]), dict(item[1]))


def looks_like_bounce(text: str) -> bool:
    from handlers.bounce import looks_like_bounce as engine_detect

    try:
        return bool(engine_detect(text))
    except Exception:  # detection must never break the listener
        log.exception("looks_like_bounce failed")
        return False


def looks_like_headers(text: str) -> bool:
    """Pasted message headers (the message engine's detector)."""
    from handlers.message import looks_like_message

    try:
        return bool(looks_like_message(text))
    except Exception:  # detection must never break the listener
        log.exception("looks_like_message failed")
        return False


def classify(text: str) -> str | None:
    """'bounce', 'message' or None for a pasted text."""
    if not text or not text.strip():
        return None
    if looks_like_bounce(text):
        return "bounce"
    if looks_like_headers(text):
        return "message"
    return None


class Runtime:
    def __init__(
        self,
        settings: SlackSettings,
        *,
        store: Any | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._store_task: asyncio.Future[Any] | None = None
        self._store_failed = False
        self.metrics = metrics or Metrics()
        # The Web API's state as this app's calls see it (/healthz, the ack's error line).
        self.health = SlackHealth()
        self.identity: SlackIdentity | None = None  # single-workspace mode: set by create_app
        self.cache = ReportCache()
        self.check_loop: CheckLoop | None = CheckLoop() if settings.check_thread else None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._sem: asyncio.Semaphore | None = None
        self._profiles: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._claimed: OrderedDict[str, None] = OrderedDict()  # local first-line dedupe
        self._settings: dict[tuple[str, str, str], tuple[float, str | None]] = {}
        self._loading: dict[tuple[str, str, str], asyncio.Future[str | None]] = {}
        self._hits: dict[str, deque[float]] = {}
        self._noticed: dict[str, float] = {}
        # Every stored language choice, (team, scope) -> lang, read in one query and
        # refreshed every SETTINGS_TTL: the ack path answers from it and never waits for
        # the database (a first-time user's ack waited up to 50 ms for a lookup).
        self._langs: dict[tuple[str, str], str] | None = None
        # Requests being acked right now (bot/serve.py counts them): background work
        # waits until none is, up to ACK_PRIORITY_WAIT, so a burst of commands is acked
        # before their checks start competing for the loop.
        self._acking = 0
        self._acks_idle: asyncio.Event | None = None
        self._langs_until = 0.0
        self._langs_task: asyncio.Future[None] | None = None

    # -- store ---------------------------------------------------------------
    async def reported_selectors(self, team_id: str, domain: str, *, timeout: float = 0.5) -> list[str]:
        """DKIM selectors this workspace's stored receiver reports saw signing for `domain`
        (the audit checks their keys as well as the common names). A slow or absent
        database costs the extra selectors, never the check."""
        from bot.storage.reports import ReportStore
        from handlers.digest_reports import WINDOW_DAYS, selectors_seen

        store = await self.store()
        if store is None:
            return []
        since = datetime.now(UTC) - timedelta(days=WINDOW_DAYS)
        try:
            rows = await asyncio.wait_for(ReportStore.of(store).find(team_id, domain=domain, since=since), timeout)
        except Exception as exc:
            log.info("stored reports of %s not read: %s", domain, type(exc).__name__)
            return []
        return selectors_seen((r.data for r in rows), domain)

    async def store(self) -> Any | None:
        """The Store (opened lazily from DATABASE_URL once), or None when unavailable."""
        if self._store is not None or self._store_failed:
            return self._store
        if self._store_task is None:
            self._store_task = asyncio.ensure_future(self._open_store())
        # shield: a caller's timeout must not cancel the opening for everyone else
        return await asyncio.shield(self._store_task)

    async def _open_store(self) -> Any | None:
        try:
            from bot.storage import Store

            self._store = await Store.open(self.settings.database_url)
        except Exception:
            log.exception("storage unavailable: settings, watches and event dedupe are degraded")
            self._store_failed = True
        return self._store

    async def claim(self, team_id: str, key: str) -> bool:
        """True only the first time `key` is seen for the team (Slack retries, replicas)."""
        if not self.claim_here(team_id, key):
            return False
        return await self.claim_shared(team_id, key)

    def claim_here(self, team_id: str, key: str) -> bool:
        """The in-process first line of `claim`, without waiting: False if this process saw `key`."""
        local = f"{team_id}:{key}"
        if local in self._claimed:
            return False
        self._claimed[local] = None
        while len(self._claimed) > 10_000:
            self._claimed.popitem(last=False)
        return True

    async def claim_shared(self, team_id: str, key: str) -> bool:
        """The store's claim (every replica): True the first time `key` is claimed there."""
        store = await self.store()
        if store is None:
            return True
        try:
            return bool(await store.claim_event(team_id, key))
        except Exception:
            log.exception("claim_event failed; answering once from this process")
            self.metrics.errors.labels("store").inc()
            return True

    async def get_setting(self, team_id: str, scope: str, key: str, *, timeout: float | None = None) -> str | None:
        """A stored setting, cached SETTINGS_TTL seconds in this process.

        With `timeout` (the ack path) the lookup is never cancelled, only not
        waited for: cancelling a SQLAlchemy transaction waits for its rollback,
        which can sit behind SQLite's write lock. The lookup finishes in the
        background and fills the cache for the next request.
        """
        k = (team_id, scope, key)
        hit = self._settings.get(k)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self._loading.get(k)
        if task is None:
            task = asyncio.ensure_future(self._load_setting(k))
            self._loading[k] = task
            task.add_done_callback(lambda _t: self._loading.pop(k, None))
        if timeout is None:
            return await asyncio.shield(task)  # type: ignore[no-any-return]
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return task.result() if done else None  # type: ignore[no-any-return]

    async def _load_setting(self, k: tuple[str, str, str]) -> str | None:
        store = await self.store()
        if store is None:
            return None
        try:
            value = await store.get_setting(*k)
        except Exception:
            log.exception("get_setting failed")
            self.metrics.errors.labels("store").inc()
            return None
        self._settings[k] = (time.monotonic() + SETTINGS_TTL, value)
        return None if value is None else str(value)

    async def set_setting(self, team_id: str, scope: str, key: str, value: str) -> bool:
        store = await self.store()
        if store is None:
            return False
        await store.set_setting(team_id, scope, key, value)
        self._settings[(team_id, scope, key)] = (time.monotonic() + SETTINGS_TTL, value)
        if key == "lang" and self._langs is not None:
            self._langs[(team_id, scope)] = value
        return True

    def _refresh_langs(self) -> asyncio.Future[None]:
        """Load (again) every stored language choice; one load at a time."""
        if self._langs_task is None or self._langs_task.done():
            self._langs_task = asyncio.ensure_future(self._load_langs())
        return self._langs_task

    async def _load_langs(self) -> None:
        store = await self.store()
        lister = getattr(store, "list_settings", None)
        if lister is None:
            return
        try:
            langs = await lister("lang")
        except Exception:
            log.exception("list_settings failed; language lookups go one by one")
            self.metrics.errors.labels("store").inc()
            return
        self._langs = {k: v for k, v in langs.items() if v in ("en", "ja")}
        self._langs_until = time.monotonic() + SETTINGS_TTL

    async def warm_langs(self) -> None:
        """Load the language directory now (start-up, before serving)."""
        await self._refresh_langs()

    def _quick_lang(self, team_id: str, user_id: str | None) -> tuple[bool, str | None]:
        """(known, lang) from memory only: the per-key cache, else the directory.
        known=False: nothing loaded yet for this lookup."""
        now = time.monotonic()
        scopes = ([f"user:{user_id}"] if user_id else []) + ["team"]
        if self._langs is not None:
            if self._langs_until <= now:
                self._refresh_langs()  # stale: answer from it meanwhile
            for scope in scopes:
                hit = self._settings.get((team_id, scope, "lang"))
                value = hit[1] if hit is not None and hit[0] > now else self._langs.get((team_id, scope))
                if value in ("en", "ja"):
                    return True, value
            return True, None
        return False, None

    def rate_limited(self, key: str, limit: int, window_s: float, *, count: bool = True) -> float:
        """In-process sliding window: 0.0 = allowed (and counted unless count=False),
        else seconds until a slot frees. Never waits for the database."""
        if limit <= 0:
            return 0.0
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        if len(hits) >= limit:
            return max(0.001, hits[0] + window_s - now)
        if count:
            hits.append(now)
        if len(self._hits) > 50_000:
            self._hits.clear()
        return 0.0

    def _limits(self, team_id: str, user_id: str | None) -> list[tuple[str, int, int]]:
        out = []
        if user_id and self.settings.rate_user[0] > 0:
            out.append((f"{team_id}:user:{user_id}:work", *self.settings.rate_user))
        if self.settings.rate_team[0] > 0:
            out.append((f"{team_id}:team:work", *self.settings.rate_team))
        return out

    def precheck_limit(self, team_id: str, user_id: str | None) -> float:
        """The ack path's quick look: seconds to wait if THIS process already saw the
        limit reached (then the shared count certainly is too), else 0.0. Counts nothing."""
        return max([self.rate_limited(k, n, w, count=False) for k, n, w in self._limits(team_id, user_id)],
                   default=0.0)

    async def admit(self, team_id: str, user_id: str | None) -> float:
        """Count one check/analysis against the per-user and per-workspace limits; 0.0 =
        go ahead, else seconds to wait. Runs in the background task, after the ack:
        the in-process window first, then the window in the database that replicas
        share (`Store.rate_limit`). Without a database the in-process window decides."""
        limits = self._limits(team_id, user_id)
        wait = max([self.rate_limited(k, n, w) for k, n, w in limits], default=0.0)
        if wait or not limits:
            return wait
        store = await self.store()
        if store is None:
            return 0.0
        try:
            waits = [await store.rate_limit(k, n, w) for k, n, w in limits]
        except Exception:
            log.exception("shared rate limit unavailable; the in-process limit applies")
            self.metrics.errors.labels("store").inc()
            return 0.0
        return max(waits, default=0.0)

    def first_notice(self, key: str, window_s: float) -> bool:
        """True once per `window_s` per key: a flood of limited pastes gets one reply."""
        now = time.monotonic()
        until = self._noticed.get(key, 0.0)
        if until > now:
            return False
        self._noticed[key] = now + window_s
        if len(self._noticed) > 10_000:
            self._noticed.clear()
        return True

    async def autodetect_on(self, team_id: str, channel_id: str) -> bool:
        value = await self.get_setting(team_id, f"channel:{channel_id}", "autodetect", timeout=2.0)
        return value != "off"

    # -- language -------------------------------------------------------------
    async def profile(self, client: Any, team_id: str, user_id: str, *, timeout: float = 2.0) -> dict[str, Any]:
        """{'locale': 'ja-JP', 'tz': 'Asia/Tokyo'} from users.info (cached an hour)."""
        key = (team_id, user_id)
        hit = self._profiles.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        info: dict[str, Any] = {}
        try:
            resp = await asyncio.wait_for(client.users_info(user=user_id, include_locale=True), timeout)
            user = resp.get("user") or {}
            info = {"locale": user.get("locale"), "tz": user.get("tz")}
        except Exception as exc:  # missing scope, timeout, deleted user: fall back quietly
            log.info("users.info unavailable for language/time zone: %s", type(exc).__name__)
        self._profiles[key] = (time.monotonic() + LANG_TTL, info)
        return info

    def cached_locale_lang(self, team_id: str, user_id: str) -> str | None:
        hit = self._profiles.get((team_id, user_id))
        if hit and hit[0] > time.monotonic():
            return _locale_lang(hit[1].get("locale"))
        return None

    async def lang_for(self, team_id: str, user_id: str | None, client: Any | None = None, *,
                       quick: bool = False) -> str:
        """User setting > workspace setting > Slack locale > MAILCHECK_LANG.

        quick=True (before an ack): no network call and, once the language directory is
        loaded, no store wait at all.
        """
        known, value = self._quick_lang(team_id, user_id) if quick else (False, None)
        if value is not None:
            return value
        if not known:
            # quick without the directory (not loaded yet, or a store without
            # list_settings): both lookups at once, 50 ms at most; a cold cache warms
            # in the background.
            if quick:
                self._refresh_langs()
            timeout = 0.05 if quick else None
            lookups = [self.get_setting(team_id, f"user:{user_id}", "lang", timeout=timeout)] if user_id else []
            lookups.append(self.get_setting(team_id, "team", "lang", timeout=timeout))
            for v in await asyncio.gather(*lookups):
                if v in ("en", "ja"):
                    return str(v)
        if user_id:
            cached = self.cached_locale_lang(team_id, user_id)
            if cached:
                return cached
            if not quick and client is not None:
                loc = _locale_lang((await self.profile(client, team_id, user_id)).get("locale"))
                if loc:
                    return loc
        return self.settings.default_lang

    # -- tasks ------------------------------------------------------------------
    def ack_started(self) -> None:
        self._acking += 1
        if self._acks_idle is not None:
            self._acks_idle.clear()

    def ack_done(self) -> None:
        self._acking = max(0, self._acking - 1)
        if not self._acking and self._acks_idle is not None:
            self._acks_idle.set()

    async def after_acks(self) -> None:
        """Wait (at most ACK_PRIORITY_WAIT) until no request is being acked."""
        if not self._acking:
            return
        if self._acks_idle is None:
            self._acks_idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._acks_idle.wait(), ACK_PRIORITY_WAIT)
        except TimeoutError:
            pass  # a steady stream of requests must not starve the checks

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str = "mailcheck") -> asyncio.Task[Any]:
        async def after_acks_then() -> Any:
            try:
                await self.after_acks()
            except BaseException:
                coro.close()
                raise
            return await coro

        task = asyncio.ensure_future(after_acks_then())
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.metrics.errors.labels("task").inc()
                log.error("background task %s failed: %r", name, t.exception())

        task.add_done_callback(done)
        return task

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until no background task is running (tests, graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while self.tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self.tasks), timeout=max(0.0, deadline - time.monotonic()))

    async def shutdown(self, timeout: float = 10.0) -> None:
        await self.idle(timeout)
        for t in list(self.tasks):
            t.cancel()
        if self.check_loop is not None:
            self.check_loop.stop()


    # -- checks -----------------------------------------------------------------
    def resolver(self) -> Resolver:
        from handlers.net import Resolver, parse_nameserver

        servers = [parse_nameserver(s) for s in self.settings.nameservers.split(",") if s.strip()]
        return Resolver(nameservers=servers, timeout=self.settings.dns_timeout,
                        deadline=self.settings.check_deadline)

    async def _bounded(self, kind: str, origin: str, factory: Callable[[], Awaitable[Report]]) -> Report:
        """Run a check under the concurrency bound and deadline, in the CheckLoop thread
        (unless MAILCHECK_CHECK_THREAD=off).

        An earlier measurement (benchmarks/slack_ack.py, light audits) found a second
        loop slower for acks; with heavy audits (20 x hostile.example: ~22,000 DNS
        packets) the engines on the acking loop put help's ack p99 at 750-1,190 ms
        against 440-470 ms in their own loop, same machine, alternating runs."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.max_concurrent_checks)
        self.metrics.analyses.labels(kind, origin).inc()
        deadline = self.settings.check_deadline + 5

        async def limited() -> Report:
            work = factory() if self.check_loop is None else self.check_loop.run(factory)
            return await asyncio.wait_for(work, deadline)

        t0 = time.monotonic()
        async with self._sem:
            self.metrics.in_flight.inc()
            try:
                return await limited()
            except TimeoutError as exc:
                raise CheckTimeout(kind) from exc
            finally:
                self.metrics.in_flight.dec()
                self.metrics.check_seconds.labels(kind).observe(time.monotonic() - t0)

    async def run_check(self, cmd: Command, origin: str = "command", *, team_id: str | None = None) -> Report:
        """domain / ip / spf command -> Report (English; localise when rendering)."""
        if cmd.name not in ("domain", "ip", "spf"):
            raise ValueError(f"not a check: {cmd.name}")

        selectors = list(cmd.selectors)
        if cmd.name == "domain" and team_id:
            selectors += [s for s in await self.reported_selectors(team_id, cmd.target) if s not in selectors]
        request = CheckRequest(target=cmd.target, ips=tuple(cmd.ips), selectors=tuple(selectors),
                               helo=cmd.helo, sender=cmd.sender)

        async def check() -> Report:
            return await api.run(cmd.name, request, self.resolver())  # resolver made in the check's loop

        report = await self._bounded(cmd.name, origin, check)
        for note in reversed(cmd.notes):
            if note and note not in report.notes:
                report.notes.insert(0, note)
        return report

    async def analyse(self, data: bytes | str, kind: str, origin: str = "thread") -> Report:
        """A pasted bounce ('bounce') or delivered message ('message'), analysed in English
        (localised when rendered)."""
        if kind not in ("bounce", "message"):
            raise ValueError(f"not an analysis: {kind}")
        request = CheckRequest(data=data, lang="en")
        return await self._bounded(kind, origin, lambda: api.run(kind, request, self.resolver()))

    async def warm(self) -> None:
        """Import the check engines and load the knowledge base before serving (in a thread):
        the first request must not pay ~1 s of imports and YAML validation on the loop."""

        def load() -> None:
            import handlers.blocklists
            import handlers.bounce_followup
            import handlers.domain_audit
            import handlers.i18n
            import handlers.iprep
            import handlers.ptr
            import handlers.spf.audit
            import handlers.spf.evaluate  # noqa: F401
            import knowledge

            for lang in ("en", "ja"):
                knowledge.finding_text("spf.missing", lang)
            knowledge.find_remediation("spf.add_record")
            knowledge.reason_info("blocked")
            try:
                from handlers.bounce import analyse_bounce

                analyse_bounce("550 5.7.1 warm-up")
            except Exception:
                log.info("bounce engine warm-up failed", exc_info=True)

        await asyncio.to_thread(load)
        await self.warm_langs()

    def localized(self, report: Report, lang: str) -> Report:
        """A localised copy; `report` (the cached English one) is left as it was."""
        from handlers.i18n import localized_copy

        return localized_copy(report, lang)


def _locale_lang(locale: str | None) -> str | None:
    if not locale:
        return None
    return "ja" if locale.lower().startswith("ja") else "en"

