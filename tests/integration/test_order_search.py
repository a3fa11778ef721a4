"""The one order search, as the dashboard (Pedidos, `Store.search_orders`) and the REST API
(`GET /api/v1/orders`, `Store.find_orders`) run it: newest issued first with the id breaking
ties, keyset pages that neither repeat nor skip while orders arrive, the same orders through
both doors, what each shape of search text matches, and, on PostgreSQL, the trigram index of
migration 0007 (made, used, and optional).

Every test runs on SQLite and on PostgreSQL when reachable (`db_url`, store_fixtures)."""
# The fixtures are imported from store_fixtures, so test parameters "redefine" them:
# ruff: noqa: F811

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, text

from blingsync.config import Settings
from blingsync.domain import BRASILIA, OrderStatus, Recipient
from blingsync.service import Service
from blingsync.store import SecretBox, Store
from blingsync.store.dashboard import OrderSearch, brasilia_day_start
from blingsync.store.records import Account
from blingsync.store.tables import TRIGRAM_INDEX, include_in_comparison, metadata
from blingsync.web.api import cursors
from blingsync.web.app import create_app
from tests.integration.store_fixtures import (  # noqa: F401  (fixtures are used by name)
    PG_HOST,
    PG_PORT,
    PG_USER,
    access_key,
    box,
    db_url,
    make_item,
    make_note,
    make_order,
    new_account,
    pg_url,
)
from tests.ui_support import signed_in

T = datetime(2026, 11, 10, 12, 0, tzinfo=BRASILIA)
UI_PARAM = {"q": "q", "account_id": "marca", "status": "status", "issued_from": "de", "issued_to": "ate"}


@dataclass
class Shop:
    """A service over a fresh database, the app over it, an API client with a read token and a
    dashboard client signed in as an operator."""

    service: Service
    api: httpx.AsyncClient
    ui: httpx.AsyncClient
    postgres: bool
    issued: dict[int, datetime] = field(default_factory=dict)
    counter: int = 0

    @property
    def store(self) -> Store:
        return self.service.store

    async def account(self, name: str | None = None) -> Account:
        return await self.store.add_account(new_account(name))

    async def order(self, account: Account, *, issued_at: datetime = T, name: str | None = "Maria da Silva",
                    skus: Sequence[str] = ("SKU-1",), number: int | None = None,
                    document: str | None = "12345678909") -> int:
        """Store one order (a new chave each time) and return its id."""
        self.counter += 1
        items = tuple(make_item(line, sku=sku) for line, sku in enumerate(skus, start=1))
        base = make_order(number=number if number is not None else 5000 + self.counter, items=items,
                          key=access_key(self.counter, cnpj=f"{account.id:08d}000195"))
        order = replace(base, issued_at=issued_at,
                        recipient=Recipient(name=name, document=document, email="cliente@example.com"))
        outcome = await self.store.save_order(account.id, make_note(order, bling_id=self.counter))
        assert outcome.order_id is not None
        self.issued[outcome.order_id] = issued_at
        return outcome.order_id

    def key(self, order_id: int) -> tuple[datetime, int]:
        return self.issued[order_id], order_id

    def newest_issued_first(self, ids: Sequence[int]) -> list[int]:
        return sorted(ids, key=self.key, reverse=True)

    async def api_page(self, **params: Any) -> tuple[list[int], str | None]:
        r = await self.api.get("/api/v1/orders", params=params)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["data"]], r.json()["next_cursor"]

    async def api_ids(self, *, sort: str | None = "-issued_at", **params: Any) -> list[int]:
        """Every order the API lists with `params`, following the cursors; in the dashboard's
        order unless `sort` says otherwise (None: the API's default)."""
        if sort is not None:
            params["sort"] = sort
        found: list[int] = []
        cursor = None
        while True:
            ids, cursor = await self.api_page(**params, **({"cursor": cursor} if cursor else {}))
            found += ids
            if cursor is None:
                return found

    async def dashboard_ids(self, search: OrderSearch, *, limit: int = 2) -> list[int]:
        """Every order the dashboard's search lists, following its "older" pages."""
        found: list[int] = []
        before = None
        while True:
            page = await self.store.search_orders(search, before_id=before, limit=limit)
            found += [row.summary.id for row in page.rows]
            if page.older is None:
                return found
            before = page.older

    async def pedidos_ids(self, **params: str) -> list[int]:
        """The orders the Pedidos page shows (its first page), in order."""
        r = await self.ui.get("/pedidos", params=params)
        assert r.status_code == 200, r.text
        return list(dict.fromkeys(int(i) for i in re.findall(r'href="/pedidos/(\d+)"', r.text)))


