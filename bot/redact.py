"""Secrets never reach a log line: `install()` makes every LogRecord — from any
logger, ours, slack_bolt's, slack_sdk's, aiohttp's, SQLAlchemy's — redacted when
it is created (a LogRecord factory), and adds `RedactingFilter` to the root
handlers for records made before install.

The same `redact()` guards everything the bot *says*: `scrub()` cleans a Web API
payload, an ack or a response_url body (bot/slack/outbound.py, bot/webclient.py),
and `scrub_report()` a Report before the CLI prints it — a pasted bounce or
header that quotes a token is answered without the token.

Redacted: Slack tokens by shape (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xoxe.xoxp-,
xapp-), Slack webhook / response URLs (hooks.slack.com/...: whoever has one can
post), the password of any `scheme://user:password@host` URL, PEM private key
blocks, and the exact values of SLACK_SIGNING_SECRET, SLACK_CLIENT_SECRET,
SLACK_BOT_TOKEN, SLACK_APP_TOKEN, MAILCHECK_SPAMHAUS_DQS_KEY, MAILCHECK_SECRET_KEY
and the password in DATABASE_URL, plus anything passed to `add_secret` — and such a
value of 12+ characters cut off by a truncation mark (`…`, `...`) or the end of the text.
Every pattern is linear in the text (tests/test_regex_safety.py, test_slack_secrets.py).
"""

from __future__ import annotations

import dataclasses
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
# Incoming webhooks (services/), workflow and trigger webhooks, and the response_url of a
# command or action (commands/, actions/): each is a bearer credential in its path.
WEBHOOK_RE = re.compile(r"https?://hooks\.slack(?:-gov)?\.com/[A-Za-z]+/[A-Za-z0-9_/%-]+")
# RFC 3986 userinfo "user:password@": keep the scheme, user and host, drop the password.
URL_PASSWORD_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/?#@<>|]{1,256}:)[^\s/?#@<>|]{1,256}@")
# RFC 7468 armor (and the legacy Proc-Type / DEK-Info headers). The body class never
# matches "-----", so each scan stops at the next armor line: linear even for many
# BEGIN lines without an END.
PEM_KEY_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:[A-Za-z0-9+/=\s:,.]|-(?!----))*"
    r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----)?"
)
_MIN_SECRET = 6  # shorter values would redact ordinary words
# A long secret cut off by a truncation ("secret=8f742231b1…", or at the very end) is
# masked from its first _HEAD characters on: a reply that shortened a quote shows none
# of it. Only before a truncation mark: a password that starts like an ordinary word
# must not mask that word everywhere.
_HEAD = 8
_CUT_MARKS = ("…", "...")
_LONG_SECRET = 12

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None
_by_head: dict[str, list[str]] = {}
_installed = False


def add_secret(value: str | None) -> None:
    """Redact this exact value from now on."""
    global _secret_re, _by_head
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        by_head: dict[str, list[str]] = {}
        for secret in sorted(_secrets, key=len, reverse=True):
            head = secret[:_HEAD] if len(secret) >= _LONG_SECRET else secret
            by_head.setdefault(head, []).append(secret)
        _by_head = by_head
        _secret_re = re.compile("|".join(re.escape(h) for h in sorted(by_head, key=len, reverse=True)))


def _common_prefix(text: str, start: int, secret: str) -> int:
    n = 0
    for a, b in zip(text[start:start + len(secret)], secret, strict=False):
        if a != b:
            break
        n += 1
    return n


def _mask_literals(text: str, pattern: re.Pattern[str]) -> str:
    """Mask each configured secret, or the part of it that `text` holds (a cut-off quote)."""
    by_head = _by_head
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        start = m.start()
        if start < pos:
            continue
        end = -1
        for secret in by_head.get(m.group(0), ()):
            n = _common_prefix(text, start, secret)
            at = start + n
            if n == len(secret) or (n >= _HEAD and (at == len(text) or text.startswith(_CUT_MARKS, at))):
                end = max(end, at)
        if end < 0:
            continue
        out += (text[pos:start], MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def secrets_from_env(env: Any = None) -> None:
    e = os.environ if env is None else env
    for name in SECRET_ENV:
        add_secret(e.get(name))
    add_secret(url_password(e.get("DATABASE_URL")))


def url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact(text: str) -> str:
    if not text:
        return text
    out = TOKEN_RE.sub(MASK, text)
    if "hooks.slack" in out:
        out = WEBHOOK_RE.sub(MASK, out)
    if "://" in out:
        out = URL_PASSWORD_RE.sub(lambda m: m.group(1) + MASK + "@", out)
    if "PRIVATE KEY-----" in out:
        out = PEM_KEY_RE.sub(MASK, out)
    pattern = _secret_re
    if pattern is not None:
        out = _mask_literals(out, pattern)
    return out


def scrub(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, tuples, strings) with every string redacted;
    other values (numbers, None, bytes) unchanged. Dict keys are left alone."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    to_dict = getattr(value, "to_dict", None)  # slack_sdk Block / Attachment / View objects
    if callable(to_dict):
        return scrub(to_dict())
    return value


def scrub_report(report: Any) -> Any:
    """Redact every string inside a Report (dataclasses, lists, dicts), in place; returns it."""
    _scrub_fields(report, 0)
    return report


def _scrub_fields(obj: Any, depth: int) -> Any:
    if depth > 50:  # reports are shallow; this only guards against a cycle
        return obj
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, list):
        obj[:] = [_scrub_fields(v, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_scrub_fields(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _scrub_fields(obj[k], depth + 1)
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            clean = _scrub_fields(value, depth + 1)
            if clean is not value:
                setattr(obj, f.name, clean)
    return obj


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
