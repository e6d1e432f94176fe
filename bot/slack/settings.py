"""Slack app settings from the environment (SPEC.md "Env")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "files:read",
    "files:write",
    "users:read",
)


@dataclass(frozen=True)
class SlackSettings:
    signing_secret: str = ""
    bot_token: str | None = None
    app_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    api_url: str | None = None  # Web API base URL override (tests, proxies); keeps its trailing slash
    port: int = 3000
    host: str = "0.0.0.0"
    database_url: str | None = None
    default_lang: str = "en"
    nameservers: str = ""  # MAILCHECK_NAMESERVERS
    dns_timeout: float = 3.0
    check_deadline: float = 45.0  # seconds a check may take before we answer "timed out"
    max_concurrent_checks: int = 32
    # MAILCHECK_CHECK_THREAD: run the check engines in their own event-loop thread
    # (bot/slack/runtime.py CheckLoop); "off" runs them on the loop that acks.
    check_thread: bool = True
    max_file_bytes: int = 2 * 1024 * 1024
    # MAILCHECK_MAX_LOG_MB: a shared mail log (plain or .gz) may be this large; it is read as a stream
    max_log_bytes: int = 20 * 1024 * 1024
    scopes: tuple[str, ...] = field(default=DEFAULT_SCOPES)
    redirect_uri: str | None = None
    run_scheduler: bool = True
    # (limit, window seconds); limit 0 = no limit. Shared by replicas through the store.
    rate_user: tuple[int, int] = (30, 60)  # MAILCHECK_RATE_USER: checks + analyses per user
    rate_team: tuple[int, int] = (300, 60)  # MAILCHECK_RATE_TEAM: checks + analyses per workspace

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings:
        e = os.environ if env is None else env
        api_url = e.get("SLACK_API_URL") or None
        if api_url and not api_url.endswith("/"):
            api_url += "/"  # slack_sdk joins with urljoin: without it the last segment is lost
        lang = (e.get("MAILCHECK_LANG") or "en").lower()
        scopes = tuple(s.strip() for s in (e.get("SLACK_SCOPES") or "").split(",") if s.strip())
        return cls(
            signing_secret=e.get("SLACK_SIGNING_SECRET", ""),
            bot_token=e.get("SLACK_BOT_TOKEN") or None,
            app_token=e.get("SLACK_APP_TOKEN") or None,
            client_id=e.get("SLACK_CLIENT_ID") or None,
            client_secret=e.get("SLACK_CLIENT_SECRET") or None,
            api_url=api_url,
            port=int(e.get("PORT") or 3000),
            host=e.get("HOST") or "0.0.0.0",
            database_url=e.get("DATABASE_URL") or None,
            default_lang="ja" if lang == "ja" else "en",
            nameservers=e.get("MAILCHECK_NAMESERVERS", ""),
            dns_timeout=float(e.get("MAILCHECK_DNS_TIMEOUT") or 3.0),
            check_deadline=float(e.get("MAILCHECK_CHECK_DEADLINE") or 45.0),
            max_log_bytes=int(float(e.get("MAILCHECK_MAX_LOG_MB") or 20) * 1024 * 1024),
            scopes=scopes or DEFAULT_SCOPES,
            redirect_uri=e.get("SLACK_REDIRECT_URI") or None,
            run_scheduler=(e.get("MAILCHECK_SCHEDULER", "on").lower() not in ("0", "off", "false", "no")),
            rate_user=parse_rate(e.get("MAILCHECK_RATE_USER"), (30, 60)),
            rate_team=parse_rate(e.get("MAILCHECK_RATE_TEAM"), (300, 60)),
            check_thread=(e.get("MAILCHECK_CHECK_THREAD", "on").lower() not in ("0", "off", "false", "no")),
        )

    def __repr__(self) -> str:  # never print secrets
        return (
            f"SlackSettings(mode={'socket' if self.socket_mode else 'http'}, oauth={self.oauth_enabled}, "
            f"api_url={self.api_url!r}, port={self.port}, lang={self.default_lang!r})"
        )

    __str__ = __repr__


def parse_rate(value: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """'30/60' -> (30, 60); '30' -> (30, default window); '0' or 'off' -> no limit."""
    if value is None or not value.strip():
        return default
    v = value.strip().lower()
    if v in ("off", "none", "0"):
        return (0, default[1])
    count, _, window = v.partition("/")
    try:
        n, w = int(count), int(window) if window else default[1]
    except ValueError as exc:
        raise ValueError(f"rate limit must look like COUNT/SECONDS (e.g. 30/60), got {value!r}") from exc
    if n < 0 or w < 1:
        raise ValueError(f"rate limit must look like COUNT/SECONDS (e.g. 30/60), got {value!r}")
    return (n, w)
