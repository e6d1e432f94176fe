"""Table definitions used by the queries (the schema itself is made by the
Alembic migrations in `bot/storage/migrations/versions/`; keep both in step).

Every table that holds workspace data has `team_id` in its key: queries always
filter on it, so one workspace never reads another's rows.

Times are stored as naive UTC `DateTime` (portable between SQLite and
PostgreSQL); the Store converts to and from aware UTC datetimes.
"""

from __future__ import annotations

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("target", String(255), nullable=False),
    Column("kind", String(8), nullable=False),  # domain | ip
    Column("selectors", Text, nullable=False),  # JSON list
    Column("schedule", String(64), nullable=False),
    Column("tz", String(64), nullable=False),
    Column("created_by", String(32)),
    Column("created_at", DateTime, nullable=False),
    Column("next_run_at", DateTime, nullable=False),
    Column("last_run_at", DateTime),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("channel_id", String(32), primary_key=True),
    Column("target", String(255), primary_key=True),
    Column("taken_at", DateTime, nullable=False),
    Column("report", Text, nullable=False),  # Report.to_dict() as JSON
)

digest_runs = Table(
    "digest_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("slot", DateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # scheduled | manual
    Column("watch_ids", Text, nullable=False),  # JSON list of watch ids
    Column("status", String(16), nullable=False),  # claimed | ready | posted | failed
    Column("claim_token", String(64), nullable=False),
    Column("claimed_at", DateTime, nullable=False),
    Column("lease_until", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("payload", Text),  # rendered messages (JSON) once computed
    Column("snapshots", Text),  # JSON {target: report} saved when posted
    Column("parts_posted", Integer, nullable=False),
    Column("posted_at", DateTime),
    Column("message_ts", Text),  # JSON list of posted message ts
    Column("error", Text),
)

settings = Table(
    "settings",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("scope", String(64), primary_key=True),  # team | channel:C123 | user:U123
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

events = Table(
    "seen_events",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("seen_at", DateTime, nullable=False),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("window_start", Integer, primary_key=True),  # epoch seconds
    Column("count", Integer, nullable=False),
)

# Receiver reports (DMARC aggregate / failure, TLS-RPT) from the IMAP worker, Slack
# uploads and the CLI; see bot/storage/reports.py. One row per report and scope.
reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),  # workspace, or "" for the operator's mailbox
    Column("dedupe_key", String(64), nullable=False),  # sha256 of type + reporter + report id
    Column("type", String(32), nullable=False),
    Column("org_name", String(255), nullable=False),
    Column("report_id", String(255), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("begin_at", DateTime),
    Column("end_at", DateTime),
    Column("received_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),  # imap | upload | cli
    Column("data", Text, nullable=False),  # ParsedReport.to_dict() as JSON, personal data removed
)

# One row per distinct check a digest needs (kind, target, DKIM selectors): the worker
# that claims it audits, everyone else who needs the same check in the reuse window
# reads its result. See bot/storage/target_checks.py.
target_checks = Table(
    "target_checks",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of kind + target + sorted selectors
    Column("target", String(255), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("lease_until", DateTime, nullable=False),
    Column("checked_at", DateTime),  # NULL while the owner audits
    Column("report", LargeBinary),  # zlib-compressed Report.to_dict() JSON; NULL = not kept
)

# slack_sdk's own table shapes, on the same database (queried for bot tokens).
slack_installations = SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations")
slack_bots = SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots")
slack_oauth_states = SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states")
