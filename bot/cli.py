"""`mailcheck` command line.

argparse (stdlib) rather than typer/click: SPEC wants the global options
accepted both before and after the subcommand and a one-line error with exit 2
on bad usage; argparse does both with a shared parent parser and no import
cost. Heavy modules (dnspython, handlers, rich) are imported inside the command
functions so `mailcheck --help` and a bounce analysis start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from handlers.model import Report
    from handlers.net import Resolver

EXIT_OK, EXIT_CRITICAL, EXIT_USAGE, EXIT_NO_DNS = 0, 1, 2, 3
MAX_INPUT_BYTES = 5 * 1024 * 1024


class UsageError(Exception):
    """Bad input: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line, no usage dump (SPEC: clear one-line error, exit 2).
        self.exit(EXIT_USAGE, f"mailcheck: error: {message} (see: mailcheck --help)\n")


def _global_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    d = argparse.SUPPRESS if sub else None
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if sub else False,
                        help="print the report as JSON (SPEC shape)")
    parser.add_argument("--lang", choices=("en", "ja"), default=d,
                        help="language of report texts (default: $MAILCHECK_LANG or en)")
    parser.add_argument("--nameserver", action="append", metavar="HOST[:PORT]",
                        dest="nameserver_sub" if sub else "nameserver", default=None,
                        help="DNS resolver to ask (repeatable; default: $MAILCHECK_NAMESERVERS or the system's)")
    parser.add_argument("--timeout", type=float, default=d, metavar="SECONDS",
                        help="seconds to wait for each DNS answer (default 3)")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if sub else False,
                        help="show every row, also each check and blocklist that could not be checked")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailcheck",
        description="Email deliverability checks: domain audits, IP reputation, SPF evaluation, bounce analysis.",
        epilog="Exit codes: 0 nothing critical, 1 something critical, 2 bad input, 3 no DNS answer at all.",
    )
    _global_options(parser, sub=False)
    common = _Parser(add_help=False)
    _global_options(common, sub=True)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = subs.add_parser("domain", parents=[common], help="full audit of a domain's mail setup")
    p.add_argument("domain")
    p.add_argument("--selector", action="append", default=[], help="DKIM selector to check (repeatable)")
    p.add_argument("--ip", action="append", default=[], help="a sending IP to check (repeatable)")
    p.add_argument("--no-blocklists", action="store_true", help="skip blocklist queries")

    p = subs.add_parser("ip", parents=[common], help="PTR, FCrDNS and blocklists of IP addresses")
    p.add_argument("ips", nargs="*", metavar="IP")
    p.add_argument("--file", help="read IPs from a file (one per line, # comments)")

    p = subs.add_parser("spf", parents=[common], help="RFC 7208 check_host for DOMAIN and IP, with trace")
    p.add_argument("domain")
    p.add_argument("ip")
    p.add_argument("--helo")
    p.add_argument("--sender")

    p = subs.add_parser("bounce", parents=[common], help="explain a bounce, SMTP reply or MTA log lines")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--follow", action="store_true", help="live checks of the IP and domain the bounce names")

    p = subs.add_parser("message", parents=[common],
                        help="why did a delivered message land in spam? (paste its full source)")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--offline", action="store_true", help="no live DNS checks (authentication headers only)")

    from bot.cli_logs import add_logs_command
    from bot.cli_reports import add_reports_command
    from bot.cli_store import add_store_commands
    from bot.serve import add_serve_command

    add_reports_command(subs, common)
    add_logs_command(subs, common)
    add_store_commands(subs, common)
    add_serve_command(subs, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from bot import redact

    redact.install()  # before any logging: no secret reaches a log line
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that can't show Japanese or a pasted name gets '?' for those
        # characters, not a traceback.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(_verbatim_values(sys.argv[1:] if argv is None else list(argv)))
    if args.command is None:
        return _fail("a command is needed: domain, ip, spf, bounce, message, reports, logs, watch, digest or serve "
                     "(mailcheck --help lists them)")
    # Merge options given after the subcommand.
    args.nameservers = (args.nameserver or []) + (getattr(args, "nameserver_sub", None) or [])
    if not args.lang:
        env_lang = os.environ.get("MAILCHECK_LANG", "").strip()
        if env_lang and env_lang.lower() not in ("en", "ja"):
            print(f"mailcheck: MAILCHECK_LANG={env_lang[:20]!r} is not en or ja; using en", file=sys.stderr)
        args.lang = env_lang.lower() or "en"
    if args.lang not in ("en", "ja"):
        args.lang = "en"
    args.timeout = args.timeout if args.timeout is not None else 3.0
    if not 0 < args.timeout <= 60:  # also false for NaN
        return _fail("--timeout must be more than 0 and at most 60 seconds (e.g. --timeout 5)")
    if getattr(args, "store_command", None):
        from bot.cli_store import run_store_command

        return run_store_command(args)
    if args.command == "serve":
        return int(args.run(args))
    if args.command == "logs":
        from bot.cli_logs import run_logs

        return run_logs(args)
    handler = COMMANDS[args.command]
    try:
        report = asyncio.run(handler(args))
    except UsageError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback for the user; the message says what broke
        print(redact.redact(f"mailcheck: internal error ({type(exc).__name__}: {exc}); please report it"),
              file=sys.stderr)
        return EXIT_NO_DNS
    return _emit(report, args)


def _verbatim_values(argv: list[str]) -> list[str]:
    """SPEC: --helo and --sender go verbatim to check_host, even a value that starts with
    '-' (argparse would read it as an option): glue such a value to its option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--helo", "--sender") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def _fail(message: str) -> int:
    from bot import redact

    print(f"mailcheck: error: {redact.redact(message)}", file=sys.stderr)
    return EXIT_USAGE


def _emit(report: Report, args: argparse.Namespace) -> int:
    from bot import redact
    from handlers.i18n import localize_report

    localize_report(report, args.lang)
    # Reports quote their input (a bounce's SMTP reply, a header): never print a token,
    # webhook URL or configured secret it carried, on the terminal or in --json.
    redact.scrub_report(report)
    try:
        if args.json:
            if report.kind == "reports":
                from bot.cli_reports import reports_json

                out = reports_json(report)
            else:
                out = report.to_dict()
            print(json.dumps(redact.scrub(out), ensure_ascii=False, indent=2))
        else:
            from bot.render_terminal import render

            render(report, lang=args.lang, verbose=bool(getattr(args, "verbose", False)))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`, a pager) closed the pipe: the report was cut short, not
        # wrong, so the exit code still says what the check found. Point stdout at
        # /dev/null so the interpreter's final flush doesn't fail again (Python docs,
        # "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    stats = report.dns_stats
    silent = stats.get("asked", 0) > 0 and stats.get("answered", 0) == 0
    if silent and not args.json:
        print("mailcheck: no DNS question got an answer: check --nameserver / network", file=sys.stderr)
    if report.kind == "spf":
        return EXIT_OK  # SPEC: temperror (no DNS answer) is an SPF result like any other
    if report.kind == "reports":
        # SPEC: exit 2 when no file gave a report; the PTR lookups only name sources, so
        # an unanswered one is no reason for exit 3.
        if not args.json:
            for err in report.details.get("errors", []):
                print(f"mailcheck: {err['file']}: {err['error']}", file=sys.stderr)
        if not report.details.get("reports"):
            return EXIT_USAGE
        return EXIT_CRITICAL if report.has_critical else EXIT_OK
    if silent:
        return EXIT_NO_DNS
    return EXIT_CRITICAL if report.has_critical else EXIT_OK


# -- helpers -----------------------------------------------------------------
def make_resolver(args: argparse.Namespace, deadline: float | None = 60.0) -> Resolver:
    from handlers.net import Resolver, nameservers_from_env, parse_nameserver

    try:
        servers = [parse_nameserver(s) for s in args.nameservers] or nameservers_from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return Resolver(nameservers=servers, timeout=args.timeout, deadline=deadline)


def _domain(raw: str) -> tuple[str, str]:
    from handlers.inputs import InputError, normalize_domain

    try:
        n = normalize_domain(raw)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    return n.value, n.note


def _ip(raw: str) -> str:
    from handlers.inputs import InputError, normalize_ip

    try:
        return normalize_ip(raw)
    except InputError as exc:
        raise UsageError(str(exc)) from exc


async def _with_progress(label: str, coro: Coroutine[Any, Any, Report]) -> Report:
    """Say on stderr what is running when it takes over a second (TTY only)."""
    task = asyncio.ensure_future(coro)
    if not sys.stderr.isatty():
        return await task
    t0 = time.monotonic()
    shown = False
    while not task.done():
        await asyncio.wait({task}, timeout=0.25)
        if not task.done() and time.monotonic() - t0 > 1.0:
            sys.stderr.write(f"\r{label} … {time.monotonic() - t0:4.1f}s")
            sys.stderr.flush()
            shown = True
    if shown:
        sys.stderr.write("\r\033[K")
    return await task


def read_input(path: str) -> bytes:
    """The file's bytes (up to the input limit); a file saved as UTF-16/32 ("Unicode" on
    Windows) is re-encoded as UTF-8, so every command reads it as the same text."""
    from handlers.charsets import to_utf8, wide_encoding

    try:
        if path == "-":
            if sys.stdin.isatty():
                print("Paste the text, then Ctrl-D:", file=sys.stderr)
            stream = sys.stdin.buffer
            data = stream.read(MAX_INPUT_BYTES + 1)
            if len(data) > MAX_INPUT_BYTES and wide_encoding(data[:4096]) is not None:
                data += stream.read(3 * MAX_INPUT_BYTES + 3)  # 2-4 bytes a character: as much text as UTF-8
        else:
            with open(path, "rb") as fh:
                data = fh.read(MAX_INPUT_BYTES + 1)
                if len(data) > MAX_INPUT_BYTES and wide_encoding(data[:4096]) is not None:
                    data += fh.read(3 * MAX_INPUT_BYTES + 3)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return to_utf8(data)


# -- commands ----------------------------------------------------------------
async def cmd_domain(args: argparse.Namespace) -> Report:
    from handlers import api
    from handlers.inputs import InputError, normalize_selector

    domain, note = _domain(args.domain)
    try:
        selectors = [normalize_selector(s) for s in args.selector]
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    ips = [_ip(i) for i in args.ip]
    resolver = make_resolver(args)
    request = api.CheckRequest(target=domain, selectors=tuple(selectors), ips=tuple(ips),
                               blocklists=not args.no_blocklists)
    report = await _with_progress(f"Auditing {domain}", api.run("domain", request, resolver))
    if note:
        report.notes.insert(0, note)
    return report


async def cmd_ip(args: argparse.Namespace) -> Report:
    from handlers import api

    raw = list(args.ips)
    if args.file:
        text = read_input(args.file).decode("utf-8", "replace")
        listed = [r for r in (ln.split("#", 1)[0].strip() for ln in text.splitlines()) if r]
        if not listed and not raw:
            raise UsageError(f"{args.file} holds no IP addresses (one per line; # starts a comment)")
        raw += listed
    if not raw:
        raise UsageError("give at least one IP address (or --file)")
    ips = list(dict.fromkeys(_ip(r) for r in raw))
    resolver = make_resolver(args, deadline=max(60.0, 2.0 * len(ips)))
    return await _with_progress(f"Checking {len(ips)} IP(s)", api.run("ip", api.CheckRequest(ips=tuple(ips)), resolver))


async def cmd_spf(args: argparse.Namespace) -> Report:
    from handlers import api

    domain, _note = _domain(args.domain)
    ip = _ip(args.ip)
    request = api.CheckRequest(target=domain, ips=(ip,), helo=args.helo, sender=args.sender)
    return await api.run("spf", request, make_resolver(args))


async def cmd_bounce(args: argparse.Namespace) -> Report:
    from handlers import api

    data = read_input(args.file)
    if not data.strip():
        raise UsageError("the input is empty: give a bounce, DSN, SMTP reply or log lines (a file, or pipe it on stdin)")
    resolver = make_resolver(args) if args.follow else None
    return await api.run("bounce", api.CheckRequest(data=data, lang=args.lang or "en"), resolver)


async def cmd_message(args: argparse.Namespace) -> Report:
    from bot.cli_message import cmd_message as run

    return await run(args)


async def cmd_reports(args: argparse.Namespace) -> Report:
    from bot.cli_reports import cmd_reports as run

    return await run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, Report]]] = {
    "message": cmd_message,
    "reports": cmd_reports,
    "domain": cmd_domain,
    "ip": cmd_ip,
    "spf": cmd_spf,
    "bounce": cmd_bounce,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
