"""Order search and listing: lists newest issued first, paged by keyset on (issued_at, id), and,
on PostgreSQL with pg_trgm, a trigram index for the search by part of the recipient's name.

* `orders (issued_at, id)` and `orders (account_id, issued_at, id)`: the order lists (the
  dashboard's Pedidos, the API's `GET /orders`) read newest issued first and continue past the
  last row's (issued_at, id), across accounts or within one, walking an index instead of sorting.
  The index on `issued_at` alone is dropped: `(issued_at, id)` serves every query it served.
* `ix_orders_recipient_name_trgm` (PostgreSQL only): GIN `gin_trgm_ops` on the folded recipient
  name, exactly the expression `store.dashboard.folded_name` builds, so `LIKE '%maria%'` on it
  reads the index instead of every order. It needs the pg_trgm extension (in contrib, "trusted"
  since PostgreSQL 13: a database owner may create it). When the server does not offer it or
  this role may not create it, the migration logs a warning and goes on: the search still works,
  by a scan. It is made inside a SAVEPOINT, so a refusal cannot abort the migration's
  transaction. A DBA can add it later (`CREATE EXTENSION pg_trgm`, then the CREATE INDEX this
  migration renders with `--sql`); the store notices it at its next start. The extension is
  never dropped (something else may use it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.engine import Connection

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("blingsync.store.migrations")

TRIGRAM_INDEX = "ix_orders_recipient_name_trgm"

# Frozen here as this migration makes it; `store.dashboard.folded_name` must build the same
# expression, character for character, or PostgreSQL will not match the index to the query.
_ACCENTED = "ÁÀÂÃÄÅáàâãäåÉÈÊËéèêëÍÌÎÏíìîïÓÒÔÕÖóòôõöÚÙÛÜúùûüÇçÑñÝýÿ"
_PLAIN = "AAAAAAaaaaaaEEEEeeeeIIIIiiiiOOOOOoooooUUUUuuuuCcNnYyy"
_FOLDED_NAME = f"lower(translate(recipient_name, '{_ACCENTED}', '{_PLAIN}'))"
_TRIGRAM_INDEX_SQL = "CREATE INDEX {name} ON orders USING gin ({expression} {opclass})"


def upgrade() -> None:
    op.create_index(op.f("ix_orders_issued_at_id"), "orders", ["issued_at", "id"])
    op.create_index(op.f("ix_orders_account_id_issued_at_id"), "orders", ["account_id", "issued_at", "id"])
    op.drop_index(op.f("ix_orders_issued_at"), table_name="orders")
    if op.get_context().dialect.name != "postgresql":
        return
    if context.is_offline_mode():  # SQL for a DBA to review: the optional part goes in as is
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(_TRIGRAM_INDEX_SQL.format(name=TRIGRAM_INDEX, expression=_FOLDED_NAME,
                                             opclass="gin_trgm_ops"))
        return
    _create_trigram_index(op.get_bind())


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
    op.create_index(op.f("ix_orders_issued_at"), "orders", ["issued_at"])
    op.drop_index(op.f("ix_orders_account_id_issued_at_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_issued_at_id"), table_name="orders")


def _create_trigram_index(connection: Connection) -> None:
    available = connection.scalar(sa.text(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"))
    if available is None:
        log.warning("pg_trgm is not available on this PostgreSQL server (it is in the contrib "
                    "package): searching orders by part of a recipient's name will scan the orders "
                    "instead of using the index %s", TRIGRAM_INDEX)
        return
    try:
        with connection.begin_nested():
            connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            # Where the extension lives (it may be installed already, in a schema of its own).
            schema = connection.scalar(sa.text(
                "SELECT n.nspname FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace "
                "WHERE c.opcname = 'gin_trgm_ops'"))
            opclass = f'"{schema}".gin_trgm_ops' if schema else "gin_trgm_ops"
            connection.execute(sa.text(_TRIGRAM_INDEX_SQL.format(
                name=TRIGRAM_INDEX, expression=_FOLDED_NAME, opclass=opclass)))
    except sa.exc.DBAPIError as exc:
        log.warning("could not create the pg_trgm extension or the index %s (%s): searching orders "
                    "by part of a recipient's name will scan the orders instead; a database owner "
                    "can run CREATE EXTENSION pg_trgm and this migration's index statement later",
                    TRIGRAM_INDEX, (str(exc.orig).strip() or type(exc.orig).__name__).splitlines()[0])
