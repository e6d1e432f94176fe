"""`mailcheck watch add|list|remove` and `mailcheck digest run` (same store as the bot).

Hooked into bot/cli.py by the lead:

    from bot.cli_store import add_store_commands, run_store_command
    add_store_commands(subs, common)              # in build_parser()
    if getattr(args, "store_command", None):      # in main(), before COMMANDS[...]
        return run_store_command(args)

The database is `$DATABASE_URL` (default: the SQLite file documented in
bot/storage/url.py). Without `--team` the commands act on every workspace; a
single-workspace install has one. `watch add` without `--team` uses the one
installed workspace, else `$SLACK_TEAM_ID`, else `T_LOCAL`.

Exit codes: 0 done; 1 some digest could not be posted; 2 bad input (one line
on stderr); 3 the database could not be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.storage import Store

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class StoreUsageError(Exception):
    """Bad input for a store command: one line, exit 2."""


def add_store_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Add `watch` and `digest` to the main parser's subparsers."""
    watch = subparsers.add_parser("watch", parents=[common_parent],
                                  help="manage watched domains/IPs and their digest schedules")
    wsubs = watch.add_subparsers(dest="watch_command", metavar="ACTION", parser_class=type(watch))
    wsubs.required = True

    p = wsubs.add_parser("add", parents=[common_parent], help="watch a domain or IP in a channel")
    p.add_argument("target", metavar="TARGET", help="domain or IP address")
    p.add_argument("--channel", required=True, help="Slack channel id (C...) the digest goes to")
    p.add_argument("--team", help="Slack workspace id (T...); default: the installed one")
    p.add_argument("--schedule", default="daily 09:00",
                   help="'daily HH:MM', 'weekdays HH:MM' or 'weekly mon HH:MM' (default: daily 09:00)")
    p.add_argument("--tz", default=None, metavar="AREA/CITY", help="time zone of the schedule (default: UTC or $TZ)")
    p.add_argument("--selector", action="append", default=[], help="DKIM selector to check (repeatable)")
    p.set_defaults(store_command=cmd_watch_add)

    p = wsubs.add_parser("list", parents=[common_parent], help="list watches")
    p.add_argument("--team", help="only this workspace")
    p.add_argument("--channel", help="only this channel")
    p.set_defaults(store_command=cmd_watch_list)

    p = wsubs.add_parser("remove", parents=[common_parent], help="stop watching a target in a channel")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--channel", required=True)
    p.add_argument("--team", help="only this workspace (default: every workspace)")
    p.set_defaults(store_command=cmd_watch_remove)

    digest = subparsers.add_parser("digest", parents=[common_parent], help="compute and post digests")
    dsubs = digest.add_subparsers(dest="digest_command", metavar="ACTION", parser_class=type(digest))
    dsubs.required = True
    p = dsubs.add_parser("run", parents=[common_parent], help="post the digests that are due (or all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--due", dest="all", action="store_false", help="only digests whose time has come (default)")
    g.add_argument("--all", dest="all", action="store_true", help="a digest for every watched channel now")
    p.add_argument("--team", help="only this workspace")
    p.add_argument("--channel", help="only this channel (with --all)")
    p.add_argument("--loop", action="store_true",
                   help="keep running: post due digests every --interval seconds until stopped (Procfile `clock`)")
    p.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                   help="with --loop: seconds between passes (default 30; 5-3600)")
    p.add_argument("--lease", type=int, default=None, metavar="SECONDS",
                   help="with --loop: how long a claimed digest stays with a runner that stops answering, "
                        "before another runner takes it over (default 600; 60-86400)")
    p.set_defaults(store_command=cmd_digest_run, all=False)


