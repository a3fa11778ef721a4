"""Indexes the dashboard's pages need at 1,000 brands and 100,000 orders (bench/ui_pages.py):
one brand's imports per day and its order counts by status, and the undelivered part of the
outbox (the delivery queue page), which otherwise walks every delivered event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDELIVERED = "delivered_at IS NULL"


def upgrade() -> None:
    op.create_index(op.f("ix_orders_account_id_created_at"), "orders", ["account_id", "created_at"])
    op.create_index(op.f("ix_orders_account_id_status"), "orders", ["account_id", "status"])
    op.create_index("ix_outbox_undelivered", "outbox", ["id"], sqlite_where=sa.text(_UNDELIVERED),
                    postgresql_where=sa.text(_UNDELIVERED))
    op.create_index("ix_outbox_undelivered_account", "outbox", ["account_id", "id"],
                    sqlite_where=sa.text(_UNDELIVERED), postgresql_where=sa.text(_UNDELIVERED))


def downgrade() -> None:
    op.drop_index("ix_outbox_undelivered_account", table_name="outbox")
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
    op.drop_index(op.f("ix_orders_account_id_status"), table_name="orders")
    op.drop_index(op.f("ix_orders_account_id_created_at"), table_name="orders")
