"""The real Slack app in HTTP mode on loopback, signed requests, a local Slack
Web API recording every call, and the real DNS world for the checks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.models.blocks import Block

from bot.serve import build_web_app
from bot.slack import SlackSettings, create_app, runtime_of
from bot.slack.runtime import Runtime
from bot.storage import Store
from tests.slack_fakes import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER,
    SIGNING_SECRET,
    FakeSlack,
    action_body,
    event_body,
    signed_headers,
    slack_escape,
    slash_body,
)

GMAIL_BOUNCE = """This is the mail system at host mail.weak.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<someone@gmail.com>: host gmail-smtp-in.l.google.com[142.250.102.27] said:
    550-5.7.26 This mail has been blocked because the sender is
    unauthenticated. Gmail requires all senders to authenticate with either
    SPF or DKIM. 550-5.7.26 550-5.7.26  Authentication results: 550-5.7.26
    DKIM = did not pass 550-5.7.26  SPF [weak.example] with ip: [192.0.2.10] =
    did not pass 550-5.7.26 550-5.7.26  For instructions on setting up
    authentication, go to 550 5.7.26
    https://support.google.com/mail/answer/81126#authentication
    d2e1a72fcca58-7b0e1b5b6d4si1234567b3a.123 - gsmtp (in reply to end of DATA
    command)
