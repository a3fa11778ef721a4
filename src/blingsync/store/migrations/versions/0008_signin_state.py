"""The dashboard's sign-in throttle in the database (`signin_failures`), so every `serve` process
behind a balancer counts the same failures and a restart forgets none.

One new table: upgrading an existing database changes no row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_failures")),
    )
    op.create_index("ix_signin_failures_address", "signin_failures", ["address", "username_key", "failed_at"])
    op.create_index("ix_signin_failures_failed_at", "signin_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_signin_failures_failed_at", table_name="signin_failures")
    op.drop_index("ix_signin_failures_address", table_name="signin_failures")
    op.drop_table("signin_failures")
