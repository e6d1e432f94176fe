"""One validator (issue 8): the CLI and Slack accept and refuse the same input with the same one-line error."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.slack.router import parse_command
from handlers.inputs import (
    InputError,
    normalize_domain,
    normalize_ip,
    normalize_selector,
    normalize_target,
)


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mailcheck: error: ")
    return err.removeprefix("mailcheck: error: ").rstrip("\n")


def _slack_error(text: str) -> str:
    cmd = parse_command(text)
    assert cmd.name == "usage", cmd
    assert "\n" not in cmd.error
    return cmd.error


BAD_DOMAINS = [
    "-x.example", "—rf.example", "exa_mple..com", "a" * 64 + ".com", ".".join(["a" * 60] * 5), "example",
    "1.2.3.4.5", "x.123", "xn--zz-.com", "xn--a.com", "☃.com", "-", "exam!ple.com", "http://", "@",
    "a@", "mx..example.com", "ex\x00ample.com", "x" * 5000 + ".com",
]


@pytest.mark.parametrize("bad", BAD_DOMAINS)
def test_domain_errors_match(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_error(["domain", "--", bad], capsys)
    assert cli == _slack_error(f"domain {bad}")
    assert len(cli) < 200


@pytest.mark.parametrize("bad", BAD_DOMAINS[:8])
def test_spf_domain_errors_match(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli_error(["spf", "--", bad, "192.0.2.1"], capsys) == _slack_error(f"spf {bad} 192.0.2.1")


BAD_IPS = ["-1.2.3.4", "256.1.1.1", "1.2.3", "fe80::1%eth0", "::ffff:zz", "1.2.3.4/24", "0x7f000001", "x" * 300]


@pytest.mark.parametrize("bad", BAD_IPS)
def test_ip_errors_match(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli_error(["ip", "--", bad], capsys) == _slack_error(f"ip {bad}")
    assert _cli_error(["domain", "example.com", f"--ip={bad}"], capsys) == _slack_error(
        f"domain example.com ip={bad}"
    )


@pytest.mark.parametrize("bad", ["-s1", "s!", "a..b", "x" * 64, "sel/1", "._domainkey"])
def test_selector_errors_match(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli_error(["domain", "example.com", f"--selector={bad}"], capsys) == _slack_error(
        f"domain example.com selector={bad}"
    )


@pytest.mark.parametrize("schedule", ["hourly", "daily 25:00", "daily 9", "weekly xyz 09:00", "weekly mon 7:60"])
def test_schedule_errors_match(schedule: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_error(["watch", "add", "example.com", "--channel", "C1", "--schedule", schedule], capsys)
    assert cli == _slack_error(f"watch example.com {schedule}")


@pytest.mark.parametrize("tz", ["Mars/Base", "../../etc/passwd", "Asia/Tokyo;rm"])
def test_time_zone_errors_match(tz: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_error(["watch", "add", "example.com", "--channel", "C1", "--tz", tz], capsys)
    assert cli == _slack_error(f"watch example.com daily 09:00 tz={tz}")


def test_the_router_uses_the_shared_schedule_parser() -> None:
    assert parse_command("watch example.com weekly Friday 7:05 tz=utc").schedule == "weekly fri 07:05"
    assert parse_command("watch example.com weekly Friday 7:05 tz=utc").tz == "UTC"
    assert parse_command("watch example.com daily").schedule == "daily 09:00"


@pytest.mark.parametrize(
    "text",
    ["-x", "--help", "domain -x", "domain --selector=x example.com", "ip -1", "spf -x 192.0.2.1",
     "watch -x", "unwatch --all", "-rf /", "—x", "domain example.com selector=-x", "domain example.com ip=-x"],
)
def test_nothing_option_like_is_a_target(text: str) -> None:
    assert parse_command(text).name == "usage"


@pytest.mark.parametrize(
    "fn", [normalize_domain, normalize_ip, normalize_selector, normalize_target],
)
@pytest.mark.parametrize("raw", ["-x", "--x", "-", "—x", " -x.example"])
def test_validators_refuse_options(fn: object, raw: str) -> None:
    with pytest.raises(InputError):
        fn(raw)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("日本語.jp", "xn--wgv71a119e.jp"),
        ("ＥＸＡＭＰＬＥ．ｃｏｍ", "example.com"),  # full-width forms typed with a Japanese IME
        ("例え。テスト", "xn--r8jz45g.xn--zckzah"),  # ideographic full stop
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008, non-transitional (as browsers)
        ("Bücher.Example.", "xn--bcher-kva.example"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        (".".join(["a" * 61] * 4) + ".co", ".".join(["a" * 61] * 4) + ".co"),  # 253 characters
    ],
)
def test_idna_and_length_rules(raw: str, value: str) -> None:
    assert normalize_domain(raw).value == value


def test_errors_are_short_one_liners_even_for_huge_input() -> None:
    for fn in (normalize_domain, normalize_ip, normalize_selector):
        with pytest.raises(InputError) as info:
            fn("x\n" * 50_000)
        assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_watch_targets() -> None:
    assert normalize_target("[2001:DB8::0:20]").value == "2001:db8::20"
    assert normalize_target("::ffff:192.0.2.1").value == "192.0.2.1"
    assert normalize_target("user@Example.com").value == "example.com"
