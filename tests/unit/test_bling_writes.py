"""blingsync.bling.writes: the query values and request bodies blingsync sends to Bling.

The logistics bodies are judged by the vendored official OpenAPI document
(tests/data/bling-openapi-v3.json), read as the contract suite reads it: `$ref`s resolved through
a registry, OAS 3.0 semantics, and the document's phantom `required` names (errata §14 of the
reference: `dimensao` on the update DTO, a name the schema has no property for) left out.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from blingsync.bling.models import Dimensions, LogisticsObject, Tracking, TrackingSituation
from blingsync.bling.writes import (
    TrackingChange,
    logistics_create_body,
    logistics_update_body,
    v2_datetime,
    v2_filters,
    v2_order_situation_xml,
    v2_range,
    v3_datetime,
)
from blingsync.domain import BRASILIA
from tests.contract.openapi import FORMATS

SPEC_FILE = Path(__file__).resolve().parents[1] / "data" / "bling-openapi-v3.json"
DOC_URI = "urn:bling:openapi-v3"
UPDATE_DTO = "LogisticasObjetosUpdateRequestDTO"
CREATE_DTO = "LogisticasObjetosDadosCreateRequestDTO"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=BRASILIA)
TOKYO = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))


# --- the OpenAPI document ----------------------------------------------------------------------


def _own_properties(doc: dict[str, Any], schema: Any) -> set[str]:
    while isinstance(schema, dict) and "$ref" in schema:
        node: Any = doc
        for token in str(schema["$ref"]).lstrip("#").split("/")[1:]:
            node = node[token]
        schema = node
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties", {}))
    for member in schema.get("allOf", []):
        names |= _own_properties(doc, member)
    return names


def _strip_phantom_required(doc: dict[str, Any]) -> None:
    """Errata §14: `required` names a schema does not declare cannot be honoured by anyone."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            required = node.get("required")
            if isinstance(required, list):
                own = _own_properties(doc, node)
                node["required"] = [name for name in required if name in own]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)


@cache
def _document() -> tuple[dict[str, Any], Registry[Any]]:
    doc = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    _strip_phantom_required(doc)
    return doc, Registry().with_resource(DOC_URI, DRAFT4.create_resource(doc))


def violations(body: Any, schema_name: str) -> list[str]:
    """Every way `body` breaks the named component schema, as `pointer: message`."""
    _, registry = _document()
    validator = OAS30Validator({"$ref": f"{DOC_URI}#/components/schemas/{schema_name}"},
                               registry=registry, format_checker=FORMATS)
    # The body must survive the trip through JSON unchanged (no Decimal, no date objects).
    wire = json.loads(json.dumps(body))
    assert wire == body
    return sorted(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(wire))


def _required_of(schema_name: str) -> set[str]:
    doc, _ = _document()
    schema = doc["components"]["schemas"][schema_name]
    names = set(schema.get("required", []))
    for member in schema.get("allOf", []):
        if "$ref" in member:
            names |= _required_of(member["$ref"].rsplit("/", 1)[1])
        names |= set(member.get("required", []))
    return names


NO_EMBALAGEM = "/: 'embalagem' is a required property"


def _known(found: list[str], *tolerated: str) -> list[str]:
    return [v for v in found if v not in tolerated]


# --- query values ------------------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "v3", "v2"), [
    (datetime(2026, 11, 20, 14, 3, tzinfo=timezone(timedelta(hours=-3))),
     "2026-11-20 14:03:00", "20/11/2026 14:03:00"),
    (datetime(2026, 11, 20, 17, 3, 9, tzinfo=UTC), "2026-11-20 14:03:09", "20/11/2026 14:03:09"),
    # across midnight and a month boundary, from either side of Brasília
    (datetime(2026, 12, 1, 1, 30, tzinfo=UTC), "2026-11-30 22:30:00", "30/11/2026 22:30:00"),
    (datetime(2026, 11, 21, 9, 0, tzinfo=TOKYO), "2026-11-20 21:00:00", "20/11/2026 21:00:00"),
    (datetime(2026, 11, 20, 23, 0, tzinfo=NEW_YORK), "2026-11-21 01:00:00", "21/11/2026 01:00:00"),
    # microseconds are dropped, not rounded
    (datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC), "2026-01-02 00:04:05", "02/01/2026 00:04:05"),
])
def test_datetimes_are_brasilia_local_text(moment: datetime, v3: str, v2: str) -> None:
    assert v3_datetime(moment) == v3
    assert v2_datetime(moment) == v2


