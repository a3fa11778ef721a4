"""The store: every read and write of blingsync's database, as async methods taking and returning
the plain records of `blingsync.store.records`.

Why it is shaped this way:

* **One transaction per method.** A method either did all it says or nothing; the importer's
  progress (the run's counters, the note's quarantine row) commits with the order it concerns,
  so a crash anywhere leaves a database that a re-run completes into the same state.
* **The outbox is written in the order's transaction** (DESIGN.md, data model): an order change
  and the event announcing it exist together or not at all. The event id is the feed's cursor,
  so ids must become visible in id order: on PostgreSQL every outbox insert takes one
  transaction-scoped advisory lock as the transaction's last step (sequence values are handed
  out at insert time but become visible at commit, and without the lock a reader paging by id
  could pass over an id that commits a moment later). SQLite serialises writers anyway.
* **Read-then-write takes the lock first**: `BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE`
  on PostgreSQL; an insert that loses a race to another process (a unique violation) is retried
  once, and the retry then sees the winner's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import CursorResult, Row, and_, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from blingsync.bling.auth import PROCESS_REFRESH_LOCK, RefreshLock, StoredTokens, TokenStore
from blingsync.domain import ApiGeneration, InvoiceStatus, OrderLinks, OrderStatus, StoredOrder
from blingsync.orderjson import order_from_fields, order_json
from blingsync.store import migrate as migrations
from blingsync.store.account_views import AccountViewStore
from blingsync.store.browse import BrowseStore
from blingsync.store.codec import order_content, settings_to_json
from blingsync.store.crypto import DecryptionFailed, SecretBox, open_credentials, seal_credentials
from blingsync.store.dashboard import DashboardStore
from blingsync.store.engine import WRITE_OPTION, create_engine, database_url, is_memory_sqlite, sqlite_path
from blingsync.store.errors import (
    AccountExists,
    AccountNotFound,
    CredentialsUnreadable,
    DocumentCorrupt,
    OrderNotFound,
    RunNotFound,
    SchemaOutdated,
    StoreError,
)
from blingsync.store.housekeeping import HousekeepingStore
from blingsync.store.inbox import InboxStore
from blingsync.store.oauth import OAuthStateStore
from blingsync.store.outbox import DeliveryStore, outbox_event
from blingsync.store.records import (
    Account,
    AccountSettings,
    AccountState,
    Credentials,
    EventType,
    ImportedNote,
    KnownNote,
    NewAccount,
    OutboxEvent,
    QuarantinedNote,
    QuarantineEntry,
    RunOutcome,
    SaveOutcome,
    SaveResult,
    SyncRun,
    UnimportedNote,
    V2Credentials,
    V3Credentials,
)
from blingsync.store.rows import ACCOUNT_COLUMNS as _ACCOUNT_COLUMNS
from blingsync.store.rows import RUN_COUNTERS as _COUNTERS
from blingsync.store.rows import account_from_row as _account
from blingsync.store.rows import run_from_row as _run
from blingsync.store.shipments import ShipmentStore
from blingsync.store.tables import (
    accounts,
    cursors,
    documents,
    order_items,
    order_volumes,
    orders,
    outbox,
    quarantine,
    sync_runs,
    unimported_notes,
)
from blingsync.store.tokens import ApiTokenStore
from blingsync.store.users import UserStore
from blingsync.sync.reasons import RunCode

T = TypeVar("T")

KINDS: Final = frozenset({"nfe", "nfce"})
"""The note streams (Bling's `/nfe` and `/nfce`)."""

QUARANTINE_FIRST_RETRY: Final = timedelta(hours=1)
QUARANTINE_MAX_RETRY: Final = timedelta(hours=24)

OUTBOX_LOCK: Final = 0x626C_6E67_6F75_7462  # "blngoutb"
"""PostgreSQL advisory lock key serialising outbox inserts, so event ids commit in id order."""

_IN_CHUNK: Final = 500
"""Ids per `IN (…)` list: far below SQLite's bound-parameter limit."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def quarantine_backoff(attempts: int) -> timedelta:
    """1 h after the first failure, doubling, at most 24 h: a note that fails because of its
    data keeps failing, and must not cost Bling requests every poll."""
    return min(QUARANTINE_FIRST_RETRY * (1 << min(max(attempts - 1, 0), 16)), QUARANTINE_MAX_RETRY)


class Store(DeliveryStore, BrowseStore, ApiTokenStore, InboxStore, OAuthStateStore, ShipmentStore,
            UserStore, DashboardStore, AccountViewStore, HousekeepingStore):
    """blingsync's database. Open it with `Store.open`, close it with `close`."""

    def __init__(self, engine: AsyncEngine, *, box: SecretBox,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._box = box
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"
        # An in-memory SQLite database is one shared connection: all its transactions take turns.
        # On a SQLite file, this process's writers take turns here rather than in SQLite's busy
        # handler, which polls with sleeps of up to 100 ms; other processes still meet them there.
        sqlite = engine.dialect.name == "sqlite"
        self._serial = asyncio.Lock() if is_memory_sqlite(engine.url) else None
        self._write_turn = self._serial or (asyncio.Lock() if sqlite else None)

    @classmethod
    async def open(cls, url: str, *, box: SecretBox, migrate: bool = True,
                   clock: Callable[[], datetime] = utc_now) -> Store:
        """Connect to `url` (a SQLite file's directory is created) and, with `migrate`, bring the
        schema to the newest revision; without it, refuse a schema that is not at that revision
        rather than fail later on a missing column."""
        engine = create_engine(database_url(url))
        store = cls(engine, box=box, clock=clock)
        try:
            if migrate:
                await store.migrate()
            else:
                await store.check_schema()
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> AsyncEngine:
        """For the few who need SQL the store does not offer (tests, the procrastinate worker)."""
        return self._engine

    # --- schema -------------------------------------------------------------------------------

    async def migrate(self, revision: str = "head") -> None:
        async with self._write() as conn:
            await conn.run_sync(migrations.upgrade, revision)

    async def schema_revision(self) -> str | None:
        async with self._read() as conn:
            return await conn.run_sync(migrations.current_revision)

    async def check_schema(self) -> None:
        current, head = await self.schema_revision(), migrations.head_revision()
        if current != head:
            raise SchemaOutdated(
                f"the database is at schema revision {current or 'none (empty database)'}, and this "
                f"version of blingsync needs {head}: run its migrations first (Store.open with migrate=True)"
            )

    # --- transactions -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._turn(self._serial), self._engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._turn(self._write_turn), self._writer.begin() as conn:
            yield conn

    @staticmethod
    def _turn(lock: asyncio.Lock | None) -> contextlib.AbstractAsyncContextManager[object]:
        return lock if lock is not None else contextlib.nullcontext()

    async def _write_retrying(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in a write transaction, once more if it lost an insert race to another
        process (a unique violation): the second run reads the row the winner committed."""
        try:
            async with self._write() as conn:
                return await work(conn)
        except IntegrityError:
            pass
        async with self._write() as conn:
            return await work(conn)

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the store's clock must return aware datetimes")
        return now.astimezone(UTC)

    # --- accounts -----------------------------------------------------------------------------

    async def add_account(self, new: NewAccount) -> Account:
        name = new.name.strip()
        if not name:
            raise ValueError("an account needs a name")
        _check_generation(new.generation, new.credentials)
        now = self._now()
        try:
            async with self._write() as conn:
                if await self._account_id(conn, name) is not None:
                    raise AccountExists(name)
                result = await conn.execute(insert(accounts).values(
                    name=name, generation=new.generation.value, bling_url=new.bling_url,
                    bling_v2_url=new.bling_v2_url, document=new.document,
                    credentials=b"",  # sealed below: the blob is bound to the id the row gets
                    settings=settings_to_json(new.settings), state=AccountState.ACTIVE.value,
                    state_reason=None, created_at=now, updated_at=now,
                ))
                account_id = _inserted_id(result)
                await conn.execute(update(accounts).where(accounts.c.id == account_id).values(
                    credentials=seal_credentials(self._box, account_id, new.credentials)))
        except IntegrityError:
            raise AccountExists(name) from None
        return await self.account_by_id(account_id)

    async def account(self, name: str) -> Account:
        async with self._read() as conn:
            row = (await conn.execute(select(*_ACCOUNT_COLUMNS).where(accounts.c.name == name))).first()
        if row is None:
            raise AccountNotFound(name=name)
        return _account(row)

    async def account_by_id(self, account_id: int) -> Account:
        async with self._read() as conn:
            row = (await conn.execute(select(*_ACCOUNT_COLUMNS).where(accounts.c.id == account_id))).first()
        if row is None:
            raise AccountNotFound(account_id=account_id)
        return _account(row)

    async def accounts(self) -> list[Account]:
        async with self._read() as conn:
            rows = (await conn.execute(select(*_ACCOUNT_COLUMNS).order_by(accounts.c.name))).all()
        return [_account(row) for row in rows]

    async def set_account_state(self, account_id: int, state: AccountState,
                                reason: str | None = None) -> None:
        await self._update_account(account_id, state=AccountState(state).value, state_reason=reason)

    async def update_account_settings(self, account_id: int, settings: AccountSettings) -> None:
        await self._update_account(account_id, settings=settings_to_json(settings))

    async def set_account_document(self, account_id: int, document: str | None,
                                   company_id: str | None = None) -> None:
        """The company's CNPJ and, for API v3, Bling's companyId (what webhooks carry)."""
        values: dict[str, Any] = {"document": document}
        if company_id is not None:
            values["company_id"] = company_id
        await self._update_account(account_id, **values)

    async def accounts_by_company(self, company_id: str) -> list[Account]:
        """The accounts connected to one Bling company (webhooks name it by `companyId`)."""
        async with self._read() as conn:
            rows = (await conn.execute(select(*_ACCOUNT_COLUMNS).where(accounts.c.company_id == company_id)
                                       .order_by(accounts.c.id))).all()
        return [_account(row) for row in rows]

    async def remove_account(self, name: str) -> None:
        """Deletes the account and, by cascade, its orders, events, runs, cursors and the rest."""
        async with self._write() as conn:
            result = await conn.execute(delete(accounts).where(accounts.c.name == name))
        if result.rowcount == 0:
            raise AccountNotFound(name=name)

    async def _update_account(self, account_id: int, **values: Any) -> None:
        async with self._write() as conn:
            result = await conn.execute(update(accounts).where(accounts.c.id == account_id)
                                        .values(**values, updated_at=self._now()))
        if result.rowcount == 0:
            raise AccountNotFound(account_id=account_id)

    @staticmethod
    async def _account_id(conn: AsyncConnection, name: str) -> int | None:
        found = await conn.scalar(select(accounts.c.id).where(accounts.c.name == name))
        return None if found is None else int(found)

    @staticmethod
    async def _account_name(conn: AsyncConnection, account_id: int) -> str:
        name = await conn.scalar(select(accounts.c.name).where(accounts.c.id == account_id))
        if name is None:
            raise AccountNotFound(account_id=account_id)
        return str(name)

    # --- credentials --------------------------------------------------------------------------

    async def credentials(self, account_id: int) -> Credentials:
        """The account's credentials, decrypted (`CredentialsUnreadable` under another key)."""
        async with self._read() as conn:
            row = (await conn.execute(select(accounts.c.name, accounts.c.credentials)
                                      .where(accounts.c.id == account_id))).first()
        if row is None:
            raise AccountNotFound(account_id=account_id)
        return self._open(account_id, row.name, row.credentials)

    async def save_credentials(self, account_id: int, credentials: Credentials) -> None:
        """Replaces the credentials; the account's API generation follows them (a brand moving
        from a v2 key to v3 OAuth is one call)."""
        generation = ApiGeneration.V2 if isinstance(credentials, V2Credentials) else ApiGeneration.V3
        await self._update_account(account_id, generation=generation.value,
                                   credentials=seal_credentials(self._box, account_id, credentials))

    def token_store(self) -> TokenStore:
        """The v3 tokens of accounts (by account name), kept inside their encrypted credentials."""
        return AccountTokenStore(self)

    def refresh_lock(self) -> RefreshLock:
        """A refresh lock that also excludes other processes on this database: a PostgreSQL
        advisory lock, or a lock file beside the SQLite database (see `auth.RefreshLock`)."""
        if self._postgres:
            return PostgresRefreshLock(self._engine)
        path = sqlite_path(self._engine.url)
        if path is None or sys.platform == "win32":
            return PROCESS_REFRESH_LOCK
        return FileRefreshLock(path.parent, path.name)

    async def load_tokens(self, account: str) -> StoredTokens | None:
        async with self._read() as conn:
            row = (await conn.execute(select(accounts.c.id, accounts.c.credentials)
                                      .where(accounts.c.name == account))).first()
        if row is None:
            raise AccountNotFound(name=account)
        credentials = self._open(row.id, account, row.credentials)
        return credentials.tokens if isinstance(credentials, V3Credentials) else None

    async def save_tokens(self, account: str, tokens: StoredTokens) -> None:
        async with self._write() as conn:
            row = (await conn.execute(select(accounts.c.id, accounts.c.credentials)
                                      .where(accounts.c.name == account).with_for_update())).first()
            if row is None:
                raise AccountNotFound(name=account)
            credentials = self._open(row.id, account, row.credentials)
            if not isinstance(credentials, V3Credentials):
                raise StoreError(f"account {account!r} uses API v2 (an API key): it has no OAuth tokens "
                                 "to save; connect it through v3 first")
            sealed = seal_credentials(self._box, row.id, V3Credentials(
                credentials.client_id, credentials.client_secret, tokens))
            await conn.execute(update(accounts).where(accounts.c.id == row.id)
                               .values(credentials=sealed, updated_at=self._now()))

    def _open(self, account_id: int, name: str, blob: bytes) -> Credentials:
        try:
            return open_credentials(self._box, account_id, bytes(blob))
        except DecryptionFailed as exc:
            raise CredentialsUnreadable(name, exc.why) from None

    # --- cursors ------------------------------------------------------------------------------

    async def cursor(self, account_id: int, stream: str, tier: str) -> datetime | None:
        async with self._read() as conn:
            found: datetime | None = await conn.scalar(select(cursors.c.position).where(
                cursors.c.account_id == account_id, cursors.c.stream == stream, cursors.c.tier == tier))
        return found

    async def advance_cursor(self, account_id: int, stream: str, tier: str, to: datetime) -> None:
        """Moves the cursor to `to` unless it is already there or later: a slow run finishing
        after a faster one must not send the watermark back."""
        _require_aware(to, "the cursor position")
        now = self._now()

        async def work(conn: AsyncConnection) -> None:
            key = and_(cursors.c.account_id == account_id, cursors.c.stream == stream, cursors.c.tier == tier)
            current = await conn.scalar(select(cursors.c.position).where(key).with_for_update())
            if current is None:
                await conn.execute(insert(cursors).values(account_id=account_id, stream=stream, tier=tier,
                                                          position=to, updated_at=now))
            elif to > current:
                await conn.execute(update(cursors).where(key).values(position=to, updated_at=now))

        await self._write_retrying(work)

    # --- orders -------------------------------------------------------------------------------

    async def known_notes(self, account_id: int, bling_ids: Sequence[int], *,
                          kind: str | None = None) -> dict[int, KnownNote]:
        """The stored orders among `bling_ids` (keyed by Bling id; of `kind` only when given:
        NF-e and NFC-e are separate lists in Bling): what the importer may skip."""
        found: dict[int, KnownNote] = {}
        async with self._read() as conn:
            for chunk in _chunks(sorted(set(bling_ids))):
                where = [orders.c.account_id == account_id, orders.c.bling_id.in_(chunk)]
                if kind is not None:
                    where.append(orders.c.kind == kind)
                rows = await conn.execute(
                    select(orders.c.bling_id, orders.c.id, orders.c.access_key, orders.c.situation,
                           orders.c.status, orders.c.version)
                    .where(*where)
                    .order_by(orders.c.id))
                for row in rows:
                    found[row.bling_id] = KnownNote(
                        order_id=row.id, access_key=row.access_key, situation=InvoiceStatus(row.situation),
                        status=OrderStatus(row.status), version=row.version)
        return found

    async def save_order(self, account_id: int, note: ImportedNote, *,
                         run_id: int | None = None) -> SaveOutcome:
        """Create or update the order of an imported note, with its outbox event, in one
        transaction (see the module docstring and DESIGN.md, import algorithm step 3)."""
        _check_kind(note.kind)
        content, content_hash = order_content(note.order)
        return await self._write_retrying(
            lambda conn: self._save_order(conn, account_id, note, content, content_hash, run_id))

    async def _save_order(self, conn: AsyncConnection, account_id: int, note: ImportedNote, content: str,
                          content_hash: str, run_id: int | None) -> SaveOutcome:
        now = self._now()
        account = await self._account_name(conn, account_id)
        row = (await conn.execute(
            select(orders.c.id, orders.c.status, orders.c.version, orders.c.content_hash,
                   orders.c.situation, orders.c.bling_id, orders.c.kind, orders.c.link_danfe,
                   orders.c.link_xml, orders.c.created_at)
            .where(orders.c.account_id == account_id, orders.c.access_key == note.order.access_key)
            .with_for_update())).first()
        event: EventType | None
        if row is None:
            result = await conn.execute(insert(orders).values(
                account_id=account_id, access_key=note.order.access_key, created_at=now,
                status=OrderStatus.READY.value, version=1, canceled_at=None,
                **_order_values(note, content, content_hash, now)))
            order_id, version, created_at = _inserted_id(result), 1, now
            await self._write_lines(conn, order_id, note)
            await self._write_document(conn, order_id, note.xml, now)
            outcome, event = SaveOutcome(SaveResult.CREATED, order_id, 1), EventType.CREATED
        elif row.status == OrderStatus.CANCELED.value:
            outcome, event = SaveOutcome(SaveResult.UNCHANGED, row.id, row.version), None
        elif row.content_hash == content_hash:
            moved = {"situation": note.situation.value, "bling_id": note.bling_id, "kind": note.kind,
                     "link_danfe": note.links.danfe, "link_xml": note.links.xml}
            if any(getattr(row, column) != value for column, value in moved.items()):
                await conn.execute(update(orders).where(orders.c.id == row.id).values(**moved))
            outcome, event = SaveOutcome(SaveResult.UNCHANGED, row.id, row.version), None
        else:
            order_id, version, created_at = row.id, row.version + 1, row.created_at
            await conn.execute(update(orders).where(orders.c.id == order_id).values(
                version=version, **_order_values(note, content, content_hash, now)))
            await conn.execute(delete(order_items).where(order_items.c.order_id == order_id))
            await conn.execute(delete(order_volumes).where(order_volumes.c.order_id == order_id))
            await self._write_lines(conn, order_id, note)
            await self._write_document(conn, order_id, note.xml, now)
            outcome, event = SaveOutcome(SaveResult.UPDATED, order_id, version), EventType.UPDATED

        await conn.execute(delete(quarantine).where(
            quarantine.c.account_id == account_id, quarantine.c.kind == note.kind,
            quarantine.c.bling_id == note.bling_id))
        if run_id is not None:
            await self._count(conn, run_id, {outcome.result.value: 1})
        if event is not None:
            stored = StoredOrder(
                id=order_id, account=account, status=OrderStatus.READY, bling_id=note.bling_id,
                situation=note.situation, order=note.order, links=note.links, version=version,
                created_at=created_at, updated_at=now)
            await self._add_event(conn, account_id, stored, event, now)
        return outcome

    async def cancel_order(self, account_id: int, bling_id: int, *, kind: str | None = None,
                           run_id: int | None = None) -> SaveOutcome:
        """A cancellation in Bling: the ready order becomes canceled (+ event order.canceled).
        Already canceled → UNCHANGED, never imported → NOT_FOUND; only a real cancellation
        counts in the run (`canceled`)."""

        async def work(conn: AsyncConnection) -> SaveOutcome:
            now = self._now()
            query = (select(orders, accounts.c.name.label("account_name"))
                     .join(accounts, accounts.c.id == orders.c.account_id)
                     .where(orders.c.account_id == account_id, orders.c.bling_id == bling_id))
            if kind is not None:
                query = query.where(orders.c.kind == kind)
            row = (await conn.execute(query.order_by(orders.c.id.desc()).limit(1)
                                      .with_for_update(of=orders))).first()
            if row is None:
                return SaveOutcome(SaveResult.NOT_FOUND, None, None)
            if row.status == OrderStatus.CANCELED.value:
                return SaveOutcome(SaveResult.UNCHANGED, row.id, row.version)
            version = row.version + 1
            await conn.execute(update(orders).where(orders.c.id == row.id).values(
                status=OrderStatus.CANCELED.value, situation=InvoiceStatus.CANCELED.value, version=version,
                canceled_at=now, updated_at=now))
            if run_id is not None:
                await self._count(conn, run_id, {"canceled": 1})
            stored = replace(_stored(row), status=OrderStatus.CANCELED, situation=InvoiceStatus.CANCELED,
                             version=version, updated_at=now, canceled_at=now)
            await self._add_event(conn, account_id, stored, EventType.CANCELED, now)
            return SaveOutcome(SaveResult.CANCELED, row.id, version)

        return await self._write_retrying(work)

    async def order(self, order_id: int) -> StoredOrder:
        found = await self._orders(orders.c.id == order_id, limit=1)
        if not found:
            raise OrderNotFound(f"no order with id {order_id}")
        return found[0]

    async def order_by_key(self, account: str, access_key: str) -> StoredOrder:
        found = await self._orders(accounts.c.name == account, orders.c.access_key == access_key, limit=1)
        if not found:
            raise OrderNotFound(f"no order with access key {access_key} in account {account!r}")
        return found[0]

    async def orders(self, *, account: str | None = None, status: OrderStatus | None = None,
                     after_id: int = 0, limit: int = 100) -> list[StoredOrder]:
        """Orders by id ascending, after `after_id` (pass the last id seen to page on)."""
        conditions: list[Any] = [orders.c.id > after_id]
        if account is not None:
            conditions.append(accounts.c.name == account)
        if status is not None:
            conditions.append(orders.c.status == OrderStatus(status).value)
        return await self._orders(*conditions, limit=limit)

    async def count_orders(self, *, account_id: int | None = None, status: OrderStatus | None = None) -> int:
        query = select(func.count()).select_from(orders)
        if account_id is not None:
            query = query.where(orders.c.account_id == account_id)
        if status is not None:
            query = query.where(orders.c.status == OrderStatus(status).value)
        async with self._read() as conn:
            return int(await conn.scalar(query) or 0)

    async def document(self, order_id: int) -> bytes:
        """The note's XML as imported (the latest version's), checked against its sha256."""
        async with self._read() as conn:
            row = (await conn.execute(select(documents.c.data, documents.c.sha256, documents.c.compression)
                                      .where(documents.c.order_id == order_id))).first()
        if row is None:
            raise OrderNotFound(f"no order with id {order_id} (no stored document)")
        try:
            xml = zlib.decompress(row.data) if row.compression == "zlib" else bytes(row.data)
        except zlib.error:
            raise DocumentCorrupt(order_id) from None
        if hashlib.sha256(xml).hexdigest() != row.sha256:
            raise DocumentCorrupt(order_id)
        return xml

    async def _orders(self, *conditions: Any, limit: int) -> list[StoredOrder]:
        query = (select(orders, accounts.c.name.label("account_name"))
                 .join(accounts, accounts.c.id == orders.c.account_id)
                 .where(*conditions).order_by(orders.c.id).limit(limit))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(row) for row in rows]

    @staticmethod
    async def _write_lines(conn: AsyncConnection, order_id: int, note: ImportedNote) -> None:
        """The normalised items and volumes (for search by SKU/EAN; the content JSON is the
        order's truth)."""
        items = [
            {"order_id": order_id, "line": item.line, "sku": item.sku, "ean": item.ean,
             "description": item.description, "quantity": item.quantity, "unit": item.unit,
             "unit_value": item.unit_value, "total_value": item.total_value, "ncm": item.ncm,
             "cfop": item.cfop, "order_ref": item.order_ref, "order_line": item.order_line}
            for item in note.order.items
        ]
        volumes = [
            {"order_id": order_id, "position": position, "quantity": volume.quantity, "kind": volume.kind,
             "brand": volume.brand, "numbering": volume.numbering, "net_weight_kg": volume.net_weight_kg,
             "gross_weight_kg": volume.gross_weight_kg}
            for position, volume in enumerate(note.order.volumes, start=1)
        ]
        if items:
            await conn.execute(insert(order_items), items)
        if volumes:
            await conn.execute(insert(order_volumes), volumes)

    @staticmethod
    async def _write_document(conn: AsyncConnection, order_id: int, xml: bytes, now: datetime) -> None:
        values = {"compression": "zlib", "sha256": hashlib.sha256(xml).hexdigest(), "size": len(xml),
                  "data": zlib.compress(xml, 6), "updated_at": now}
        result = await conn.execute(
            update(documents).where(documents.c.order_id == order_id).values(**values))
        if result.rowcount == 0:
            await conn.execute(insert(documents).values(order_id=order_id, **values))

    async def _add_event(self, conn: AsyncConnection, account_id: int, stored: StoredOrder,
                         event: EventType, now: datetime) -> None:
        """The outbox row of one order change. Called last in its transaction: on PostgreSQL it
        takes the outbox lock, held until commit, and must not wait for any other lock after."""
        if self._postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK})
        await conn.execute(insert(outbox).values(
            account_id=account_id, order_id=stored.id, type=event.value, order_version=stored.version,
            idempotency_key=idempotency_key(stored.order.access_key, stored.version, event),
            payload=json.dumps(order_json(stored), ensure_ascii=False, separators=(",", ":")),
            created_at=now, attempts=0, next_attempt_at=now, last_error=None, delivered_at=None,
            dead_at=None))

    # --- outbox -------------------------------------------------------------------------------

    async def outbox(self, *, order_id: int | None = None, account_id: int | None = None,
                     after_id: int = 0, limit: int = 1000) -> list[OutboxEvent]:
        """Events by id ascending, after `after_id`: the feed, and each order's history."""
        query = select(outbox).where(outbox.c.id > after_id)
        if order_id is not None:
            query = query.where(outbox.c.order_id == order_id)
        if account_id is not None:
            query = query.where(outbox.c.account_id == account_id)
        async with self._read() as conn:
            rows = (await conn.execute(query.order_by(outbox.c.id).limit(limit))).all()
        return [outbox_event(row) for row in rows]

    # --- quarantine ---------------------------------------------------------------------------

    async def quarantine(self, account_id: int, entry: QuarantineEntry, *, run_id: int | None = None) -> None:
        """Record (or record again) a note that could not be imported. Attempts count up and the
        next attempt backs off (`quarantine_backoff`); with `run_id`, the run's `quarantined`
        counter goes up in the same transaction."""
        _check_kind(entry.kind)
        now = self._now()

        async def work(conn: AsyncConnection) -> None:
            key = and_(quarantine.c.account_id == account_id, quarantine.c.kind == entry.kind,
                       quarantine.c.bling_id == entry.bling_id)
            # The run is checked before the insert, whose foreign key would fail less clearly.
            run_exists = select(sync_runs.c.id).where(sync_runs.c.id == run_id)
            if run_id is not None and await conn.scalar(run_exists) is None:
                raise RunNotFound(run_id)
            attempts = await conn.scalar(select(quarantine.c.attempts).where(key).with_for_update())
            total = (attempts or 0) + 1
            values = {"number": entry.number, "access_key": entry.access_key, "reason": entry.reason,
                      "reason_code": entry.reason_code, "payload": entry.payload, "attempts": total,
                      "last_seen": now, "next_attempt_at": now + quarantine_backoff(total), "run_id": run_id}
            if attempts is None:
                await conn.execute(insert(quarantine).values(
                    account_id=account_id, kind=entry.kind, bling_id=entry.bling_id, first_seen=now,
                    **values))
            else:
                await conn.execute(update(quarantine).where(key).values(**values))
            if run_id is not None:  # the run's row last, as in save_order: one lock order everywhere
                await self._count(conn, run_id, {"quarantined": 1})

        await self._write_retrying(work)

    async def quarantined(self, account_id: int | None = None) -> list[QuarantinedNote]:
        query = select(quarantine).order_by(quarantine.c.account_id, quarantine.c.first_seen, quarantine.c.id)
        if account_id is not None:
            query = query.where(quarantine.c.account_id == account_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            QuarantinedNote(
                account_id=row.account_id, kind=row.kind, bling_id=row.bling_id, number=row.number,
                access_key=row.access_key, reason=row.reason,
                payload=None if row.payload is None else bytes(row.payload), attempts=row.attempts,
                first_seen=row.first_seen, last_seen=row.last_seen, next_attempt_at=row.next_attempt_at,
                reason_code=row.reason_code)
            for row in rows
        ]

    async def quarantine_holds(self, account_id: int, bling_ids: Sequence[int], *,
                               kind: str | None = None) -> set[int]:
        """The notes among `bling_ids` (of `kind` when given) that are quarantined and not yet
        due for another attempt (the importer skips them, saving the detail and XML requests)."""
        now = self._now()
        held: set[int] = set()
        async with self._read() as conn:
            for chunk in _chunks(sorted(set(bling_ids))):
                where = [quarantine.c.account_id == account_id, quarantine.c.bling_id.in_(chunk),
                         quarantine.c.next_attempt_at > now]
                if kind is not None:
                    where.append(quarantine.c.kind == kind)
                held.update(await conn.scalars(select(quarantine.c.bling_id).where(*where)))
        return held

    async def release(self, account_id: int, bling_id: int) -> bool:
        """Make a quarantined note due now (an operator fixed its cause); False when none."""
        async with self._write() as conn:
            result = await conn.execute(update(quarantine).where(
                quarantine.c.account_id == account_id, quarantine.c.bling_id == bling_id,
            ).values(next_attempt_at=self._now()))
        return result.rowcount > 0

    # --- runs ---------------------------------------------------------------------------------

    async def start_run(self, account_id: int, *, trigger: str, tier: str | None, window_from: datetime,
                        window_to: datetime) -> int:
        """A new run, `running`. Any earlier run of the account still `running` belonged to a
        process that stopped without finishing it: it becomes INTERRUPTED."""
        _require_aware(window_from, "window_from")
        _require_aware(window_to, "window_to")
        now = self._now()
        async with self._write() as conn:
            await self._account_name(conn, account_id)
            await conn.execute(update(sync_runs).where(
                sync_runs.c.account_id == account_id, sync_runs.c.outcome == RunOutcome.RUNNING.value,
            ).values(outcome=RunOutcome.INTERRUPTED.value, finished_at=now,
                     error="still running when a later run started: its process stopped before finishing",
                     error_code=RunCode.PROCESS_STOPPED.value))
            result = await conn.execute(insert(sync_runs).values(
                account_id=account_id, trigger=trigger, tier=tier, window_from=window_from,
                window_to=window_to, started_at=now, finished_at=None, outcome=RunOutcome.RUNNING.value,
                requests=0, error=None, error_code=None, **dict.fromkeys(_COUNTERS, 0)))
            return _inserted_id(result)

    async def count_in_run(self, run_id: int, **increments: int) -> None:
        """Add to the run's counters (`RunCounters` field names: listed=100, skipped=98, …)."""
        if not increments:
            return
        async with self._write() as conn:
            await self._count(conn, run_id, increments)

    async def finish_run(self, run_id: int, *, outcome: RunOutcome, requests: int,
                         error: str | None = None, error_code: str | None = None) -> SyncRun:
        """End a run: `error` in words (English), `error_code` the same as a `sync.reasons` code
        (a `RunCode` or a Bling error's) for the dashboard to translate."""
        async with self._write() as conn:
            result = await conn.execute(update(sync_runs).where(sync_runs.c.id == run_id).values(
                outcome=RunOutcome(outcome).value, requests=requests, error=error, error_code=error_code,
                finished_at=self._now()))
            if result.rowcount == 0:
                raise RunNotFound(run_id)
            row = (await conn.execute(select(sync_runs).where(sync_runs.c.id == run_id))).one()
        return _run(row)

    async def runs(self, account_id: int, limit: int = 20) -> list[SyncRun]:
        """The account's latest runs, newest first."""
        async with self._read() as conn:
            rows = (await conn.execute(select(sync_runs).where(sync_runs.c.account_id == account_id)
                                       .order_by(sync_runs.c.id.desc()).limit(limit))).all()
        return [_run(row) for row in rows]

    @staticmethod
    async def _count(conn: AsyncConnection, run_id: int, increments: dict[str, int]) -> None:
        unknown = set(increments) - _COUNTERS
        if unknown:
            raise ValueError(f"unknown run counters {sorted(unknown)}; known: {sorted(_COUNTERS)}")
        values = {name: sync_runs.c[name] + int(amount) for name, amount in increments.items()}
        result = await conn.execute(update(sync_runs).where(sync_runs.c.id == run_id).values(**values))
        if result.rowcount == 0:
            raise RunNotFound(run_id)

    # --- notes seen but not imported ----------------------------------------------------------

    async def replace_unimported(self, account_id: int, kind: str, notes: Sequence[UnimportedNote], *,
                                 within: tuple[datetime, datetime] | None = None) -> None:
        """The account's current list of `kind` notes seen in Bling but not imported, replacing
        the previous list (a note that was printed meanwhile drops out) — whole, or only the
        notes issued `within` [start, end) when given (a sweep that looked at that much)."""
        _check_kind(kind)
        if within is not None and any(not within[0] <= note.issued_at < within[1] for note in notes):
            raise ValueError("replace_unimported got a note issued outside `within`")
        if any(note.kind != kind for note in notes):
            raise ValueError(f"replace_unimported({kind!r}) got notes of another kind")
        now = self._now()
        by_id = {note.bling_id: note for note in notes}  # one row per note, the last word wins
        async with self._write() as conn:
            await self._account_name(conn, account_id)
            scope = [unimported_notes.c.account_id == account_id, unimported_notes.c.kind == kind]
            if within is not None:
                scope += [unimported_notes.c.issued_at >= within[0], unimported_notes.c.issued_at < within[1]]
            await conn.execute(delete(unimported_notes).where(*scope))
            if by_id:
                await conn.execute(insert(unimported_notes), [
                    {"account_id": account_id, "kind": kind, "bling_id": note.bling_id, "number": note.number,
                     "situation": InvoiceStatus(note.situation).value, "issued_at": note.issued_at,
                     "reason": note.reason, "reason_code": note.reason_code, "access_key": note.access_key,
                     "seen_at": now}
                    for note in by_id.values()
                ])

    async def unimported(self, account_id: int) -> list[UnimportedNote]:
        async with self._read() as conn:
            rows = (await conn.execute(select(unimported_notes)
                                       .where(unimported_notes.c.account_id == account_id)
                                       .order_by(unimported_notes.c.issued_at, unimported_notes.c.number,
                                                 unimported_notes.c.id))).all()
        return [
            UnimportedNote(kind=row.kind, bling_id=row.bling_id, number=row.number,
                           situation=InvoiceStatus(row.situation), issued_at=row.issued_at,
                           reason=row.reason, access_key=row.access_key, reason_code=row.reason_code)
            for row in rows
        ]


