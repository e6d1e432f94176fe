"""`/mailcheck` text -> a Command. Pure parsing: no Slack, no I/O.

Grammar (case-insensitive subcommands, `key=value` options anywhere):
    DOMAIN | IP                         bare target: domain audit / IP check
    domain DOMAIN [selector=S]... [ip=IP]...
    ip IP...
    spf DOMAIN IP [helo=H] [sender=ADDR]
    bounce | message                    how to paste one
    reports                             summarise the latest report file shared in the channel
    logs                                summarise the latest mail log file shared in the channel
    watch TARGET [daily HH:MM | weekdays HH:MM | weekly DAY HH:MM] [tz=Area/City] [selector=S]
    unwatch TARGET
    watches
    digest now
    lang en|ja [workspace]
    autodetect on|off
    help
Anything else -> Command("usage", error=...): a hint, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.slack.text import truncate, unescape_slack
from handlers.inputs import (
    InputError,
    is_ip,
    normalize_domain,
    normalize_ip,
    normalize_selector,
    normalize_target,
)
from handlers.schedule import ScheduleError, expand_shorthand, parse_tz
from handlers.schedule import parse_schedule as _parse_schedule

CHECKS = frozenset({"domain", "ip", "spf"})
MAX_IPS = 10
_OPTION = re.compile(r"^(selector|s|ip|helo|sender|tz)[=:](.*)$", re.IGNORECASE)
_ALIASES = {
    "audit": "domain", "check": "domain", "dom": "domain",
    "ips": "ip", "addr": "ip",
    "dsn": "bounce", "bounces": "bounce", "report": "reports", "log": "logs", "maillog": "logs", "dmarc": "reports", "headers": "message", "msg": "message",
    "list": "watches", "watchlist": "watches",
    "unsubscribe": "unwatch", "remove": "unwatch",
    "language": "lang", "auto": "autodetect",
    "?": "help", "usage": "help", "ヘルプ": "help",
}


@dataclass(frozen=True)
class Command:
    name: str
    target: str = ""
    selectors: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    helo: str | None = None
    sender: str | None = None
    schedule: str = ""
    tz: str | None = None
    value: str = ""
    scope: str = "user"
    error: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def is_check(self) -> bool:
        return self.name in CHECKS

    def canonical(self) -> str:
        """Command text that parses back into this command (Re-check buttons)."""
        if self.name == "domain":
            parts = ["domain", self.target, *(f"selector={s}" for s in self.selectors),
                     *(f"ip={i}" for i in self.ips)]
        elif self.name == "ip":
            parts = ["ip", *self.ips]
        elif self.name == "spf":
            parts = ["spf", self.target, *self.ips]
            if self.helo is not None:
                parts.append(f"helo={self.helo}")
            if self.sender is not None:
                parts.append(f"sender={self.sender}")
        else:
            parts = [self.name, self.target]
        return " ".join(p for p in parts if p)

    def label(self) -> str:
        """Short human label: `good.example`, `192.0.2.1, 192.0.2.2`, `SPF good.example 192.0.2.1`."""
        if self.name == "ip":
            return ", ".join(self.ips)
        if self.name == "spf":
            return f"SPF {self.target} {' '.join(self.ips)}"
        return self.target


def _usage(error: str) -> Command:
    return Command("usage", error=error)


def _split_options(tokens: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    words: list[str] = []
    opts: dict[str, list[str]] = {}
    for tok in tokens:
        m = _OPTION.match(tok)
        if m and m.group(2):
            key = m.group(1).lower()
            key = "selector" if key == "s" else key
            opts.setdefault(key, []).extend(v for v in m.group(2).split(",") if v)
        else:
            words.append(tok)
    return words, opts


def _domain(raw: str) -> tuple[str, str]:
    n = normalize_domain(raw)
    return n.value, n.note


def parse_schedule(words: list[str]) -> str:
    """`daily 09:00` / `weekdays 9:00` / `weekly mon 09:00` -> canonical text; ScheduleError otherwise.

    The time may be left out (09:00). Validation is handlers.schedule's, the same as the CLI's.
    """
    return _parse_schedule(expand_shorthand(words)).text


def parse_target(raw: str) -> tuple[str, str]:
    """A watch/unwatch target: (canonical domain or IP, note)."""
    n = normalize_target(raw)
    return n.value, n.note


def parse_command(text: str | None) -> Command:
    raw = unescape_slack(text or "").replace("\u3000", " ").strip()
    if not raw:
        return Command("help")
    tokens = raw.split()
    head = tokens[0].lower().lstrip("/")
    head = _ALIASES.get(head, head)
    rest = tokens[1:]
    try:
        return _parse(head, rest, tokens)
    except (InputError, ScheduleError) as exc:
        return _usage(str(exc))


def _parse(head: str, rest: list[str], tokens: list[str]) -> Command:
    if head == "help":
        return Command("help", target=" ".join(rest[:1]).lower())
    if head in ("bounce", "message"):
        return Command(head)
    if head == "reports":
        return Command("reports")
    if head == "logs":
        return Command("logs")
    if head == "domain":
        words, opts = _split_options(rest)
        if len(words) != 1:
            return _usage("`domain` takes one domain: `/mailcheck domain example.com [selector=s1]`")
        return _domain_command(words[0], opts)
    if head == "ip":
        words, _opts = _split_options(rest)
        if not words:
            return _usage("give at least one IP address: `/mailcheck ip 192.0.2.1`")
        if len(words) > MAX_IPS:
            return _usage(f"at most {MAX_IPS} IP addresses per check")
        ips = tuple(dict.fromkeys(normalize_ip(w.strip(",")) for w in words))
        return Command("ip", ips=ips)
    if head == "spf":
        words, opts = _split_options(rest)
        if len(words) != 2:
            return _usage("`spf` takes a domain and an IP: `/mailcheck spf example.com 192.0.2.1`")
        dom, note = _domain(words[0])
        ip = normalize_ip(words[1])
        helo = opts["helo"][0] if opts.get("helo") else None
        sender = opts["sender"][0] if opts.get("sender") else None
        return Command("spf", target=dom, ips=(ip,), helo=helo, sender=sender, notes=(note,) if note else ())
    if head == "watch":
        words, opts = _split_options(rest)
        if not words:
            return _usage("`watch` needs a domain or IP: `/mailcheck watch example.com daily 09:00 tz=Asia/Tokyo`")
        target, note = parse_target(words[0])
        schedule = parse_schedule(words[1:])
        tz = parse_tz(opts["tz"][0]).key if opts.get("tz") else None
        selectors = tuple(normalize_selector(s) for s in opts.get("selector", []))
        return Command("watch", target=target, schedule=schedule, tz=tz, selectors=selectors,
                       notes=(note,) if note else ())
    if head == "unwatch":
        words, _opts = _split_options(rest)
        if len(words) != 1:
            return _usage("`unwatch` takes the watched domain or IP: `/mailcheck unwatch example.com`")
        target, _note = parse_target(words[0])
        return Command("unwatch", target=target)
    if head == "watches":
        return Command("watches")
    if head == "digest":
        if [w.lower() for w in rest] == ["now"]:
            return Command("digest", value="now")
        return _usage("try `/mailcheck digest now` (scheduled digests come from `/mailcheck watch`)")
    if head == "lang":
        vals = [w.lower() for w in rest]
        scope = "user"
        for s in ("workspace", "team", "default"):
            if s in vals:
                vals.remove(s)
                scope = "team"
        if len(vals) == 1 and vals[0] in ("en", "ja", "english", "japanese", "日本語", "英語"):
            code = "ja" if vals[0] in ("ja", "japanese", "日本語") else "en"
            return Command("lang", value=code, scope=scope)
        return _usage("`lang` takes `en` or `ja` (add `workspace` to set the workspace default)")
    if head == "autodetect":
        vals = [w.lower() for w in rest]
        if vals in (["on"], ["off"]):
            return Command("autodetect", value=vals[0])
        if not vals:
            return Command("autodetect", value="status")
        return _usage("`autodetect` takes `on` or `off`")
    # Bare target: `/mailcheck example.com`, `/mailcheck 192.0.2.1`, `/mailcheck you@example.com`.
    if len(tokens) >= 1:
        words, opts = _split_options(tokens)
        if len(words) == 1 and is_ip(words[0]):
            return Command("ip", ips=(normalize_ip(words[0]),))
        if len(words) == 1 and "." in words[0]:
            return _domain_command(words[0], opts)
    return _usage(f"I don't know `{truncate(' '.join(tokens), 80)}`.")


def _domain_command(raw: str, opts: dict[str, list[str]]) -> Command:
    dom, note = _domain(raw)
    selectors = tuple(dict.fromkeys(normalize_selector(s) for s in opts.get("selector", [])))
    ips = tuple(dict.fromkeys(normalize_ip(i) for i in opts.get("ip", [])))
    return Command("domain", target=dom, selectors=selectors, ips=ips, notes=(note,) if note else ())