@pytest.mark.parametrize("fn", [v3_datetime, v2_datetime])
def test_naive_datetimes_are_refused(fn: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fn(datetime(2026, 11, 20, 14, 3))


def test_v2_range() -> None:
    start = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    end = datetime(2026, 11, 21, 2, 59, 59, tzinfo=UTC)
    assert v2_range(start, end) == "01/11/2026 00:00:00 TO 20/11/2026 23:59:59"
    with pytest.raises(ValueError, match="timezone-aware"):
        v2_range(start, datetime(2026, 11, 21))


def test_v2_filters_join_skip_none_and_keep_order() -> None:
    window = v2_range(datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 2, 3, tzinfo=UTC))
    text = v2_filters({"dataEmissao": window, "situacao": 7, "loja": None, "tipo": "S"})
    assert text == "dataEmissao[01/11/2026 00:00:00 TO 02/11/2026 00:00:00]; situacao[7]; tipo[S]"
    assert v2_filters({"situacao": 0}) == "situacao[0]"  # a falsy value is not a missing one
    assert v2_filters({"a": None}) == ""
    assert v2_filters({}) == ""


@pytest.mark.parametrize("bad", ["7]", "[7", "7; tipo[E", "a;b", "]"])
def test_v2_filters_refuse_values_that_would_change_the_parameter(bad: str) -> None:
    with pytest.raises(ValueError, match="situacao"):
        v2_filters({"tipo": "S", "situacao": bad})


def test_v2_order_situation_xml() -> None:
    text = v2_order_situation_xml(9)
    assert text == ('<?xml version="1.0" encoding="UTF-8"?>'
                    "<pedido><idSituacao>9</idSituacao></pedido>")
    root = ET.fromstring(v2_order_situation_xml(20066))
    assert root.tag == "pedido" and root.findtext("idSituacao") == "20066"
    with pytest.raises(ValueError, match="invalid literal"):
        v2_order_situation_xml("9</idSituacao><x>")  # type: ignore[arg-type]


# --- TrackingChange ------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [-1, 3651, -3650])
def test_tracking_change_refuses_impossible_delivery_times(days: int) -> None:
    with pytest.raises(ValueError, match="expected_days"):
        TrackingChange(expected_days=days)


@pytest.mark.parametrize("days", [0, 15, 3650])
def test_tracking_change_accepts_delivery_times_in_range(days: int) -> None:
    assert TrackingChange(expected_days=days).expected_days == days


@pytest.mark.parametrize("field", ["code", "description", "url", "origin", "destination"])
def test_tracking_change_refuses_overlong_texts(field: str) -> None:
    TrackingChange(**{field: "x" * 2000})
    with pytest.raises(ValueError, match=field):
        TrackingChange(**{field: "x" * 2001})


# --- logistics bodies --------------------------------------------------------------------------


def _current() -> LogisticsObject:
    return LogisticsObject(
        id=555, sales_order_id=10, note_id=20, service_id=30,
        tracking=Tracking(code="QB123456789BR", description="Em trânsito", situacao=1,
                          origem="São Paulo, SP", destino="Recife, PE",
                          updated_at=datetime(2026, 11, 19, 8, tzinfo=UTC),
                          url="https://rastreamento.example/QB123456789BR"),
        dimensions=Dimensions(weight=Decimal("1.250"), height=Decimal("10"),
                              width=Decimal("20.5"), length=Decimal("30"), diameter=Decimal("0")),
        packaging_id=777, data_saida=date(2026, 11, 18), prazo_entrega_previsto=7,
        frete_previsto=Decimal("24.90"), valor_declarado=Decimal("150.00"),
        aviso_recebimento=True, mao_propria=False,
    )


def test_new_update_body_has_every_required_field() -> None:
    body = logistics_update_body(
        None, TrackingChange(code="AB123456789BR", situation=TrackingSituation.POSTADO),
        now=NOW)
    required = _required_of(UPDATE_DTO)
    assert {"dataSaida", "prazoEntregaPrevisto", "fretePrevisto", "valorDeclarado",
            "avisoRecebimento", "maoPropria", "embalagem"} <= required
    # `embalagem` is left out on purpose when no packaging product is known (see writes.py).
    assert required - {"embalagem"} <= set(body)
    assert "embalagem" not in body
    assert body["rastreamento"]["codigo"] == "AB123456789BR"
    assert body["rastreamento"]["situacao"] == 0
    assert body["dataSaida"] == "2026-11-20"
    assert body["dimensoes"] == {"peso": 0, "altura": 0, "largura": 0, "comprimento": 0,
                                 "diametro": 0}
    assert body["prazoEntregaPrevisto"] == 0
    assert body["fretePrevisto"] == 0 and body["valorDeclarado"] == 0
    assert body["avisoRecebimento"] is False and body["maoPropria"] is False
    assert {"codigo", "descricao", "situacao", "origem", "destino", "url"} <= set(body["rastreamento"])
    # Everything else the document requires is there with the right types.
    assert _known(violations(body, UPDATE_DTO), NO_EMBALAGEM) == []