@pytest.fixture
async def shop(tmp_path: Path, db_url: str) -> AsyncIterator[Shop]:
    settings = Settings(data_dir=tmp_path, database_url=db_url, secret_key=None,
                        bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2")
    async with Service.open(settings, warn=lambda _: None) as service:
        app = create_app(service)
        _, token = await service.store.create_api_token("wms")
        async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://blingsync.test",
                                      headers={"authorization": f"Bearer {token}"}) as api,
                    signed_in(app, service.store) as ui):
            yield Shop(service, api, ui, postgres=db_url.startswith("postgresql"))


# --- the order ----------------------------------------------------------------------------------


async def test_lists_are_newest_issued_first_and_the_id_breaks_ties(shop: Shop) -> None:
    azul, verde = await shop.account("Azul"), await shop.account("Verde")
    # Imported in an order unlike the issue order (a late DANFE, a backfill), three in one second.
    offsets = [timedelta(days=3), timedelta(days=-5), timedelta(0), timedelta(0), timedelta(days=1),
               timedelta(0), timedelta(minutes=-1)]
    ids = [await shop.order(azul if n % 2 else verde, issued_at=T + offset)
           for n, offset in enumerate(offsets)]
    expected = shop.newest_issued_first(ids)
    assert expected != sorted(ids, reverse=True)  # the test means something: issue order ≠ import order

    assert await shop.dashboard_ids(OrderSearch()) == expected
    assert await shop.pedidos_ids() == expected
    assert await shop.api_ids(limit=2, sort="-issued_at") == expected  # pages cut inside the tie
    assert await shop.api_ids(limit=2, sort="issued_at") == expected[::-1]
    assert await shop.api_ids(limit=3, sort="-id") == sorted(ids, reverse=True)  # import order
    # The API's default stays the import order: a client polling for new orders stops at the first
    # one it knows, and a late DANFE (issued days ago, imported now) must come before it.
    assert await shop.api_ids(limit=3, sort=None) == sorted(ids, reverse=True)
    assert await shop.api_ids(limit=3, sort="id") == sorted(ids)
    mine = [i for i in expected if i in ids[1::2]]
    assert await shop.api_ids(limit=2, account_id=azul.id) == mine
    assert await shop.dashboard_ids(OrderSearch(account_id=azul.id)) == mine


