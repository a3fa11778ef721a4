"""The store against real databases: SQLite (a file, WAL) and PostgreSQL when reachable.

Every test here runs once per backend (`db_url` is parametrized in store_fixtures)."""
# The fixtures are imported from store_fixtures, so test parameters "redefine" them:
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text, update

from blingsync.bling.auth import LocalRefreshLock
from blingsync.domain import ApiGeneration, InvoiceStatus, OrderLinks, OrderStatus
from blingsync.orderjson import order_json
from blingsync.store import (
    AccountExists,
    AccountNotFound,
    CredentialsUnreadable,
    OrderNotFound,
    RunNotFound,
    SchemaOutdated,
    SecretBox,
    Store,
    StoreError,
    idempotency_key,
)
from blingsync.store import migrate as migrations
from blingsync.store.records import (
    AccountSettings,
    AccountState,
    EventType,
    QuarantineEntry,
    RunCounters,
    RunOutcome,
    SaveResult,
    SweepTier,
    UnimportedNote,
    V2Credentials,
)
from blingsync.store.repo import FileRefreshLock, PostgresRefreshLock
from blingsync.store.tables import accounts, include_in_comparison, metadata, order_items, orders
from tests.integration.store_fixtures import (  # noqa: F401  (fixtures are used by name)
    BRT,
    T0,
    V2_KEY,
    V3_SECRET,
    Clock,
    box,
    clock,
    db_url,
    make_item,
    make_note,
    make_order,
    make_xml,
    new_account,
    pg_url,
    store,
    tokens,
    v3_credentials,
    with_total,
)

# --- schema -----------------------------------------------------------------------------------


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                           "include_object": include_in_comparison})
    return list(compare_metadata(context, metadata))


async def test_migrations_build_exactly_the_tables_of_tables_py(store: Store) -> None:
    assert await store.schema_revision() == migrations.head_revision()
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        tables = set(await conn.run_sync(lambda c: c.dialect.get_table_names(c)))
    assert tables == set(metadata.tables) | {"alembic_version"}


async def test_migrations_go_down_and_up_again(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(migrations.downgrade, "base")
    assert await store.schema_revision() is None
    await store.migrate()
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_open_without_migrating_refuses_an_empty_database(db_url: str, box: SecretBox) -> None:
    head = migrations.head_revision()
    with pytest.raises(SchemaOutdated, match=rf"none \(empty database\).*needs {head}: run its migrations"):
        await Store.open(db_url, box=box, migrate=False)
    await (await Store.open(db_url, box=box)).close()  # migrates
    again = await Store.open(db_url, box=box, migrate=False)
    assert await again.schema_revision() == migrations.head_revision()
    await again.close()


async def test_sqlite_runs_in_wal_with_foreign_keys(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    async with store.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30000


# --- accounts ---------------------------------------------------------------------------------


async def test_account_crud(store: Store, clock: Clock) -> None:
    tiers = (SweepTier("fast", timedelta(days=1), timedelta(0)),
             SweepTier("slow", timedelta(days=40, seconds=1.5), timedelta(hours=6)))
    settings = AccountSettings(import_nfce=True, poll_interval_s=30, tiers=tiers)
    b = await store.add_account(new_account("zeta", settings=settings))
    a = await store.add_account(new_account("alfa"))
    assert (b.name, b.generation, b.state) == ("zeta", ApiGeneration.V3, AccountState.ACTIVE)
    assert b.settings == settings
    assert b.created_at == T0 and b.created_at.tzinfo is not None
    assert await store.account("zeta") == b
    assert await store.account_by_id(a.id) == a
    assert [x.name for x in await store.accounts()] == ["alfa", "zeta"]

    clock.advance(minutes=5)
    await store.set_account_state(a.id, AccountState.MISSING_PERMISSIONS, "falta a permissão Notas Fiscais")
    await store.update_account_settings(a.id, AccountSettings(write_back=True))
    await store.set_account_document(a.id, "98765432000100")
    changed = await store.account("alfa")
    assert changed.state is AccountState.MISSING_PERMISSIONS
    assert changed.state_reason == "falta a permissão Notas Fiscais"
    assert changed.settings == AccountSettings(write_back=True)
    assert changed.document == "98765432000100"
    assert changed.updated_at == T0 + timedelta(minutes=5) and changed.created_at == T0

    with pytest.raises(AccountExists, match="'alfa' already exists"):
        await store.add_account(new_account("alfa"))
    with pytest.raises(AccountNotFound, match="no account named 'nada'"):
        await store.account("nada")
    with pytest.raises(AccountNotFound, match="no account with id 999"):
        await store.account_by_id(999)
    with pytest.raises(AccountNotFound):
        await store.set_account_state(999, AccountState.PAUSED)
    with pytest.raises(ValueError, match="API v2 account takes V2Credentials"):
        await store.add_account(replace(new_account("x"), generation=ApiGeneration.V2))


async def test_removing_an_account_removes_all_of_it(store: Store) -> None:
    a = await store.add_account(new_account("a"))
    b = await store.add_account(new_account("b"))
    for account in (a, b):
        run = await store.start_run(account.id, trigger="poll", tier="recent", window_from=T0, window_to=T0)
        await store.save_order(account.id, make_note(), run_id=run)
        await store.quarantine(account.id, QuarantineEntry("nfe", 5, "XML inválido"), run_id=run)
        await store.advance_cursor(account.id, "nfe", "recent", T0)
    await store.remove_account("a")
    assert [x.name for x in await store.accounts()] == ["b"]
    assert await store.count_orders() == 1
    assert [e.account_id for e in await store.outbox()] == [b.id]
    assert [q.account_id for q in await store.quarantined()] == [b.id]
    assert await store.cursor(a.id, "nfe", "recent") is None
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(order_items.c.order_id))).all() != []
        assert (await conn.execute(text("SELECT COUNT(*) FROM sync_runs"))).scalar() == 1
        assert (await conn.execute(text("SELECT COUNT(*) FROM documents"))).scalar() == 1
    with pytest.raises(AccountNotFound):
        await store.remove_account("a")


