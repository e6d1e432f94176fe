"""Receiver reports (DMARC aggregate and failure reports, TLS-RPT), one row per
report and workspace, unique on (team_id, dedupe_key) so the same report that
arrives by mail and by upload is stored once.

Revision ID: 0003_reports
Revises: 0002_token_text
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_reports"
down_revision = "0002_token_text"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("org_name", sa.String(255), nullable=False),
        sa.Column("report_id", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("begin_at", sa.DateTime),
        sa.Column("end_at", sa.DateTime),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("team_id", "dedupe_key", name="uq_reports_team_key"),
    )
    op.create_index("ix_reports_team_domain_end", "reports", ["team_id", "domain", "end_at"])


def downgrade() -> None:
    op.drop_index("ix_reports_team_domain_end", table_name="reports")
    op.drop_table("reports")