def test_the_schema_check_is_not_vacuous() -> None:
    """The checker used above does reject what the document forbids."""
    good = logistics_update_body(_current(), TrackingChange(), now=NOW)
    assert _known(violations(good, UPDATE_DTO)) == []
    bad = copy.deepcopy(good)
    bad["rastreamento"]["situacao"] = 10
    bad["prazoEntregaPrevisto"] = "7"
    bad["dataSaida"] = "18/11/2026"
    del bad["maoPropria"]
    found = _known(violations(bad, UPDATE_DTO))
    assert any(v.startswith("/rastreamento/situacao:") for v in found)
    assert any(v.startswith("/prazoEntregaPrevisto:") for v in found)
    assert any(v.startswith("/dataSaida:") for v in found)
    assert "/: 'maoPropria' is a required property" in found


def test_new_object_without_a_situation_is_nao_postado() -> None:
    body = logistics_update_body(None, TrackingChange(code="X"), now=NOW)
    assert body["rastreamento"]["situacao"] == int(TrackingSituation.NAO_POSTADO) == 8


def test_update_body_validates_against_the_document() -> None:
    body = logistics_update_body(
        None, TrackingChange(code="AB123456789BR", situation=TrackingSituation.POSTADO,
                             packaging_id=777),
        now=NOW)
    assert violations(body, UPDATE_DTO) == []


def test_create_body_validates_against_the_document() -> None:
    body = logistics_create_body(
        TrackingChange(code="AB123456789BR", situation=TrackingSituation.POSTADO, packaging_id=777),
        sales_order_id=10, note_id=20, service_id=30, now=NOW)
    assert violations(body, CREATE_DTO) == []


def test_create_body_links_and_fields() -> None:
    change = TrackingChange(code="AB123456789BR", situation=TrackingSituation.POSTADO,
                            url="https://rastreamento.example/AB123456789BR")
    body = logistics_create_body(change, sales_order_id=10, note_id=20, service_id=30, now=NOW)
    assert body["pedidoVenda"] == {"id": 10}
    assert body["notaFiscal"] == {"id": 20}
    assert body["servico"] == {"id": 30}
    assert {"pedidoVenda", "notaFiscal", "servico"} <= _required_of(CREATE_DTO)
    assert _required_of(CREATE_DTO) - {"embalagem"} <= set(body)
    assert {k: v for k, v in body.items() if k not in {"pedidoVenda", "notaFiscal", "servico"}} == \
        logistics_update_body(None, change, now=NOW)
    assert _known(violations(body, CREATE_DTO), NO_EMBALAGEM) == []


def test_create_body_leaves_out_unknown_links() -> None:
    by_order = logistics_create_body(TrackingChange(), sales_order_id=10, note_id=None,
                                     service_id=None, now=NOW)
    assert by_order["pedidoVenda"] == {"id": 10}
    assert "notaFiscal" not in by_order and "servico" not in by_order
    by_note = logistics_create_body(TrackingChange(), sales_order_id=None, note_id=20,
                                    service_id=None, now=NOW)
    assert by_note["notaFiscal"] == {"id": 20} and "pedidoVenda" not in by_note


def test_create_without_order_or_note_is_refused() -> None:
    with pytest.raises(ValueError, match="sales order or a note"):
        logistics_create_body(TrackingChange(code="X"), sales_order_id=None, note_id=None,
                              service_id=30, now=NOW)


def test_update_keeps_what_the_change_leaves_none() -> None:
    current = _current()
    body = logistics_update_body(current, TrackingChange(situation=TrackingSituation.ENTREGUE),
                                 now=NOW)
    assert body == {
        "rastreamento": {
            "codigo": "QB123456789BR", "descricao": "Em trânsito", "situacao": 3,
            "origem": "São Paulo, SP", "destino": "Recife, PE",
            "url": "https://rastreamento.example/QB123456789BR",
            "ultimaAlteracao": "2026-11-20 15:30:00",  # the situation changed now
        },
        "dimensoes": {"peso": 1.25, "altura": 10, "largura": 20.5, "comprimento": 30,
                      "diametro": 0},
        "embalagem": {"id": 777},
        "dataSaida": "2026-11-18",  # the object's, not today
        "prazoEntregaPrevisto": 7,
        "fretePrevisto": 24.9,
        "valorDeclarado": 150,
        "avisoRecebimento": True,
        "maoPropria": False,
    }
    assert _known(violations(body, UPDATE_DTO)) == []