# --- credentials ------------------------------------------------------------------------------


async def test_credentials_round_trip_encrypted(store: Store) -> None:
    v3 = await store.add_account(new_account("v3", credentials=v3_credentials(tokens(1))))
    v2 = await store.add_account(new_account("v2", credentials=V2Credentials(V2_KEY)))
    assert await store.credentials(v3.id) == v3_credentials(tokens(1))
    assert await store.credentials(v2.id) == V2Credentials(V2_KEY)
    async with store.engine.connect() as conn:
        blobs = [bytes(b) for b in (await conn.execute(select(accounts.c.credentials))).scalars()]
    for blob in blobs:
        for plain in (V3_SECRET, V2_KEY, "access-token-1", "refresh-token-1", "client-id-1"):
            assert plain.encode() not in blob

    await store.save_credentials(v2.id, v3_credentials())  # moving to v3
    assert (await store.account_by_id(v2.id)).generation is ApiGeneration.V3
    assert await store.credentials(v2.id) == v3_credentials()


async def test_a_blob_copied_to_another_account_does_not_decrypt(store: Store) -> None:
    a = await store.add_account(new_account("a", credentials=V2Credentials(V2_KEY)))
    b = await store.add_account(new_account("b", credentials=V2Credentials("another-key-xxxxxxxxxxxxxxxx")))
    async with store.engine.begin() as conn:
        blob_a = await conn.scalar(select(accounts.c.credentials).where(accounts.c.id == a.id))
        await conn.execute(update(accounts).where(accounts.c.id == b.id).values(credentials=blob_a))
    with pytest.raises(CredentialsUnreadable) as caught:
        await store.credentials(b.id)
    assert "'b'" in str(caught.value) and "copied from another account" in str(caught.value)
    assert V2_KEY not in str(caught.value) and V2_KEY not in repr(caught.value)
    assert await store.credentials(a.id) == V2Credentials(V2_KEY)


