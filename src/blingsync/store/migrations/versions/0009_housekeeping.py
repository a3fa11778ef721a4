"""Indexes for the retention of the import history and of handled webhooks
(store/housekeeping.py): each walks exactly the rows a prune may delete.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, as the migration made it (store/tables.py EMPTY_RUN_SQL must stay equal).
_EMPTY_RUN = ("outcome = 'ok' AND created = 0 AND updated = 0 AND canceled = 0 "
              "AND quarantined = 0")
_HANDLED = "processed_at IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_sync_runs_empty", "sync_runs", ["started_at"],
                    sqlite_where=sa.text(_EMPTY_RUN), postgresql_where=sa.text(_EMPTY_RUN))
    op.create_index("ix_sync_runs_started_at", "sync_runs", ["started_at"])
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"],
                    sqlite_where=sa.text(_HANDLED), postgresql_where=sa.text(_HANDLED))


def downgrade() -> None:
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_index("ix_sync_runs_started_at", table_name="sync_runs")
    op.drop_index("ix_sync_runs_empty", table_name="sync_runs")
