"""Scheduled digests: claim, audit, diff, render, post — exactly once.

Flow for each claimed `DigestJob` (see `bot.storage.store` for the claim rules):
1. audit every watched target of the channel (domain -> `audit_domain`,
   IP -> `ip_report`) on ONE per-run `Resolver` shared by every target and
   job of the run (one DNS cache), with a bound on targets in flight;
2. diff each report against the channel's previous snapshot
   (`handlers.digest_diff`): what changed leads, then one status line per
   target; a quiet run is a short message;
3. render Block Kit messages (split under Slack's limits) and store them
   with the new snapshots in the claim (`save_prepared`);
4. post part by part (`mark_part_posted` after each), then `mark_posted`,
   which also keeps the snapshots. A runner that dies anywhere leaves a lease
   that expires; whoever re-claims resumes at the first unposted part.

Language: every text comes from knowledge/digest_texts.yaml in the channel's
language (`digest_lang`): the channel's `lang` setting, else the workspace's,
else `MAILCHECK_LANG`, else English.

`run_scheduler(store, stop_event)` is the loop used by `mailcheck serve` and
the Procfile `clock` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from bot.digest_render import (  # noqa: F401  (digest's API: tests and the bot use these names)
    LANGS,
    MAX_BLOCKS,
    MAX_MESSAGE_CHARS,
    MAX_SECTION_CHARS,
    RECHECK_ACTION_ID,
    SEVERITY_ICON,
    AuditError,
    TargetResult,
    default_lang,
    render_digest,
    split_messages,
)
from bot.digest_stored_reports import reports_states, with_reported_selectors
from bot.storage import DEFAULT_LEASE_S, DigestJob, Store, Watch, is_transient_error
from bot.storage.store import MAX_ATTEMPTS
from bot.storage.target_checks import TargetChecks, check_key
from handlers.digest_diff import IMPORTANCE, checked, diff_reports, slim_report
from handlers.digest_reports import (
    reports_changes,
)
from handlers.model import Report
from handlers.net import DEFAULT_MAX_QUERIES, Resolver

log = logging.getLogger(__name__)

MAX_TARGET_CONCURRENCY = 512  # targets in flight; the resolver bounds the queries
DIGEST_QUERY_CONCURRENCY = 256

PostFn = Callable[[str, str, dict[str, Any]], Awaitable[str | None]]  # (team, channel, message) -> ts
# (team, channel, run_id, part, since) -> ts of that part if Slack already has it (see `post_job`)
FindFn = Callable[[str, str, int, int, datetime], Awaitable[str | None]]
METADATA_EVENT = "mailcheck_digest_part"
STORE_RETRY_MAX_DELAY = 5.0  # seconds between retries of a store call while the database is away
# A part left in doubt by a dead runner is only posted once Slack's history says it is
# not there. While history cannot be read for a passing reason, the digest waits
# (FIND_RETRY_S between re-claims) until its last allowed claim (the store's
# MAX_ATTEMPTS), which posts anyway: late and perhaps twice beats never.
FIND_RETRY_S = 60
# History errors that no wait will cure: the digest is posted at once (at least once).
_HISTORY_NEVER = {"missing_scope", "not_allowed_token_type", "no_permission", "not_in_channel",
                  "channel_not_found", "is_archived", "invalid_auth", "account_inactive", "token_revoked",
                  "not_authed", "team_access_not_granted"}
T = TypeVar("T")


class DigestPostError(Exception):
    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


@dataclass
class RunStats:
    jobs: int = 0
    posted: int = 0
    lost: int = 0
    failed: int = 0
    targets: int = 0
    messages: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- auditing ----------------------------------------------------------------------------
async def audit_target(watch: Watch, resolver: Resolver) -> Report:
    """Run the check a watch stands for on the shared resolver (handlers/api.py, as the
    CLI and the bot do)."""
    from handlers import api

    if watch.kind == "ip":
        return await api.run("ip", api.CheckRequest(ips=(watch.target,)), resolver)
    return await api.run("domain", api.CheckRequest(target=watch.target, selectors=tuple(watch.selectors)), resolver)


Audit = tuple[Report | dict[str, Any] | None, AuditError | None]
# Runs the audits of a pass somewhere else than the calling loop: the bot passes its check
# thread's loop (bot/slack/runtime.py CheckLoop.run), so a digest's thousands of DNS
# packets never share the loop that acks Slack's requests.
AuditRunner = Callable[[Callable[[], Awaitable[dict[int, "Audit"]]]], Awaitable[dict[int, "Audit"]]]


def _reuse_s() -> float:
    """How long a target's check is reused by every digest that needs it
    (MAILCHECK_DIGEST_REUSE_S, default 15 minutes): digests due in the same quarter hour,
    in any workspace and on any worker, share one audit per target."""
    try:
        return max(0.0, float(os.environ.get("MAILCHECK_DIGEST_REUSE_S", "900")))
    except ValueError:
        return 900.0


# Who holds a target claim: the process, plus one suffix per run (`audit_targets` call), so
# two runs in one process (a scheduled pass and a `digest now`) wait for each other too.
OWNER = f"{os.uname().nodename[:36]}:{os.getpid()}"
_CLAIM_POLL_S = 0.25


async def audit_targets(
    watches: Sequence[Watch], resolver: Resolver, *, concurrency: int = MAX_TARGET_CONCURRENCY,
    timeout: float = 120.0, checks: TargetChecks | None = None, reuse_s: float | None = None,
    owner: str | None = None, not_before: dict[int, datetime] | None = None,
) -> dict[int, Audit]:
    """{watch.id: (report, error)} — bounded concurrency, one resolver, no exception escapes.

    With `checks` (the store's shared target checks), a target another worker or an
    earlier batch checked within `reuse_s` seconds is not audited again: its stored
    result is used, if it was made no earlier than the digest's own slot (`not_before`,
    per watch id): a digest never shows data older than the time it is due, so a re-run or
    a manual digest asks DNS again. A target another worker is auditing right now is waited for (its
    lease bounds the wait: a worker that died is taken over). The database being away
    costs only the sharing: the target is audited here.
    """
    sem = asyncio.Semaphore(max(1, concurrency))
    reuse = _reuse_s() if reuse_s is None else reuse_s
    me = owner or f"{OWNER}:{os.urandom(6).hex()}"
    lease_s = timeout + 30.0
    # The same target watched in several channels is audited once per run.
    by_target: dict[str, asyncio.Task[Audit]] = {}

    async def audit(w: Watch) -> Audit:
        async with sem:
            try:
                return await asyncio.wait_for(audit_target(w, resolver), timeout), None
            except TimeoutError:
                return None, AuditError("timeout", (("seconds", f"{timeout:.0f}"),))
            except Exception as exc:  # a handler bug must not sink the whole digest
                log.exception("digest audit of %s failed", w.target)
                return None, AuditError("failed", (("name", type(exc).__name__),))

    async def shared(w: Watch, slot: datetime | None) -> Audit:
        if checks is None or reuse <= 0:
            return await audit(w)
        key = check_key(w.kind, w.target, w.selectors)
        fresh_after = datetime.now(UTC) - timedelta(seconds=reuse)
        if slot is not None and slot > fresh_after:
            fresh_after = slot
        # Waiting is bounded by our own clock, not by the owner's lease (another
        # machine's clock may run ahead): after a lease's length, audit here.
        give_up = time.monotonic() + lease_s
        while True:
            try:
                claim = await checks.claim(key, target=w.target, owner=me, fresh_after=fresh_after,
                                           lease_s=lease_s)
            except Exception as exc:
                log.warning("digest: shared check of %s unavailable (%s): auditing here", w.target,
                            type(exc).__name__)
                return await audit(w)
            if claim.state == "done":
                return claim.report, None
            if claim.state == "mine":
                break
            if claim.state == "unanswered" or time.monotonic() > give_up:
                return await audit(w)
            await asyncio.sleep(_CLAIM_POLL_S)
        result, error = await audit(w)
        # Keep only a result that determined something: an audit nobody answered is
        # not what the next worker should reuse.
        keep = result.to_dict() if isinstance(result, Report) and checked(result) else None
        try:
            await checks.finish(key, me, keep)
        except Exception as exc:
            log.warning("digest: could not share the check of %s (%s)", w.target, type(exc).__name__)
        return result, error

    # A DNS query budget for the run: the shared resolver has no deadline (so no
    # automatic budget), and a broken zone must not make one digest ask without end.
    # The budget is per audited target, pooled because the run shares its cache.
    n_targets = len({check_key(w.kind, w.target, w.selectors) for w in watches})
    budget = resolver.stats.lookups + DEFAULT_MAX_QUERIES * max(1, n_targets)
    if resolver.max_queries is None or resolver.max_queries < budget:
        resolver.max_queries = budget
    out: dict[int, Audit] = {}
    tasks: dict[int, asyncio.Task[Audit]] = {}
    # The strictest slot among the digests that need a target decides how fresh it must be.
    latest: dict[str, datetime] = {}
    for w in watches:
        slot = (not_before or {}).get(w.id)
        key = check_key(w.kind, w.target, w.selectors)  # one key in the run and in the store
        if slot is not None and (key not in latest or slot > latest[key]):
            latest[key] = slot
    for w in watches:
        key = check_key(w.kind, w.target, w.selectors)
        if key not in by_target:
            by_target[key] = asyncio.ensure_future(shared(w, latest.get(key)))
        tasks[w.id] = by_target[key]
    if tasks:
        await asyncio.gather(*set(tasks.values()))
    for wid, task in tasks.items():
        out[wid] = task.result()
    return out


async def compute_results(
    store: Store, job: DigestJob, audits: dict[int, Audit], *, retry_s: float = 0.0, now: datetime | None = None
) -> list[TargetResult]:
    snaps = await store_retry("get_snapshots", partial(store.get_snapshots, job.team_id, job.channel_id, job.targets),
                              within=retry_s)
    domains = [w.target for w in job.watches if w.kind == "domain"]
    states = await reports_states(store, job.team_id, domains, now or datetime.now(UTC)) if domains else {}
    results: list[TargetResult] = []
    for w in job.watches:
        report, error = audits.get(w.id, (None, AuditError("not_checked")))
        prev = snaps.get(w.target)
        ok = report is not None and checked(report)
        res = TargetResult(w, report, ok, error=error or (None if ok else AuditError("no_answers")))
        if prev is not None:
            res.previous_at = prev[0]
        if ok and report is not None:
            res.reports = states.get(w.target) if w.kind == "domain" else None
            if prev is None:
                res.baseline = True
            else:
                res.changes = diff_reports(prev[1], report)
                res.changes += reports_changes(prev[1].get("reports"), res.reports, w.target)
                res.changes.sort(key=lambda c: IMPORTANCE.get(c.severity, 9))
        results.append(res)
    return results


# -- language ------------------------------------------------------------------------------
async def digest_lang(store: Store, team_id: str, channel_id: str, *, retry_s: float = 0.0) -> str:
    """The channel's `lang` setting, else the workspace's (`/mailcheck lang ja workspace`),
    else MAILCHECK_LANG, else en. A store error (after `retry_s` of retrying an unreachable
    database) falls through to the next source."""
    for scope in (f"channel:{channel_id}", "team"):
        try:
            value = await store_retry("get_setting", partial(store.get_setting, team_id, scope, "lang"),
                                      within=retry_s)
        except Exception as exc:  # a digest in the default language beats no digest
            log.warning("digest language setting %s of %s unavailable: %s", scope, team_id, type(exc).__name__)
            continue
        if value in LANGS:
            return str(value)
    return default_lang()


# -- posting --------------------------------------------------------------------------------
def make_web_client(token: str) -> Any:
    """A Web API client for digests: retries 429 (Retry-After), 5xx and connection errors."""
    from bot.webclient import make_web_client as build

    return build(token)


_FINAL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
                 "token_revoked", "no_permission", "missing_scope", "not_authed", "team_access_not_granted"}


def slack_poster(store: Store) -> PostFn:
    """chat.postMessage with the workspace's installed bot token, else SLACK_BOT_TOKEN."""
    clients: dict[str, Any] = {}

    async def post(team_id: str, channel_id: str, message: dict[str, Any]) -> str | None:
        from slack_sdk.errors import SlackApiError

        client = clients.get(team_id)
        if client is None:
            token = await store.bot_token(team_id) or os.environ.get("SLACK_BOT_TOKEN")
            if not token:
                raise DigestPostError(f"no bot token for workspace {team_id} (install the app or set SLACK_BOT_TOKEN)")
            client = clients[team_id] = make_web_client(token)
        try:
            resp = await client.chat_postMessage(
                channel=channel_id, text=message["text"], blocks=message["blocks"],
                unfurl_links=False, unfurl_media=False, metadata=message.get("metadata"),
            )
        except SlackApiError as exc:
            err = str(exc.response.get("error", "error")) if exc.response is not None else "error"
            raise DigestPostError(f"chat.postMessage failed: {err}", final=err in _FINAL_ERRORS) from None
        except Exception as exc:
            raise DigestPostError(f"chat.postMessage failed: {type(exc).__name__}") from None
        ts = resp.get("ts")
        return str(ts) if ts else None

    async def find_posted(team_id: str, channel_id: str, run_id: int, part: int, since: datetime) -> str | None:
        """The ts of digest `run_id` part `part` if the channel already has it (conversations.history
        with metadata; needs channels:history / groups:history), else None."""
        client = clients.get(team_id)
        if client is None:
            token = await store.bot_token(team_id) or os.environ.get("SLACK_BOT_TOKEN")
            if not token:
                return None
            client = clients[team_id] = make_web_client(token)
        oldest = f"{since.timestamp() - 300:.6f}"
        cursor: str | None = None
        for _ in range(10):  # up to 2000 messages since the slot
            resp = await client.conversations_history(channel=channel_id, oldest=oldest, limit=200,
                                                      include_all_metadata=True, cursor=cursor)
            for msg in resp.get("messages") or []:
                meta = msg.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if (meta.get("event_type") == METADATA_EVENT and payload.get("run_id") == run_id
                        and payload.get("part") == part):
                    return str(msg.get("ts") or "") or None
            cursor = ((resp.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                break
        return None

    post.find_posted = find_posted  # type: ignore[attr-defined]
    return post


# -- running -----------------------------------------------------------------------------------
async def store_retry(what: str, call: Callable[[], Awaitable[T]], *, within: float) -> T:
    """`call()` (one Store method = one transaction), retried with backoff for `within`
    seconds while the database is unreachable (PostgreSQL restarting, connections
    terminated). Other errors, and the last transient one, propagate.

    What it protects: a message Slack accepted must get its `mark_part_posted`, else
    whoever re-claims the digest posts it again."""
    deadline = time.monotonic() + within
    delay = 0.1
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_transient_error(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("digest store call %s: database unavailable (%s); retrying in %.1f s",
                        what, type(exc).__name__, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, STORE_RETRY_MAX_DELAY)


async def _heartbeat(store: Store, job: DigestJob, every: float, lease_s: int) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            if not await store.renew(job, lease_s=lease_s):
                return
        except Exception as exc:  # database away: keep beating; the lease covers the gap
            if not is_transient_error(exc):
                raise
            log.warning("digest lease renewal failed (%s); retrying", type(exc).__name__)


async def prepare_job(
    store: Store,
    job: DigestJob,
    audits: dict[int, Audit],
    *,
    now: datetime | None = None,
    lease_s: int = DEFAULT_LEASE_S,
) -> bool:
    results = await compute_results(store, job, audits, retry_s=lease_s, now=now)
    lang = await digest_lang(store, job.team_id, job.channel_id, retry_s=lease_s)
    messages = render_digest(job, results, now=now, lang=lang)
    snapshots = {r.watch.target: {**slim_report(r.report), **({"reports": r.reports} if r.reports else {})}
                 for r in results if r.ok and r.report is not None}
    changes = {r.watch.target: [c.to_dict() for c in r.changes] for r in results if r.changes}
    save = partial(store.save_prepared, job, {"messages": messages, "changes": changes}, snapshots, lease_s=lease_s)
    return await store_retry("save_prepared", save, within=lease_s)


def part_metadata(job: DigestJob, part: int) -> dict[str, Any]:
    """Slack message metadata naming the digest part, so a runner resuming a digest can
    tell whether the part its dead predecessor was posting reached the channel."""
    return {"event_type": METADATA_EVENT, "event_payload": {"run_id": job.run_id, "part": part}}


def _history_error(exc: Exception) -> str:
    """Slack's error code for a failed history read, else the exception's type."""
    resp = getattr(exc, "response", None)
    try:
        err = resp.get("error") if resp is not None else None
    except Exception:
        err = None
    return str(err) if err else type(exc).__name__


async def post_job(store: Store, job: DigestJob, post: PostFn, *, lease_s: int = DEFAULT_LEASE_S) -> str:
    """Post the prepared messages from the first unposted part; 'posted' | 'lost' | 'failed' | 'retry'.

    Exactly once: the part index is stored right after Slack accepts each part
    (retried while the database is away). A runner killed between Slack's answer
    and that record leaves one part in doubt; the next runner (a re-claim: attempts > 1)
    first asks Slack for that part by its metadata (`post.find_posted`, when the
    poster has it) and records it instead of posting it again."""
    messages = (job.payload or {}).get("messages") or []
    find: FindFn | None = getattr(post, "find_posted", None)
    for i in range(job.parts_posted, len(messages)):
        if not await store_retry("renew", partial(store.renew, job, lease_s=lease_s), within=lease_s):
            return "lost"
        ts: str | None = None
        if find is not None and job.attempts > 1 and i == job.parts_posted:
            try:
                ts = await find(job.team_id, job.channel_id, job.run_id, i, job.slot)
            except Exception as exc:
                why = _history_error(exc)
                if why not in _HISTORY_NEVER and job.attempts < MAX_ATTEMPTS:
                    # Cannot tell whether the part is there: wait rather than risk a repeat.
                    log.warning("digest %s: could not look for part %d in Slack (%s); retrying in %d s",
                                job.run_id, i, why, FIND_RETRY_S)
                    release = partial(store.release, job, f"could not check Slack for part {i + 1}: {why}",
                                      retry_in_s=FIND_RETRY_S)
                    await store_retry("release", release, within=lease_s)
                    return "retry"
                log.warning("digest %s: could not look for part %d in Slack (%s): posting it (at least once)",
                            job.run_id, i, why)
            if ts is not None:
                log.info("digest %s part %d already in Slack (ts %s): not posted again", job.run_id, i, ts)
        if ts is None:
            try:
                ts = await post(job.team_id, job.channel_id, {**messages[i], "metadata": part_metadata(job, i)})
            except DigestPostError as exc:
                await store_retry("release", partial(store.release, job, str(exc), final=exc.final), within=lease_s)
                log.warning("digest %s for %s/%s not posted: %s", job.run_id, job.team_id, job.channel_id, exc)
                return "failed" if exc.final else "retry"
        await store_retry("mark_part_posted", partial(store.mark_part_posted, job, i, ts, lease_s=lease_s),
                          within=lease_s)
    return "posted" if await store_retry("mark_posted", partial(store.mark_posted, job), within=lease_s) else "lost"


async def run_jobs(
    store: Store,
    jobs: Sequence[DigestJob],
    *,
    post: PostFn | None = None,
    resolver: Resolver | None = None,
    concurrency: int = MAX_TARGET_CONCURRENCY,
    lease_s: int = DEFAULT_LEASE_S,
    now: datetime | None = None,
    audit_runner: AuditRunner | None = None,
) -> RunStats:
    """Audit (one shared resolver for every job), prepare and post claimed jobs."""
    t0 = time.monotonic()
    stats = RunStats(jobs=len(jobs))
    if not jobs:
        return stats
    post = post or slack_poster(store)
    resolver = resolver or Resolver(concurrency=DIGEST_QUERY_CONCURRENCY)
    pending = [j for j in jobs if j.status == "claimed" or j.payload is None]
    beats = [asyncio.ensure_future(_heartbeat(store, j, max(0.3, lease_s / 3), lease_s)) for j in pending]
    try:
        watches = await with_reported_selectors(store, [w for j in pending for w in j.watches])
        stats.targets = len({(w.kind, w.target) for w in watches})
        shared = resolver

        # Shared checks need the store's connections, which belong to this loop: an
        # audit_runner (the bot's check thread) audits on another loop, so the bot
        # process shares only within its run; digest workers (`mailcheck digest --loop`,
        # the Procfile clock) share across processes.
        checks = TargetChecks.of(store) if audit_runner is None else None

        async def audit_all() -> dict[int, Audit]:
            return await audit_targets(watches, shared, concurrency=concurrency, checks=checks,
                                       not_before={w.id: j.slot for j in pending for w in j.watches})

        audits = await (audit_runner(audit_all) if audit_runner is not None else audit_all())
    finally:
        for b in beats:
            b.cancel()
        for b in beats:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await b
    for job in pending:
        if not await prepare_job(store, job, audits, now=now, lease_s=lease_s):
            stats.lost += 1
    for job in jobs:
        if job.status != "ready":
            continue
        outcome = await post_job(store, job, post, lease_s=lease_s)
        if outcome == "posted":
            stats.posted += 1
            stats.messages += len((job.payload or {}).get("messages") or [])
        elif outcome == "lost":
            stats.lost += 1
        else:
            stats.failed += 1
    stats.seconds = time.monotonic() - t0
    return stats


async def run_due(
    store: Store,
    *,
    now: datetime | None = None,
    post: PostFn | None = None,
    resolver_factory: Callable[[], Resolver] | None = None,
    batch: int = 500,
    lease_s: int = DEFAULT_LEASE_S,
    team_id: str | None = None,
    audit_runner: AuditRunner | None = None,
) -> RunStats:
    """Claim and post every due digest (in batches so several workers share the work)."""
    total = RunStats()
    t0 = time.monotonic()
    resolver = resolver_factory() if resolver_factory else Resolver(concurrency=DIGEST_QUERY_CONCURRENCY)
    for _ in range(1000):
        jobs = await store.claim_due(now, lease_s=lease_s, limit=batch, team_id=team_id)
        if not jobs:
            break
        s = await run_jobs(store, jobs, post=post, resolver=resolver, lease_s=lease_s, now=now,
                           audit_runner=audit_runner)
        for k in ("jobs", "posted", "lost", "failed", "targets", "messages"):
            setattr(total, k, getattr(total, k) + getattr(s, k))
    total.seconds = time.monotonic() - t0
    return total


async def run_now(
    store: Store,
    team_id: str | None = None,
    channel_id: str | None = None,
    *,
    post: PostFn | None = None,
    resolver: Resolver | None = None,
    audit_runner: AuditRunner | None = None,
) -> RunStats:
    """An unscheduled digest now (Slack `digest now`, CLI `digest run --all`)."""
    jobs = await store.claim_now(team_id, channel_id)
    return await run_jobs(store, jobs, post=post, resolver=resolver, audit_runner=audit_runner)


async def run_scheduler(
    store: Store,
    stop_event: asyncio.Event,
    *,
    interval: float = 30.0,
    post: PostFn | None = None,
    resolver_factory: Callable[[], Resolver] | None = None,
    lease_s: int = DEFAULT_LEASE_S,
    batch: int = 500,
    audit_runner: AuditRunner | None = None,
) -> None:
    """Claim and post due digests every `interval` seconds until `stop_event` is set.

    Safe to run in every replica: claims are atomic. Each pass uses a fresh
    resolver (one cache per run, not forever). Inside a pass, store calls are
    retried while the database is away (`store_retry`, up to the lease); a pass
    that still fails (database down longer, a bug) is logged and the next one
    comes after a backoff of 1, 2, 4 ... seconds up to `interval`. Claims of a
    runner that dies are re-claimed by any runner once their lease expires.
    """
    last_purge = 0.0
    backoff = 1.0
    while not stop_event.is_set():
        wait = interval
        try:
            stats = await run_due(store, post=post, resolver_factory=resolver_factory, lease_s=lease_s, batch=batch,
                                  audit_runner=audit_runner)
            if stats.jobs:
                log.info("digests: %s", stats.as_dict())
            if time.monotonic() - last_purge > 3600:
                await store.purge()
                last_purge = time.monotonic()
            backoff = 1.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database restarting, a bug: log and try again soon
            if is_transient_error(exc):
                log.warning("digest scheduler pass: database unavailable (%s); next try in %.0f s",
                            type(exc).__name__, min(backoff, interval))
            else:
                log.exception("digest scheduler pass failed")
            wait = min(backoff, interval)
            backoff = min(backoff * 2, max(interval, 1.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=wait)