async def test_another_key_gives_a_clear_error_naming_the_account(db_url: str, store: Store,
                                                                  clock: Clock) -> None:
    a = await store.add_account(new_account("marca", credentials=v3_credentials(tokens())))
    other = await Store.open(db_url, box=SecretBox.generate(), clock=clock)
    try:
        for attempt in (other.credentials(a.id), other.token_store().load("marca")):
            with pytest.raises(CredentialsUnreadable) as caught:
                await attempt
            message = str(caught.value)
            assert "'marca'" in message and "another secret key" in message
            assert "BLINGSYNC_SECRET_KEY" in message
            assert V3_SECRET not in message and "access-token" not in message
    finally:
        await other.close()


async def test_token_store_keeps_tokens_inside_the_credentials(store: Store) -> None:
    await store.add_account(new_account("v3"))
    await store.add_account(new_account("v2", credentials=V2Credentials(V2_KEY)))
    tokens_store = store.token_store()
    assert await tokens_store.load("v3") is None
    await tokens_store.save("v3", tokens(2))
    assert await tokens_store.load("v3") == tokens(2)
    await tokens_store.save("v3", tokens(3))
    loaded = await tokens_store.load("v3")
    assert loaded == tokens(3) and loaded is not None and loaded.scope == (98309, 318257570)
    assert loaded.expires_at == tokens(3).expires_at
    v3 = await store.account("v3")
    assert await store.credentials(v3.id) == v3_credentials(tokens(3))  # the client secret survived

    assert await tokens_store.load("v2") is None
    with pytest.raises(StoreError, match="uses API v2"):
        await tokens_store.save("v2", tokens())
    with pytest.raises(AccountNotFound):
        await tokens_store.load("nada")


