"""The order JSON (`blingsync.orderjson`) against its published schema and its documentation.

The schema (`blingsync/schemas/order.schema.json`, JSON Schema 2020-12) is what consumers are
told; these tests hold the code to it both ways: what `order_json` writes validates (with
format checking), and what the schema forbids the code never writes. The read-back
(`order_from_fields`) must give back the very same order, decimal digits included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from blingsync.domain import (
    Authorization,
    Carrier,
    DeliveryAddress,
    Emitter,
    ExpeditionOrder,
    FreightMode,
    Intermediary,
    InvoiceStatus,
    OrderItem,
    OrderLinks,
    OrderStatus,
    Recipient,
    StoredOrder,
    Volume,
)
from blingsync.orderjson import ContentError, order_fields, order_from_fields, order_json

BRT = timezone(timedelta(hours=-3))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "order-json.md"


def _schema() -> dict[str, Any]:
    text = resources.files("blingsync").joinpath("schemas", "order.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


FULL = ExpeditionOrder(
    access_key="35261112345678000195550010000012341123456781",
    model=55,
    series=1,
    number=1234,
    issued_at=datetime(2026, 11, 20, 14, 3, tzinfo=BRT),
    departure_at=datetime(2026, 11, 20, 15, 0, tzinfo=BRT),
    operation=1,
    purpose=1,
    nature="Venda de mercadoria",
    emitter=Emitter(
        document="12345678000195", name="Açaí & Cia Ltda", trade_name="Açaí", ie="111222333444", state="SP"
    ),
    recipient=Recipient(
        name="João D'Ávila", document="12345678909", ie=None, email="joao@example.com", phone="11999990000"
    ),
    delivery_address=DeliveryAddress(
        street="Rua das Flores",
        number="120",
        complement="Casa 2",
        district="Centro",
        city="São Paulo",
        city_code="3550308",
        state="SP",
        postal_code="01001000",
        country_code="1058",
        country="Brasil",
    ),
    delivery_is_separate=True,
    items=(
        OrderItem(
            line=1,
            sku="SKU-1",
            description="Caneca",
            quantity=Decimal("2.0000"),
            unit="UN",
            unit_value=Decimal("123.70"),
            total_value=Decimal("247.40"),
            ean="7891234567895",
            ncm="69120000",
            cfop="5102",
            order_ref="PED-42",
            order_line="1",
        ),
        OrderItem(
            line=2,
            sku="SKU-2",
            description="Brinde",
            quantity=Decimal("1.0000"),
            unit="UN",
            unit_value=Decimal("0.0000000000"),
            total_value=Decimal("0.00"),
        ),
    ),
    volumes=(
        Volume(
            quantity=1,
            kind="Caixa",
            brand="ACME",
            numbering="1",
            net_weight_kg=Decimal("1.250"),
            gross_weight_kg=Decimal("1.350"),
        ),
        Volume(
            quantity=2,
            kind=None,
            brand=None,
            numbering=None,
            net_weight_kg=None,
            gross_weight_kg=Decimal("0.625"),
        ),
    ),
    carrier=Carrier(name="Correios", document="34028316000103", ie=None, state="DF"),
    freight_mode=FreightMode.SENDER,
    products_value=Decimal("247.40"),
    freight_value=Decimal("12.50"),
    total_value=Decimal("259.90"),
    authorization=Authorization(
        protocol="135260000012345",
        authorized_at=datetime(2026, 11, 20, 14, 4, 5, tzinfo=BRT),
        status_code=100,
        message="Autorizado o uso da NF-e",
    ),
    intermediary=Intermediary(document="03007331000141", buyer_id="JOAOCLIENTE"),
    store_order_number="2000012345678901",
    additional_info="Pedido na loja: 2000012345678901.",
)

BARE = ExpeditionOrder(
    access_key="35261112345678000195650010000000071000000070",
    model=65,
    series=1,
    number=7,
    issued_at=datetime(2026, 11, 20, 9, 30, tzinfo=timezone(timedelta(hours=-4))),
    operation=1,
    purpose=1,
    nature="Venda",
    emitter=Emitter(document="12345678000195", name="Açaí & Cia Ltda"),
    recipient=Recipient(),
    delivery_address=None,
    delivery_is_separate=False,
    items=(
        OrderItem(
            line=1,
            sku="1",
            description="Pão",
            quantity=Decimal("3"),
            unit="UN",
            unit_value=Decimal("0.50"),
            total_value=Decimal("1.50"),
        ),
    ),
    volumes=(),
    carrier=None,
    freight_mode=FreightMode.NO_FREIGHT,
    products_value=Decimal("1.50"),
    freight_value=Decimal("0.00"),
    total_value=Decimal("1.50"),
    authorization=None,
)


def stored(order: ExpeditionOrder, *, canceled: bool = False) -> StoredOrder:
    created = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    return StoredOrder(
        id=41,
        account="acai",
        status=OrderStatus.CANCELED if canceled else OrderStatus.READY,
        bling_id=16_012_345_678,
        situation=InvoiceStatus.CANCELED if canceled else InvoiceStatus.DANFE_PRINTED,
        order=order,
        links=OrderLinks(danfe="https://www.bling.com.br/doc.view.php?id=abc", xml=None),
        version=2 if canceled else 1,
        created_at=created,
        updated_at=created + timedelta(hours=1),
        canceled_at=created + timedelta(hours=1) if canceled else None,
    )


def through_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


@pytest.mark.parametrize("order", [FULL, BARE], ids=["full", "bare-nfce"])
@pytest.mark.parametrize("canceled", [False, True])
def test_valid_against_the_schema(
    order: ExpeditionOrder, canceled: bool, validator: jsonschema.Draft202012Validator
) -> None:
    document = through_json(order_json(stored(order, canceled=canceled)))
    errors = list(validator.iter_errors(document))
    assert not errors, [(list(e.path), e.message) for e in errors]


def test_every_key_always_present_and_nulls_never_empty_strings() -> None:
    full, bare = order_json(stored(FULL)), order_json(stored(BARE))
    assert set(full) == set(bare) == set(_schema()["required"])
    assert set(full["recipient"]) == set(bare["recipient"])
    assert bare["recipient"] == dict.fromkeys(("name", "document", "ie", "email", "phone"))
    for path, value in [*_leaves(full), *_leaves(bare)]:
        assert value != "", path


def test_decimals_are_exact_strings_and_codes_are_numbers() -> None:
    document = through_json(order_json(stored(FULL)))
    assert document["total_value"] == "259.90"
    assert document["freight_value"] == "12.50"
    assert document["items"][0]["quantity"] == "2.0000"  # trailing zeros kept
    assert document["items"][1]["unit_value"] == "0.0000000000"  # not "0E-10"
    assert document["volumes"][0]["gross_weight_kg"] == "1.350"
    assert document["gross_weight_kg"] == "1.975"
    assert document["volumes"][1]["net_weight_kg"] is None
    for key in (
        "id",
        "bling_id",
        "version",
        "model",
        "series",
        "number",
        "freight_mode",
        "operation",
        "purpose",
    ):
        assert type(document[key]) is int, key
    assert type(document["volumes"][0]["quantity"]) is int
    assert document["kind"] == "nfe" and through_json(order_json(stored(BARE)))["kind"] == "nfce"


@pytest.mark.parametrize("text", ["0.0000001", "0.0000001000", "0E-10", "12345678901234.5678901234", "1E+3"])
def test_no_decimal_is_written_with_an_exponent(text: str) -> None:
    order = replace(FULL, items=(replace(FULL.items[0], unit_value=Decimal(text)),))
    written = order_fields(order)["items"][0]["unit_value"]
    assert "E" not in written.upper()
    assert Decimal(written) == Decimal(text)
    back = order_from_fields(through_json(order_fields(order)))
    assert back.items[0].unit_value == Decimal(text)
    if Decimal(text).as_tuple().exponent <= 0:  # what an XML can hold: every digit comes back
        assert back.items[0].unit_value.as_tuple() == Decimal(text).as_tuple()


def test_datetimes_keep_their_offset() -> None:
    document = order_json(stored(FULL))
    assert document["issued_at"] == "2026-11-20T14:03:00-03:00"
    assert document["authorization"]["authorized_at"] == "2026-11-20T14:04:05-03:00"
    assert document["created_at"] == "2026-11-20T17:00:00+00:00"
    assert order_json(stored(BARE))["issued_at"] == "2026-11-20T09:30:00-04:00"
    assert document["canceled_at"] is None
    assert order_json(stored(FULL, canceled=True))["canceled_at"] == "2026-11-20T18:00:00+00:00"


@pytest.mark.parametrize("order", [FULL, BARE], ids=["full", "bare-nfce"])
def test_round_trip(order: ExpeditionOrder) -> None:
    back = order_from_fields(through_json(order_fields(order)))
    assert back == order
    assert order_fields(back) == order_fields(order)  # same digits, same offsets
    assert back.issued_at.utcoffset() == order.issued_at.utcoffset()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("issued_at"), "KeyError"),
        (lambda f: f.update(total_value="12,50"), "InvalidOperation"),
        (lambda f: f.update(issued_at="2026-11-20T14:03:00"), "has no offset"),
        (lambda f: f.update(freight_mode=5), "5 is not a valid FreightMode"),
        (lambda f: f["items"][0].update(quantity=None), "TypeError"),
    ],
)
def test_unreadable_content(change: Any, message: str) -> None:
    fields = through_json(order_fields(FULL))
    change(fields)
    with pytest.raises(ContentError, match=message):
        order_from_fields(fields)


BREAKAGES = {
    "a float amount": lambda d: d.update(total_value=259.9),
    "an amount with a comma": lambda d: d.update(total_value="259,90"),
    "an amount with an exponent": lambda d: d["items"][1].update(unit_value="0E-10"),
    "an empty string for null": lambda d: d["recipient"].update(email=""),
    "padded text": lambda d: d.update(nature=" Venda "),
    "a missing key": lambda d: d.pop("store_order_number"),
    "an unknown key": lambda d: d.update(surprise=1),
    "an unknown status": lambda d: d.update(status="shipped"),
    "a naive datetime": lambda d: d.update(issued_at="2026-11-20T14:03:00"),
    "an impossible date": lambda d: d.update(issued_at="2026-02-30T14:03:00-03:00"),
    "a short access key": lambda d: d.update(access_key="3526111234567800019555001000001234112345678"),
    "a lower-case access key": lambda d: d.update(access_key="352611abcdefgh0195550010000012341123456786"),
    "an unknown freight mode": lambda d: d.update(freight_mode=5),
    "a string model": lambda d: d.update(model="55"),
    "no items": lambda d: d.update(items=[]),
    "a GTIN of 7 digits": lambda d: d["items"][0].update(ean="1234567"),
    "a volume quantity as text": lambda d: d["volumes"][0].update(quantity="1"),
    "a protocol of 14 digits": lambda d: d["authorization"].update(protocol="13526000001234"),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_the_schema_refuses(name: str, validator: jsonschema.Draft202012Validator) -> None:
    document = through_json(order_json(stored(FULL)))
    assert validator.is_valid(document)
    BREAKAGES[name](document)
    assert not validator.is_valid(document)


def test_format_checking_is_active(validator: jsonschema.Draft202012Validator) -> None:
    """date-time is checked by format (rfc3339-validator), not only by the offset pattern:
    without the format checker "2026-02-30" would pass."""
    document = through_json(order_json(stored(FULL)))
    document["created_at"] = "2026-02-30T10:00:00+00:00"
    errors = list(validator.iter_errors(document))
    assert any(e.validator == "format" for e in errors), errors


def test_schema_is_described_and_documented() -> None:
    """Every property of the schema has a description or a $ref to a described definition,
    and docs/order-json.md names every top-level key."""
    schema = _schema()
    docs = DOCS.read_text("utf-8")
    for key, spec in schema["properties"].items():
        assert "description" in spec or "$ref" in spec, key
        assert f"`{key}`" in docs, f"docs/order-json.md does not mention `{key}`"
    for name in ("address", "item", "volume"):
        for key in schema["$defs"][name]["properties"]:
            assert f"`{key}`" in docs, f"docs/order-json.md does not mention {name}.{key}"
