"""Dashboard pages under load: the server time of each main page with 1,000 brands and 100,000
orders in PostgreSQL. Bar (issue 6): no page over 300 ms. The REST API's order list, which runs
on the same search as the Pedidos page, is measured with them (with a read token).

The database is real and freshly made: `blingsync_bench_ui` is created, migrated by `Store.open`
(the real schema, every index the migrations make), seeded in bulk through SQLAlchemy Core
(executemany in psycopg's pipeline mode: about a minute for everything), ANALYZEd, measured,
and dropped at the end (`--keep` leaves it, and its credentials key, for `--reuse` and psql).

What is seeded, with the shapes a warehouse really sees:
- 1,000 brands, sizes skewed (Zipf: the biggest has ~13 % of all orders, the last twenty none
  yet), mixed API generations and health states (paused, reauthorise, invalid key, missing
  permission, v2 discontinued, daily limit), each with a webhook sink and import cursors;
- 100,000 orders issued over the last 90 days (weekday-heavy, business hours), imported minutes
  to days later (a DANFE printed late), ids in import order, content as the importer writes it
  (canonical JSON of a real `ExpeditionOrder`), 1-5 items from each brand's catalogue of SKUs
  with EANs, volumes and weights, the compressed XML, 3 % canceled, 2 % updated;
- the outbox: one event per order change with the order JSON as payload; almost all delivered,
  the last minutes pending, two brands whose receiver is down with retries scheduled, ~0.3 %
  dead with their last error; write-backs to Bling for the brands that have it on;
- shipments for most orders older than a day, sync runs (30 to 300 per brand, some failed),
  a few quarantined notes and a couple of thousand notes seen but not imported.

Then each page is requested through the real ASGI app (`create_app`, httpx.ASGITransport: no
socket, so the time is the server's: routing, session, queries, template), signed in as an
operator through the real `/entrar` form: a few warm-up requests, then `--requests` timed ones.
The table shows p50/p95/max in ms and p95 ÷ 300 ms. Every SQL statement a page runs is timed
too (SQLAlchemy cursor events); for a page over the bar, or with `--explain`, its slowest
statements are shown with PostgreSQL's EXPLAIN (ANALYZE, BUFFERS).

    .venv/bin/python bench/ui_pages.py                       # seed (~1-2 min), measure, drop
    .venv/bin/python bench/ui_pages.py --requests 50 --explain
    .venv/bin/python bench/ui_pages.py --keep                # then, after a change:
    .venv/bin/python bench/ui_pages.py --reuse               # measure again, no new seed
    .venv/bin/python bench/ui_pages.py --brands 100 --orders 10000

PostgreSQL: 127.0.0.1:5432 as `postgres`, admin database `test`, or BLINGSYNC_TEST_PG_HOST/_PORT/
_USER/_DB as for the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import json
import math
import os
import random
import re
import statistics
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from sqlalchemy import Table, event, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from blingsync.config import Settings
from blingsync.domain import (
    ApiGeneration,
    Authorization,
    Carrier,
    DeliveryAddress,
    Emitter,
    ExpeditionOrder,
    FreightMode,
    InvoiceStatus,
    OrderItem,
    OrderStatus,
    Recipient,
    Volume,
)
from blingsync.service import Service
from blingsync.simulator import brazil
from blingsync.store import SecretBox, Store
from blingsync.store.codec import order_content, settings_to_json
from blingsync.store.crypto import seal_credentials
from blingsync.store.dashboard import OrderKey
from blingsync.store.outbox import sink_secret_aad
from blingsync.store.records import AccountSettings, AccountState, EventType, V2Credentials, V3Credentials
from blingsync.store.repo import idempotency_key
from blingsync.store.tables import (
    accounts,
    cursors,
    documents,
    order_items,
    order_volumes,
    orders,
    outbox,
    quarantine,
    shipments,
    sinks,
    sync_runs,
    unimported_notes,
)
from blingsync.web.api import cursors as api_cursors
from blingsync.web.app import create_app

BAR_MS = 300.0
API_ORDERS = "/api/v1/orders"
# Where PostgreSQL is: the same variables as the tests' fixtures (tests/integration/store_fixtures.py).
PG_HOST = os.environ.get("BLINGSYNC_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BLINGSYNC_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BLINGSYNC_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("BLINGSYNC_TEST_PG_DB", "test")
DATABASE = "blingsync_bench_ui"
BRT = timezone(timedelta(hours=-3))
CHUNK = 5_000
"""Orders generated and inserted at a time (one transaction each): bounded memory."""

OPERATOR = ("bench", "senha-do-benchmark-123")


# --- the database ------------------------------------------------------------------------------


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB,
                           autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def fresh_database(name: str, *, keep: bool) -> Iterator[str]:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        if keep:
            print(f"\nkept: psql -h {PG_HOST} -U {PG_USER} {name}")
        else:
            with _admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the world ----------------------------------------------------------------------------------


STATES: tuple[tuple[AccountState, float, str | None], ...] = (
    (AccountState.ACTIVE, 0.90, None),
    (AccountState.PAUSED, 0.03, None),
    (AccountState.NEEDS_REAUTH, 0.02, "Bling revoked the authorisation (invalid_grant): connect the "
                                      "account again"),
    (AccountState.INVALID_CREDENTIALS, 0.015, "Bling refused the API key (cod 3): the key is wrong or "
                                              "its API user was removed"),
    (AccountState.MISSING_PERMISSIONS, 0.015, "missing permissions: Notas Fiscais"),
    (AccountState.API_DISCONTINUED, 0.01, "A API v2 foi descontinuada: connect through OAuth (API v3)"),
    (AccountState.DAILY_LIMIT, 0.01, "Bling's daily limit of 120,000 requests was reached; imports "
                                     "resume at midnight (Brasília)"),
)

DEAD_ERRORS = ("HTTP 500 Internal Server Error", "HTTP 503 Service Unavailable",
               "timed out after 10 s", "HTTP 422 Unprocessable Entity: depositante desconhecido",
               "connection refused")
QUARANTINE_REASONS = (
    "The NF-e XML has no transp/vol: volumes and weights are unknown",
    "The NF-e XML is not well-formed: mismatched tag at line 212",
    "Bling's record of this note cannot be followed: the note has no série",
    "The NF-e XML's chave does not match the note's chave in Bling",
)


@dataclass
class Brand:
    index: int  # 0-based rank: 0 is the biggest
    id: int
    name: str
    cnpj: str
    uf: str
    trade_name: str
    generation: ApiGeneration
    state: AccountState
    reason: str | None
    write_back: bool
    receiver_down: bool
    skus: list[tuple[str, str, str, Decimal]] = field(default_factory=list)  # sku, ean, description, price
    orders: int = 0
    next_number: int = 1


PRODUCTS = ("Camiseta", "Vestido", "Caneca", "Luminária", "Tênis", "Bolsa", "Sabonete", "Vela aromática",
            "Almofada", "Caderno", "Boné", "Meia", "Jaqueta", "Chinelo", "Óculos de sol", "Perfume",
            "Toalha", "Mochila", "Relógio", "Colar")
VARIANTS = ("P", "M", "G", "GG", "Azul", "Preto", "Branco", "Verde", "Rosa", "Natural", "350 ml", "Único")


@dataclass
class Plan:
    """Every order's brand, issue and import time, sorted by import time (ids follow it)."""

    brand: list[int]
    issued: list[datetime]
    created: list[datetime]