async def test_refresh_lock_excludes_other_holders(store: Store) -> None:
    """Two locks with separate in-process locks stand for two processes."""
    def make() -> PostgresRefreshLock | FileRefreshLock:
        lock = store.refresh_lock()
        assert isinstance(lock, PostgresRefreshLock | FileRefreshLock)
        return replace(lock, local=LocalRefreshLock())

    first, second = make(), make()
    order: list[str] = []

    async def hold(lock: PostgresRefreshLock | FileRefreshLock, name: str) -> None:
        async with lock.hold("marca"):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    await asyncio.gather(hold(first, "a"), hold(second, "b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    async with first.hold("one"), second.hold("other"):  # other accounts do not wait
        pass


# --- orders -----------------------------------------------------------------------------------


async def test_save_order_life_cycle_with_one_event_per_change(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account("marca"))
    note = make_note(bling_id=9001)

    created = await store.save_order(account.id, note)
    assert (created.result, created.version) == (SaveResult.CREATED, 1)
    order_id = created.order_id
    assert order_id is not None
    stored = await store.order(order_id)
    assert stored.order == note.order and stored.status is OrderStatus.READY and stored.version == 1
    assert stored.account == "marca" and stored.bling_id == 9001 and stored.links == note.links
    assert stored.situation is InvoiceStatus.DANFE_PRINTED and stored.created_at == T0

    clock.advance(minutes=1)  # the same note again, with freshly signed links
    again = replace(note, links=OrderLinks(danfe="https://bling.test/danfe/new", xml="https://bling.test/x?sig=2"))
    assert (await store.save_order(account.id, again)).result is SaveResult.UNCHANGED
    stored = await store.order(order_id)
    assert stored.links == again.links and stored.version == 1 and stored.updated_at == T0

    clock.advance(minutes=1)  # content changed in Bling (corrected address, say)
    changed = make_note(replace(note.order, additional_info="entregar à tarde"), bling_id=9001,
                        xml=make_xml(note.order, "v2"))
    updated = await store.save_order(account.id, changed)
    assert (updated.result, updated.order_id, updated.version) == (SaveResult.UPDATED, order_id, 2)
    stored = await store.order(order_id)
    assert stored.order.additional_info == "entregar à tarde"
    assert stored.updated_at == T0 + timedelta(minutes=2)
    assert await store.document(order_id) == make_xml(note.order, "v2")

    clock.advance(minutes=1)
    canceled = await store.cancel_order(account.id, 9001)
    assert (canceled.result, canceled.version) == (SaveResult.CANCELED, 3)
    stored = await store.order(order_id)
    assert stored.status is OrderStatus.CANCELED and stored.situation is InvoiceStatus.CANCELED
    assert stored.canceled_at == T0 + timedelta(minutes=3)

    # A cancellation is final: nothing moves it back.
    assert (await store.save_order(account.id, changed)).result is SaveResult.UNCHANGED
    repriced = replace(note, order=with_total(note.order, "99.00"))
    assert (await store.save_order(account.id, repriced)).result is SaveResult.UNCHANGED
    assert (await store.cancel_order(account.id, 9001)).result is SaveResult.UNCHANGED
    assert (await store.cancel_order(account.id, 12345)).result is SaveResult.NOT_FOUND
    assert (await store.order(order_id)).version == 3

    events = await store.outbox(order_id=order_id)
    assert [(e.type, e.order_version) for e in events] == [
        (EventType.CREATED, 1), (EventType.UPDATED, 2), (EventType.CANCELED, 3)]
    key = note.order.access_key
    assert [e.idempotency_key for e in events] == [
        f"{key}-v1-order.created", f"{key}-v2-order.updated", f"{key}-v3-order.canceled"]
    assert [e.idempotency_key for e in events] == [idempotency_key(key, e.order_version, e.type)
                                                   for e in events]
    assert events[0].id < events[1].id < events[2].id
    assert events[-1].payload == json.loads(json.dumps(order_json(await store.order(order_id))))
    assert events[0].payload["status"] == "ready" and events[0].payload["version"] == 1
    links: Any = events[0].payload["links"]
    assert links["danfe"] == note.links.danfe
    assert events[2].payload["status"] == "canceled" and events[2].payload["canceled_at"] is not None
    for event in events:
        assert event.attempts == 0 and event.delivered_at is None and event.dead_at is None
        assert event.next_attempt_at == event.created_at and event.created_at.tzinfo is not None


async def test_payload_of_created_event_is_the_stored_order(store: Store) -> None:
    account = await store.add_account(new_account())
    saved = await store.save_order(account.id, make_note())
    assert saved.order_id is not None
    [event] = await store.outbox()
    assert event.payload == json.loads(json.dumps(order_json(await store.order(saved.order_id))))
    assert event.payload["issued_at"] == "2026-11-19T14:03:00-03:00"  # the XML's offset, kept


async def test_same_content_with_a_new_bling_id_or_situation_updates_them_quietly(store: Store) -> None:
    account = await store.add_account(new_account())
    note = make_note(bling_id=1, situation=InvoiceStatus.AUTHORIZED)
    saved = await store.save_order(account.id, note)
    assert saved.order_id is not None
    again = replace(note, bling_id=2, situation=InvoiceStatus.DANFE_PRINTED)
    assert (await store.save_order(account.id, again)).result is SaveResult.UNCHANGED
    stored = await store.order(saved.order_id)
    assert (stored.bling_id, stored.situation, stored.version) == (2, InvoiceStatus.DANFE_PRINTED, 1)
    assert len(await store.outbox()) == 1
    assert set(await store.known_notes(account.id, [1, 2])) == {2}


async def test_decimals_stay_exact(store: Store) -> None:
    account = await store.add_account(new_account())
    items = (make_item(1, sku="A", quantity="0.10", unit_value="1234567.891"),
             make_item(2, sku="B", quantity="3.0000", unit_value="0.0100000001"))
    order = with_total(make_order(items=items), "123456.79")
    saved = await store.save_order(account.id, make_note(order))
    assert saved.order_id is not None
    back = (await store.order(saved.order_id)).order
    assert back == order
    assert [str(i.quantity) for i in back.items] == ["0.10", "3.0000"]
    assert [str(i.unit_value) for i in back.items] == ["1234567.891", "0.0100000001"]
    assert str(back.total_value) == "123456.79"
    assert str(back.volumes[0].net_weight_kg) == "1.250"
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(order_items.c.quantity, order_items.c.unit_value)
                                   .order_by(order_items.c.line))).all()
        assert [(str(q), str(v)) for q, v in rows] == [("0.10", "1234567.891"), ("3.0000", "0.0100000001")]
        raw = (await conn.execute(text("SELECT quantity FROM order_items ORDER BY line"))).scalars().all()
        assert raw == ["0.10", "3.0000"]
        assert (await conn.execute(select(orders.c.total_value))).scalar() == Decimal("123456.79")
    [event] = await store.outbox()
    assert event.payload["total_value"] == "123456.79"
    lines: Any = event.payload["items"]
    assert [i["quantity"] for i in lines] == ["0.10", "3.0000"]


