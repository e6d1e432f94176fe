"""Property fuzzing of everything that reads user text (issue 8): never raises, bounded time.

Each target is a plain function of one generated value plus its strategy, kept
in `TARGETS`, so `tools/fuzz.py` can run the same properties far longer. The
bounce parser and the SPF parser have their own properties
(tests/test_bounce_robustness.py, tests/test_spf_parser.py); they are in
`TARGETS` for the long run only (`covered_elsewhere`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.router import CHECKS, Command, parse_command
from bot.slack.text import escape_slack, strip_mentions, truncate, unescape_slack
from handlers.inputs import InputError, normalize_domain, normalize_ip, normalize_selector, normalize_target
from handlers.schedule import Schedule, ScheduleError, parse_schedule, parse_schedule_spec, parse_tz
from tests.support.timing import cpu_timed

BOUND = 1.0  # seconds any one call may take on any input (the SPEC allows 10 s for a whole paste)


def _bounded(fn: Callable[[], Any], bound: float = BOUND) -> Any:
    out, took = cpu_timed(fn)  # CPU time: a busy CI machine does not count against it
    assert took < bound, f"took {took:.2f}s of CPU"
    return out


# -- strategies ----------------------------------------------------------------
_slack_bits = st.sampled_from(
    ["<", ">", "|", "&lt;", "&gt;", "&amp;", "<@U123>", "<@W9|bob>", "<#C1|general>", "<!here>", "<!subteam^S1|@t>",
     "<mailto:a@b.example|a@b.example>", "<http://x.example|x.example>", "<https://x.example/p?q=1&amp;r=2>", "\n",
     " ", "\u3000", "@", ":", "="]
)
slack_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(_slack_bits, st.text(max_size=12)), max_size=40).map("".join),
)
_words = st.sampled_from(
    ["domain", "ip", "spf", "watch", "unwatch", "watches", "digest", "now", "lang", "ja", "en", "workspace",
     "autodetect", "on", "off", "help", "bounce", "message", "example.com", "日本語.jp", "192.0.2.1",
     "2001:db8::1", "selector=s1", "s=a,b", "ip=192.0.2.9", "helo=mx.example", "sender=a@b.example",
     "tz=Asia/Tokyo", "tz=../x", "daily", "weekdays", "weekly", "mon", "friday", "09:00", "25:61", "-x", "--help",
     "<http://e.example|e.example>", "a@b.example", "[::1]", "xn--wgv71a119e.jp", "x" * 70, "."]
)
command_text = st.one_of(
    slack_text,
    st.lists(st.one_of(_words, st.text(max_size=10)), max_size=12).map(" ".join),
)
_dom_alphabet = st.sampled_from([*list("abcxyz019-_.@:/[]<>|%'\" 。．ßü日本語xn-"), "xn--", "\u200b", "\u3000"])
domainish = st.one_of(st.text(max_size=80), st.lists(_dom_alphabet, max_size=60).map("".join))
_ip_alphabet = st.sampled_from([*list("0123456789abcdef:.[]%/ -xX"), "ffff", "::", "ipv6:", "64:ff9b::"])
ipish = st.one_of(st.text(max_size=60), st.lists(_ip_alphabet, max_size=30).map("".join), st.ip_addresses().map(str))
_sched_words = st.sampled_from(
    ["daily", "weekdays", "weekly", "mon", "Monday", "sun", "xyz", "9:00", "09:00", "23:59", "24:00", "7:5",
     "tz=UTC", "tz=Asia/Tokyo", "tz=Etc/GMT+9", "tz=..", "tz=", " ", "\t"]
)
schedule_text = st.one_of(st.text(max_size=80), st.lists(_sched_words, max_size=6).map(" ".join))
tz_text = st.one_of(
    st.text(max_size=40),
    st.text(st.sampled_from(list("AEUaeiostuzT/_+-.0123456789:")), max_size=40),
    st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York", "Etc/GMT-14", "posixrules", "Factory", "zone.tab"]),
)
_msg_bits = st.sampled_from(
    [b"From: a@b.example\r\n", b"To: c@d.example\n", b"Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\n",
     b"Received: from x ([10.0.0.1]) by y; Mon, 1 Jan 2024 00:00:00 +0000\n",
     b"Received: from mail.example (mail.example [192.0.2.1])\n\tby mx.example\n",
     b"Authentication-Results: mx.example; spf=pass smtp.mailfrom=b.example; dkim=fail header.d=b.example\n",
     b"DKIM-Signature: v=1; a=rsa-sha256; d=b.example; s=s1; h=from; bh=; b=\n",
     b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x; s=y; b=\n",
     b"Content-Type: multipart/mixed; boundary=\"b\"\n", b"--b\n", b"--b--\n",
     b"Content-Type: text/html; charset=shift_jis\n", b"Content-Disposition: attachment; filename*=UTF-8''a%E3%80%80b.pdf\n",
     b"List-Unsubscribe: <https://u.example/x>\n", b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\n",
     b"\n", b"<a href=\"http://x.example/\">x</a>", b"\x1b$B", b"\x82\xa0", b"\xff\xfe", b"=\n", b"\r"]
)
message_bytes = st.one_of(st.binary(max_size=3000), st.lists(st.one_of(_msg_bits, st.binary(max_size=30)), max_size=60).map(b"".join))
bounce_bytes = st.one_of(st.binary(max_size=3000), st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass")))
spf_text = st.one_of(
    st.text(max_size=600),
    st.lists(st.text(st.sampled_from(list("v=spf1 aimxptrincludexists:/.%{}-_+~?!0123456789ahilorsv")), max_size=40),
             max_size=30).map(lambda t: "v=spf1 " + " ".join(t)),
)


# -- properties ------------------------------------------------------------------
def check_unescape(text: str) -> None:
    out = _bounded(lambda: unescape_slack(text))
    assert isinstance(out, str) and len(out) <= len(text)
    assert unescape_slack(escape_slack(text)) == text  # what we escape comes back as typed
    assert "<" not in escape_slack(text) and ">" not in escape_slack(text)
    _bounded(lambda: strip_mentions(text))
    cut = truncate(escape_slack(text), 50)
    assert len(cut) <= 50


def check_router(text: str) -> None:
    cmd: Command = _bounded(lambda: parse_command(text))
    assert isinstance(cmd, Command)
    if cmd.name == "usage":
        assert cmd.error and "\n" not in cmd.error and len(cmd.error) < 300
        return
    for ip in cmd.ips:
        assert normalize_ip(ip) == ip
    if cmd.name in ("domain", "spf"):
        assert normalize_domain(cmd.target).value == cmd.target
        assert not cmd.target.startswith("-")
    if cmd.name == "watch":
        assert normalize_target(cmd.target).value == cmd.target
        assert parse_schedule(cmd.schedule).text == cmd.schedule
    for sel in cmd.selectors:
        assert normalize_selector(sel) == sel
    if cmd.name in CHECKS:
        again = parse_command(cmd.canonical())
        assert (again.name, again.target, again.ips, again.selectors) == (cmd.name, cmd.target, cmd.ips, cmd.selectors)


def check_domain(text: str) -> None:
    try:
        n = _bounded(lambda: normalize_domain(text))
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    v = n.value
    assert v.isascii() and v == v.lower() and len(v) <= 253 and not v.startswith("-")
    assert all(0 < len(lab) <= 63 for lab in v.split("."))
    assert normalize_domain(v).value == v


def check_ip(text: str) -> None:
    try:
        v = _bounded(lambda: normalize_ip(text))
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    assert normalize_ip(v) == v
    try:
        sel = normalize_selector(text)
    except InputError:
        return
    assert normalize_selector(sel) == sel


def check_schedule(text: str) -> None:
    try:
        s = _bounded(lambda: parse_schedule(text))
    except ScheduleError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
    else:
        assert isinstance(s, Schedule) and parse_schedule(s.text) == s
    try:
        _bounded(lambda: parse_schedule_spec(text, "UTC"))
    except ScheduleError as exc:
        assert "\n" not in str(exc)


def check_tz(text: str) -> None:
    try:
        zone = _bounded(lambda: parse_tz(text))
    except ScheduleError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
    else:
        assert zone.key


def check_message(data: bytes) -> None:
    from handlers.message import diagnose_message, looks_like_message

    _bounded(lambda: looks_like_message(data.decode("utf-8", "replace")))
    report = _bounded(lambda: asyncio.run(diagnose_message(data, None, live=False)), bound=3.0)
    assert report.kind == "message"


def check_bounce(data: bytes) -> None:
    from handlers.bounce import analyse_bounce

    assert _bounded(lambda: analyse_bounce(data), bound=3.0).kind == "bounce"


def check_spf(text: str) -> None:
    from handlers.spf.parser import SPFRecord, SPFSyntaxError, parse_record

    assert isinstance(_bounded(lambda: parse_record(text)), (SPFRecord, SPFSyntaxError))


@dataclass(frozen=True)
class Target:
    check: Callable[[Any], None]
    strategy: st.SearchStrategy[Any]
    examples: int = 200  # in the test suite; tools/fuzz.py runs far more
    covered_elsewhere: bool = False


TARGETS: dict[str, Target] = {
    "slack_unescape": Target(check_unescape, slack_text, 300),
    "router": Target(check_router, command_text, 400),
    "normalize_domain": Target(check_domain, domainish, 400),
    "normalize_ip_selector": Target(check_ip, ipish, 300),
    "schedule": Target(check_schedule, schedule_text, 300),
    "time_zone": Target(check_tz, tz_text, 200),
    "message": Target(check_message, message_bytes, 60),
    "bounce": Target(check_bounce, bounce_bytes, 0, covered_elsewhere=True),
    "spf": Target(check_spf, spf_text, 0, covered_elsewhere=True),
}


@pytest.mark.parametrize("name", [n for n, t in TARGETS.items() if not t.covered_elsewhere])
def test_never_raises_and_is_bounded(name: str) -> None:
    target = TARGETS[name]
    run = settings(
        max_examples=target.examples,
        deadline=None,  # _bounded() measures each call: no flaky per-example deadline
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        database=None,
    )(given(target.strategy)(target.check))
    run()


@pytest.mark.parametrize(
    "text",
    ["<" * 50_000, "<@U" * 30_000, "&amp;" * 40_000, "<http://x|" * 20_000 + ">", "domain " + "a." * 60_000 + "com",
     "watch x.example " + "daily " * 20_000, "ip " + "1" * 100_000, "\u3000" * 100_000],
)
def test_huge_commands_are_answered_quickly(text: str) -> None:
    check_router(text)
    check_unescape(text)
    check_domain(text)
    check_schedule(text)
