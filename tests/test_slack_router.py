"""`/mailcheck` parsing and Slack text handling: pure functions, no Slack."""

from __future__ import annotations

import pytest

from bot.slack.router import Command, parse_command, parse_schedule
from bot.slack.runtime import classify, looks_like_headers
from bot.slack.text import escape_slack, mentions_user, strip_mentions, truncate, unescape_slack


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", Command("domain", target="example.com")),
        ("  Example.COM.  ", Command("domain", target="example.com")),
        ("domain example.com selector=s1 selector=s2", Command("domain", target="example.com",
                                                                selectors=("s1", "s2"))),
        ("domain example.com s=k1,k2 ip=192.0.2.1", Command("domain", target="example.com",
                                                            selectors=("k1", "k2"), ips=("192.0.2.1",))),
        ("ip 192.0.2.1 2001:DB8::0:20", Command("ip", ips=("192.0.2.1", "2001:db8::20"))),
        ("192.0.2.1", Command("ip", ips=("192.0.2.1",))),
        ("spf example.com 192.0.2.1", Command("spf", target="example.com", ips=("192.0.2.1",))),
        ("spf example.com 192.0.2.1 helo=mx.example.com", Command("spf", target="example.com",
                                                                  ips=("192.0.2.1",), helo="mx.example.com")),
        ("watch example.com", Command("watch", target="example.com", schedule="daily 09:00")),
        ("watch example.com weekly Monday 7:05 tz=Asia/Tokyo", Command("watch", target="example.com",
                                                                      schedule="weekly mon 07:05",
                                                                      tz="Asia/Tokyo")),
        ("watch 192.0.2.1 weekdays 18:00", Command("watch", target="192.0.2.1", schedule="weekdays 18:00")),
        ("unwatch example.com", Command("unwatch", target="example.com")),
        ("watches", Command("watches")),
        ("digest now", Command("digest", value="now")),
        ("lang ja", Command("lang", value="ja")),
        ("lang en workspace", Command("lang", value="en", scope="team")),
        ("autodetect OFF", Command("autodetect", value="off")),
        ("bounce", Command("bounce")),
        ("message", Command("message")),
        ("help", Command("help")),
        ("", Command("help")),
        ("HELP", Command("help")),
    ],
)
def test_parse(text: str, expected: Command) -> None:
    got = parse_command(text)
    assert (got.name, got.target, got.selectors, got.ips, got.schedule, got.tz, got.value, got.scope, got.helo) == (
        expected.name, expected.target, expected.selectors, expected.ips, expected.schedule, expected.tz,
        expected.value, expected.scope, expected.helo)


@pytest.mark.parametrize(
    "text",
    ["frobnicate", "domain", "domain a b", "ip", "ip not-an-ip", "spf example.com", "watch", "unwatch",
     "digest", "digest later", "lang fr", "autodetect maybe", "watch example.com hourly",
     "watch example.com daily 25:00", "watch example.com tz=../../etc", "domain exa mple.com",
     "what is going on with our mail", "-rf /"],
)
def test_unknown_or_bad_input_is_usage_not_an_error(text: str) -> None:
    cmd = parse_command(text)
    assert cmd.name == "usage"
    assert cmd.error


def test_slack_formatted_input() -> None:
    # Slack links what looks like a URL or address.
    assert parse_command("<http://example.com|example.com>").target == "example.com"
    cmd = parse_command("domain <mailto:postmaster@example.com|postmaster@example.com>")
    assert cmd.target == "example.com" and cmd.notes
    assert parse_command("domain\u3000example.com").target == "example.com"  # full-width space
    assert parse_command("domain 日本語.jp").target == "xn--wgv71a119e.jp"


def test_canonical_round_trips() -> None:
    for text in ("domain example.com selector=s1 ip=192.0.2.1", "ip 192.0.2.1 192.0.2.2",
                 "spf example.com 192.0.2.1 helo=mx.example.com sender=a@example.com"):
        cmd = parse_command(text)
        assert parse_command(cmd.canonical()) == cmd


def test_parse_schedule() -> None:
    assert parse_schedule([]) == "daily 09:00"
    assert parse_schedule(["weekly", "fri"]) == "weekly fri 09:00"
    with pytest.raises(ValueError):
        parse_schedule(["monthly", "1"])


def test_unescape_slack() -> None:
    assert unescape_slack("&lt;a@b.example&gt;: host mx[192.0.2.1] said: 550 &amp; more") == \
        "<a@b.example>: host mx[192.0.2.1] said: 550 & more"
    assert unescape_slack("see <https://support.google.com/mail/answer/81126#authentication>") == \
        "see https://support.google.com/mail/answer/81126#authentication"
    assert unescape_slack("to <mailto:a@b.example|a@b.example> via <http://x.example|x.example>") == \
        "to a@b.example via x.example"
    assert unescape_slack("hi <@U123> in <#C1|general> <!here>") == "hi @U123 in #general @here"
    assert unescape_slack("&amp;lt;") == "&lt;"
    assert unescape_slack(None) == ""


def test_escape_and_mentions() -> None:
    assert escape_slack("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert strip_mentions("<@UBOT> hello <@U2>", "UBOT") == "hello <@U2>"
    assert mentions_user("hey <@UBOT>", "UBOT") and not mentions_user("hey <@U2>", "UBOT")
    assert truncate("a" * 10 + "&amp;", 13) == "a" * 10 + "…"


def test_classify() -> None:
    assert classify("Nov 22 10:00:00 mx postfix/smtp[123]: ABC: to=<a@gmail.com>, relay=gmail-smtp-in"
                    ".l.google.com[142.250.1.27]:25, delay=1, dsn=5.7.26, status=bounced (host said: 550 "
                    "5.7.26 unauthenticated)") == "bounce"
    headers = ("Received: from mx.example.com (mx.example.com [192.0.2.1])\n"
               "Authentication-Results: mx.google.com; spf=pass\nFrom: a@example.com\nSubject: hi\n")
    assert looks_like_headers(headers) and classify(headers) == "message"
    assert classify("shall we have lunch?") is None
    assert classify("") is None
