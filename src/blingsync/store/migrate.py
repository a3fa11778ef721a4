"""Schema migrations, run from the installed package: Alembic's script directory is
`blingsync/store/migrations`, found next to this file, so no alembic.ini is needed at runtime.

All functions take a *synchronous* connection already inside a transaction (the store calls them
through `AsyncConnection.run_sync`), so the upgrade commits or rolls back as one unit.

Adding a migration (developers): change `tables.py`, then, on a database at head, run
`await conn.run_sync(new_revision, "what changed")` (e.g. from a scratch script opening a `Store`);
review the generated `migrations/versions/NNNN_*.py` by hand: spell types as their database
forms, not as the store's TypeDecorators. `tests/integration/test_store.py` fails until the
migrations build exactly what tables.py declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"

MIGRATION_LOCK: Final = 0x626C_6E67_6D69_6772  # "blngmigr": PostgreSQL advisory lock key
"""Held (transaction-scoped) while PostgreSQL migrates, so workers starting together take turns
and all but the first find the schema at head. SQLite needs none: the store's write
transactions begin IMMEDIATE, which already excludes every other writer."""


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config pointing at the package's migrations; with `connection`, env.py runs
    the migrations on it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.downgrade(alembic_config(connection), revision)


def new_revision(connection: Connection, message: str) -> None:
    """Autogenerate the next numbered revision (0002, 0003, …) from the difference between
    `tables.py` and the database behind `connection` (which must be at head)."""
    next_id = f"{int(head_revision()) + 1:04d}"
    command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=next_id)
