"""The order JSON: how an expedition order leaves blingsync (export, REST API, webhooks) and how
the store keeps its content. One shape, both directions, documented by
`blingsync/schemas/order.schema.json` (the tests validate every order against it).

Choices, and why:

* **Money, quantities and weights are decimal strings** (`"1234.50"`, `"2.000"`), exactly as the
  XML writes them: a JSON number would be read as a binary float by most consumers and
  `0.1 + 0.2` is not `0.3`. Integers that are codes or counts (`number`, `series`, `model`,
  `freight_mode`, volume `quantity`) are JSON numbers.
* **Datetimes are ISO 8601 with the offset the XML states** (`2026-11-20T14:03:00-03:00`): the
  issuing state's local time is part of the fact.
* **Absent is `null`**, never an empty string, and every key is always present, so a consumer can
  tell "the note has no e-mail" from "this version of blingsync does not send e-mails".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from blingsync.domain import (
    Authorization,
    Carrier,
    DeliveryAddress,
    Emitter,
    ExpeditionOrder,
    FreightMode,
    Intermediary,
    OrderItem,
    Recipient,
    StoredOrder,
    Volume,
)

SCHEMA_VERSION: Final = 1
"""Bumped on any change a consumer could notice; additions of keys do not count."""


class ContentError(ValueError):
    """Stored order content that this version cannot read back (names the field)."""


def order_json(stored: StoredOrder) -> dict[str, Any]:
    """The public JSON of a stored order (see the schema)."""
    return {
        "id": stored.id,
        "account": stored.account,
        "status": stored.status.value,
        "bling_id": stored.bling_id,
        "kind": "nfce" if stored.order.model == 65 else "nfe",
        "situation": stored.situation.value,
        "version": stored.version,
        **order_fields(stored.order),
        "links": {"danfe": stored.links.danfe, "xml": stored.links.xml},
        "created_at": _time(stored.created_at),
        "updated_at": _time(stored.updated_at),
        "canceled_at": _time(stored.canceled_at),
    }


def order_fields(order: ExpeditionOrder) -> dict[str, Any]:
    """The order's own content (what the XML says), without blingsync's envelope."""
    return {
        "access_key": order.access_key,
        "model": order.model,
        "series": order.series,
        "number": order.number,
        "issued_at": _time(order.issued_at),
        "departure_at": _time(order.departure_at),
        "operation": order.operation,
        "purpose": order.purpose,
        "nature": order.nature,
        "emitter": {
            "document": order.emitter.document,
            "name": order.emitter.name,
            "trade_name": order.emitter.trade_name,
            "ie": order.emitter.ie,
            "state": order.emitter.state,
        },
        "recipient": {
            "name": order.recipient.name,
            "document": order.recipient.document,
            "ie": order.recipient.ie,
            "email": order.recipient.email,
            "phone": order.recipient.phone,
        },
        "delivery_address": _address(order.delivery_address),
        "delivery_is_separate": order.delivery_is_separate,
        "items": [_item(item) for item in order.items],
        "volumes": [_volume(volume) for volume in order.volumes],
        "gross_weight_kg": _dec(order.gross_weight_kg),
        "carrier": None if order.carrier is None else {
            "name": order.carrier.name,
            "document": order.carrier.document,
            "ie": order.carrier.ie,
            "state": order.carrier.state,
        },
        "freight_mode": int(order.freight_mode),
        "products_value": _dec(order.products_value),
        "freight_value": _dec(order.freight_value),
        "total_value": _dec(order.total_value),
        "store_order_number": order.store_order_number,
        "intermediary": None if order.intermediary is None else {
            "document": order.intermediary.document,
            "buyer_id": order.intermediary.buyer_id,
        },
        "authorization": None if order.authorization is None else {
            "protocol": order.authorization.protocol,
            "authorized_at": _time(order.authorization.authorized_at),
            "status_code": order.authorization.status_code,
            "message": order.authorization.message,
        },
        "additional_info": order.additional_info,
    }


def order_from_fields(fields: Mapping[str, Any]) -> ExpeditionOrder:
    """The inverse of `order_fields` (the store reads its content back with it)."""
    try:
        return _order_from_fields(fields)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ContentError(f"stored order content is unreadable: {type(exc).__name__}: {exc}") from None


def _order_from_fields(f: Mapping[str, Any]) -> ExpeditionOrder:
    emitter, recipient = f["emitter"], f["recipient"]
    carrier, intermediary, auth = f["carrier"], f["intermediary"], f["authorization"]
    address = f["delivery_address"]
    return ExpeditionOrder(
        access_key=f["access_key"],
        model=int(f["model"]),
        series=int(f["series"]),
        number=int(f["number"]),
        issued_at=_req_parse_time(f["issued_at"]),
        departure_at=_parse_time(f["departure_at"]),
        operation=int(f["operation"]),
        purpose=int(f["purpose"]),
        nature=f["nature"],
        emitter=Emitter(document=emitter["document"], name=emitter["name"],
                        trade_name=emitter["trade_name"], ie=emitter["ie"], state=emitter["state"]),
        recipient=Recipient(name=recipient["name"], document=recipient["document"],
                            ie=recipient["ie"], email=recipient["email"], phone=recipient["phone"]),
        delivery_address=None if address is None else DeliveryAddress(
            street=address["street"], number=address["number"], complement=address["complement"],
            district=address["district"], city=address["city"], city_code=address["city_code"],
            state=address["state"], postal_code=address["postal_code"],
            country_code=address["country_code"], country=address["country"],
        ),
        delivery_is_separate=bool(f["delivery_is_separate"]),
        items=tuple(
            OrderItem(
                line=int(i["line"]), sku=i["sku"], description=i["description"],
                quantity=Decimal(i["quantity"]), unit=i["unit"], unit_value=Decimal(i["unit_value"]),
                total_value=Decimal(i["total_value"]), ean=i["ean"], ncm=i["ncm"], cfop=i["cfop"],
                order_ref=i["order_ref"], order_line=i["order_line"],
            )
            for i in f["items"]
        ),
        volumes=tuple(
            Volume(quantity=v["quantity"], kind=v["kind"], brand=v["brand"], numbering=v["numbering"],
                   net_weight_kg=_parse_dec(v["net_weight_kg"]),
                   gross_weight_kg=_parse_dec(v["gross_weight_kg"]))
            for v in f["volumes"]
        ),
        carrier=None if carrier is None else Carrier(
            name=carrier["name"], document=carrier["document"], ie=carrier["ie"], state=carrier["state"]),
        freight_mode=FreightMode(int(f["freight_mode"])),
        products_value=Decimal(f["products_value"]),
        freight_value=Decimal(f["freight_value"]),
        total_value=Decimal(f["total_value"]),
        store_order_number=f["store_order_number"],
        intermediary=None if intermediary is None else Intermediary(
            document=intermediary["document"], buyer_id=intermediary["buyer_id"]),
        authorization=None if auth is None else Authorization(
            protocol=auth["protocol"], authorized_at=_req_parse_time(auth["authorized_at"]),
            status_code=int(auth["status_code"]), message=auth["message"]),
        additional_info=f["additional_info"],
    )


def _address(address: DeliveryAddress | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {
        "street": address.street,
        "number": address.number,
        "complement": address.complement,
        "district": address.district,
        "city": address.city,
        "city_code": address.city_code,
        "state": address.state,
        "postal_code": address.postal_code,
        "country_code": address.country_code,
        "country": address.country,
    }


def _item(item: OrderItem) -> dict[str, Any]:
    return {
        "line": item.line,
        "sku": item.sku,
        "ean": item.ean,
        "description": item.description,
        "ncm": item.ncm,
        "cfop": item.cfop,
        "quantity": _dec(item.quantity),
        "unit": item.unit,
        "unit_value": _dec(item.unit_value),
        "total_value": _dec(item.total_value),
        "order_ref": item.order_ref,
        "order_line": item.order_line,
    }


def _volume(volume: Volume) -> dict[str, Any]:
    return {
        "quantity": volume.quantity,
        "kind": volume.kind,
        "brand": volume.brand,
        "numbering": volume.numbering,
        "net_weight_kg": _dec(volume.net_weight_kg),
        "gross_weight_kg": _dec(volume.gross_weight_kg),
    }


def _dec(value: Decimal | None) -> str | None:
    # Fixed-point, never an exponent: str() writes Decimal("0.0000000000") (a free item's
    # vUnCom with the layout's 10 decimals) as "0E-10" and Decimal("0.0000001") as "1E-7".
    # "f" keeps every written digit, so the text still round-trips to the same Decimal.
    return None if value is None else format(value, "f")


def _parse_dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else _req_parse_time(value)


def _req_parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {value!r} has no offset")
    return parsed
