"""Secrets: redacted from every log record; OAuth tokens encrypted at rest with
MAILCHECK_SECRET_KEY (SQLite and PostgreSQL); pasted bounces never reach the
database; old dedupe and rate-limit rows are purged."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from bot import redact
from bot.storage import Store
from bot.storage import tables as t
from tests import test_storage_backends as backends
from tests.slack_fakes import BOT_TOKEN, SIGNING_SECRET, slack_escape
from tests.test_slack_app import GMAIL_BOUNCE, Harness, harness, paste_event

db_url = backends.db_url  # fixture: SQLite and PostgreSQL
__all__ = ["harness"]

DQS_KEY = "abcdefghijklmnopqrstuvwxyz"  # shape of a Spamhaus DQS key (26 chars)
CLIENT_SECRET = "c0ffee0123456789c0ffee0123456789"
SECRET_KEY = Fernet.generate_key().decode()
# A rotating-token-shaped bot token, longer than slack_sdk's VARCHAR(200) once encrypted.
LONG_TOKEN = "xoxe.xoxb-1-" + "MS0yLTEyMzQ1Njc4OTAxMi0xMjM0NTY3ODkwMTIzLTk4NzY1NDMyMTA5ODc2" * 2
USER_TOKEN = "xoxp-1111-2222-3333-4444abcdef"

# Every logger the bot writes through, and the libraries' loggers that see requests.
LOGGERS = ["", "mailcheck", "mailcheck.slack", "mailcheck.slack.bolt", "mailcheck.serve", "bot.digest",
           "bot.storage.store", "bot.storage.crypto", "handlers.blocklists", "handlers.net", "slack_bolt",
           "slack_bolt.AsyncApp", "slack_sdk.web.async_base_client", "slack_sdk.http_retry", "aiohttp.access",
           "aiohttp.server", "sqlalchemy.engine", "asyncio"]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MAILCHECK_SPAMHAUS_DQS_KEY", DQS_KEY)
    monkeypatch.setenv("MAILCHECK_SECRET_KEY", SECRET_KEY)


def test_every_logger_redacts_tokens_and_secrets(secret_env: None) -> None:
    redact.install()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    names = sorted(set(LOGGERS) | set(logging.root.manager.loggerDict))
    secrets = [BOT_TOKEN, LONG_TOKEN, USER_TOKEN, "xapp-1-A111-222-abcdef", "xoxe-1-abcdefghij",
               SIGNING_SECRET, CLIENT_SECRET, DQS_KEY, SECRET_KEY]
    try:
        for name in names:
            lg = logging.getLogger(name)
            was = lg.disabled, lg.level, lg.propagate
            lg.disabled, lg.propagate = False, True
            lg.setLevel(logging.DEBUG)
            try:
                for s in secrets:
                    lg.debug("token %s", s)
                    lg.info(f"Authorization: Bearer {s}")
                    lg.warning("query %s.zen.dq.spamhaus.net", s)
                    lg.error("failed: %r", {"token": s})
                    try:
                        raise RuntimeError(f"bad {s}")
                    except RuntimeError:
                        lg.exception("with traceback")
            finally:
                lg.disabled, lg.level, lg.propagate = was[0], was[1], was[2]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    logged = out.getvalue()
    assert logged.count("[REDACTED]") >= len(names) * len(secrets) * 5
    for s in secrets:
        assert s not in logged, s
    assert "zen.dq.spamhaus.net" in logged  # the rest of the line survives


def test_redact_leaves_ordinary_text() -> None:
    assert redact.redact("550 5.7.1 blocked by xoxo-kisses and xapp") == "550 5.7.1 blocked by xoxo-kisses and xapp"
    assert redact.redact("t=xoxb-123-456-abc.") == "t=[REDACTED]."


async def _raw_token_rows(store: Store) -> str:
    async with store.engine.begin() as conn:
        rows = []
        for table in (t.slack_installations, t.slack_bots):
            rows += [repr(tuple(r)) for r in (await conn.execute(select(table))).all()]
    return "\n".join(rows)


async def test_tokens_encrypted_at_rest(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from slack_sdk.oauth.installation_store import Installation

    monkeypatch.delenv("SLACK_CLIENT_ID", raising=False)
    monkeypatch.delenv("MAILCHECK_SECRET_KEY", raising=False)
    store = await Store.open(db_url)
    try:
        # Key-less deployment: plaintext, works as before.
        plain = store.installation_store("111.222")
        await plain.async_save(Installation(app_id="A1", team_id="T8", user_id="U1", bot_token="xoxb-eight-888888",
                                            bot_id="B8", bot_user_id="UB8", installed_at=time.time()))
        assert await store.bot_token("T8") == "xoxb-eight-888888"

        # With the key: the rows hold no plaintext token, reads decrypt.
        monkeypatch.setenv("MAILCHECK_SECRET_KEY", SECRET_KEY)
        inst_store = store.installation_store("111.222")
        await inst_store.async_save(Installation(
            app_id="A1", team_id="T9", user_id="U1", bot_token=LONG_TOKEN, bot_refresh_token="xoxe-1-refresh-999",
            user_token=USER_TOKEN, bot_id="B1", bot_user_id="UB1", installed_at=time.time()))
        raw = await _raw_token_rows(store)
        assert LONG_TOKEN not in raw and USER_TOKEN not in raw and "xoxe-1-refresh-999" not in raw
        assert "enc1:" in raw
        bot = await inst_store.async_find_bot(enterprise_id=None, team_id="T9")
        assert bot is not None and bot.bot_token == LONG_TOKEN and bot.bot_refresh_token == "xoxe-1-refresh-999"
        inst = await inst_store.async_find_installation(enterprise_id=None, team_id="T9")
        assert inst is not None and inst.user_token == USER_TOKEN and inst.bot_token == LONG_TOKEN
        assert await store.bot_token("T9") == LONG_TOKEN
        # Rows written before the key was set stay readable.
        old = await inst_store.async_find_bot(enterprise_id=None, team_id="T8")
        assert old is not None and old.bot_token == "xoxb-eight-888888"

        # A process without the key cannot use encrypted tokens (and says so), but does not crash.
        monkeypatch.delenv("MAILCHECK_SECRET_KEY")
        assert await store.bot_token("T9") is None
        assert await store.bot_token("T8") == "xoxb-eight-888888"
    finally:
        await store.close()


async def test_pasted_bounce_never_reaches_the_database(harness: Harness) -> None:
    unique = "d2e1a72fcca58-7b0e1b5b6d4si1234567b3a.123"
    assert unique in GMAIL_BOUNCE
    status, _ = await harness.event(paste_event("1700009000.000100", slack_escape(GMAIL_BOUNCE)), "EvPaste")
    assert status == 200
    await harness.fake.wait_for(lambda: harness.fake.posts(), timeout=30)
    await harness.settle()
    dumped = []
    async with harness.store.engine.begin() as conn:
        for table in t.metadata.sorted_tables:
            dumped += [repr(tuple(r)) for r in (await conn.execute(select(table))).all()]
    everything = "\n".join(dumped)
    assert "1700009000.000100" in everything  # the dedupe row (channel, ts) is there ...
    for fragment in (unique, "someone@gmail.com", "gmail-smtp-in", "5.7.26"):
        assert fragment not in everything  # ... and nothing of the paste


async def test_purge_drops_old_dedupe_and_rate_limit_rows(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        assert await store.claim_event("T1", "EvOld")
        assert await store.rate_limit("T1:user:U1:work", 5, 60) == 0.0
        later = datetime.now(UTC) + timedelta(days=3)
        await store.purge(later)
        async with store.engine.begin() as conn:
            n_events = (await conn.execute(text("SELECT COUNT(*) FROM seen_events"))).scalar_one()
            n_limits = (await conn.execute(text("SELECT COUNT(*) FROM rate_limits"))).scalar_one()
        assert n_events == 0 and n_limits == 0
        assert await store.claim_event("T1", "EvOld")  # forgotten after the retention period
    finally:
        await store.close()


def test_settings_repr_has_no_secret(secret_env: None) -> None:
    from bot.slack.settings import SlackSettings

    s = SlackSettings.from_env({"SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN,
                                "SLACK_CLIENT_SECRET": CLIENT_SECRET, "SLACK_CLIENT_ID": "1.2"})
    for secret in (SIGNING_SECRET, BOT_TOKEN, CLIENT_SECRET):
        assert secret not in repr(s) and secret not in str(s)