"""


@dataclass
class Harness:
    fake: FakeSlack
    rt: Runtime
    server: TestServer
    session: aiohttp.ClientSession
    store: Store

    @property
    def url(self) -> str:
        return str(self.server.make_url("/slack/events"))

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str, float]:
        t0 = time.perf_counter()
        async with self.session.post(self.url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
            return resp.status, text, time.perf_counter() - t0

    async def command(self, text: str, **kw: Any) -> tuple[int, dict[str, Any], float, str]:
        hook = self.fake.new_hook()
        body = slash_body(text, hook, **kw)
        status, raw, elapsed = await self.post(body, signed_headers(body))
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"text": raw}
        return status, data, elapsed, hook

    async def answer(self, text: str, **kw: Any) -> dict[str, Any]:
        """What the user ends up seeing for a store-backed command (watch, lang ...): the
        ack itself, or, when the store took longer than the ack may wait and the ack said
        'working on it', the message that followed on the response URL."""
        from bot.slack.messages import text as message_text

        status, ack, _elapsed, hook = await self.command(text, **kw)
        assert status == 200, ack
        if ack.get("text") not in (message_text("en", "working"), message_text("ja", "working")):
            return ack
        await self.fake.wait_for(lambda: self.hooks_to(hook), timeout=30)
        return self.hooks_to(hook)[0]

    async def event(self, event: dict[str, Any], event_id: str, extra: dict[str, str] | None = None
                    ) -> tuple[int, str]:
        body = event_body(event, event_id=event_id)
        headers = signed_headers(body, content_type="application/json")
        headers.update(extra or {})
        status, raw, _ = await self.post(body, headers)
        return status, raw

    async def action(self, action_id: str, value: str, **kw: Any) -> tuple[int, str]:
        hook = self.fake.new_hook()
        body = action_body(action_id, value, hook, **kw)
        status, _raw, _ = await self.post(body, signed_headers(body))
        return status, hook

    def hooks_to(self, hook: str) -> list[dict[str, Any]]:
        suffix = hook.rsplit("/", 1)[-1]
        return [c.params for c in self.fake.hooks if c.method == f"hook/{suffix}"]

    async def settle(self) -> None:
        await self.rt.idle(30)


@pytest.fixture
async def harness(dns_world: Any, tmp_path: Path, request: Any) -> AsyncIterator[Harness]:
    # A test may ask for other settings: @pytest.mark.parametrize("harness", [{...}], indirect=True)
    overrides: dict[str, Any] = getattr(request, "param", None) or {}
    fake = await FakeSlack().start()
    store = await Store.open(f"sqlite:///{tmp_path}/mailcheck.db")
    settings = SlackSettings(**{
        "signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN, "api_url": fake.api_url,
        "nameservers": dns_world.nameserver_spec, "dns_timeout": 1.0, "check_deadline": 20.0,
        **overrides,
    })
    app = create_app(settings, store=store)
    server = TestServer(build_web_app(app), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    h = Harness(fake, runtime_of(app), server, session, store)
    try:
        yield h
    finally:
        await h.rt.shutdown(30)
        await session.close()
        await server.close()
        await store.close()
        await fake.close()


def all_blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = msg.get("blocks") or []
    for b in blocks:  # every block posted parses and validates as a slack_sdk model
        parsed = Block.parse(b)
        assert parsed is not None
        parsed.to_dict()
    assert len(blocks) <= 50
    return list(blocks)


def block_text(msg: dict[str, Any]) -> str:
    return json.dumps(msg.get("blocks") or [], ensure_ascii=False) + (msg.get("text") or "")


def action_values(msg: dict[str, Any]) -> dict[str, str]:
    out = {}
    for b in msg.get("blocks") or []:
        if b.get("type") == "actions":
            for e in b["elements"]:
                out[e["action_id"]] = e["value"]
    return out


# -- slash commands -----------------------------------------------------------------------
async def test_domain_audit_posted_via_response_url(harness: Harness) -> None:
    status, ack, elapsed, hook = await harness.command("good.example")
    assert status == 200
    assert "Checking" in ack["text"] and "good.example" in ack["text"]
    assert ack.get("response_type") == "ephemeral"
    assert elapsed < 3.0  # Slack's limit; benchmarks/slack_ack.py measures the real latency
    await harness.fake.wait_for(lambda: harness.hooks_to(hook))
    await harness.settle()
    msgs = harness.hooks_to(hook)
    first = msgs[0]
    blocks = all_blocks(first)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "Domain audit: good.example"
    assert first["response_type"] == "ephemeral"
    values = action_values(msgs[-1])
    assert set(values) == {"mailcheck_recheck", "mailcheck_details", "mailcheck_lang"}
    assert json.loads(values["mailcheck_recheck"])["c"] == "domain good.example"
    assert not harness.fake.posts()  # the response_url worked: no fallback


async def test_ack_arrives_while_slow_check_runs(harness: Harness) -> None:
    """The ack never waits for a check. Slack's limit is 3 s; the slow audit below needs
    at least two full 1 s DNS timeouts, so an ack that waited for it would miss that."""
    status, ack, elapsed, hook = await harness.command("slow.example")
    assert status == 200 and "slow.example" in ack["text"]
    assert elapsed < 3.0, elapsed
    # The audit of slow.example (a zone that never answers) is still running ...
    assert harness.rt.tasks
    assert not harness.hooks_to(hook)
    # ... and another user's command is acked at once meanwhile, and answered first:
    # an SPF evaluation of a zone that answers takes milliseconds, the slow audit >= 2 s.
    t0 = time.perf_counter()
    status2, ack2, elapsed2, hook2 = await harness.command("spf good.example 192.0.2.1", user="U2")
    assert status2 == 200 and elapsed2 < 3.0, elapsed2
    assert "good.example" in ack2["text"]
    await harness.fake.wait_for(lambda: harness.hooks_to(hook2), timeout=20)
    assert not harness.hooks_to(hook), "the slow audit should still be running"
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=40)
    assert time.perf_counter() - t0 < 40
    text = block_text(harness.hooks_to(hook)[0])
    assert "slow.example" in text
    await harness.settle()


async def test_help_and_unknown_input(harness: Harness) -> None:
    status, ack, elapsed, _hook = await harness.command("help")
    assert status == 200 and elapsed < 3.0  # Slack's ack limit
    assert "/mailcheck example.com" in block_text(ack)
    all_blocks(ack)
    status, ack, _e, _hook2 = await harness.command("frobnicate the widgets")
    assert status == 200
    assert "I don't know" in block_text(ack) and "/mailcheck help" in block_text(ack)
    status, ack, _e, _h = await harness.command("domain not_a_domain!")
    assert status == 200 and "not a valid domain" in block_text(ack)
    status, ack, _e, _h = await harness.command("bounce")
    assert "thread" in block_text(ack)
    await harness.settle()
    assert not harness.fake.hooks and not harness.fake.posts()


async def test_bad_or_stale_signature_is_401_and_does_nothing(harness: Harness) -> None:
    hook = harness.fake.new_hook()
    body = slash_body("good.example", hook)
    bad = signed_headers(body, secret="not-the-secret")
    status, _raw, _ = await harness.post(body, bad)
    assert status == 401
    stale = signed_headers(body, timestamp=int(time.time()) - 600)
    status, _raw, _ = await harness.post(body, stale)
    assert status == 401
    status, _raw, _ = await harness.post(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    ev = event_body({"type": "message", "channel": "C1", "user": "U1", "ts": "1.0", "text": GMAIL_BOUNCE},
                    event_id="EvBad")
    status, _raw, _ = await harness.post(ev, signed_headers(ev, secret="nope", content_type="application/json"))
    assert status == 401
    await asyncio.sleep(0.3)
    await harness.settle()
    assert not harness.fake.hooks and not harness.fake.posts()
    assert not harness.rt.tasks


async def test_url_verification(harness: Harness) -> None:
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    status, raw, _ = await harness.post(body, signed_headers(body, content_type="application/json"))
    assert status == 200
    assert json.loads(raw) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert not harness.fake.api("auth.test")


# -- thread paste ------------------------------------------------------------------------
def paste_event(ts: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "ts": ts,
            "event_ts": ts, "text": text, **extra}


async def test_thread_paste_of_gmail_bounce_gets_threaded_reply(harness: Harness) -> None:
    status, _ = await harness.event(paste_event("1700000100.000200", slack_escape(GMAIL_BOUNCE)), "Ev1")
    assert status == 200
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    posts = harness.fake.posts()
    assert len(posts) >= 1
    reply = posts[0].params
    assert reply["channel"] == "C1"
    assert reply["thread_ts"] == "1700000100.000200"
    text = block_text(reply)
    assert "someone@gmail.com" in text and "authfailure" in text and "5.7.26" in text
    assert "google" in text
    all_blocks(reply)
    assert posts[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"


async def test_reply_inside_existing_thread_uses_thread_ts(harness: Harness) -> None:
    ev = paste_event("1700000300.000300", slack_escape(GMAIL_BOUNCE), thread_ts="1700000299.000100")
    await harness.event(ev, "Ev2")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    assert harness.fake.posts()[0].params["thread_ts"] == "1700000299.000100"


async def test_retries_and_duplicate_event_ids_reply_once(harness: Harness) -> None:
    ev = paste_event("1700000400.000100", slack_escape(GMAIL_BOUNCE))
    await harness.event(ev, "EvDup")
    await harness.event(ev, "EvDup", {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    await harness.event(ev, "EvDup", {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    # The same message under another event id (e.g. a second replica's delivery).
    await harness.event(ev, "EvOther")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    await asyncio.sleep(0.2)
    assert len(harness.fake.posts()) == 1


async def test_bot_messages_and_edits_are_ignored(harness: Harness) -> None:
    text = slack_escape(GMAIL_BOUNCE)
    await harness.event(paste_event("1.1", text, bot_id="B999", bot_profile={"name": "other"}), "EvB1")
    await harness.event({**paste_event("1.2", text, bot_id="B999", subtype="bot_message"), "user": None},
                        "EvB2")
    await harness.event(paste_event("1.3", text, bot_id=BOT_ID, user=BOT_USER), "EvB3")
    await harness.event({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "1.5",
                         "message": paste_event("1.4", text), "previous_message": paste_event("1.4", "x")},
                        "EvB4")
    await harness.event({"type": "message", "subtype": "message_deleted", "channel": "C1", "ts": "1.6",
                         "deleted_ts": "1.4"}, "EvB5")
    await harness.event(paste_event("1.7", "lunch at noon? &lt;3"), "EvB6")  # not a bounce
    await asyncio.sleep(0.5)
    await harness.settle()
    assert not harness.fake.posts()


async def test_mention_in_thread_analyses_parent(harness: Harness) -> None:
    parent = paste_event("1700000500.000100", slack_escape(GMAIL_BOUNCE))
    harness.fake.messages[("C1", "1700000500.000100")] = parent
    mention = {"type": "app_mention", "channel": "C1", "user": "U2", "ts": "1700000600.000100",
               "thread_ts": "1700000500.000100", "text": f"<@{BOT_USER}> why did this bounce?"}
    await harness.event(mention, "EvM1")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    replies = harness.fake.api("conversations.replies")
    assert replies and replies[0].params["ts"] == "1700000500.000100"
    post = harness.fake.posts()[0].params
    assert post["thread_ts"] == "1700000500.000100"
    assert "authfailure" in block_text(post)


async def test_mention_and_message_for_one_post_reply_once(harness: Harness) -> None:
    text = f"<@{BOT_USER}> " + slack_escape(GMAIL_BOUNCE)
    as_message = paste_event("1700000700.000100", text)
    as_mention = {**as_message, "type": "app_mention"}
    await harness.event(as_message, "EvX1")
    await harness.event(as_mention, "EvX2")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    await asyncio.sleep(0.2)
    posts = harness.fake.posts()
    assert len(posts) == 1
    assert "authfailure" in block_text(posts[0].params)  # the mention's own text was analysed


async def test_mention_with_a_domain_runs_the_audit_in_thread(harness: Harness) -> None:
    mention = {"type": "app_mention", "channel": "C1", "user": "U2", "ts": "1700000800.000100",
               "text": f"<@{BOT_USER}> <http://good.example|good.example>"}
    await harness.event(mention, "EvM2")
    await harness.fake.wait_for(lambda: harness.fake.posts(), timeout=30)
    await harness.settle()
    post = harness.fake.posts()[0].params
    assert post["thread_ts"] == "1700000800.000100"
    assert "Domain audit: good.example" in block_text(post)


async def test_attached_eml_file_is_downloaded_and_analysed(harness: Harness) -> None:
    harness.fake.files["F1"] = GMAIL_BOUNCE.encode()
    ev = paste_event("1700000900.000100", "", subtype="file_share",
                     files=[{"id": "F1", "name": "bounce.eml", "mimetype": "message/rfc822", "size": 900,
                             "url_private": harness.fake.file_url("F1")}])
    await harness.event(ev, "EvF1")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    assert harness.fake.downloads[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    post = harness.fake.posts()[0].params
    assert post["thread_ts"] == "1700000900.000100" and "authfailure" in block_text(post)


async def test_a_file_saved_as_utf16_is_read_like_utf8(harness: Harness) -> None:
    # Windows "Unicode" text: UTF-16 with a byte order mark.
    harness.fake.files["F3"] = GMAIL_BOUNCE.encode("utf-16")
    ev = paste_event("1700000920.000100", "", subtype="file_share",
                     files=[{"id": "F3", "name": "bounce.txt", "mimetype": "text/plain", "size": 1800,
                             "url_private": harness.fake.file_url("F3")}])
    await harness.event(ev, "EvF3")
    await harness.fake.wait_for(lambda: harness.fake.posts())
    await harness.settle()
    post = harness.fake.posts()[0].params
    assert post["thread_ts"] == "1700000920.000100" and "authfailure" in block_text(post)


async def test_file_from_untrusted_host_is_not_fetched(harness: Harness) -> None:
    ev = paste_event("1700000950.000100", "", subtype="file_share",
                     files=[{"id": "F2", "name": "bounce.eml", "size": 900,
                             "url_private": "http://169.254.169.254/latest/meta-data"}])
    await harness.event(ev, "EvF2")
    await asyncio.sleep(0.3)
    await harness.settle()
    assert not harness.fake.downloads and not harness.fake.posts()


async def test_autodetect_off_per_channel(harness: Harness) -> None:
    ack = await harness.answer("autodetect off", channel="C9")
    assert "off" in block_text(ack)
    await harness.event({**paste_event("1700001000.000100", slack_escape(GMAIL_BOUNCE)), "channel": "C9"},
                        "EvA1")
    await asyncio.sleep(0.3)
    await harness.settle()
    assert not harness.fake.posts()
    # Still on elsewhere, and a mention still works in C9.
    await harness.event({**paste_event("1700001001.000100", slack_escape(GMAIL_BOUNCE)), "channel": "C8"},
                        "EvA2")
    await harness.fake.wait_for(lambda: len(harness.fake.posts()) == 1)
    harness.fake.messages[("C9", "1700001000.000100")] = {
        **paste_event("1700001000.000100", slack_escape(GMAIL_BOUNCE)), "channel": "C9"}
    await harness.event({"type": "app_mention", "channel": "C9", "user": "U1", "ts": "1700001002.000100",
                         "thread_ts": "1700001000.000100", "text": f"<@{BOT_USER}>"}, "EvA3")
    await harness.fake.wait_for(lambda: len(harness.fake.posts()) == 2)
    await harness.settle()


# -- language, buttons, fallbacks ------------------------------------------------------------
async def test_lang_switch_to_japanese(harness: Harness) -> None:
    ack = await harness.answer("lang ja")
    assert "日本語" in block_text(ack)
    status, ack, _e, hook = await harness.command("good.example")
    assert "確認しています" in ack["text"]
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=30)
    await harness.settle()
    msgs = harness.hooks_to(hook)
    assert msgs[0]["blocks"][0]["text"]["text"] == "ドメイン監査: good.example"
    all_blocks(msgs[0])
    # The language button shows the same report in English, in place.
    value = action_values(msgs[-1])["mailcheck_lang"]
    assert json.loads(value)["l"] == "en"
    status, hook2 = await harness.action("mailcheck_lang", value)
    assert status == 200
    await harness.fake.wait_for(lambda: harness.hooks_to(hook2))
    await harness.settle()
    switched = harness.hooks_to(hook2)
    assert switched[0]["replace_original"] is True
    assert switched[0]["blocks"][0]["text"]["text"] == "Domain audit: good.example"
    assert not harness.fake.api("chat.postMessage")


async def test_slack_locale_sets_default_language(harness: Harness) -> None:
    harness.fake.locales["U7"] = "ja-JP"
    _s, _ack, _e, hook = await harness.command("ip 192.0.2.1", user="U7")
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=30)
    await harness.settle()
    assert harness.hooks_to(hook)[0]["blocks"][0]["text"]["text"].startswith("IP レピュテーション")
    assert harness.fake.api("users.info")[0].params.get("include_locale") in (True, "true", "1", 1)


async def test_details_and_recheck_buttons(harness: Harness) -> None:
    _s, _ack, _e, hook = await harness.command("domain weak.example")
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=30)
    await harness.settle()
    values = action_values(harness.hooks_to(hook)[-1])
    _st, dhook = await harness.action("mailcheck_details", values["mailcheck_details"])
    await harness.fake.wait_for(lambda: harness.hooks_to(dhook))
    await harness.settle()
    details = harness.hooks_to(dhook)
    assert any("Full report (JSON)" in block_text(m) for m in details)
    for m in details:
        all_blocks(m)
    _st, rhook = await harness.action("mailcheck_recheck", values["mailcheck_recheck"])
    await harness.fake.wait_for(lambda: harness.hooks_to(rhook), timeout=30)
    await harness.settle()
    assert "Domain audit: weak.example" in block_text(harness.hooks_to(rhook)[0])


async def test_expired_response_url_falls_back_to_chat_post_message(harness: Harness) -> None:
    harness.fake.hook_status = 404
    _s, _ack, _e, hook = await harness.command("ip 192.0.2.1", channel="C5")
    await harness.fake.wait_for(lambda: harness.fake.posts(), timeout=30)
    await harness.settle()
    assert harness.hooks_to(hook)  # tried first
    post = harness.fake.posts()[0].params
    assert post["channel"] == "C5" and "IP reputation" in block_text(post)


async def test_watch_unwatch_watches(harness: Harness) -> None:
    ack = await harness.answer("watch good.example weekdays 08:30 tz=Asia/Tokyo", channel="C3")
    text = block_text(ack)
    assert "Watching *good.example*" in text and "weekdays 08:30" in text and "Asia/Tokyo" in text
    ack = await harness.answer("watch 192.0.2.1", channel="C3")  # tz from the Slack profile
    assert "Asia/Tokyo" in block_text(ack)
    ack = await harness.answer("watches", channel="C3")
    assert "good.example" in block_text(ack) and "192.0.2.1" in block_text(ack)
    ack = await harness.answer("watches", channel="C4")
    assert "Nothing is watched" in block_text(ack)
    ack = await harness.answer("unwatch good.example", channel="C3")
    assert "Stopped watching" in block_text(ack)
    ack = await harness.answer("watch good.example hourly", channel="C3")
    assert "schedule must be" in block_text(ack)
    await harness.settle()


async def test_healthz_and_metrics(harness: Harness) -> None:
    await harness.command("help")
    async with harness.session.get(harness.server.make_url("/healthz")) as resp:
        assert resp.status == 200 and (await resp.json())["ok"] is True
    async with harness.session.get(harness.server.make_url("/metrics")) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert 'mailcheck_slack_commands_total{subcommand="help"} 1.0' in text
    assert "mailcheck_slack_ack_seconds_bucket" in text
    assert "mailcheck_analyses_total" in text and "mailcheck_errors_total" in text
    assert SIGNING_SECRET not in text and BOT_TOKEN not in text


async def test_secrets_never_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):
        _s, _a, _e, hook = await harness.command("ip 192.0.2.1")
        await harness.event(paste_event("1700003000.000100", slack_escape(GMAIL_BOUNCE)), "EvLog")
        await harness.fake.wait_for(lambda: harness.hooks_to(hook) and harness.fake.posts(), timeout=30)
        await harness.settle()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert BOT_TOKEN not in logged and SIGNING_SECRET not in logged
    assert BOT_TOKEN not in repr(harness.rt.settings) and SIGNING_SECRET not in repr(harness.rt.settings)


DELIVERED_MESSAGE = """Return-Path: <news@weak.example>
Received: from mail.weak.example (mail.weak.example [192.0.2.10])
        by mx.google.com with ESMTPS id abc123
        for <someone@gmail.com>; Mon, 17 Nov 2025 10:00:00 -0800 (PST)
