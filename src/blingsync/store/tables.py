"""The database schema, as SQLAlchemy Core tables. The Alembic migrations under `migrations/`
create exactly this (a test compares them with Alembic's autogenerate, so they cannot drift).

Portable choices, because the same code runs on SQLite (the embedded default) and PostgreSQL:

* **Datetimes** go through `UTCDateTime`: aware in, UTC stored, aware UTC out. SQLite has no
  time zone type and SQLAlchemy writes its datetimes as fixed-width text, which still sorts and
  compares correctly as long as everything stored is UTC.
* **Exact decimals** (quantities, money, weights) go through `ExactDecimal`, stored as the
  decimal's text: SQLite's NUMERIC affinity reads values back through a binary float, and
  "0.10" must come back as "0.10", not 0.1 or 0.09999999999999999.
* **JSON** (order content, outbox payloads, settings) is stored as text we serialise ourselves:
  the order content's canonical text is also what its hash is computed over.
* Every row of an account cascades from `accounts`, so removing a brand removes all of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: Final = {
    # Named constraints, so that a later migration can drop or alter them by name (SQLite's
    # batch mode needs names to rebuild a table).
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

EMPTY_RUN_SQL: Final = ("outcome = 'ok' AND created = 0 AND updated = 0 AND canceled = 0 "
                        "AND quarantined = 0")
"""A run that changed nothing: the predicate of the partial index `ix_sync_runs_empty`, word for
word what `store.housekeeping.run_candidates` selects by (literals, not parameters, so that
PostgreSQL matches the index whatever plan it makes)."""


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC, returned aware in UTC. A naive datetime is refused at
    bind time: guessing its zone is how an order ends up three hours off."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; pass an aware one")
        utc = value.astimezone(UTC)
        # SQLite keeps text without an offset: store the UTC wall time so text order is time order.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """A `Decimal` stored as its exact text ("0.10" stays "0.10", trailing zeros included)."""

    impl = String()
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def _account_fk() -> Column[int]:
    return Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False, unique=True),
    Column("generation", String(8), nullable=False),  # ApiGeneration
    Column("bling_url", String, nullable=False),
    Column("bling_v2_url", String, nullable=False),
    Column("document", String, nullable=True),  # CNPJ digits
    Column("company_id", String(64), nullable=True),  # Bling's companyId (webhooks route by it)
    Column("credentials", LargeBinary, nullable=False),  # SecretBox blob, bound to this row's id
    Column("settings", Text, nullable=False),  # AccountSettings as JSON
    Column("state", String(32), nullable=False),  # AccountState
    Column("state_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "company_id"),
    sqlite_autoincrement=True,  # an id is never handed out again after a removal
)

cursors = Table(
    "cursors",
    metadata,
    _account_fk(),
    Column("stream", String(16), nullable=False),  # "nfe" | "nfce"
    Column("tier", String, nullable=False),  # SweepTier.name
    Column("position", UTCDateTime, nullable=False),  # emission-date watermark (a signpost)
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("account_id", "stream", "tier"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("kind", String(8), nullable=False),  # "nfe" | "nfce": which Bling endpoint it came from
    Column("bling_id", BigInteger, nullable=False),
    Column("access_key", String(44), nullable=False),
    # A few fields of the content, copied out for listing and searching without parsing JSON.
    Column("model", Integer, nullable=False),
    Column("series", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("recipient_name", String, nullable=True),
    Column("recipient_document", String, nullable=True),
    Column("total_value", ExactDecimal, nullable=False),
    # The order itself: `order_fields(order)` as canonical JSON, and the sha256 of that text.
    Column("content", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # OrderStatus
    Column("situation", String(32), nullable=False),  # InvoiceStatus when last imported or checked
    Column("version", Integer, nullable=False),
    Column("link_danfe", Text, nullable=True),
    Column("link_xml", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("canceled_at", UTCDateTime, nullable=True),
    UniqueConstraint("account_id", "access_key"),
    Index(None, "account_id", "bling_id"),
    Index(None, "account_id", "number"),
    Index(None, "status", "id"),
    # Migration 0003, for the API's listings and searches across accounts.
    Index(None, "account_id", "id"),
    # Migration 0007: lists newest issued first, paged by keyset on (issued_at, id), across
    # accounts and within one (it replaced the index on issued_at alone). On PostgreSQL with
    # pg_trgm it also makes `TRIGRAM_INDEX`, which is not declared here (see its docstring).
    Index(None, "issued_at", "id"),
    Index(None, "account_id", "issued_at", "id"),
    Index(None, "recipient_document"),
    Index(None, "access_key"),
    Index(None, "number"),
    Index(None, "created_at", "account_id"),  # migration 0004: imports per day and brand (dashboard)
    # Migration 0005: one brand's imports per day, and its ready/canceled counts, index-only.
    Index(None, "account_id", "created_at"),
    Index(None, "account_id", "status"),
    sqlite_autoincrement=True,  # order ids are public (API, exports): never reused
)

TRIGRAM_INDEX: Final = "ix_orders_recipient_name_trgm"
"""Migration 0007's GIN trigram index on the folded recipient name (`store.dashboard.folded_name`),
made only on PostgreSQL and only where pg_trgm could be created. Since it may be absent, it is
not declared in `metadata`, and schema comparisons leave it out (`include_in_comparison`)."""


def include_in_comparison(item: object, name: str | None, type_: str, reflected: bool,
                          compare_to: object) -> bool:
    """Alembic's `include_object` for comparing the database with `metadata` (autogenerate and
    the schema test): everything but the indexes a migration makes only where it can."""
    return not (type_ == "index" and name == TRIGRAM_INDEX)


order_items = Table(
    "order_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("sku", String, nullable=False),
    Column("ean", String, nullable=True),
    Column("description", Text, nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("unit", String, nullable=False),
    Column("unit_value", ExactDecimal, nullable=False),
    Column("total_value", ExactDecimal, nullable=False),
    Column("ncm", String, nullable=True),
    Column("cfop", String, nullable=True),
    Column("order_ref", String, nullable=True),
    Column("order_line", String, nullable=True),
    UniqueConstraint("order_id", "line"),
    Index(None, "sku"),
    Index(None, "ean"),
)

order_volumes = Table(
    "order_volumes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),  # 1-based, in XML order
    Column("quantity", BigInteger, nullable=True),  # qVol allows 15 digits
    Column("kind", String, nullable=True),
    Column("brand", String, nullable=True),
    Column("numbering", String, nullable=True),
    Column("net_weight_kg", ExactDecimal, nullable=True),
    Column("gross_weight_kg", ExactDecimal, nullable=True),
    UniqueConstraint("order_id", "position"),
)

documents = Table(
    "documents",
    metadata,
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("compression", String(8), nullable=False),  # "zlib"
    Column("sha256", String(64), nullable=False),  # of the uncompressed XML
    Column("size", Integer, nullable=False),  # uncompressed bytes
    Column("data", LargeBinary, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    # AUTOINCREMENT on SQLite: a deleted last row's id is never handed out again, so the id
    # stays a feed cursor that only moves forward.
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),  # EventType
    Column("order_version", Integer, nullable=False),
    Column("idempotency_key", String(100), nullable=False),
    Column("payload", Text, nullable=False),  # order_json at that version
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("dead_at", UTCDateTime, nullable=True),
    # Delivery (migration 0002, `blingsync.store.outbox`): a claimed event is the claiming relay's
    # until `leased_until`, so a relay that crashed mid-batch gives its claims back by itself;
    # `replayed_at` restarts the retry horizon of an event an operator replayed.
    Column("leased_until", UTCDateTime, nullable=True),
    Column("replayed_at", UTCDateTime, nullable=True),
    Column("last_attempt_ms", Integer, nullable=True),  # how long the last delivery attempt took
    # Migration 0003: "sink" events go to the account's sink (and the pull feed); "bling" events
    # are write-backs to Bling (`blingsync.delivery.writeback`). Per-order order holds per channel.
    Column("channel", String(16), nullable=False, server_default="sink"),
    UniqueConstraint("account_id", "idempotency_key"),
    Index(None, "order_id", "id"),
    Index(None, "account_id", "id"),
    Index(
        "ix_outbox_pending",
        "next_attempt_at",
        "id",
        sqlite_where=text("delivered_at IS NULL AND dead_at IS NULL"),
        postgresql_where=text("delivered_at IS NULL AND dead_at IS NULL"),
    ),
    Index(  # migration 0005: the dashboard's delivery queue, without walking delivered events
        "ix_outbox_undelivered",
        "id",
        sqlite_where=text("delivered_at IS NULL"),
        postgresql_where=text("delivered_at IS NULL"),
    ),
    Index(
        "ix_outbox_undelivered_account",
        "account_id",
        "id",
        sqlite_where=text("delivered_at IS NULL"),
        postgresql_where=text("delivered_at IS NULL"),
    ),
    Index(  # migration 0003: dead deliveries per account, without scanning the outbox
        "ix_outbox_dead",
        "account_id",
        "id",
        sqlite_where=text("dead_at IS NOT NULL AND delivered_at IS NULL"),
        postgresql_where=text("dead_at IS NOT NULL AND delivered_at IS NULL"),
    ),
    sqlite_autoincrement=True,
)

sinks = Table(
    "sinks",
    metadata,
    # Where an account's outbox events go (`blingsync.delivery`): one sink per account.
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("kind", String(16), nullable=False),  # SinkKind
    Column("url", Text, nullable=True),
    Column("secret", LargeBinary, nullable=True),  # SecretBox blob, bound to the account's id
    Column("options", Text, nullable=False),  # non-secret settings of the kind, JSON object
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String, nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("body_sha256", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("payload", Text, nullable=False),
    # Migration 0003: what the re-check needs without parsing the payload again, and its outcome.
    Column("event", String(64), nullable=True),  # e.g. "invoice.updated"
    Column("company_id", String(64), nullable=True),
    Column("resource_id", BigInteger, nullable=True),  # data.id: the note's or order's Bling id
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("outcome", Text, nullable=True),  # what the re-check did, in words; or its last error
    Index("ix_inbox_unprocessed", "received_at",
          sqlite_where=text("processed_at IS NULL"), postgresql_where=text("processed_at IS NULL")),
    # Migration 0009: the handled webhooks, oldest first, for the retention (store/housekeeping.py).
    Index("ix_inbox_processed_at", "processed_at",
          sqlite_where=text("processed_at IS NOT NULL"), postgresql_where=text("processed_at IS NOT NULL")),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    # Bearer tokens of the REST API: only a SHA-256 of the token is kept; the token is shown once.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False, unique=True),
    Column("scope", String(16), nullable=False),  # "read" | "admin"
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # the token's first characters, to recognise it
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    # Operators of the dashboard (`blingsync users`): the password as a self-describing scrypt
    # hash (`store/users.py`), never in clear. Disabled users stay, so the list shows who existed.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    sqlite_autoincrement=True,
)

ui_sessions = Table(
    "ui_sessions",
    metadata,
    # Signed-in browsers of the dashboard: only a SHA-256 of the cookie's token is kept; the CSRF
    # token (synchroniser token, useless without the cookie) is kept as is to be put in forms.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("flash", Text, nullable=True),  # one-shot messages for the next page, JSON list
    Index("ix_ui_sessions_user_id", "user_id"),
    Index("ix_ui_sessions_expires_at", "expires_at"),
    sqlite_autoincrement=True,
)

signin_failures = Table(
    "signin_failures",
    metadata,
    # The dashboard's sign-in throttle, shared by every `serve` process (`store/users.py`): one
    # row per attempt of the last 15 minutes not (yet) known to succeed. The username only as the
    # SHA-256 of its case-folded form (a password typed in the username box is not kept).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username_key", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index("ix_signin_failures_address", "address", "username_key", "failed_at"),
    Index("ix_signin_failures_failed_at", "failed_at"),
)

oauth_states = Table(
    "oauth_states",
    metadata,
    # One-time OAuth connect attempts (`blingsync.web.oauth`): the connect link's ticket, then the
    # `state` sent to Bling, both stored as SHA-256 and bound to the browser session that opened
    # the link and to the account being connected.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_name", String, nullable=False),
    Column("ticket_sha256", String(64), nullable=True, unique=True),
    Column("state_sha256", String(64), nullable=True, unique=True),
    Column("session_sha256", String(64), nullable=True),
    Column("options", Text, nullable=False),  # non-secret connect options, JSON object
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("outcome", Text, nullable=True),
)

shipments = Table(
    "shipments",
    metadata,
    # What the warehouse reported (`POST /api/v1/orders/{id}/shipment`); each report a row.
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("tracking_code", String(100), nullable=True),
    Column("carrier", String, nullable=True),
    Column("shipped_at", UTCDateTime, nullable=True),
    Column("reported_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),  # the report as received (JSON)
    Index(None, "order_id", "id"),
    sqlite_autoincrement=True,
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("trigger", String, nullable=False),
    Column("tier", String, nullable=True),
    Column("window_from", UTCDateTime, nullable=False),
    Column("window_to", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("outcome", String(16), nullable=False),  # RunOutcome
    # RunCounters, one column each (names shared with the dataclass fields).
    Column("listed", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("canceled", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("error_code", String(64), nullable=True),  # sync.reasons: RunCode or a Bling code
    Index(None, "account_id", "id"),
    Index("ix_sync_runs_running", "account_id",
          sqlite_where=text("outcome = 'running'"), postgresql_where=text("outcome = 'running'")),
    # Migration 0009: the runs' retention (store/housekeeping.py) walks only what it may delete.
    Index("ix_sync_runs_empty", "started_at",
          sqlite_where=text(EMPTY_RUN_SQL), postgresql_where=text(EMPTY_RUN_SQL)),
    Index("ix_sync_runs_started_at", "started_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("kind", String(8), nullable=False),
    Column("bling_id", BigInteger, nullable=False),
    Column("number", Integer, nullable=True),
    Column("access_key", String, nullable=True),
    Column("reason", Text, nullable=False),
    Column("reason_code", String(64), nullable=True),  # sync.reasons.QuarantineCode
    Column("payload", LargeBinary, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("run_id", Integer, ForeignKey("sync_runs.id", ondelete="SET NULL"), nullable=True),
    UniqueConstraint("account_id", "kind", "bling_id"),
)

unimported_notes = Table(
    "unimported_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("kind", String(8), nullable=False),
    Column("bling_id", BigInteger, nullable=False),
    Column("number", Integer, nullable=False),
    Column("situation", String(32), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reason_code", String(64), nullable=True),  # sync.reasons.UnimportedCode
    Column("access_key", String, nullable=True),
    Column("seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "kind", "bling_id"),
)