async def test_dashboard_pages_both_ways_miss_nothing_and_repeat_nothing_while_orders_arrive(
        shop: Shop) -> None:
    brand = await shop.account()
    for n in range(12):  # issue times scattered, with ties
        await shop.order(brand, issued_at=T + timedelta(hours=(n * 5) % 6))
    existing = set(shop.issued)

    async def arrive(boundary: int) -> tuple[int, int, int]:
        """A note issued after every other, a backfilled one issued before every other, and one
        issued in the same second as the page's boundary (a tie: its higher id puts it behind)."""
        shop.counter += 1000  # (keeps the chaves apart; also makes each arrival's time unique)
        return (await shop.order(brand, issued_at=T + timedelta(days=30, minutes=shop.counter)),
                await shop.order(brand, issued_at=T - timedelta(days=30, minutes=shop.counter)),
                await shop.order(brand, issued_at=shop.issued[boundary]))

    # Older and older pages (the "older" link), orders arriving between every two.
    seen: list[int] = []
    page = await shop.store.search_orders(limit=3)
    backfilled: set[int] = set()
    while True:
        seen += [row.summary.id for row in page.rows]
        if page.older is None:
            break
        _, old, _ = await arrive(page.older)
        backfilled.add(old)
        page = await shop.store.search_orders(before_id=page.older, limit=3)
    assert len(seen) == len(set(seen)), "an order came twice"
    assert seen == shop.newest_issued_first(seen)
    assert existing <= set(seen), "an order that existed was missed"
    assert backfilled <= set(seen)  # issued before everything: still ahead of the walk, so reached

    # Back up with the "newer" link from the last page, orders arriving again.
    existing = set(shop.issued)
    shown = [row.summary.id for row in page.rows]
    newest: set[int] = set()
    while page.newer is not None:
        new, _, _ = await arrive(page.newer)
        newest.add(new)
        page = await shop.store.search_orders(after_id=page.newer, limit=3)
        shown = [row.summary.id for row in page.rows] + shown
    assert len(shown) == len(set(shown)), "an order came twice"
    assert shown == shop.newest_issued_first(shown)
    assert existing <= set(shown), "an order that existed was missed"
    assert newest <= set(shown)  # issued after everything: ahead of the walk up, so reached
    assert (await shop.store.search_orders(after_id=shown[0], limit=3)).rows == []  # the top


@pytest.mark.parametrize("sort", ["-issued_at", "issued_at"])
async def test_api_cursor_pages_miss_nothing_and_repeat_nothing_while_orders_arrive(
        shop: Shop, sort: str) -> None:
    brand = await shop.account()
    for n in range(10):
        await shop.order(brand, issued_at=T + timedelta(hours=(n * 7) % 5))
    existing = set(shop.issued)
    seen: list[int] = []
    cursor = None
    arrived: dict[str, set[int]] = {"newest": set(), "oldest": set()}
    while True:
        ids, cursor = await shop.api_page(limit=3, sort=sort, **({"cursor": cursor} if cursor else {}))
        seen += ids
        if cursor is None:
            break
        arrived["newest"].add(await shop.order(brand, issued_at=T + timedelta(days=30, minutes=len(seen))))
        arrived["oldest"].add(await shop.order(brand, issued_at=T - timedelta(days=30, minutes=len(seen))))
        await shop.order(brand, issued_at=shop.issued[ids[-1]])  # in the boundary's second
    assert len(seen) == len(set(seen)), "an order came twice"
    assert seen == (shop.newest_issued_first(seen) if sort.startswith("-")
                    else shop.newest_issued_first(seen)[::-1])
    assert existing <= set(seen), "an order that existed was missed"
    ahead = arrived["oldest"] if sort.startswith("-") else arrived["newest"]
    assert ahead <= set(seen)  # the ones issued where the walk was going are reached


async def test_a_cursor_keeps_its_place_when_the_order_it_ended_at_is_removed(shop: Shop) -> None:
    doomed, kept = await shop.account("Doomed"), await shop.account("Kept")
    ids = [await shop.order(kept if n % 2 else doomed, issued_at=T + timedelta(hours=n)) for n in range(6)]
    first, cursor = await shop.api_page(limit=2, sort="-issued_at")
    assert first == [ids[5], ids[4]] and cursor  # the page ends at one of Doomed's orders
    await shop.store.remove_account(doomed.name)
    assert await shop.api_page(limit=10, sort="-issued_at", cursor=cursor) == ([ids[3], ids[1]], None)


async def test_a_cursor_of_the_earlier_version_continues_its_import_order(shop: Shop) -> None:
    brand = await shop.account()
    ids = [await shop.order(brand) for _ in range(4)]
    unfiltered = {"account_id": None, "status": None, "issued_from": None, "issued_to": None, "q": None}

    def version_1(last_id: int, descending: bool) -> str:  # as blingsync 0.1 made them
        body = {"v": 1, "id": last_id, "desc": descending, "f": cursors.fingerprint(unfiltered)}
        return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")

    assert await shop.api_page(limit=10, cursor=version_1(ids[2], True)) == (ids[1::-1], None)
    assert await shop.api_page(limit=10, sort="id", cursor=version_1(ids[1], False)) == (ids[2:], None)
    for sort in ("id", "-issued_at"):  # made for another sort
        r = await shop.api.get("/api/v1/orders", params={"sort": sort, "cursor": version_1(ids[2], True)})
        assert r.status_code == 422 and "another sort" in r.json()["detail"], r.text


