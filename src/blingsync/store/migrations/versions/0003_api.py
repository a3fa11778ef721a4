"""The web side: REST API tokens, OAuth connect attempts, shipment reports, the outbox's channel
(sink deliveries vs. write-backs to Bling), the account's Bling companyId (webhooks route by it)
and the inbox columns the webhook re-check needs.

Plain `add_column` like 0002; the new NOT NULL columns carry a server default so that existing
rows get a value without a table rebuild.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("company_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_accounts_company_id"), "accounts", ["company_id"])
    for columns in (["account_id", "id"], ["issued_at"], ["recipient_document"], ["access_key"], ["number"]):
        op.create_index(op.f("ix_orders_" + "_".join(columns)), "orders", columns)
    op.create_index("ix_outbox_dead", "outbox", ["account_id", "id"],
                    sqlite_where=sa.text("dead_at IS NOT NULL AND delivered_at IS NULL"),
                    postgresql_where=sa.text("dead_at IS NOT NULL AND delivered_at IS NULL"))
    op.add_column("outbox", sa.Column("channel", sa.String(length=16), server_default="sink", nullable=False))
    op.add_column("inbox", sa.Column("event", sa.String(length=64), nullable=True))
    op.add_column("inbox", sa.Column("company_id", sa.String(length=64), nullable=True))
    op.add_column("inbox", sa.Column("resource_id", sa.BigInteger(), nullable=True))
    op.add_column("inbox", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("inbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("inbox", sa.Column("outcome", sa.Text(), nullable=True))
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "oauth_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_name", sa.String(), nullable=False),
        sa.Column("ticket_sha256", sa.String(length=64), nullable=True),
        sa.Column("state_sha256", sa.String(length=64), nullable=True),
        sa.Column("session_sha256", sa.String(length=64), nullable=True),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("ticket_sha256", name=op.f("uq_oauth_states_ticket_sha256")),
        sa.UniqueConstraint("state_sha256", name=op.f("uq_oauth_states_state_sha256")),
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tracking_code", sa.String(length=100), nullable=True),
        sa.Column("carrier", sa.String(), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_shipments_account_id_accounts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name=op.f("fk_shipments_order_id_orders"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_shipments_order_id_id"), "shipments", ["order_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_shipments_order_id_id"), table_name="shipments")
    op.drop_table("shipments")
    op.drop_table("oauth_states")
    op.drop_table("api_tokens")
    for column in ("outcome", "next_attempt_at", "attempts", "resource_id", "company_id", "event"):
        op.drop_column("inbox", column)
    op.drop_column("outbox", "channel")
    op.drop_index("ix_outbox_dead", table_name="outbox")
    for columns in (["account_id", "id"], ["issued_at"], ["recipient_document"], ["access_key"], ["number"]):
        op.drop_index(op.f("ix_orders_" + "_".join(columns)), table_name="orders")
    op.drop_index(op.f("ix_accounts_company_id"), table_name="accounts")
    op.drop_column("accounts", "company_id")