Authentication-Results: mx.google.com;
       spf=fail (google.com: domain of news@weak.example does not designate 192.0.2.10 as permitted sender) smtp.mailfrom=news@weak.example;
       dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=weak.example
From: Weak News <news@weak.example>
To: someone@gmail.com
Subject: hi
Date: Mon, 17 Nov 2025 18:00:00 +0000
Message-ID: <1@weak.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

hi
"""


async def test_pasted_message_headers_get_the_message_diagnosis(harness: Harness) -> None:
    await harness.event(paste_event("1700005000.000100", slack_escape(DELIVERED_MESSAGE)), "EvMsg")
    await harness.fake.wait_for(lambda: harness.fake.posts(), timeout=30)
    await harness.settle()
    post = harness.fake.posts()[0].params
    assert post["thread_ts"] == "1700005000.000100"
    text = block_text(post)
    assert "Message diagnosis" in text
    for m in harness.fake.posts():
        all_blocks(m.params)


async def test_digest_now_posts_to_the_channel(harness: Harness) -> None:
    ack = await harness.answer("digest now", channel="C6")
    assert "Nothing is watched" in block_text(ack)
    assert "Watching" in block_text(await harness.answer("watch good.example", channel="C6"))
    ack = await harness.answer("digest now", channel="C6")
    assert "Running the digest" in block_text(ack)
    await harness.fake.wait_for(lambda: any(c.params.get("channel") == "C6" for c in harness.fake.posts()),
                                timeout=40)
    await harness.settle()
    digest = next(c.params for c in harness.fake.posts() if c.params.get("channel") == "C6")
    assert "good.example" in block_text(digest)


async def test_digest_now_audits_in_the_check_thread_not_on_the_loop_that_acks(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A digest's audits are as heavy as any check: they run where checks run."""
    import threading

    import bot.digest

    threads: list[str] = []
    real = bot.digest.audit_target

    async def recorded(watch: Any, resolver: Any) -> Any:
        threads.append(threading.current_thread().name)
        return await real(watch, resolver)

    monkeypatch.setattr(bot.digest, "audit_target", recorded)
    await harness.answer("watch good.example", channel="C7")
    await harness.answer("digest now", channel="C7")
    await harness.fake.wait_for(lambda: any(c.params.get("channel") == "C7" for c in harness.fake.posts()),
                                timeout=40)
    await harness.settle()
    assert threads == ["mailcheck-checks"]