def run_store_command(args: argparse.Namespace) -> int:
    """Run the store command chosen by argparse; returns the exit code."""
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.store_command
    try:
        return asyncio.run(handler(args))
    except StoreUsageError as exc:
        print(f"mailcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


async def _open() -> Store:
    from bot.storage import DatabaseURLError, Store, StoreError

    try:
        return await Store.open()
    except DatabaseURLError as exc:
        raise StoreUsageError(str(exc)) from exc
    except StoreError as exc:
        print(f"mailcheck: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE) from exc


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


async def cmd_watch_add(args: argparse.Namespace) -> int:
    from bot.storage import WatchInputError
    from handlers.inputs import InputError, normalize_selector
    from handlers.schedule import ScheduleError, describe, expand_shorthand, parse_schedule, parse_tz

    try:
        # Same shorthand as Slack: "daily" / "weekly fri" mean 09:00.
        sched = parse_schedule(expand_shorthand(args.schedule.split()))
        tz = parse_tz(args.tz or os.environ.get("MAILCHECK_TZ") or "UTC")
        selectors = [normalize_selector(s) for s in args.selector]
    except (ScheduleError, InputError) as exc:
        raise StoreUsageError(str(exc)) from exc
    store = await _open()
    try:
        team = args.team
        if not team:
            installed = await store.installed_team_ids()
            if len(installed) > 1:
                raise StoreUsageError(
                    f"several workspaces are installed ({', '.join(installed)}): say which with --team"
                )
            team = installed[0] if installed else (os.environ.get("SLACK_TEAM_ID") or "T_LOCAL")
        try:
            watch = await store.add_watch(team, args.channel, args.target, sched.text, tz.key, selectors)
        except WatchInputError as exc:
            raise StoreUsageError(str(exc)) from exc
    finally:
        await store.close()
    if _json(args):
        print(json.dumps(watch.to_dict(), ensure_ascii=False, indent=2))
    else:
        local = watch.next_run_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        print(f"Watching {watch.target} in {watch.channel_id} (workspace {watch.team_id}): "
              f"{describe(sched, tz)}; first digest {local}")
    return EXIT_OK


async def cmd_watch_list(args: argparse.Namespace) -> int:
    store = await _open()
    try:
        watches = await store.list_watches(args.team, args.channel)
    finally:
        await store.close()
    if _json(args):
        print(json.dumps([w.to_dict() for w in watches], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not watches:
        print("No watches." + ("" if args.team else " Add one: mailcheck watch add example.com --channel C0123"))
        return EXIT_OK
    from zoneinfo import ZoneInfo

    rows = [("WORKSPACE", "CHANNEL", "TARGET", "SCHEDULE", "TZ", "NEXT DIGEST", "LAST")]
    for w in watches:
        try:
            zone = ZoneInfo(w.tz)
        except Exception:
            zone = ZoneInfo("UTC")
        nxt = w.next_run_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        last = w.last_run_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if w.last_run_at else "-"
        target = w.target + (f" [{','.join(w.selectors)}]" if w.selectors else "")
        rows.append((w.team_id, w.channel_id, target, w.schedule, w.tz, nxt, last))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return EXIT_OK


async def cmd_watch_remove(args: argparse.Namespace) -> int:
    store = await _open()
    try:
        teams = [args.team] if args.team else await store.team_ids()
        removed = [t for t in teams if await store.remove_watch(t, args.channel, args.target)]
    finally:
        await store.close()
    if _json(args):
        print(json.dumps({"target": args.target, "channel": args.channel, "removed_from": removed}))
    if not removed:
        raise StoreUsageError(f"{args.target} is not watched in {args.channel}")
    if not _json(args):
        print(f"Stopped watching {args.target} in {args.channel} ({', '.join(removed)})")
    return EXIT_OK


async def cmd_digest_run(args: argparse.Namespace) -> int:
    from bot.digest import DIGEST_QUERY_CONCURRENCY, run_due, run_jobs
    from handlers.net import Resolver, nameservers_from_env, parse_nameserver

    try:
        servers = [parse_nameserver(s) for s in (getattr(args, "nameservers", None) or [])] or nameservers_from_env()
    except ValueError as exc:
        raise StoreUsageError(str(exc)) from exc
    timeout = float(getattr(args, "timeout", None) or 3.0)

    def resolver() -> Resolver:
        return Resolver(nameservers=servers, timeout=timeout, concurrency=DIGEST_QUERY_CONCURRENCY)

    if args.channel and not args.all:
        raise StoreUsageError("--channel goes with --all (due digests are per schedule)")
    interval, lease = getattr(args, "interval", None), getattr(args, "lease", None)
    if (interval is not None or lease is not None) and not args.loop:
        raise StoreUsageError("--interval and --lease go with --loop")
    if interval is not None and not 5 <= interval <= 3600:
        raise StoreUsageError(f"--interval must be 5-3600 seconds, got {interval:g}")
    if lease is not None and not 60 <= lease <= 86400:
        raise StoreUsageError(f"--lease must be 60-86400 seconds, got {lease}")
    if args.loop:
        if args.all or args.team:
            raise StoreUsageError("--loop posts due digests of every workspace; drop --all/--team")
        from bot.storage import DEFAULT_LEASE_S

        return await _loop(resolver, interval=interval or 30.0, lease_s=lease or DEFAULT_LEASE_S)
    store = await _open()
    try:
        if args.all:
            jobs = await store.claim_now(args.team, args.channel)
            stats = await run_jobs(store, jobs, resolver=resolver())
        else:
            stats = await run_due(store, resolver_factory=resolver, team_id=args.team)
    finally:
        await store.close()
    if _json(args):
        print(json.dumps(stats.as_dict()))
    else:
        what = "digest" if stats.jobs == 1 else "digests"
        if not stats.jobs:
            print("No digest due." if not args.all else "No watches.")
        else:
            print(f"Posted {stats.posted} of {stats.jobs} {what} ({stats.messages} message(s), "
                  f"{stats.targets} target(s) checked) in {stats.seconds:.1f} s"
                  + (f"; {stats.failed} failed (retried later)" if stats.failed else "")
                  + (f"; {stats.lost} taken over by another runner" if stats.lost else ""))
    return EXIT_FAILED if stats.failed else EXIT_OK



async def _loop(resolver: Callable[[], Any], *, interval: float = 30.0, lease_s: int = 600) -> int:
    """The clock process: run_scheduler until SIGTERM/SIGINT."""
    import logging
    import signal

    from bot import redact
    from bot.digest import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = await _open()
    # Operators (and the test) see when it is up and stoppable.
    logging.getLogger("mailcheck.digest").info(
        "digest loop started: checking every %s s, lease %s s; SIGTERM or SIGINT stops it", interval, lease_s)
    try:
        await run_scheduler(store, stop, resolver_factory=resolver, interval=interval, lease_s=lease_s)
    finally:
        await store.close()
    return EXIT_OK
