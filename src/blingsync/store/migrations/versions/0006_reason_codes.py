"""Stored reasons get a stable code the dashboard translates: `sync_runs.error_code`,
`quarantine.reason_code`, `unimported_notes.reason_code` (the codes are `blingsync.sync.reasons`).

Nullable, without a default: rows stored before this migration have no code, and the dashboard
shows its generic sentence for them. Plain `add_column`/`drop_column` like 0002 (no index or
constraint names these columns, so SQLite changes them in place).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("sync_runs", "error_code"), ("quarantine", "reason_code"), ("unimported_notes", "reason_code"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table, column in reversed(_COLUMNS):
        op.drop_column(table, column)
