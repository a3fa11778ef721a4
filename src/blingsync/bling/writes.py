"""What blingsync sends to Bling: query values in each generation's formats and request bodies.

`models` reads Bling's shapes; this module writes them. Nothing here does I/O.

* v3 datetimes are Brasília local time without an offset (`2026-11-20 14:03:00`); v2 filters
  are `name[value]` pairs joined by `; `, dates `dd/mm/YYYY HH:MM:SS`, ranges with ` TO `.
* A logistics object's PUT body (`LogisticasObjetosUpdateRequestDTO`) declares nearly every field
  required, so an update is the object as read with the change applied, never a partial body.
  The POST body adds `pedidoVenda`, `notaFiscal` and `servico`. Choice where the OpenAPI document
  is unreasonable: `embalagem` (the id of a *product* used as packaging) is sent only when known —
  there is no such product to name for a warehouse's own box. `rastreamento.ultimaAlteracao`
  (also required) is when the tracking changed: the reported time, else now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from blingsync.bling.models import Dimensions, LogisticsObject, TrackingSituation
from blingsync.domain import BRASILIA


def v3_datetime(moment: datetime) -> str:
    """`2026-11-20 14:03:00`: Brasília local time, as v3's period filters expect."""
    if moment.tzinfo is None:
        raise ValueError("a datetime sent to Bling must be timezone-aware")
    return moment.astimezone(BRASILIA).strftime("%Y-%m-%d %H:%M:%S")


def v2_datetime(moment: datetime) -> str:
    """`20/11/2026 14:03:00`: Brasília local time, as v2's filters expect."""
    if moment.tzinfo is None:
        raise ValueError("a datetime sent to Bling must be timezone-aware")
    return moment.astimezone(BRASILIA).strftime("%d/%m/%Y %H:%M:%S")


def v2_range(start: datetime, end: datetime) -> str:
    return f"{v2_datetime(start)} TO {v2_datetime(end)}"


def v2_filters(filters: Mapping[str, str | int | None]) -> str:
    """`dataEmissao[… TO …]; situacao[7]; tipo[S]` — the one `filters` parameter of v2.
    None values are left out; a value holding `[`, `]` or `;` is refused (it would change the
    meaning of the whole parameter)."""
    parts: list[str] = []
    for name, value in filters.items():
        if value is None:
            continue
        text = str(value)
        if any(c in text for c in "[];"):
            raise ValueError(f"v2 filter {name} cannot contain '[', ']' or ';': {text!r}")
        parts.append(f"{name}[{text}]")
    return "; ".join(parts)