def test_update_applies_every_field_of_the_change() -> None:
    change = TrackingChange(
        code="AB123456789BR", description="Postado", situation=TrackingSituation.POSTADO,
        url="https://rastreamento.example/AB123456789BR", origin="Campinas, SP",
        destination="Natal, RN", shipped_on=date(2026, 11, 20),
        dimensions=Dimensions(weight=Decimal("2"), height=Decimal("5.5")),
        packaging_id=888, expected_days=3, expected_freight=Decimal("59.90"),
        declared_value=Decimal("2"), notice_of_receipt=False, own_hands=True,
    )
    body = logistics_update_body(_current(), change, now=datetime(2030, 1, 1, 9, tzinfo=BRASILIA))
    assert body["rastreamento"] == {
        "codigo": "AB123456789BR", "descricao": "Postado", "situacao": 0,
        "origem": "Campinas, SP", "destino": "Natal, RN",
        "url": "https://rastreamento.example/AB123456789BR",
        "ultimaAlteracao": "2030-01-01 09:00:00",
    }
    # a new Dimensions replaces the old one whole: its unset measures are 0, not the old ones
    assert body["dimensoes"] == {"peso": 2, "altura": 5.5, "largura": 0, "comprimento": 0,
                                 "diametro": 0}
    assert body["embalagem"] == {"id": 888}
    assert body["dataSaida"] == "2026-11-20"
    assert body["prazoEntregaPrevisto"] == 3
    # False is a value, not "keep": it overrides the object's True
    assert body["avisoRecebimento"] is False
    assert body["maoPropria"] is True


def test_ultima_alteracao_is_when_the_tracking_changed() -> None:
    current = _current()  # tracking updated 2026-11-19 08:00 UTC = 05:00 in Brasília
    untouched = logistics_update_body(current, TrackingChange(expected_days=9), now=NOW)
    assert untouched["rastreamento"]["ultimaAlteracao"] == "2026-11-19 05:00:00"
    reported = TrackingChange(situation=TrackingSituation.POSTADO,
                              updated_at=datetime(2026, 11, 20, 12, tzinfo=UTC))
    body = logistics_update_body(current, reported, now=NOW)
    assert body["rastreamento"]["ultimaAlteracao"] == "2026-11-20 09:00:00"
    with pytest.raises(ValueError, match="aware"):
        TrackingChange(updated_at=datetime(2026, 11, 20, 12))


def test_update_of_an_object_without_tracking() -> None:
    current = _current().model_copy(update={"tracking": None, "dimensions": None,
                                            "packaging_id": None, "data_saida": None})
    body = logistics_update_body(current, TrackingChange(url="https://x.example/1"), now=NOW)
    assert body["rastreamento"] == {"codigo": "", "descricao": "", "situacao": 8, "origem": "",
                                    "destino": "", "url": "https://x.example/1",
                                    "ultimaAlteracao": "2026-11-20 15:30:00"}
    assert body["dataSaida"] == TODAY.isoformat()
    assert "embalagem" not in body
    assert body["fretePrevisto"] == 24.9  # the rest still comes from the object


def test_empty_text_in_the_change_clears_the_field() -> None:
    body = logistics_update_body(_current(), TrackingChange(url=""), now=NOW)
    assert body["rastreamento"]["url"] == ""
    assert body["rastreamento"]["codigo"] == "QB123456789BR"


@pytest.mark.parametrize(("value", "number"), [
    (Decimal("59.90"), 59.9),
    (Decimal("2"), 2),
    (Decimal("2.000"), 2),
    (Decimal("0.1"), 0.1),
    (Decimal("1234567.89"), 1234567.89),
    (Decimal("0"), 0),
])
def test_decimals_become_exact_json_numbers(value: Decimal, number: float | int) -> None:
    body = logistics_update_body(
        None, TrackingChange(expected_freight=value, declared_value=value,
                             dimensions=Dimensions(weight=value)), now=NOW)
    for got in (body["fretePrevisto"], body["valorDeclarado"], body["dimensoes"]["peso"]):
        assert got == number
        assert type(got) is type(number)
        # the JSON text is the decimal's own, with nothing lost or invented
        assert Decimal(json.dumps(got)) == value
        assert json.dumps(got) == (str(int(value)) if isinstance(number, int)
                                   else str(value.normalize()))


def test_bodies_do_not_share_state() -> None:
    """The body is fresh each time: editing one does not leak into the next or the change."""
    change = TrackingChange(code="AB1", dimensions=Dimensions(weight=Decimal("1")))
    first = logistics_update_body(None, change, now=NOW)
    snapshot = copy.deepcopy(first)
    first["rastreamento"]["codigo"] = "changed"
    first["dimensoes"]["peso"] = 99
    assert logistics_update_body(None, change, now=NOW) == snapshot