async def test_old_and_foreign_cursors_are_refused_in_words(shop: Shop) -> None:
    brand = await shop.account()
    for _ in range(3):
        await shop.order(brand)
    _, cursor = await shop.api_page(limit=1)
    assert cursor is not None
    version_1 = base64.urlsafe_b64encode(b'{"v":1,"id":"3","desc":true,"f":"x"}').decode()
    for params, words in [({"cursor": version_1}, "not one this API gave out"),
                          ({"cursor": cursor, "sort": "-issued_at"}, "another sort"),
                          ({"cursor": cursor, "q": "maria"}, "other filters"),
                          ({"sort": "newest"}, "query parameter sort")]:
        r = await shop.api.get("/api/v1/orders", params={"limit": 1, **params})
        assert r.status_code == 422 and words in r.json()["detail"], (params, r.text)


# --- one search, two doors ----------------------------------------------------------------------


async def test_the_api_and_the_dashboard_find_the_same_orders(shop: Shop) -> None:
    azul, verde = await shop.account("Azul"), await shop.account("Verde")
    jose = await shop.order(azul, name="JOSÉ CONCEIÇÃO", issued_at=T - timedelta(days=2), skus=("CAM-001",))
    jose_silva = await shop.order(verde, name="José da Silva", issued_at=T, skus=("CAM-001", "CAL-7"))
    await shop.order(azul, name="Ana Souza", issued_at=T + timedelta(days=1), number=4471,
                     document="11222333000181")
    await shop.order(verde, name="Marcos Silva", issued_at=T + timedelta(days=3))
    await shop.order(azul, name=None, issued_at=T - timedelta(days=9), document=None)
    canceled = await shop.order(verde, name="Silvana", issued_at=T)
    await shop.store.cancel_order(verde.id, shop.counter)
    chave = (await shop.store.order_summary(jose)).access_key
    day = T.date()
    cases: list[tuple[dict[str, Any], OrderSearch]] = [
        ({}, OrderSearch()),
        ({"account_id": azul.id}, OrderSearch(account_id=azul.id)),
        ({"status": "canceled"}, OrderSearch(status=OrderStatus.CANCELED)),
        ({"issued_from": day - timedelta(days=2), "issued_to": day},
         OrderSearch(issued_from=brasilia_day_start(day - timedelta(days=2)),
                     issued_before=brasilia_day_start(day + timedelta(days=1)))),
        ({"q": "jose"}, OrderSearch(q="jose")),
        ({"q": "silva", "account_id": verde.id}, OrderSearch(q="silva", account_id=verde.id)),
        ({"q": "cam-001"}, OrderSearch(q="cam-001")),
        ({"q": "4471"}, OrderSearch(q="4471")),
        ({"q": "11.222.333/0001-81"}, OrderSearch(q="11.222.333/0001-81")),
        ({"q": " ".join(chave[i:i + 4] for i in range(0, 44, 4))}, OrderSearch(q=chave)),
    ]
    for params, search in cases:
        through_api = await shop.api_ids(limit=2, **params)
        assert through_api, params
        assert through_api == await shop.dashboard_ids(search), params
        ui_params = {UI_PARAM[name]: str(value) for name, value in params.items()}
        assert through_api == await shop.pedidos_ids(**ui_params), params
    assert await shop.api_ids(status="canceled") == [canceled]
    assert await shop.api_ids(q="jose") == [jose_silva, jose]