async def test_direct_message_is_answered_like_a_mention(harness: Harness) -> None:
    dm = {"type": "message", "channel": "D1", "channel_type": "im", "user": "U1", "ts": "1700006000.000100",
          "text": "ip 192.0.2.1"}
    await harness.event(dm, "EvDM")
    await harness.fake.wait_for(lambda: harness.fake.posts(), timeout=30)
    await harness.settle()
    post = harness.fake.posts()[0].params
    assert post["channel"] == "D1" and "IP reputation" in block_text(post)


async def test_digest_row_recheck_button_carries_a_bare_target(harness: Harness) -> None:
    _st, hook = await harness.action("mailcheck_recheck", "good.example", ephemeral=False)
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=30)
    await harness.settle()
    assert "Domain audit: good.example" in block_text(harness.hooks_to(hook)[0])


def _report_signed_by(domain: str, selector: str) -> dict[str, Any]:
    """A stored DMARC aggregate report (as ReportStore keeps it) whose mail was DKIM-signed
    for `domain` with `selector`."""
    return {"type": "dmarc-aggregate", "org_name": "google.com", "report_id": f"r-{selector}", "domain": domain,
            "begin": None, "end": None, "messages": 40, "dmarc_pass": 40, "dmarc_fail": 0,
            "sources": [{"ip": "192.0.2.10", "messages": 40, "dmarc": "pass", "spf_aligned": True,
                         "dkim_aligned": True, "disposition": "none", "ptr": "", "provider": "",
                         "dkim": [{"domain": domain, "selector": selector, "result": "pass", "messages": 40}]}]}


async def test_a_domain_audit_checks_the_selectors_its_receiver_reports_saw(harness: Harness) -> None:
    """DNS can't list DKIM selectors; the receivers' reports name the ones in use. A custom
    selector (`s2048`, not a common name) is checked once a report has shown it."""
    from bot.storage.reports import ReportStore
    from tests.slack_fakes import TEAM

    _s, _ack, _e, hook = await harness.command("domain msg.example")
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=40)
    before = "".join(block_text(m) for m in harness.hooks_to(hook))
    assert "s2048" not in before
    await ReportStore.of(harness.store).add(TEAM, [_report_signed_by("msg.example", "s2048")], source="upload")
    _s, _ack, _e, hook = await harness.command("domain msg.example")
    await harness.fake.wait_for(lambda: harness.hooks_to(hook), timeout=40)
    await harness.settle()
    after = "".join(block_text(m) for m in harness.hooks_to(hook))
    assert "s2048" in after