async def test_document_round_trip(store: Store) -> None:
    account = await store.add_account(new_account())
    xml = make_xml(make_order(), "x" * 10_000)
    saved = await store.save_order(account.id, make_note(xml=xml))
    assert saved.order_id is not None
    assert await store.document(saved.order_id) == xml
    async with store.engine.connect() as conn:
        size = (await conn.execute(text("SELECT length(data) FROM documents"))).scalar()
    assert size is not None and size < len(xml) / 10  # compressed
    with pytest.raises(OrderNotFound):
        await store.document(saved.order_id + 1)


async def test_order_queries(store: Store) -> None:
    a = await store.add_account(new_account("a"))
    b = await store.add_account(new_account("b"))
    ids = []
    for n in range(5):
        account = a if n % 2 == 0 else b
        saved = await store.save_order(account.id, make_note(make_order(number=100 + n), bling_id=500 + n))
        ids.append(saved.order_id)
    await store.cancel_order(a.id, 502)

    assert [o.id for o in await store.orders()] == ids
    assert [o.id for o in await store.orders(limit=2)] == ids[:2]
    assert [o.id for o in await store.orders(after_id=ids[1] or 0, limit=2)] == ids[2:4]
    assert [o.order.number for o in await store.orders(account="a")] == [100, 102, 104]
    assert [o.order.number for o in await store.orders(account="a", status=OrderStatus.READY)] == [100, 104]
    assert [o.order.number for o in await store.orders(status=OrderStatus.CANCELED)] == [102]
    assert await store.count_orders() == 5
    assert await store.count_orders(account_id=a.id) == 3
    assert await store.count_orders(account_id=a.id, status=OrderStatus.READY) == 2

    key = make_order(number=103).access_key
    assert (await store.order_by_key("b", key)).bling_id == 503
    with pytest.raises(OrderNotFound, match="access key"):
        await store.order_by_key("a", key)
    with pytest.raises(OrderNotFound, match="with id 999"):
        await store.order(999)

    known = await store.known_notes(a.id, [500, 501, 502, 999])
    assert set(known) == {500, 502}
    assert known[502].status is OrderStatus.CANCELED and known[502].version == 2
    assert known[500].access_key == make_order(number=100).access_key
    assert known[500].situation is InvoiceStatus.DANFE_PRINTED
    assert await store.known_notes(a.id, list(range(2000))) == await store.known_notes(a.id, [500, 502, 504])


async def test_save_order_clears_the_notes_quarantine_and_counts_in_the_run(store: Store) -> None:
    account = await store.add_account(new_account())
    run = await store.start_run(account.id, trigger="poll", tier="recent", window_from=T0, window_to=T0)
    await store.quarantine(account.id, QuarantineEntry("nfe", 9001, "sem volumes"), run_id=run)
    await store.quarantine(account.id, QuarantineEntry("nfce", 9001, "outro fluxo"))
    note = make_note(bling_id=9001)
    await store.save_order(account.id, note, run_id=run)
    await store.save_order(account.id, note, run_id=run)
    await store.save_order(account.id, make_note(replace(note.order, additional_info="x")), run_id=run)
    await store.cancel_order(account.id, 9001, run_id=run)
    await store.cancel_order(account.id, 9001, run_id=run)  # nothing to count
    await store.cancel_order(account.id, 4242, run_id=run)
    assert [(q.kind, q.bling_id) for q in await store.quarantined(account.id)] == [("nfce", 9001)]
    [current] = await store.runs(account.id)
    assert current.counters == RunCounters(created=1, unchanged=1, updated=1, canceled=1, quarantined=1)


async def test_a_failing_save_leaves_nothing_behind(store: Store) -> None:
    account = await store.add_account(new_account())
    bad = make_note(make_order(items=(make_item(1), make_item(1, sku="dup"))))  # two lines numbered 1
    with pytest.raises(Exception, match=r"(?i)unique|constraint"):
        await store.save_order(account.id, bad)
    assert await store.count_orders() == 0 and await store.outbox() == []
    with pytest.raises(AccountNotFound):
        await store.save_order(999, make_note())
    with pytest.raises(ValueError, match="unknown note kind"):
        await store.save_order(account.id, make_note(kind="nfse"))