async def test_the_api_finds_orders_by_sku(shop: Shop) -> None:
    brand = await shop.account()
    shirts = [await shop.order(brand, name="Beto", skus=("CAM-001", "CAL-002"),
                               issued_at=T + timedelta(hours=h)) for h in (2, 1)]
    await shop.order(brand, name="Camila", skus=("CAL-002",))
    plain = await shop.order(brand, name="Loja Azul Modas", skus=("X-1",))
    blue = await shop.order(brand, name="Beto", skus=("AZUL",), issued_at=T - timedelta(days=1))
    assert await shop.api_ids(q="CAM-001") == shirts
    assert await shop.api_ids(q="cam-001") == shirts  # as typed, or in upper case
    assert await shop.api_ids(q="CAM-00") == []  # a SKU is matched whole
    assert await shop.api_ids(q="azul") == [plain, blue]  # letters: a name, or a SKU


# --- what the search text matches ---------------------------------------------------------------


async def test_digits_alone_never_match_a_name_letters_with_digits_do(shop: Shop) -> None:
    brand = await shop.account()
    march = await shop.order(brand, name="Loja 25 de Março", number=777)
    ana = await shop.order(brand, name="Beto", skus=("ANA-3",))
    sisters = await shop.order(brand, name="Ana 3 Irmãs", number=31)
    for q, expected in [("25", []), ("Loja 25", [march]), ("ana 3", [sisters]), ("3 Irmãs", [sisters]),
                        ("ANA-3", [ana]), ("ana-3", [ana]), ("777", [march]), ("31", [sisters]),
                        ("Loja", [march]), ("Irmãs", [sisters]), ("lója 25 DE marco", [march])]:
        assert await shop.api_ids(q=q) == expected, q
        assert await shop.dashboard_ids(OrderSearch(q=q)) == expected, q


async def test_like_wildcards_and_backslash_are_literal(shop: Shop) -> None:
    brand = await shop.account()
    percent = await shop.order(brand, name="Cem% Algodão Modas")
    underscore = await shop.order(brand, name="Loja_Azul")
    look_alike = await shop.order(brand, name="LojaXAzul")
    await shop.order(brand, name="Ana")
    backslash = await shop.order(brand, name="Barra \\ Invertida")
    for q, expected in [("%", [percent]), ("m% a", [percent]), ("Cem% Algo", [percent]),
                        ("_", [underscore]), ("Loja_Azul", [underscore]), ("Loja%Azul", []),
                        ("LojaXAzul", [look_alike]), ("\\", [backslash]), ("barra \\ inv", [backslash]),
                        (".", []), ("a.a", []), ("[a]", [])]:
        assert await shop.api_ids(q=q) == expected, q
        assert await shop.dashboard_ids(OrderSearch(q=q)) == expected, q


async def test_accents_and_case_are_folded_on_both_databases(shop: Shop) -> None:
    brand = await shop.account()
    jose = await shop.order(brand, name="JOSÉ CONCEIÇÃO", issued_at=T)
    joao = await shop.order(brand, name="joão são joão", issued_at=T - timedelta(hours=1))
    # Letters outside Portuguese's accents are kept, and found as written, on both databases.
    czech = await shop.order(brand, name="Antonín Dvořák", issued_at=T - timedelta(hours=2))
    vietnamese = await shop.order(brand, name="Nguyễn Thị", issued_at=T - timedelta(hours=3))
    # 3 letters or more (PostgreSQL: the trigram index) and fewer (a scan), either case, either spelling.
    for q, expected in [("jose", [jose]), ("José", [jose]), ("CONCEICAO", [jose]), ("conceição", [jose]),
                        ("ÇÃ", [jose]), ("ca", [jose]), ("é", [jose]), ("JOÃO SÃO", [joao]), ("joao", [joao]),
                        ("ão", [jose, joao]), ("o", [jose, joao, czech]), ("sao joao", [joao]),
                        ("Jose\u0301", [jose]), ("CONCEIC\u0327A\u0303O", [jose]),  # decomposed accents
                        ("Dvořák", [czech]), ("dvořak", [czech]), ("ANTONIN", [czech]), ("ř", [czech]),
                        ("Nguyễn", [vietnamese]), ("nguyễn thị", [vietnamese])]:
        assert await shop.api_ids(q=q) == expected, q
        assert await shop.dashboard_ids(OrderSearch(q=q)) == expected, q


