"""Storage shared by the Slack app, the CLI and the digest scheduler.

    store = await Store.open()          # url None -> $DATABASE_URL -> default SQLite file; migrates
    await store.claim_event(team_id, event_id)      # True only the first time (any replica)
    await store.get_setting(team_id, "channel:C1", "autodetect") / set_setting(...)
    await store.add_watch(team_id, channel_id, "example.com", "daily 09:00", "Asia/Tokyo")
    await store.remove_watch(team_id, channel_id, "example.com")
    await store.list_watches(team_id, channel_id)
    await store.rate_limit(f"{team_id}:user:{user_id}", limit=20, window_s=60)  # 0.0 or seconds to wait
    store.installation_store(client_id) / store.oauth_state_store()   # slack_sdk async stores
    await store.bot_token(team_id)
    jobs = await store.claim_due(now)   # digests (see bot/digest.py)
    await store.close()

Default database: `$XDG_DATA_HOME/mailcheck/mailcheck.db`, else
`~/.local/share/mailcheck/mailcheck.db`. `sqlite:///PATH`, `postgres://...`
and `postgresql://...` work as given.
"""

from bot.storage.store import (
    DEFAULT_LEASE_S,
    DEFAULT_SCHEDULE,
    DigestJob,
    Store,
    StoreError,
    Watch,
    WatchInputError,
    classify_target,
    is_transient_error,
)
from bot.storage.url import DatabaseURLError, default_sqlite_path, resolve_url

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_SCHEDULE",
    "DatabaseURLError",
    "DigestJob",
    "Store",
    "StoreError",
    "Watch",
    "WatchInputError",
    "classify_target",
    "default_sqlite_path",
    "is_transient_error",
    "resolve_url",
]
