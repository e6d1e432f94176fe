"""Secrets never reach a log line: `install()` makes every LogRecord — from any
logger, ours, slack_bolt's, slack_sdk's, aiohttp's, SQLAlchemy's — redacted when
it is created (a LogRecord factory), and adds `RedactingFilter` to the root
handlers for records made before install.

Redacted: Slack tokens by shape (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xoxe.xoxp-,
xapp-), and the exact values of SLACK_SIGNING_SECRET, SLACK_CLIENT_SECRET,
SLACK_BOT_TOKEN, SLACK_APP_TOKEN, MAILCHECK_SPAMHAUS_DQS_KEY, MAILCHECK_SECRET_KEY
and the password in DATABASE_URL, plus anything passed to `add_secret`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any
from urllib.parse import urlsplit

MASK = "[REDACTED]"
SECRET_ENV = ("SLACK_SIGNING_SECRET", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
              "SLACK_USER_TOKEN", "MAILCHECK_SPAMHAUS_DQS_KEY", "MAILCHECK_SECRET_KEY")
TOKEN_RE = re.compile(r"\b(?:xox(?:e\.xox)?[abcdeprs]|xapp)-[A-Za-z0-9-]{4,}")
_MIN_SECRET = 6  # shorter values would redact ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None
_installed = False


def add_secret(value: str | None) -> None:
    """Redact this exact value from now on."""
    global _secret_re
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def secrets_from_env(env: Any = None) -> None:
    e = os.environ if env is None else env
    for name in SECRET_ENV:
        add_secret(e.get(name))
    url = e.get("DATABASE_URL")
    if url:
        try:
            add_secret(urlsplit(url).password)
        except ValueError:
            pass


def redact(text: str) -> str:
    if not text:
        return text
    out = TOKEN_RE.sub(MASK, text)
    pattern = _secret_re
    if pattern is not None:
        out = pattern.sub(MASK, out)
    return out


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Format the message once, redact it, drop the args; redact exception text too."""
    if getattr(record, "_mailcheck_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep logging's own error path
        return record
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._mailcheck_redacted = True  # type: ignore[attr-defined]
    return record


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install() -> None:
    """Idempotent: secrets from the environment, the record factory, root handler filters."""
    global _installed
    secrets_from_env()
    with _lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return redact_record(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
            _installed = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