def v2_order_situation_xml(situation_id: int) -> str:
    """The `xml` form field of v2's `PUT pedido/{numero}`."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<pedido><idSituacao>{int(situation_id)}</idSituacao></pedido>"
    )


@dataclass(frozen=True)
class TrackingChange:
    """What the warehouse reports about a shipment, to record on a Bling logistics object.
    Fields left None keep what the object has."""

    code: str | None = None
    description: str | None = None
    situation: TrackingSituation | None = None
    url: str | None = None
    origin: str | None = None
    destination: str | None = None
    shipped_on: date | None = None
    dimensions: Dimensions | None = None
    packaging_id: int | None = None
    expected_days: int | None = None
    expected_freight: Decimal | None = None
    declared_value: Decimal | None = None
    notice_of_receipt: bool | None = None
    own_hands: bool | None = None
    updated_at: datetime | None = None  # when the tracking changed (aware); default: now

    def __post_init__(self) -> None:
        if self.updated_at is not None and self.updated_at.tzinfo is None:
            raise ValueError("updated_at must be timezone-aware")
        if self.expected_days is not None and not 0 <= self.expected_days <= 3650:
            raise ValueError("expected_days must be between 0 and 3650")
        for name in ("code", "description", "url", "origin", "destination"):
            value = getattr(self, name)
            if value is not None and len(value) > 2000:
                raise ValueError(f"{name} is too long for Bling (over 2000 characters)")


def _number(value: Decimal | None) -> float | int:
    """A JSON number for a money or measure field (`float` format in the OpenAPI document):
    integers stay integers, other values go through their exact decimal text."""
    if value is None:
        return 0
    if value == value.to_integral_value():
        return int(value)
    return float(str(value))


def _dimensions_body(d: Dimensions | None) -> dict[str, float | int]:
    d = d or Dimensions()
    return {"peso": _number(d.weight), "altura": _number(d.height), "largura": _number(d.width),
            "comprimento": _number(d.length), "diametro": _number(d.diameter)}


def _tracking_changed(change: TrackingChange) -> bool:
    return any(v is not None for v in (change.code, change.description, change.situation,
                                       change.url, change.origin, change.destination))


def logistics_update_body(current: LogisticsObject | None, change: TrackingChange, *,
                          now: datetime) -> dict[str, Any]:
    """The full `LogisticasObjetosUpdateRequestDTO` for `current` with `change` applied
    (`current` None: a new object, every field from the change or its neutral default).
    `rastreamento.ultimaAlteracao` is the change's `updated_at`, else `now` when the tracking
    changes, else what the object had. `now` is aware; its Brasília date is "today"."""
    tracking = current.tracking if current is not None else None
    today = now.astimezone(BRASILIA).date()
    if change.updated_at is not None:
        touched = change.updated_at
    elif _tracking_changed(change) or tracking is None or tracking.updated_at is None:
        touched = now
    else:
        touched = tracking.updated_at

    def keep(new: Any, old: Any, default: Any) -> Any:
        if new is not None:
            return new
        return old if old is not None else default

    body: dict[str, Any] = {
        "rastreamento": {
            "codigo": keep(change.code, tracking.code if tracking else None, ""),
            "descricao": keep(change.description, tracking.description if tracking else None, ""),
            "situacao": int(keep(change.situation, tracking.situacao if tracking else None,
                                 TrackingSituation.NAO_POSTADO)),
            "origem": keep(change.origin, tracking.origem if tracking else None, ""),
            "destino": keep(change.destination, tracking.destino if tracking else None, ""),
            "url": keep(change.url, tracking.url if tracking else None, ""),
            "ultimaAlteracao": v3_datetime(touched),
        },
        "dimensoes": _dimensions_body(
            keep(change.dimensions, current.dimensions if current else None, None)),
        "dataSaida": keep(change.shipped_on, current.data_saida if current else None,
                          today).isoformat(),
        "prazoEntregaPrevisto": keep(change.expected_days,
                                     current.prazo_entrega_previsto if current else None, 0),
        "fretePrevisto": _number(keep(change.expected_freight,
                                      current.frete_previsto if current else None, None)),
        "valorDeclarado": _number(keep(change.declared_value,
                                       current.valor_declarado if current else None, None)),
        "avisoRecebimento": bool(keep(change.notice_of_receipt,
                                      current.aviso_recebimento if current else None, False)),
        "maoPropria": bool(keep(change.own_hands, current.mao_propria if current else None,
                                False)),
    }
    packaging = keep(change.packaging_id, current.packaging_id if current else None, None)
    if packaging is not None:
        body["embalagem"] = {"id": packaging}
    return body


def logistics_create_body(change: TrackingChange, *, sales_order_id: int | None,
                          note_id: int | None, service_id: int | None,
                          now: datetime) -> dict[str, Any]:
    """`LogisticasObjetosDadosCreateRequestDTO`: the object's links and its update fields."""
    if sales_order_id is None and note_id is None:
        raise ValueError("a logistics object belongs to a sales order or a note: give one")
    body: dict[str, Any] = {}
    for key, value in (("pedidoVenda", sales_order_id), ("notaFiscal", note_id),
                       ("servico", service_id)):
        if value is not None:
            body[key] = {"id": value}
    body.update(logistics_update_body(None, change, now=now))
    return body
