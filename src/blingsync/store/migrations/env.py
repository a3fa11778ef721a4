"""Alembic's environment for blingsync. Migrations run from the package (`blingsync.store.migrate`),
on a connection the store opened, inside the transaction it began: no alembic.ini, no second
engine, and on SQLite the whole upgrade holds the write lock, so two processes starting together
migrate once.

Offline mode (`alembic upgrade head --sql` with `sqlalchemy.url` set) renders the SQL for a DBA.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from blingsync.store.tables import include_in_comparison, metadata

config = context.config


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by rebuilding tables
        compare_type=True,
        include_object=include_in_comparison,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline migrations need sqlalchemy.url set in the Alembic config")
    context.configure(url=url, target_metadata=metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "blingsync migrations run through blingsync itself (blingsync.store.migrate), "
            "which hands Alembic an open connection"
        )
    _run_online(connection)
