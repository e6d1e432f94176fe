"""The two cases mailcheck exists for (research/origin.md), pasted exactly as written there.

The admin redacted both before pasting (`to=,`, `mx*.hotmail.com[*.*.*.*]`, `<***@gmail.com>`,
`...:***:***`): that is the normal input. Each must come out right in the CLI (text, JSON,
Japanese), Slack-escaped, inside a full Postfix DSN, and as a Slack thread paste.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from handlers.bounce import analyse_bounce, extract_followup_targets, looks_like_bounce
from tests.slack_fakes import slack_escape as slack_paste
from tests.support.redact import slack_escape

SAMPLES = Path(__file__).resolve().parent / "bounce_samples"
ROOT = Path(__file__).resolve().parents[1]
CASE1 = (SAMPLES / "origin_case1.txt").read_text(encoding="utf-8")
CASE2 = (SAMPLES / "origin_case2.txt").read_text(encoding="utf-8")
CASE2_DSN = (SAMPLES / "origin_case2_postfix_dsn.eml").read_bytes()
CASE2_BODY = (SAMPLES / "origin_case2_ndr_body.txt").read_text(encoding="utf-8")

CASE1_ADVICE = ("provider.microsoft.consumer_silent_drop", "provider.microsoft.snds_jmrp")
CASE2_ADVICE = ("blocklist.delist", "postfix.ipv4_only_smtp", "ptr.set_reverse_dns", "provider.google.postmaster_tools")


def _cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "bounce", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def _case1_ok(b: Any) -> None:
    assert (b.reason, b.provider, b.status, b.reply_code) == ("delivered", "microsoft", "2.0.0", 250)
    # The recipient was emptied ("to=,"): reported as masked, not taken from the 250 reply.
    assert b.recipient is None and b.extra["recipient_masked"] is True
    assert b.remote_host == "mx*.hotmail.com" and b.remote_ip is None
    for rid in CASE1_ADVICE:
        assert rid in b.remediation
    assert b.permanent is None and b.hard is False


def _case2_ok(b: Any) -> None:
    assert (b.reason, b.provider, b.status, b.reply_code) == ("norelaying", "google", "5.7.1", 550)
    assert b.permanent is True and b.hard is False
    assert b.extra["recipient_masked"] is True
    assert b.remote_host == "gmail-smtp-in.l.google.com"
    # The sending IP is masked: IPv6 is noted, nothing is looked up.
    assert b.sender_ip is None and b.extra["sender_ip_version"] == 6
    for rid in CASE2_ADVICE:
        assert rid in b.remediation
    # The diagnostic is Google's own words, with no notice text glued in front.
    assert b.diagnostic.startswith("550 5.7.1 [2400:8500:1302:3134:157:7:***:***] The IP you're using")


@pytest.mark.parametrize("variant", ["verbatim", "slack", "slack-api"])
def test_case1_hotmail_accepted_line_as_pasted(variant: str) -> None:
    text = {"verbatim": CASE1, "slack": slack_escape(CASE1.encode()).decode(), "slack-api": slack_paste(CASE1)}[variant]
    assert looks_like_bounce(text)
    report = analyse_bounce(text)
    (b,) = report.bounces
    _case1_ok(b)
    assert extract_followup_targets(report)["sender_ips"] == []


@pytest.mark.parametrize("variant", ["verbatim", "slack", "slack-api", "dsn", "dsn-slack", "ndr-body"])
def test_case2_gmail_ipv6_refusal_as_pasted(variant: str) -> None:
    data: str | bytes = {
        "verbatim": CASE2,
        "slack": slack_escape(CASE2.encode()).decode(),
        "slack-api": slack_paste(CASE2),
        "dsn": CASE2_DSN,
        "dsn-slack": slack_escape(CASE2_DSN),
        "ndr-body": CASE2_BODY,
    }[variant]
    report = analyse_bounce(data)
    (b,) = report.bounces
    _case2_ok(b)
    assert extract_followup_targets(report)["sender_ips"] == []


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_both_cases_explain_themselves_in_both_languages(lang: str) -> None:
    (b1,) = analyse_bounce(CASE1, lang=lang).bounces
    (b2,) = analyse_bounce(CASE2, lang=lang).bounces
    if lang == "en":
        assert "SNDS" in b1.explanation and "masked" in b1.explanation
        assert "IPv6" in b2.explanation and "2400:8500:1302:3134:157:7:***:***" in b2.explanation
    else:
        assert "SNDS" in b1.explanation and "伏せ字" in b1.explanation
        assert "IPv6" in b2.explanation and "逆引き" in b2.explanation


def test_cli_json_has_permanent_in_every_record_and_the_case_fields() -> None:
    for path in (SAMPLES / "origin_case1.txt", SAMPLES / "origin_case2.txt", SAMPLES / "origin_case2_postfix_dsn.eml"):
        p = _cli(path, "--json")
        assert p.returncode in (0, 1), p.stderr
        (rec,) = json.loads(p.stdout)["bounces"]
        assert "permanent" in rec and "hard" in rec
    rec1 = json.loads(_cli(SAMPLES / "origin_case1.txt", "--json").stdout)["bounces"][0]
    assert rec1["recipient"] is None and rec1["recipient_masked"] is True and rec1["provider"] == "microsoft"
    rec2 = json.loads(_cli(SAMPLES / "origin_case2.txt", "--json").stdout)["bounces"][0]
    assert (rec2["reply_code"], rec2["status"], rec2["permanent"]) == (550, "5.7.1", True)
    assert rec2["sender_ip_version"] == 6


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_cli_text_says_permanent_or_temporary_not_hard_or_soft(lang: str) -> None:
    p = _cli(SAMPLES / "origin_case2.txt", "--lang", lang)
    out = p.stdout
    assert "(permanent)" in out if lang == "en" else "恒久的" in out
    assert "(soft)" not in out and "(hard)" not in out
    assert "sender_ip_masked: 2400:8500:1302:3134:157:7:***:***" in out
    p1 = _cli(SAMPLES / "origin_case1.txt", "--lang", lang)
    assert ("(recipient masked)" if lang == "en" else "伏せ字") in p1.stdout
    assert "provider=microsoft" in p1.stdout
    # The case's own notes (SNDS, the masked recipient) survive the CLI's localisation.
    (rec,) = json.loads(_cli(SAMPLES / "origin_case1.txt", "--json", "--lang", lang).stdout)["bounces"]
    assert "SNDS" in rec["explanation"]
    assert ("masked" if lang == "en" else "伏せ字") in rec["explanation"]


# --- as a Slack thread paste (the real app on loopback, tests/test_slack_app.py's harness) ----
from tests.test_slack_app import block_text, harness, paste_event  # noqa: E402,F401


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (CASE1, ("delivered", "microsoft", "2.0.0", "SNDS", "(recipient masked)")),
        (CASE2, ("norelaying", "google", "5.7.1", "550", "permanent failure", "IPv6")),
    ],
    ids=["case1", "case2"],
)
async def test_origin_case_pasted_in_a_slack_thread(harness, text: str, words: tuple[str, ...]) -> None:  # noqa: F811
    status, _ = await harness.event(paste_event("1700009000.000100", slack_paste(text)), "EvOrigin")
    assert status == 200
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    reply = harness.fake.posts()[0].params
    assert reply["thread_ts"] == "1700009000.000100"
    shown = block_text(reply)
    for w in words:
        assert w in shown, w
    assert "hard bounce" not in shown and "soft bounce" not in shown