def idempotency_key(access_key: str, version: int, event: EventType) -> str:
    """One change of one note is one key: stable across retries and re-runs, and across a
    removal and re-connection of the account (its orders come back with new ids and the same
    keys, so a warehouse that has them already ignores them instead of shipping twice).
    Unique per account: two accounts may import the same note (a brand connected twice)."""
    return f"{access_key}-v{version}-{event.value}"


# --- token store and refresh locks ------------------------------------------------------------


@dataclass(frozen=True)
class AccountTokenStore:
    """`blingsync.bling.auth.TokenStore` over the store: tokens live in the account's sealed
    credentials, so they are encrypted at rest like the client secret."""

    store: Store

    async def load(self, account: str) -> StoredTokens | None:
        return await self.store.load_tokens(account)

    async def save(self, account: str, tokens: StoredTokens) -> None:
        await self.store.save_tokens(account, tokens)


def _lock_key(account: str) -> int:
    """A signed 64-bit advisory lock key per account."""
    digest = hashlib.sha256(f"blingsync:refresh:{account}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class PostgresRefreshLock:
    """Refreshes of one account exclude each other across every process on the database: the
    in-process lock first (coroutines of this process queue without holding a connection), then
    a session advisory lock on a connection held for the refresh."""

    engine: AsyncEngine
    local: RefreshLock = field(default_factory=lambda: PROCESS_REFRESH_LOCK)

    @contextlib.asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[None]:
        key = {"key": _lock_key(account)}
        async with self.local.hold(account), self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
            await conn.commit()  # the session lock outlives the transaction; no idle transaction
            try:
                yield
            finally:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                    await conn.commit()
                except BaseException:
                    # A connection that may still hold the lock must not go back to the pool.
                    await conn.invalidate()
                    raise


@dataclass(frozen=True)
class FileRefreshLock:
    """The SQLite counterpart: an exclusive `flock` on a file beside the database, one per
    account (processes on one SQLite file share a machine)."""

    directory: Path
    database_name: str
    local: RefreshLock = field(default_factory=lambda: PROCESS_REFRESH_LOCK)
    poll_s: float = 0.05

    @contextlib.asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[None]:
        import fcntl  # POSIX only; `Store.refresh_lock` does not use this class elsewhere

        digest = hashlib.sha256(account.encode()).hexdigest()[:16]
        path = self.directory / f"{self.database_name}.refresh-{digest}.lock"
        async with self.local.hold(account):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(self.poll_s)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


# --- row → record -----------------------------------------------------------------------------


def _stored(row: Row[Any]) -> StoredOrder:
    return StoredOrder(
        id=row.id, account=row.account_name, status=OrderStatus(row.status), bling_id=row.bling_id,
        situation=InvoiceStatus(row.situation), order=order_from_fields(json.loads(row.content)),
        links=OrderLinks(danfe=row.link_danfe, xml=row.link_xml), version=row.version,
        created_at=row.created_at, updated_at=row.updated_at, canceled_at=row.canceled_at)


def _order_values(note: ImportedNote, content: str, content_hash: str, now: datetime) -> dict[str, Any]:
    """The order row's columns that follow the note (everything but id, status, version and
    creation)."""
    order = note.order
    return {
        "kind": note.kind, "bling_id": note.bling_id, "model": order.model, "series": order.series,
        "number": order.number, "issued_at": order.issued_at, "recipient_name": order.recipient.name,
        "recipient_document": order.recipient.document, "total_value": order.total_value,
        "content": content, "content_hash": content_hash, "situation": note.situation.value,
        "link_danfe": note.links.danfe, "link_xml": note.links.xml, "updated_at": now,
    }


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("the database did not report the id of an inserted row")
    return int(key[0])


def _require_aware(value: datetime, name: str) -> None:
    """Naive datetimes are refused at the door, with the argument's name: guessing their zone is
    how a window ends up three hours off."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown note kind {kind!r}; expected one of {sorted(KINDS)}")


def _check_generation(generation: ApiGeneration, credentials: Credentials) -> None:
    expected = V2Credentials if generation == ApiGeneration.V2 else V3Credentials
    if not isinstance(credentials, expected):
        raise ValueError(f"an API {generation.value} account takes {expected.__name__}, "
                         f"not {type(credentials).__name__}")


def _chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