class Seeder:
    def __init__(self, store: Store, box: SecretBox, *, brands: int, orders: int, seed: int,
                 now: datetime) -> None:
        self.store = store
        self.box = box
        self.n_brands = brands
        self.n_orders = orders
        self.rng = random.Random(seed)
        self.now = now
        self.brands: list[Brand] = []
        self.rows: dict[str, int] = defaultdict(int)

    async def insert(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        # executemany: psycopg sends the rows in pipeline mode, no round trip per row (faster here
        # than one multi-row VALUES statement, which SQLAlchemy compiles anew for every batch).
        for start in range(0, len(rows), CHUNK):
            await conn.execute(insert(table), rows[start:start + CHUNK])
        self.rows[table.name] += len(rows)

    # --- brands ---------------------------------------------------------------------------------

    def make_brands(self) -> None:
        rng = self.rng
        used: set[str] = set()
        weights = [w for _, w, _ in STATES]
        for index in range(self.n_brands):
            while True:
                name = f"{rng.choice(brazil.BRAND_PREFIXES)} {rng.choice(brazil.BRAND_CORES)}"
                if name in used:
                    name = f"{name} {rng.choice(brazil.SURNAMES)}"
                if name not in used:
                    used.add(name)
                    break
            state, _, reason = STATES[0] if index < 3 else rng.choices(STATES, weights)[0]
            generation = ApiGeneration.V2 if rng.random() < 0.3 else ApiGeneration.V3
            if state is AccountState.API_DISCONTINUED:
                generation = ApiGeneration.V2
            city = brazil.random_city(rng)
            brand = Brand(index=index, id=index + 1, name=name, cnpj=brazil.make_cnpj(rng), uf=city.uf,
                          trade_name=name.split(" ", 1)[1], generation=generation, state=state, reason=reason,
                          write_back=generation is ApiGeneration.V3 and rng.random() < 0.25,
                          receiver_down=index in (4, 37))
            code = brazil.ascii_slug(brand.trade_name)[:3].upper()
            for n in range(rng.randint(20, 400) if index < 50 else rng.randint(5, 80)):
                product = rng.choice(PRODUCTS)
                variant = rng.choice(VARIANTS)
                price = Decimal(rng.randint(1990, 39990)) / 100
                brand.skus.append((f"{code}-{n + 1:04d}-{brazil.ascii_slug(variant)[:3].upper()}",
                                   brazil.ean13(rng), f"{product} {brand.trade_name} {variant}", price))
            self.brands.append(brand)

    async def seed_brands(self, conn: AsyncConnection) -> None:
        rows, sink_rows, cursor_rows = [], [], []
        for brand in self.brands:
            credentials = (V2Credentials(f"{brand.id:04d}" + "k" * 36) if brand.generation is ApiGeneration.V2
                           else V3Credentials(f"client-{brand.id}", f"secret-{brand.id}-xxxxxxxxxxxx"))
            settings = AccountSettings(write_back=brand.write_back, import_nfce=brand.index % 7 == 0,
                                       poll_interval_s=60 if brand.index < 200 else 300)
            created = self.now - timedelta(days=120 - brand.index * 0.02)
            rows.append({
                "id": brand.id, "name": brand.name, "generation": brand.generation.value,
                "bling_url": "https://api.bling.com.br/Api/v3", "bling_v2_url": "https://bling.com.br/Api/v2",
                "document": brand.cnpj, "company_id": f"{brand.id:032x}",
                "credentials": seal_credentials(self.box, brand.id, credentials),
                "settings": settings_to_json(settings), "state": brand.state.value,
                "state_reason": brand.reason, "created_at": created, "updated_at": created,
            })
            secret = self.box.encrypt(f"whsec_bench{brand.id:08d}".encode(), sink_secret_aad(brand.id))
            sink_rows.append({
                "account_id": brand.id, "kind": "webhook", "url": f"https://wms.example.com/hooks/{brand.id}",
                "secret": secret, "options": "{}", "enabled": True, "disabled_reason": None,
                "created_at": created, "updated_at": created})
            for tier in ("recent", "week", "month"):
                cursor_rows.append({"account_id": brand.id, "stream": "nfe", "tier": tier,
                                    "position": self.now - timedelta(minutes=2), "updated_at": self.now})
        await self.insert(conn, accounts, rows)
        await self.insert(conn, sinks, sink_rows)
        await self.insert(conn, cursors, cursor_rows)

    # --- orders ---------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Zipf-sized brands (the last twenty have no orders yet), issue dates over 90 days with
        quieter weekends, business hours; imported minutes to days after issue."""
        rng = self.rng
        active = max(1, self.n_brands - 20)
        weights = [1.0 / (rank + 1) for rank in range(active)]
        counts = [0] * self.n_brands
        for brand in rng.choices(range(active), weights, k=self.n_orders):
            counts[brand] += 1
        start = self.now - timedelta(days=90)
        day_weights = [0.35 if (start + timedelta(days=d)).astimezone(BRT).weekday() >= 5 else 1.0
                       for d in range(91)]
        entries: list[tuple[datetime, int, datetime]] = []
        for brand, count in enumerate(counts):
            self.brands[brand].orders = count
            for day in rng.choices(range(91), day_weights, k=count):
                local = (start + timedelta(days=day)).astimezone(BRT).replace(
                    hour=0, minute=0, second=0, microsecond=0)
                issued = local + timedelta(hours=rng.triangular(7, 22, 14), seconds=rng.randrange(60))
                issued = min(issued, self.now - timedelta(minutes=rng.randint(3, 120)))
                delay = timedelta(minutes=min(rng.expovariate(1 / 240), 60 * 24 * 6) + 1)
                created = min(issued + delay, self.now - timedelta(seconds=rng.randint(5, 600)))
                entries.append((created, brand, issued))
        entries.sort(key=lambda e: e[0])
        return Plan([e[1] for e in entries], [e[2] for e in entries], [e[0] for e in entries])

    def order_of(self, brand: Brand, issued: datetime) -> ExpeditionOrder:
        rng = self.rng
        number = brand.next_number
        brand.next_number += 1
        city = brazil.random_city(rng)
        address = brazil.make_address(rng, city)
        name = brazil.person_name(rng)
        lines = []
        for line in range(1, 1 + min(6, 1 + int(rng.expovariate(1.1)))):
            sku, ean, description, price = rng.choice(brand.skus)
            quantity = Decimal(rng.choice((1, 1, 1, 1, 2, 2, 3, 5)))
            lines.append(OrderItem(
                line=line, sku=sku, description=description, quantity=quantity.quantize(Decimal("0.0001")),
                unit="UN", unit_value=price, total_value=(price * quantity).quantize(Decimal("0.01")),
                ean=ean, ncm="61091000", cfop="5102" if city.uf == brand.uf else "6102",
                order_ref=f"PED-{number}", order_line=str(line)))
        products = sum((item.total_value for item in lines), Decimal("0.00"))
        freight = Decimal(rng.choice((0, 0, 1590, 2290, 3490))) / 100
        weight = (Decimal(rng.randint(150, 9000)) / 1000).quantize(Decimal("0.001"))
        carrier = rng.choice(brazil.CARRIERS)
        local = issued.astimezone(BRT)
        chave = brazil.make_chave(brazil.UF_CODES[brand.uf], local, brand.cnpj, 55, 1, number, 1,
                                  f"{rng.randrange(10**8):08d}")
        return ExpeditionOrder(
            access_key=chave, model=55, series=1, number=number, issued_at=local, operation=1, purpose=1,
            nature="Venda de mercadoria",
            emitter=Emitter(document=brand.cnpj, name=f"{brand.name} Comércio Ltda",
                            trade_name=brand.trade_name, ie=None, state=brand.uf),
            recipient=Recipient(name=name, document=brazil.make_cpf(rng), email=brazil.email_for(rng, name),
                                phone=brazil.mobile_phone(rng, city.ddd)),
            delivery_address=DeliveryAddress(
                street=address.logradouro, number=address.numero, complement=address.complemento or None,
                district=address.bairro, city=city.nome, city_code=city.ibge, state=city.uf,
                postal_code=address.cep, country_code="1058", country="Brasil"),
            delivery_is_separate=False, items=tuple(lines),
            volumes=(Volume(quantity=1, kind="CAIXA", brand=brand.trade_name, numbering="1",
                            net_weight_kg=weight, gross_weight_kg=(weight * Decimal("1.1")).quantize(
                                Decimal("0.001"))),),
            carrier=Carrier(name=carrier.nome, document=carrier.cnpj, ie=carrier.ie, state=carrier.uf),
            freight_mode=FreightMode.SENDER, products_value=products, freight_value=freight,
            total_value=products + freight,
            authorization=Authorization(protocol=f"1352{rng.randrange(10**11):011d}",
                                        authorized_at=local + timedelta(seconds=rng.randint(5, 90)),
                                        status_code=100, message="Autorizado o uso da NF-e"),
        )

    async def seed_orders(self, plan: Plan) -> None:
        rng = self.rng
        brands = self.brands
        event_id = 0
        shipment_id = 0
        total = len(plan.brand)
        started = time.perf_counter()
        for begin in range(0, total, CHUNK):
            order_rows: list[dict[str, Any]] = []
            item_rows: list[dict[str, Any]] = []
            volume_rows: list[dict[str, Any]] = []
            document_rows: list[dict[str, Any]] = []
            event_rows: list[dict[str, Any]] = []
            shipment_rows: list[dict[str, Any]] = []
            for offset in range(begin, min(begin + CHUNK, total)):
                order_id = offset + 1
                brand = brands[plan.brand[offset]]
                issued, created = plan.issued[offset], plan.created[offset]
                order = self.order_of(brand, issued)
                content, content_hash = order_content(order)
                roll = rng.random()
                canceled = roll < 0.03 and created < self.now - timedelta(hours=2)
                version = 2 if 0.03 <= roll < 0.05 else 1
                updated = created
                if canceled or version == 2:
                    later = created + timedelta(hours=rng.uniform(0.5, 30))
                    updated = min(later, self.now - timedelta(seconds=1))
                bling_id = 16_000_000_000 + brand.id * 1_000_000 + order.number
                order_rows.append({
                    "id": order_id, "account_id": brand.id, "kind": "nfe", "bling_id": bling_id,
                    "access_key": order.access_key, "model": 55, "series": 1, "number": order.number,
                    "issued_at": order.issued_at, "recipient_name": order.recipient.name,
                    "recipient_document": order.recipient.document, "total_value": order.total_value,
                    "content": content, "content_hash": content_hash,
                    "status": (OrderStatus.CANCELED if canceled else OrderStatus.READY).value,
                    "situation": (InvoiceStatus.CANCELED if canceled else InvoiceStatus.DANFE_PRINTED).value,
                    "version": version, "link_danfe": f"https://www.bling.com.br/doc.view.php?id={bling_id}",
                    "link_xml": f"https://www.bling.com.br/relatorios/nfe.xml.php?chaveAcesso={order.access_key}",
                    "created_at": created, "updated_at": updated,
                    "canceled_at": updated if canceled else None,
                })
                for item in order.items:
                    item_rows.append({
                        "order_id": order_id, "line": item.line, "sku": item.sku, "ean": item.ean,
                        "description": item.description, "quantity": item.quantity, "unit": item.unit,
                        "unit_value": item.unit_value, "total_value": item.total_value, "ncm": item.ncm,
                        "cfop": item.cfop, "order_ref": item.order_ref, "order_line": item.order_line})
                for position, volume in enumerate(order.volumes, 1):
                    volume_rows.append({
                        "order_id": order_id, "position": position, "quantity": volume.quantity,
                        "kind": volume.kind, "brand": volume.brand, "numbering": volume.numbering,
                        "net_weight_kg": volume.net_weight_kg, "gross_weight_kg": volume.gross_weight_kg})
                xml = xml_of(order, content)
                document_rows.append({"order_id": order_id, "compression": "zlib",
                                      "sha256": hashlib.sha256(xml).hexdigest(), "size": len(xml),
                                      "data": zlib.compress(xml, 1), "updated_at": created})
                # The outbox: every change of the order, in order.
                changes = [(EventType.CREATED, 1, created)]
                if version == 2:
                    changes.append((EventType.UPDATED, 2, updated))
                if canceled:
                    changes.append((EventType.CANCELED, version, updated))
                for kind, event_version, at in changes:
                    event_id += 1
                    event_rows.append(self.event_row(event_id, brand, order_id, order, content, kind,
                                                     event_version, at, bling_id, canceled))
                # Shipments: most orders a day old have left the warehouse.
                if not canceled and created < self.now - timedelta(days=1) and rng.random() < 0.8:
                    shipment_id += 1
                    shipped = created + timedelta(hours=rng.uniform(2, 20))
                    code = f"QB{rng.randrange(10**8):08d}BR"
                    shipment_rows.append({
                        "id": shipment_id, "account_id": brand.id, "order_id": order_id, "status": "shipped",
                        "tracking_code": code, "carrier": order.carrier.name if order.carrier else "Correios",
                        "shipped_at": shipped, "reported_at": shipped + timedelta(minutes=3),
                        "payload": json.dumps({"status": "shipped", "tracking_code": code})})
                    if brand.write_back:
                        event_id += 1
                        event_rows.append({
                            **self.event_row(event_id, brand, order_id, order, content, EventType.SHIPMENT,
                                             version, shipped + timedelta(minutes=3), bling_id, False),
                            "channel": "bling",
                            "idempotency_key": f"{order.access_key}-shipment-{shipment_id}",
                            "payload": json.dumps({"shipment_id": shipment_id, "tracking_code": code})})
            async with self.store.engine.begin() as conn:
                await self.insert(conn, orders, order_rows)
                await self.insert(conn, order_items, item_rows)
                await self.insert(conn, order_volumes, volume_rows)
                await self.insert(conn, documents, document_rows)
                await self.insert(conn, outbox, event_rows)
                await self.insert(conn, shipments, shipment_rows)
            done = min(begin + CHUNK, total)
            print(f"\r  orders {done:,}/{total:,} ({time.perf_counter() - started:.0f} s)", end="",
                  flush=True)
        print()

    def event_row(self, event_id: int, brand: Brand, order_id: int, order: ExpeditionOrder, content: str,
                  kind: EventType, version: int, at: datetime, bling_id: int,
                  canceled: bool) -> dict[str, Any]:
        """One outbox row; its payload is the order JSON as `order_json` writes it (the envelope
        and the content), its state follows the brand's receiver and the event's age."""
        rng = self.rng
        age = self.now - at
        envelope = {"id": order_id, "account": brand.name, "status": "canceled" if canceled else "ready",
                    "bling_id": bling_id, "kind": "nfe",
                    "situation": "canceled" if canceled else "danfe_printed", "version": version}
        payload = (json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))[:-1] + "," + content[1:-1]
                   + f',"links":{{"danfe":null,"xml":null}},"created_at":"{at.isoformat()}",'
                   f'"updated_at":"{at.isoformat()}","canceled_at":null}}')
        row: dict[str, Any] = {
            "id": event_id, "account_id": brand.id, "order_id": order_id, "type": kind.value,
            "order_version": version, "idempotency_key": idempotency_key(order.access_key, version, kind),
            "payload": payload, "created_at": at, "attempts": 1, "next_attempt_at": at, "last_error": None,
            "delivered_at": at + timedelta(milliseconds=rng.randint(40, 900)), "dead_at": None,
            "leased_until": None, "replayed_at": None, "last_attempt_ms": rng.randint(30, 800),
            "channel": "sink"}
        if age < timedelta(minutes=3):  # the relay has not got to it yet
            row.update(attempts=0, delivered_at=None, last_attempt_ms=None)
        elif brand.receiver_down and age < timedelta(days=2):  # retrying with backoff
            attempts = rng.randint(3, 40)
            row.update(attempts=attempts, delivered_at=None, last_error="HTTP 503 Service Unavailable",
                       next_attempt_at=self.now + timedelta(seconds=rng.randint(5, 600)))
        elif rng.random() < 0.003 + (0.02 if brand.index in (9, 61, 250) else 0.0):
            row.update(attempts=rng.randint(30, 60), delivered_at=None, dead_at=at + timedelta(days=3),
                       last_error=rng.choice(DEAD_ERRORS))
            if row["dead_at"] > self.now:
                row["dead_at"] = self.now - timedelta(minutes=rng.randint(1, 60))
        return row

    # --- history ----------------------------------------------------------------------------------

    async def seed_history(self, conn: AsyncConnection) -> None:
        rng = self.rng
        run_rows: list[dict[str, Any]] = []
        quarantine_rows: list[dict[str, Any]] = []
        unimported_rows: list[dict[str, Any]] = []
        run_id = 0
        for brand in self.brands:
            runs = min(300, 30 + brand.orders // 10)
            step = timedelta(days=90) / runs
            for n in range(runs):
                run_id += 1
                started = self.now - step * (runs - n) + timedelta(seconds=rng.randint(0, 50))
                failed = rng.random() < 0.03 or (brand.state is not AccountState.ACTIVE and n >= runs - 3)
                listed = rng.randint(0, 40)
                created = 0 if failed else rng.randint(0, listed)
                run_rows.append({
                    "id": run_id, "account_id": brand.id, "trigger": rng.choice(("poll", "poll", "poll",
                                                                                "webhook", "manual")),
                    "tier": rng.choice(("recent", "recent", "recent", "week", "month")),
                    "window_from": started - timedelta(days=2), "window_to": started, "started_at": started,
                    "finished_at": started + timedelta(seconds=rng.uniform(0.3, 40)),
                    "outcome": "failed" if failed else "ok", "listed": listed, "created": created,
                    "updated": 0, "unchanged": 0, "skipped": listed - created, "canceled": 0,
                    "quarantined": 0, "requests": 1 + created * 2,
                    "error": (brand.reason or "Bling answered 503 three times; the pass stops here")
                    if failed else None})
            if rng.random() < 0.04 or brand.index == 0:
                for k in range(rng.randint(1, 4)):
                    seen = self.now - timedelta(days=rng.uniform(0, 10))
                    quarantine_rows.append({
                        "account_id": brand.id, "kind": "nfe",
                        "bling_id": 17_000_000_000 + brand.id * 1000 + k, "number": 900_000 + k,
                        "access_key": None, "reason": rng.choice(QUARANTINE_REASONS),
                        "payload": b"<nfeProc>...</nfeProc>", "attempts": rng.randint(1, 6),
                        "first_seen": seen, "last_seen": seen + timedelta(hours=2),
                        "next_attempt_at": self.now + timedelta(hours=6), "run_id": None})
            for k in range(rng.choice((0, 0, 1, 2, 3, 5)) if brand.index else 30):
                issued = self.now - timedelta(days=rng.uniform(0.2, 20))
                situation, reason = rng.choice((
                    (InvoiceStatus.AUTHORIZED, "Autorizada for 2 days: the DANFE has not been printed yet, "
                                               "so Bling has not moved it to Emitida DANFE"),
                    (InvoiceStatus.PENDING, "Pendente: not sent to SEFAZ yet"),
                    (InvoiceStatus.REJECTED, "Rejeitada by SEFAZ")))
                unimported_rows.append({
                    "account_id": brand.id, "kind": "nfe", "bling_id": 18_000_000_000 + brand.id * 1000 + k,
                    "number": 800_000 + k, "situation": situation.value, "issued_at": issued,
                    "reason": reason, "access_key": None, "seen_at": self.now - timedelta(minutes=5)})
        await self.insert(conn, sync_runs, run_rows)
        await self.insert(conn, quarantine, quarantine_rows)
        await self.insert(conn, unimported_notes, unimported_rows)

    async def run(self) -> None:
        started = time.perf_counter()
        self.make_brands()
        async with self.store.engine.begin() as conn:
            await self.seed_brands(conn)
        plan = self.plan()
        await self.seed_orders(plan)
        async with self.store.engine.begin() as conn:
            await self.seed_history(conn)
            for table in (accounts, orders, order_items, order_volumes, outbox, shipments, sync_runs,
                          quarantine, unimported_notes, sinks):
                # Ids were given explicitly: move each sequence past them (table names are ours).
                await conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                    f"(SELECT coalesce(max(id), 1) FROM {table.name}))"))
        raw = await self.store.engine.connect()
        try:
            autocommit = await raw.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))
        finally:
            await raw.close()
        print(f"  seeded in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{name} {count:,}" for name, count in self.rows.items()))


def xml_of(order: ExpeditionOrder, content: str) -> bytes:
    """A stand-in for the authorised XML of the right size (the order's fields, wrapped)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?><nfeProc versao="4.00"><NFe><infNFe '
            f'Id="NFe{order.access_key}" versao="4.00"><ide><nNF>{order.number}</nNF></ide>'
            f"<infAdic><infCpl>{html.escape(content)}</infCpl></infAdic></infNFe></NFe></nfeProc>").encode()


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    params: Any
    ms: float


@dataclass
class Recorder:
    """Every SQL statement the app runs, with its time, while `active`."""

    active: bool = False
    statements: list[Statement] = field(default_factory=list)

    def attach(self, store: Store) -> None:
        engine = store.engine.sync_engine

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                  executemany: bool) -> None:
            began = conn.info["bench_started"].pop()
            if self.active:
                self.statements.append(Statement(statement, parameters, (time.perf_counter() - began) * 1000))


