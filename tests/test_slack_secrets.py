"""The bot never repeats a secret: a pasted bounce, a slash-command argument or
a CLI input that quotes Slack tokens, webhook URLs or the bot's own configured
secrets is answered — in the thread, on the response URL, in the ack, on the
terminal and in --json — with those values masked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot import redact
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, slack_escape
from tests.test_slack_app import GMAIL_BOUNCE, Harness, harness, paste_event

__all__ = ["harness"]

ROOT = Path(__file__).resolve().parents[1]
DQS_KEY = "qwertyuiopasdfghjklzxcvbnm"  # shape of a Spamhaus DQS key
CLIENT_SECRET = "0123456789abcdef0123456789abcdef"
DB_PASSWORD = "s3cr3t-db-pass"
USER_TOKEN = "xoxp-2222-3333-4444-5555abcdef"
APP_TOKEN = "xapp-1-A0123-456789-deadbeef"
REFRESH_TOKEN = "xoxe-1-My0xLTEyMzQ1Njc4OTAx"
WEBHOOK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
OTHER_DB_PASSWORD = "hunter2hunter2"

# Everything a careless paste might carry; none of it may come back.
SECRETS = [BOT_TOKEN, SIGNING_SECRET, DQS_KEY, CLIENT_SECRET, DB_PASSWORD, USER_TOKEN, APP_TOKEN, REFRESH_TOKEN,
           WEBHOOK, OTHER_DB_PASSWORD, "XXXXXXXXXXXXXXXXXXXXXXXX"]


def leaky_bounce() -> str:
    """A real-looking bounce whose SMTP reply (quoted by the answer) is full of secrets."""
    reply = (f"    550 5.7.1 rejected: token={BOT_TOKEN} secret={SIGNING_SECRET} user={USER_TOKEN}\n"
             f"    app={APP_TOKEN} refresh={REFRESH_TOKEN} dqs={DQS_KEY}.zen.dq.spamhaus.net\n"
             f"    client_secret={CLIENT_SECRET} hook {WEBHOOK}\n"
             f"    db postgresql://mailcheck:{DB_PASSWORD}@db.internal/mailcheck and"
             f" mysql://root:{OTHER_DB_PASSWORD}@10.0.0.5/app\n")
    return GMAIL_BOUNCE.replace("    d2e1a72fcca58", reply + "    d2e1a72fcca58")


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "MAILCHECK_SPAMHAUS_DQS_KEY": DQS_KEY,
        "DATABASE_URL": f"postgresql+asyncpg://mailcheck:{DB_PASSWORD}@127.0.0.1:1/none",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def assert_clean(what: str, text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{what} repeats {s!r}"


def everything_posted(h: Harness) -> str:
    calls = [c.params for c in h.fake.calls] + [c.params for c in h.fake.hooks]
    return json.dumps(calls, ensure_ascii=False)


async def test_pasted_bounce_with_tokens_is_answered_without_them(secret_env: dict[str, str],
                                                                  harness: Harness) -> None:
    await harness.event(paste_event("1700009000.000100", slack_escape(leaky_bounce())), "EvLeak")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    reply = harness.fake.posts()[0].params
    text = json.dumps(reply, ensure_ascii=False)
    assert "5.7.26" in text and "[REDACTED]" in text  # the bounce is still explained
    assert "zen.dq.spamhaus.net" in text  # only the secret part of a line is cut
    assert_clean("the thread reply", everything_posted(harness))


async def test_mention_in_thread_of_a_leaky_paste_is_answered_without_them(secret_env: dict[str, str],
                                                                             harness: Harness) -> None:
    parent = paste_event("1700009100.000100", slack_escape(leaky_bounce()))
    harness.fake.messages[("C1", "1700009100.000100")] = parent
    mention = {"type": "app_mention", "channel": "C1", "user": "U1", "ts": "1700009101.000100",
               "thread_ts": "1700009100.000100", "text": "<@UBOT> what happened?"}
    await harness.event(mention, "EvLeakMention")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    assert "5.7.26" in json.dumps(harness.fake.posts()[0].params)
    assert_clean("the mention reply", everything_posted(harness))


@pytest.mark.parametrize("argument", [
    f"{BOT_TOKEN} {SIGNING_SECRET}",  # unknown input is echoed in the usage hint
    f"domain {USER_TOKEN}.example",
    f"domain good.example selector={APP_TOKEN}",
    f"spf good.example 192.0.2.1 helo={DQS_KEY}.example sender=a@{CLIENT_SECRET}.example",
    f"watch {WEBHOOK}",
])
async def test_slash_command_argument_is_never_echoed(secret_env: dict[str, str], harness: Harness,
                                                      argument: str) -> None:
    status, ack, _elapsed, _hook = await harness.command(argument)
    assert status == 200
    await harness.settle()
    assert_clean("the ack", json.dumps(ack, ensure_ascii=False))
    assert_clean("the response_url / Web API posts", everything_posted(harness))


async def test_usage_hint_that_cuts_a_secret_shows_none_of_it(secret_env: dict[str, str],
                                                               harness: Harness) -> None:
    status, ack, _elapsed, _hook = await harness.command("x" * 68 + " " + SIGNING_SECRET)
    assert status == 200 and "x" * 68 in ack["text"]
    assert SIGNING_SECRET[:8] not in json.dumps(ack)


def test_redaction_masks_shapes_and_configured_values(secret_env: dict[str, str]) -> None:
    redact.secrets_from_env()
    out = redact.redact(leaky_bounce())
    assert_clean("redact()", out)
    assert "gmail-smtp-in.l.google.com" in out
    assert "postgresql://mailcheck:[REDACTED]@db.internal/mailcheck" in out
    # A reply that cut a quote mid-secret shows none of it.
    assert redact.redact(f"secret={SIGNING_SECRET[:14]}…") == "secret=[REDACTED]…"
    assert redact.redact(f"dqs {DQS_KEY[:9]}") == "dqs [REDACTED]"
    # A secret that merely starts like ordinary text doesn't mask that text.
    redact.add_secret("mailcheck-db-password")
    assert redact.redact("mailcheck help · mailcheck-db-password") == "mailcheck help · [REDACTED]"
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    assert redact.redact(f"DKIM key:\n{key}\nend") == "DKIM key:\n[REDACTED]\nend"
    # Ordinary mail text survives.
    for plain in ("mailto:postmaster@example.com", "https://support.google.com/mail/answer/81126#authentication",
                  "550 5.7.1 user@example.com: Recipient address rejected"):
        assert redact.redact(plain) == plain


@pytest.mark.parametrize("unit", [
    "-----BEGIN PRIVATE KEY-----\n",  # many key headers, no END
    "-----BEGIN PRIVATE KEY-----\nAAAA- ",
    "smtp://user:",  # URL userinfo that never reaches '@'
    "https://hooks.slack.com/services/",
    "8f742231b10e8888…",  # cut-off prefixes of a configured secret
])
def test_redaction_is_linear_on_hostile_text(unit: str) -> None:
    """Everything posted is redacted, so redaction must cost what the text's size costs:
    four times the text may take about four times as long, never sixteen."""
    from tests.support.timing import cpu_timed

    redact.add_secret(SIGNING_SECRET)
    small = unit * 5_000 + "!"
    big = unit * 20_000 + "!"
    redact.redact(small)  # warm-up
    _out, t_small = cpu_timed(lambda: redact.redact(small))
    _out, t_big = cpu_timed(lambda: redact.redact(big))
    assert t_big < 10 * max(t_small, 0.002), (t_small, t_big)


def test_redaction_scrubs_nested_payloads() -> None:
    payload = {"text": f"a {BOT_TOKEN}", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                  "text": USER_TOKEN}}],
               "count": 3, "flag": None}
    clean = redact.scrub(payload)
    assert clean == {"text": "a [REDACTED]", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                      "text": "[REDACTED]"}}],
                     "count": 3, "flag": None}
    assert payload["text"] == f"a {BOT_TOKEN}"  # a copy: the caller's data is not changed


def _cli(args: list[str], stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, **env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=full, timeout=120)


@pytest.mark.parametrize("json_out", [False, True])
def test_cli_bounce_never_prints_pasted_secrets(secret_env: dict[str, str], json_out: bool) -> None:
    args = ["bounce", "-"] + (["--json"] if json_out else [])
    proc = _cli(args, leaky_bounce(), secret_env)
    assert proc.returncode in (0, 1), proc.stderr
    assert "5.7.26" in proc.stdout and "[REDACTED]" in proc.stdout
    assert_clean("mailcheck bounce", proc.stdout + proc.stderr)
    if json_out:
        json.loads(proc.stdout)


@pytest.mark.parametrize("json_out", [False, True])
def test_cli_message_never_prints_pasted_secrets(secret_env: dict[str, str], json_out: bool) -> None:
    headers = (f"Return-Path: <news@weak.example>\nFrom: News <news@weak.example>\nTo: a@example.com\n"
               f"Subject: your token {BOT_TOKEN} and {WEBHOOK}\nX-Debug: {SIGNING_SECRET} {DQS_KEY}\n"
               f"Authentication-Results: mx.example; spf=fail smtp.mailfrom=news@weak.example\n"
               f"Date: Mon, 17 Nov 2025 18:00:00 +0000\nMessage-ID: <1@weak.example>\n\n"
               f"body {USER_TOKEN}\n")
    args = ["message", "-", "--offline"] + (["--json"] if json_out else [])
    proc = _cli(args, headers, secret_env)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.strip()
    assert_clean("mailcheck message", proc.stdout + proc.stderr)




async def test_every_web_api_client_posts_redacted_but_authenticates_with_the_real_token() -> None:
    """bot/webclient.py builds the app's, each OAuth workspace's and the digest poster's client."""
    from bot.webclient import make_web_client
    from tests.slack_fakes import FakeSlack

    fake = await FakeSlack().start()
    try:
        client = make_web_client(BOT_TOKEN, fake.api_url)
        await client.chat_postMessage(channel="C1", text=f"digest {USER_TOKEN}",
                                      blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": WEBHOOK}}])
        await client.chat_update(channel="C1", ts="1.2", text=f"edit {APP_TOKEN}")
        await client.oauth_v2_access(client_id="123.456", client_secret=CLIENT_SECRET, code="xoxb-like-code-1234")
    finally:
        await fake.close()
    posted, updated, oauth = fake.calls
    assert posted.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert posted.params["text"] == "digest [REDACTED]"
    assert posted.params["blocks"][0]["text"]["text"] == "[REDACTED]"
    assert updated.params["text"] == "edit [REDACTED]"
    assert oauth.params["code"] == "xoxb-like-code-1234"  # the call's own credentials go as given
