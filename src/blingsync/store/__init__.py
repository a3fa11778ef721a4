"""blingsync's persistence: accounts with encrypted credentials, orders with their outbox events,
cursors, runs, quarantine (DESIGN.md, "Data model (store)"). SQLite by default, PostgreSQL for
scale-out; the schema is migrated by Alembic from the package."""

from blingsync.store.crypto import SecretBox
from blingsync.store.errors import (
    AccountExists,
    AccountNotFound,
    AccountNotFoundError,
    CredentialsUnreadable,
    DocumentCorrupt,
    NotFoundError,
    OrderNotFound,
    OrderNotFoundError,
    RunNotFound,
    SchemaOutdated,
    SecretKeyError,
    StoreError,
)
from blingsync.store.repo import AccountTokenStore, Store, idempotency_key, quarantine_backoff

__all__ = [
    "AccountExists",
    "AccountNotFound",
    "AccountNotFoundError",
    "AccountTokenStore",
    "CredentialsUnreadable",
    "DocumentCorrupt",
    "NotFoundError",
    "OrderNotFound",
    "OrderNotFoundError",
    "RunNotFound",
    "SchemaOutdated",
    "SecretBox",
    "SecretKeyError",
    "Store",
    "StoreError",
    "idempotency_key",
    "quarantine_backoff",
]
