"""Engines for the two supported databases, configured so the same store code is correct on both.

SQLite (the embedded default) is made safe for several processes on one file:

* **WAL** journal: readers never block the writer nor each other.
* **BEGIN IMMEDIATE** for every write transaction: the write lock is taken up front, so two
  writers queue on `busy_timeout` instead of both reading, then one failing with SQLITE_BUSY
  when it tries to upgrade its read lock (which no timeout can cure). Read transactions use a
  plain deferred BEGIN. The Python driver's own implicit transactions are switched off, so
  DDL is transactional too (a migration commits whole or not at all).
* **foreign_keys = ON** (SQLite's default is off), so deleting an account cascades.

PostgreSQL needs nothing special beyond what the store does per statement (`FOR UPDATE`, a
transaction-scoped advisory lock around outbox inserts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from blingsync.config import ConfigError

WRITE_OPTION: Final = "blingsync_write"
"""Execution option marking a write transaction (SQLite begins it IMMEDIATE)."""

BUSY_TIMEOUT_S: Final = 30.0
"""How long a SQLite writer waits for another process's write transaction before failing."""

_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
}


def database_url(url: str) -> URL:
    """The URL with the async driver blingsync uses (`sqlite://…` → `sqlite+aiosqlite://…`,
    `postgresql://…` → `postgresql+psycopg://…`); other databases are refused."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("BLINGSYNC_DATABASE_URL is not a database URL "
                          "(expected sqlite+aiosqlite:///path or postgresql+psycopg://…)") from None
    parsed = parsed.set(drivername=_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+psycopg"):
        raise ConfigError(
            f"unsupported database {parsed.drivername!r} in BLINGSYNC_DATABASE_URL; "
            "use sqlite+aiosqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
        )
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (
        not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"
    )


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (None in memory)."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url) or url.database is None:
        return None
    return Path(url.database).expanduser()


def create_engine(url: URL) -> AsyncEngine:
    """An engine for `url` (already passed through `database_url`)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # Room for every account a process imports at once (service.PARALLEL_ACCOUNTS) to hold a
    # refresh lock's connection and another for its work: 10 kept, up to 50 in all.
    # Plans made for the values at hand: psycopg prepares a statement after 5 uses, and
    # PostgreSQL's generic plan for it is costed for an average account, so the biggest brand's
    # pages got 10-20x slower from their 6th request on (bench/ui_pages.py).
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40,
                               connect_args={"options": "-c plan_cache_mode=force_custom_plan"})


def _sqlite_engine(url: URL) -> AsyncEngine:
    memory = is_memory_sqlite(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one connection, or every connection sees another database
        kwargs["connect_args"]["check_same_thread"] = False
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver: ours below
        # SQLite's own lower() folds ASCII only, so `ilike` (lower(x) LIKE lower(y)) would miss
        # "CONCEIÇÃO" for "conceição"; PostgreSQL folds every letter. Same answer on both.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value