async def test_concurrent_saves_of_one_note_make_one_order_and_one_event(
    db_url: str, store: Store, box: SecretBox, clock: Clock
) -> None:
    account = await store.add_account(new_account())
    other = await Store.open(db_url, box=box, clock=clock)
    try:
        notes = [make_note(make_order(number=n), bling_id=n) for n in range(1, 11)]
        results = await asyncio.gather(*(s.save_order(account.id, note)
                                         for note in notes for s in (store, other, store, other)))
    finally:
        await other.close()
    by_result = [r.result for r in results]
    assert by_result.count(SaveResult.CREATED) == 10 and by_result.count(SaveResult.UNCHANGED) == 30
    assert await store.count_orders() == 10
    events = await store.outbox()
    assert len(events) == 10 and len({e.order_id for e in events}) == 10


async def test_concurrent_changes_of_one_order_make_consecutive_versions(store: Store) -> None:
    account = await store.add_account(new_account())
    note = make_note()
    await store.save_order(account.id, note)
    variants = [make_note(replace(note.order, additional_info=f"v{n}")) for n in range(6)]
    await asyncio.gather(*(store.save_order(account.id, v) for v in variants))
    events = await store.outbox()
    assert [e.order_version for e in events] == list(range(1, 8))


# --- cursors ----------------------------------------------------------------------------------


async def test_cursor_never_moves_back(store: Store) -> None:
    account = await store.add_account(new_account())
    assert await store.cursor(account.id, "nfe", "recent") is None
    later, earlier = T0 + timedelta(hours=2), T0 - timedelta(days=1)
    await store.advance_cursor(account.id, "nfe", "recent", later)
    await store.advance_cursor(account.id, "nfe", "recent", earlier)
    assert await store.cursor(account.id, "nfe", "recent") == later
    await store.advance_cursor(account.id, "nfe", "recent", later.astimezone(BRT) + timedelta(seconds=1))
    position = await store.cursor(account.id, "nfe", "recent")
    assert position == later + timedelta(seconds=1) and position is not None and position.tzinfo is not None
    assert await store.cursor(account.id, "nfce", "recent") is None
    assert await store.cursor(account.id, "nfe", "week") is None
    await asyncio.gather(*(store.advance_cursor(account.id, "nfce", "week", T0 + timedelta(minutes=m))
                           for m in (5, 1, 3, 2, 4)))
    assert await store.cursor(account.id, "nfce", "week") == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError, match="cursor position must be an aware datetime"):
        await store.advance_cursor(account.id, "nfe", "recent", datetime(2030, 1, 1))


# --- quarantine -------------------------------------------------------------------------------


