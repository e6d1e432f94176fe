"""Shared target checks: one audit per distinct digest target in a reuse window, whichever
worker or workspace needs it (bot/storage/target_checks.py).

Revision ID: 0004_target_checks
Revises: 0003_reports
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_target_checks"
down_revision = "0003_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_checks",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.DateTime, nullable=False),
        sa.Column("checked_at", sa.DateTime),
        sa.Column("report", sa.LargeBinary),
    )


def downgrade() -> None:
    op.drop_table("target_checks")
