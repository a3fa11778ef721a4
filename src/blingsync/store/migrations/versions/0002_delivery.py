"""Delivery: a sink per account (`sinks`) and the outbox columns the relay needs (a claim's
lease, the replay that restarts the retry horizon, the last attempt's duration).

Plain `add_column`/`drop_column` rather than batch mode: SQLite (3.35+) adds and drops a
column that no index or constraint names in place, while a batch rebuild would have to copy
the outbox with its partial index and AUTOINCREMENT intact.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("last_attempt_ms", sa.Integer(), nullable=True))
    op.create_table(
        "sinks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=True),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sinks_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sinks")),
        sa.UniqueConstraint("account_id", name=op.f("uq_sinks_account_id")),
    )


def downgrade() -> None:
    op.drop_table("sinks")
    op.drop_column("outbox", "last_attempt_ms")
    op.drop_column("outbox", "replayed_at")
    op.drop_column("outbox", "leased_until")