async def test_quarantine_backs_off_holds_and_releases(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    entry = QuarantineEntry("nfe", 77, "XML sem transp/vol", number=1234, access_key="3526",
                            payload=b"<xml/>")
    waits = []
    for _ in range(7):
        await store.quarantine(account.id, entry)
        [q] = await store.quarantined(account.id)
        waits.append(q.next_attempt_at - clock.now)
        clock.advance(minutes=1)
    assert waits == [timedelta(hours=h) for h in (1, 2, 4, 8, 16, 24, 24)]
    [q] = await store.quarantined()
    assert (q.attempts, q.first_seen, q.last_seen) == (7, T0, T0 + timedelta(minutes=6))
    assert (q.reason, q.number, q.access_key, q.payload) == ("XML sem transp/vol", 1234, "3526", b"<xml/>")

    assert await store.quarantine_holds(account.id, [77, 78]) == {77}
    clock.advance(hours=23)
    assert await store.quarantine_holds(account.id, [77]) == {77}
    clock.advance(hours=1)
    assert await store.quarantine_holds(account.id, [77]) == set()  # due again

    await store.quarantine(account.id, replace(entry, reason="ainda sem volumes"))
    assert await store.quarantine_holds(account.id, [77]) == {77}
    assert await store.release(account.id, 77) is True
    assert await store.quarantine_holds(account.id, [77]) == set()
    assert await store.release(account.id, 78) is False
    [q] = await store.quarantined(account.id)
    assert q.reason == "ainda sem volumes" and q.attempts == 8
    assert await store.quarantined(account.id + 1) == []


# --- runs -------------------------------------------------------------------------------------


async def test_runs_count_finish_and_interrupt(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    window = (T0 - timedelta(days=2), T0)
    first = await store.start_run(account.id, trigger="poll", tier="recent", window_from=window[0],
                                  window_to=window[1])
    await store.count_in_run(first, listed=100, skipped=98)
    await store.count_in_run(first, listed=20)
    await store.count_in_run(first)
    clock.advance(minutes=1)
    second = await store.start_run(account.id, trigger="manual", tier=None, window_from=window[0],
                                   window_to=window[1])  # the first one's process died
    clock.advance(seconds=30)
    done = await store.finish_run(second, outcome=RunOutcome.OK, requests=3)
    assert done.outcome is RunOutcome.OK and done.requests == 3 and done.finished_at == clock.now
    assert done.started_at == T0 + timedelta(minutes=1)

    newest, oldest = await store.runs(account.id)
    assert (newest.id, oldest.id) == (second, first)
    assert oldest.outcome is RunOutcome.INTERRUPTED and oldest.finished_at == T0 + timedelta(minutes=1)
    assert oldest.error is not None and "stopped" in oldest.error
    assert oldest.counters == RunCounters(listed=120, skipped=98)
    assert (oldest.window_from, oldest.window_to, oldest.trigger, oldest.tier) == (*window, "poll", "recent")
    assert await store.runs(account.id, limit=1) == [newest]

    failed = await store.start_run(account.id, trigger="poll", tier="week", window_from=T0, window_to=T0)
    result = await store.finish_run(failed, outcome=RunOutcome.FAILED, requests=1, error="HTTP 503")
    assert result.error == "HTTP 503" and (await store.runs(account.id))[1].outcome is RunOutcome.OK

    with pytest.raises(ValueError, match="unknown run counters \\['imported'\\]"):
        await store.count_in_run(first, imported=1)
    with pytest.raises(RunNotFound):
        await store.count_in_run(999, listed=1)
    with pytest.raises(RunNotFound):
        await store.finish_run(999, outcome=RunOutcome.OK, requests=0)
    with pytest.raises(AccountNotFound):
        await store.start_run(999, trigger="poll", tier=None, window_from=T0, window_to=T0)


# --- notes seen but not imported --------------------------------------------------------------


async def test_unimported_notes_are_replaced_per_kind(store: Store) -> None:
    account = await store.add_account(new_account())
    issued = datetime(2026, 11, 18, 9, 0, tzinfo=BRT)

    def note(bling_id: int, kind: str = "nfe", number: int = 1) -> UnimportedNote:
        return UnimportedNote(kind=kind, bling_id=bling_id, number=number, situation=InvoiceStatus.AUTHORIZED,
                              issued_at=issued + timedelta(hours=number),
                              reason="NF autorizada, DANFE ainda não impressa")

    await store.replace_unimported(account.id, "nfe", [note(1, number=2), note(2, number=1)])
    await store.replace_unimported(account.id, "nfce", [note(3, "nfce", 3)])
    assert [n.bling_id for n in await store.unimported(account.id)] == [2, 1, 3]
    await store.replace_unimported(account.id, "nfe", [note(2, number=1)])
    listed = await store.unimported(account.id)
    assert [n.bling_id for n in listed] == [2, 3]
    assert listed[0] == note(2, number=1)
    assert listed[0].issued_at.utcoffset() == timedelta(0)  # returned in UTC, the same instant
    await store.replace_unimported(account.id, "nfe", [])
    assert [n.bling_id for n in await store.unimported(account.id)] == [3]
    with pytest.raises(ValueError, match="another kind"):
        await store.replace_unimported(account.id, "nfe", [note(5, "nfce")])


async def test_datetimes_come_back_aware_in_utc(store: Store, clock: Clock) -> None:
    clock.now = datetime(2026, 11, 20, 21, 30, tzinfo=BRT)  # a non-UTC clock is fine
    account = await store.add_account(new_account())
    assert account.created_at == datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    assert account.created_at.tzinfo is UTC


# --- several processes ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
_CHILD = """
import asyncio, json, os, sys, time
from pathlib import Path
from blingsync.store import AccountExists, SecretBox, Store
from tests.integration.store_fixtures import make_note, make_order, new_account

async def main(url: str, count: int, start: float) -> None:
    await asyncio.sleep(max(0.0, start - time.time()))  # imports done: start together
    box = SecretBox.from_settings(os.environ["TEST_STORE_KEY"], Path("."), print)
    store = await Store.open(url, box=box)  # every child migrates: they must take turns
    try:
        try:
            account = await store.add_account(new_account("marca"))
        except AccountExists:
            account = await store.account("marca")
        results = []
        for n in range(1, count + 1):
            saved = await store.save_order(account.id, make_note(make_order(number=n), bling_id=n))
            results.append(saved.result.value)
    finally:
        await store.close()
    print(json.dumps(results))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


async def test_processes_sharing_one_database_migrate_once_and_never_duplicate(db_url: str) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    root = ROOT
    env = {**os.environ, "TEST_STORE_KEY": key,
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    start = str(time.time() + 2.5)
    children = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, db_url, "25", start, env=env, cwd=root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    outputs = [await child.communicate() for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()[-3000:]
    results = [r for out, _ in outputs for r in json.loads(out.decode().strip().splitlines()[-1])]
    assert results.count("created") == 25 and results.count("unchanged") == 50

    store = await Store.open(db_url, box=SecretBox(base64.urlsafe_b64decode(key)))
    try:
        assert [a.name for a in await store.accounts()] == ["marca"]
        assert await store.count_orders() == 25
        events = await store.outbox()
        assert len(events) == 25 and len({e.idempotency_key for e in events}) == 25
    finally:
        await store.close()


async def test_an_in_memory_database_serves_concurrent_calls(box: SecretBox, clock: Clock) -> None:
    store = await Store.open("sqlite+aiosqlite://", box=box, clock=clock)
    try:
        account = await store.add_account(new_account())
        notes = [make_note(make_order(number=n), bling_id=n) for n in range(10)]
        await asyncio.gather(*(store.save_order(account.id, note) for note in notes * 2))
        assert await store.count_orders() == 10 and len(await store.outbox()) == 10
    finally:
        await store.close()


async def test_a_removed_and_reconnected_account_gets_new_ids_and_the_same_keys(store: Store) -> None:
    """Ids are never handed out again (AUTOINCREMENT on SQLite too), and a note imported again
    after its account was removed and added back carries the key the warehouse already has."""
    first = await store.add_account(new_account("A"))
    note = make_note(bling_id=1)
    created = await store.save_order(first.id, note)
    [before] = await store.outbox(order_id=created.order_id)
    await store.remove_account("A")
    again = await store.add_account(new_account("A"))
    assert again.id != first.id
    recreated = await store.save_order(again.id, note)
    assert recreated.order_id != created.order_id
    [after] = await store.outbox(order_id=recreated.order_id)
    assert after.idempotency_key == before.idempotency_key
    # Another account importing the same note (a brand connected twice) is not refused.
    other = await store.add_account(new_account("B"))
    assert (await store.save_order(other.id, note)).result is SaveResult.CREATED


async def test_recipient_search_folds_accented_letters_on_both_databases(store: Store) -> None:
    """SQLite's built-in lower() folds ASCII only; the store gives it a Unicode one, so the
    same search finds the same orders on SQLite and PostgreSQL."""
    from blingsync.store.dashboard import OrderSearch

    account = await store.add_account(new_account())
    await store.save_order(account.id, make_note(make_order(number=1, recipient="JOSÉ CONCEIÇÃO"),
                                                 bling_id=1))
    assert len(await store.find_orders(OrderSearch(q="CONCEIÇÃO"))) == 1
    assert len(await store.find_orders(OrderSearch(q="conceição"))) == 1
    assert await store.find_orders(OrderSearch(q="%")) == []
    assert await store.find_orders(OrderSearch(q="_")) == []