@dataclass
class Page:
    label: str
    path: str
    expect: str | None = None
    times: list[float] = field(default_factory=list)
    sql_times: list[float] = field(default_factory=list)  # per request: the time spent in SQL
    statements: list[Statement] = field(default_factory=list)
    status: int = 0
    size: int = 0

    def pct(self, p: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


async def sign_in(http: httpx.AsyncClient, username: str, password: str) -> None:
    """Through the real form: GET /entrar for the CSRF token, POST the credentials."""
    page = await http.get("/entrar")
    page.raise_for_status()
    found = CSRF.search(page.text)
    if found is None:
        raise SystemExit("the sign-in page has no csrf_token field: is the dashboard (issue 6) in place?")
    token = found.group(1) or found.group(2)
    done = await http.post("/entrar", data={"username": username, "password": password, "csrf_token": token,
                                            "next": "/contas"})
    if done.status_code not in (302, 303) or "/entrar" in done.headers.get("location", ""):
        raise SystemExit(f"signing in failed: {done.status_code} {done.text[:300]}")


async def create_operator(store: Store, username: str, password: str) -> None:
    """The dashboard's operator, through the store as `blingsync users create` does."""
    create = getattr(store, "create_user", None)
    if create is None:
        raise SystemExit("Store.create_user is missing: is the dashboard (issue 6) in place?")
    await create(username, password)


@dataclass(frozen=True)
class Samples:
    """What the pages are asked for, read back from the database: the biggest brand, an order
    from the middle of the table (its chave, first SKU, recipient, brand), a number of the big
    brand, a brand name fragment."""

    brand_id: int
    brand_name: str
    order_id: int
    order_number: int
    order_brand: str
    chave: str
    sku: str
    recipient: str
    number: int
    brands: int
    small_id: int  # a brand with a dozen orders or so: filters must not scan everyone else's
    small_name: str
    settled_id: int  # a big brand whose events are all delivered: nothing to list, nothing to scan
    order_issued_at: datetime  # of `order_id`: where an API cursor a page deep points

    @classmethod
    async def read(cls, store: Store) -> Samples:
        async with store.engine.connect() as conn:
            brand = (await conn.execute(text(
                "SELECT a.id, a.name FROM accounts a JOIN (SELECT account_id, count(*) AS n FROM orders "
                "GROUP BY account_id ORDER BY n DESC LIMIT 1) big ON big.account_id = a.id"))).one()
            middle = (await conn.execute(text(
                "SELECT o.id, o.number, o.access_key, o.recipient_name, o.issued_at, i.sku, a.name "
                "FROM orders o "
                "JOIN order_items i ON i.order_id = o.id AND i.line = 1 "
                "JOIN accounts a ON a.id = o.account_id WHERE o.id >= (SELECT max(id) / 2 FROM orders) "
                "ORDER BY o.id LIMIT 1"))).one()
            number = (await conn.execute(text(
                "SELECT number FROM orders WHERE account_id = :a ORDER BY id DESC LIMIT 1 OFFSET 100"),
                {"a": brand.id})).scalar_one()
            brands = (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
            small = (await conn.execute(text(
                "SELECT a.id, a.name FROM accounts a JOIN orders o ON o.account_id = a.id "
                "GROUP BY a.id, a.name HAVING count(*) BETWEEN 5 AND 20 ORDER BY a.id DESC LIMIT 1"))).one()
            settled = (await conn.execute(text(
                "SELECT a.id FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM outbox e "
                "WHERE e.account_id = a.id AND e.delivered_at IS NULL) ORDER BY a.id LIMIT 1"))).scalar_one()
        return cls(brand.id, brand.name, middle.id, middle.number, middle.name, middle.access_key, middle.sku,
                   middle.recipient_name or "", number, brands, small.id, small.name, settled,
                   middle.issued_at)


def pages_for(samples: Samples, now: datetime) -> list[Page]:
    """Each main page, and the variants of it that query differently. `expect` is a text the
    answer must contain, so that a parameter the page does not understand (answered with the
    unfiltered page) cannot pass for a fast filtered one."""
    day = now.astimezone(BRT).date()
    week_ago = day - timedelta(days=7)
    surname = samples.recipient.split()[-1] if samples.recipient else "Silva"
    fragment = samples.brand_name.split()[-1][:5]

    def url(path: str, **params: str | int) -> str:
        return path + ("?" + urlencode(params) if params else "")

    no_filters = {"account_id": None, "status": None, "issued_from": None, "issued_to": None, "q": None}
    deep = api_cursors.encode(OrderKey(samples.order_issued_at, samples.order_id), sort="-issued_at",
                              filters=no_filters)

    return [
        Page("/contas", "/contas"),
        Page("/contas ?estado=atencao", url("/contas", estado="atencao")),
        Page("/contas ?q= (part of a name)", url("/contas", q=fragment), expect=fragment),
        Page("/contas ?pagina= (the last)", url("/contas", pagina=max(1, samples.brands // 50))),
        Page("/contas/{id} (biggest brand)", f"/contas/{samples.brand_id}", expect=samples.brand_name),
        Page("/pedidos", "/pedidos"),
        Page("/pedidos ?antes= (a page deep)", url("/pedidos", antes=samples.order_id)),
        Page("/pedidos ?q=chave", url("/pedidos", q=samples.chave), expect=samples.recipient),
        Page("/pedidos ?q=recipient (full name)", url("/pedidos", q=samples.recipient),
             expect=samples.recipient),
        Page("/pedidos ?q=recipient (surname)", url("/pedidos", q=surname), expect=surname),
        Page("/pedidos ?q=number", url("/pedidos", q=samples.number), expect=str(samples.number)),
        Page("/pedidos ?q=SKU", url("/pedidos", q=samples.sku), expect=samples.order_brand),
        Page("/pedidos ?marca=&de=&ate= (a week)",
             url("/pedidos", marca=samples.brand_id, de=week_ago.isoformat(), ate=day.isoformat()),
             expect=samples.brand_name),
        Page("/pedidos ?marca= (a small brand)", url("/pedidos", marca=samples.small_id),
             expect=samples.small_name),
        Page("/pedidos ?marca=&de=&ate= (small, a week)",
             url("/pedidos", marca=samples.small_id, de=week_ago.isoformat(), ate=day.isoformat())),
        Page("/pedidos ?status=canceled", url("/pedidos", status="canceled")),
        Page("/pedidos ?entrega=dead", url("/pedidos", entrega="dead")),
        Page("/pedidos/{id}", f"/pedidos/{samples.order_id}", expect=samples.recipient),
        Page("/entregas", "/entregas"),
        Page("/entregas ?estado=dead", url("/entregas", estado="dead")),
        Page("/entregas ?marca= (biggest brand)", url("/entregas", marca=samples.brand_id)),
        Page("/entregas ?marca= (all delivered)", url("/entregas", marca=samples.settled_id)),
        Page("/api/v1/orders", url(API_ORDERS)),
        Page("/api/v1/orders ?sort=-issued_at&cursor= (a page deep)",
             url(API_ORDERS, sort="-issued_at", cursor=deep)),
        Page("/api/v1/orders ?q=recipient (surname)", url(API_ORDERS, q=surname), expect=surname),
        Page("/api/v1/orders ?q=recipient (full name)", url(API_ORDERS, q=samples.recipient),
             expect=samples.recipient),
        Page("/api/v1/orders ?q=number", url(API_ORDERS, q=samples.number), expect=str(samples.number)),
        Page("/api/v1/orders ?q=SKU", url(API_ORDERS, q=samples.sku), expect=samples.order_brand),
        Page("/api/v1/orders ?account_id=&issued_from=&issued_to=",
             url(API_ORDERS, account_id=samples.brand_id, issued_from=week_ago.isoformat(),
                 issued_to=day.isoformat()), expect=samples.brand_name),
        Page("/api/v1/orders ?sort=-issued_at", url(API_ORDERS, sort="-issued_at")),
    ]


async def measure(store: Store, service: Service, pages: list[Page], *, requests: int,
                  warmup: int) -> list[Page]:
    recorder = Recorder()
    recorder.attach(store)
    with contextlib.suppress(Exception):  # already there in a reused database
        await create_operator(store, *OPERATOR)
    _, token = await store.create_api_token(f"bench-{time.time_ns()}")  # a new name on each --reuse
    api = {"authorization": f"Bearer {token}"}
    app = create_app(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test",
                                 follow_redirects=False) as http:
        await sign_in(http, *OPERATOR)
        for page in pages:
            headers = api if page.path.startswith("/api/") else None
            for _ in range(warmup):
                await http.get(page.path, headers=headers)
            for n in range(requests):
                recorder.statements = []
                recorder.active = True
                began = time.perf_counter()
                response = await http.get(page.path, headers=headers)
                page.times.append((time.perf_counter() - began) * 1000)
                recorder.active = False
                page.status, page.size = response.status_code, len(response.content)
                page.sql_times.append(sum(statement.ms for statement in recorder.statements))
                if n == 0:
                    page.statements = list(recorder.statements)
                    if page.expect is not None and html.escape(page.expect) not in response.text \
                            and page.expect not in response.text:
                        raise SystemExit(f"{page.label}: {page.path} does not show {page.expect!r}; "
                                         "was the query understood?")
    return pages


def report(pages: Sequence[Page]) -> None:
    """p50/p95/max of the page's server time; `SQL` statements per request and the p50 of the
    time spent in them (the rest is Python: routing, session, template)."""
    print(f"\n{'page':<44} {'status':>6} {'KB':>6} {'SQL':>4} {'SQL ms':>7} {'p50 ms':>8} {'p95 ms':>8}"
          f" {'max ms':>8} {'p95/300':>8}")
    for page in pages:
        ratio = page.pct(95) / BAR_MS
        flag = "  OVER" if ratio > 1 or page.status != 200 else ""
        print(f"{page.label:<44} {page.status:>6} {page.size / 1024:>6.1f} {len(page.statements):>4} "
              f"{statistics.median(page.sql_times):>7.1f} {statistics.median(page.times):>8.1f} "
              f"{page.pct(95):>8.1f} {max(page.times):>8.1f} {ratio:>8.2f}{flag}")


async def explain_slow(store: Store, pages: Sequence[Page], *, every: bool, top: int = 2) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the slowest statements of each page over the bar (every
    page with `every`), run again with the parameters the page used."""
    for page in pages:
        if not every and page.pct(95) <= BAR_MS:
            continue
        print(f"\n=== {page.label}: {page.path}")
        for statement in sorted(page.statements, key=lambda s: -s.ms)[:top]:
            print(f"--- {statement.ms:.1f} ms\n{statement.sql}\n    params: {statement.params}")
            if not statement.sql.lstrip().upper().startswith("SELECT"):
                continue
            async with store.engine.connect() as conn:
                plan = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement.sql}",
                                                  statement.params)
                print("\n".join(f"    {row[0]}" for row in plan))


async def main_async(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        box_file = Path(tempfile.gettempdir()) / f"{args.database}.key"
        if args.reuse:
            url = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{args.database}"
            box = SecretBox(box_file.read_bytes())
        else:
            url = stack.enter_context(fresh_database(args.database, keep=args.keep))
            key = os.urandom(32)  # the AES-256-GCM key of the credentials; kept for --reuse with --keep
            if args.keep:
                box_file.write_bytes(key)
            box = SecretBox(key)
        store = await Store.open(url, box=box)
        try:
            if not args.reuse:
                seeder = Seeder(store, box, brands=args.brands, orders=args.orders, seed=args.seed,
                                now=datetime.now(UTC))
                print(f"seeding {args.brands:,} brands and {args.orders:,} orders into {args.database}")
                await seeder.run()
            if args.seed_only:
                return
            settings = Settings(data_dir=tmp, database_url=url, secret_key=None,
                                bling_url="http://bling.invalid/Api/v3",
                                bling_v2_url="http://bling.invalid/Api/v2")
            service = Service(store, settings)
            pages = pages_for(await Samples.read(store), datetime.now(UTC))
            await measure(store, service, pages, requests=args.requests, warmup=args.warmup)
            report(pages)
            over = [page for page in pages if page.pct(95) > BAR_MS or page.status != 200]
            print(f"\nbar: p95 ≤ {BAR_MS:.0f} ms on every page; "
                  + ("all pages within it" if not over else f"{len(over)} over: "
                     + ", ".join(page.label for page in over)))
            if over or args.explain:
                await explain_slow(store, pages, every=args.explain)
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brands", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest queries of every page")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed-only", action="store_true", help="seed and stop (with --keep: for psql)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database a run with --keep left, without seeding again")
    args = parser.parse_args()
    if args.brands < 21 or args.orders < 1:
        parser.error("--brands must be at least 21 and --orders at least 1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