# --- PostgreSQL: the trigram index -----------------------------------------------------------------


async def _plans(shop: Shop, q: str) -> str:
    """EXPLAIN of the search's statement for `q`, with plain scans disabled: the plan names an
    index only if the statement's condition is one the index can answer."""
    statements: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "JOIN accounts" in statement:
            statements.append((statement, parameters))

    engine = shop.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        await shop.store.find_orders(OrderSearch(q=q))
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    [(statement, parameters)] = statements
    async with shop.store.engine.begin() as conn:
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        rows = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in rows)


async def test_the_trigram_index_is_made_by_the_migration_and_serves_a_name_search(shop: Shop) -> None:
    if not shop.postgres:
        async with shop.store.engine.connect() as conn:
            names = {row[0] for row in await conn.execute(text("SELECT name FROM sqlite_master"))}
        assert TRIGRAM_INDEX not in names and "ix_orders_issued_at_id" in names
        pytest.skip("pg_trgm is PostgreSQL's")
    async with shop.store.engine.connect() as conn:
        definition = await conn.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                                       {"n": TRIGRAM_INDEX})
    assert definition is not None and "USING gin" in definition and "gin_trgm_ops" in definition
    brand = await shop.account()
    for n in range(30):
        await shop.order(brand, name=f"Cliente {'ABCDEFGHIJ'[n % 10]} Conceição")
    await shop.order(brand, name="JOSÉ CONCEIÇÃO")
    plan = await _plans(shop, "conceição")
    assert f"Bitmap Index Scan on {TRIGRAM_INDEX}" in plan, plan
    assert f"Bitmap Index Scan on {TRIGRAM_INDEX}" in await _plans(shop, "josé conc")
    # Under 3 letters in a row there is no trigram to look up: the name is matched by a scan.
    short = await _plans(shop, "jo")
    assert TRIGRAM_INDEX not in short and "~*" in short, short
    assert len(await shop.store.find_orders(OrderSearch(q="jo"))) == 1


@pytest.mark.postgres
async def test_without_the_right_to_create_pg_trgm_the_migration_warns_and_the_search_scans(
        pg_url: str, box: SecretBox, caplog: pytest.LogCaptureFixture) -> None:
    database = urlsplit(pg_url).path.lstrip("/")
    role = f"blingsync_plain_{secrets.token_hex(4)}"

    def admin() -> psycopg.Connection[Any]:
        return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, autocommit=True)

    with admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() is None
        # May create tables in public (the migrations), may not create extensions in the database.
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    try:
        with caplog.at_level(logging.WARNING, logger="blingsync.store.migrations"):
            store = await Store.open(f"postgresql+psycopg://{role}@{PG_HOST}:{PG_PORT}/{database}", box=box)
        try:
            assert "could not create the pg_trgm extension" in caplog.text
            async with store.engine.connect() as conn:
                assert await conn.scalar(text(f"SELECT to_regclass('{TRIGRAM_INDEX}')")) is None

                def diff(sync: Connection) -> list[object]:
                    context = MigrationContext.configure(sync, opts={"compare_type": True,
                                                                     "include_object": include_in_comparison})
                    return list(compare_metadata(context, metadata))

                assert await conn.run_sync(diff) == []
            account = await store.add_account(new_account())
            order = replace(make_order(number=1), recipient=Recipient(name="JOSÉ CONCEIÇÃO", document=None))
            await store.save_order(account.id, make_note(order, bling_id=1))
            found = await store.find_orders(OrderSearch(q="conceicao"))
            assert [o.recipient_name for o in found] == ["JOSÉ CONCEIÇÃO"]
            assert await store.find_orders(OrderSearch(q="conceicao x")) == []
        finally:
            await store.close()
    finally:
        with admin() as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')

