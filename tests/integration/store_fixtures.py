"""Fixtures and factories for the store's tests: every store test runs on SQLite (a file in
tmp_path) and on PostgreSQL when one is reachable (a database created for the test and dropped
after it). Import the fixtures into a test module to use them.

Orders are built by hand (`make_order`): the store must not depend on the NF-e parser."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest

from blingsync.bling.auth import StoredTokens
from blingsync.bling.secrets import Secret
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
    OrderLinks,
    Recipient,
    Volume,
)
from blingsync.store import SecretBox, Store
from blingsync.store.records import (
    AccountSettings,
    Credentials,
    ImportedNote,
    NewAccount,
    V2Credentials,
    V3Credentials,
)

PG_HOST = os.environ.get("BLINGSYNC_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BLINGSYNC_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BLINGSYNC_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("BLINGSYNC_TEST_PG_DB", "test")

BRT = timezone(timedelta(hours=-3))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)


@cache
def postgres_reachable() -> bool:
    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB,
                             connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, autocommit=True)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}")
    name = f"blingsync_test_{secrets.token_hex(6)}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of the test, once per backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'blingsync.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@dataclass
class Clock:
    """A settable clock for the store (aware UTC)."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.generate()


@pytest.fixture
async def store(db_url: str, box: SecretBox, clock: Clock) -> AsyncIterator[Store]:
    opened = await Store.open(db_url, box=box, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


# --- factories --------------------------------------------------------------------------------


def access_key(number: int, *, cnpj: str = "12345678000195", model: int = 55, series: int = 1) -> str:
    """A 44-digit chave with a correct check digit (mod 11, as SEFAZ computes it)."""
    body = f"35" f"2611" f"{cnpj}" f"{model:02d}" f"{series:03d}" f"{number:09d}" "1" f"{number % 10**8:08d}"
    assert len(body) == 43
    weights = [2, 3, 4, 5, 6, 7, 8, 9]
    total = sum(int(d) * weights[i % 8] for i, d in enumerate(reversed(body)))
    digit = 11 - total % 11
    return body + str(0 if digit >= 10 else digit)


def make_item(line: int = 1, *, sku: str = "SKU-1", quantity: str = "2.0000", unit_value: str = "10.00",
              ean: str | None = "7891234567895") -> OrderItem:
    total = (Decimal(quantity) * Decimal(unit_value)).quantize(Decimal("0.01"))
    return OrderItem(
        line=line, sku=sku, description=f"Produto {sku}", quantity=Decimal(quantity), unit="UN",
        unit_value=Decimal(unit_value), total_value=total, ean=ean, ncm="61091000", cfop="5102",
        order_ref="PED-1", order_line=str(line),
    )


def make_order(*, number: int = 1001, key: str | None = None, total: str = "20.00",
               items: tuple[OrderItem, ...] | None = None, volumes: tuple[Volume, ...] | None = None,
               recipient: str = "Maria da Silva", info: str | None = None) -> ExpeditionOrder:
    items = (make_item(),) if items is None else items
    if volumes is None:
        volumes = (Volume(quantity=1, kind="CAIXA", brand="ACME", numbering="1",
                          net_weight_kg=Decimal("1.250"), gross_weight_kg=Decimal("1.500")),)
    issued = datetime(2026, 11, 19, 14, 3, tzinfo=BRT)
    return ExpeditionOrder(
        access_key=key or access_key(number), model=55, series=1, number=number, issued_at=issued,
        operation=1, purpose=1, nature="Venda de mercadoria",
        emitter=Emitter(document="12345678000195", name="Marca Exemplo LTDA", trade_name="Exemplo",
                        ie="123456789012", state="SP"),
        recipient=Recipient(name=recipient, document="12345678909", email="maria@example.com",
                            phone="11999990000"),
        delivery_address=DeliveryAddress(street="Rua das Flores", number="100", complement="Apto 5",
                                         district="Centro", city="São Paulo", city_code="3550308",
                                         state="SP", postal_code="01001000", country_code="1058",
                                         country="Brasil"),
        delivery_is_separate=False, items=items, volumes=volumes,
        carrier=Carrier(name="Transportadora Rápida", document="11222333000181", state="SP"),
        freight_mode=FreightMode.SENDER, products_value=Decimal(total), freight_value=Decimal("0.00"),
        total_value=Decimal(total),
        authorization=Authorization(protocol="135260000000001", authorized_at=issued + timedelta(minutes=1),
                                    status_code=100, message="Autorizado o uso da NF-e"),
        additional_info=info,
    )


def make_xml(order: ExpeditionOrder, salt: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><nfeProc><NFe><infNFe Id="NFe{order.access_key}">'
            f"<ide><nNF>{order.number}</nNF></ide><total>{order.total_value}</total>"
            f"<obs>{salt}ção</obs></infNFe></NFe></nfeProc>").encode()


def make_note(order: ExpeditionOrder | None = None, *, bling_id: int = 9001, kind: str = "nfe",
              situation: InvoiceStatus = InvoiceStatus.DANFE_PRINTED, links: OrderLinks | None = None,
              xml: bytes | None = None) -> ImportedNote:
    order = order or make_order()
    return ImportedNote(
        kind=kind, bling_id=bling_id, situation=situation, order=order,
        xml=xml if xml is not None else make_xml(order),
        links=links or OrderLinks(danfe=f"https://bling.test/danfe/{bling_id}",
                                  xml=f"https://bling.test/xml/{bling_id}?signature=abc"),
    )


V3_SECRET = "client-secret-ABCDEFGHIJKLMNOP"
V2_KEY = "v2-api-key-0123456789abcdef0123456789"


def v3_credentials(tokens: StoredTokens | None = None) -> V3Credentials:
    return V3Credentials(client_id="client-id-1", client_secret=V3_SECRET, tokens=tokens)


def tokens(n: int = 1) -> StoredTokens:
    return StoredTokens(Secret(f"access-token-{n}-xxxxxxxxxxxxxxxx"),
                        Secret(f"refresh-token-{n}-yyyyyyyyyyyy"),
                        expires_at=1_800_000_000.5 + n, scope=(98309, 318257570))


@dataclass
class AccountFactory:
    counter: int = 0
    defaults: dict[str, Any] = field(default_factory=dict)

    def __call__(self, name: str | None = None, *, credentials: Credentials | None = None,
                 settings: AccountSettings | None = None) -> NewAccount:
        self.counter += 1
        credentials = credentials or v3_credentials()
        generation = ApiGeneration.V2 if isinstance(credentials, V2Credentials) else ApiGeneration.V3
        return NewAccount(
            name=name or f"marca-{self.counter}", generation=generation, credentials=credentials,
            bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2",
            document="12345678000195", settings=settings or AccountSettings(),
        )


new_account = AccountFactory()


def with_total(order: ExpeditionOrder, total: str) -> ExpeditionOrder:
    return replace(order, total_value=Decimal(total), products_value=Decimal(total))
