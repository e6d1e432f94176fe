"""Token columns as TEXT: OAuth tokens encrypted at rest (MAILCHECK_SECRET_KEY,
Fernet) are longer than slack_sdk's VARCHAR(200). SQLite ignores VARCHAR
lengths, so only PostgreSQL needs the change.

Revision ID: 0002_token_text
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_token_text"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

COLUMNS = {
    "slack_installations": ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, cols in COLUMNS.items():
        for col in cols:
            op.alter_column(table, col, type_=sa.Text(), existing_type=sa.String(200))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, cols in COLUMNS.items():
        for col in cols:
            op.alter_column(table, col, type_=sa.String(200), existing_type=sa.Text())
