"""The order JSON → SmartGo body mapping (pure): the field-by-field contract of
`smartgo_payload`, so a swap of SmartGo's contract shows up here first."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blingsync.delivery.sinks import smartgo_payload as payload
from blingsync.delivery.sinks.smartgo import format_document, is_already_canceled, is_duplicate

KEY = "35261112345678000195550010000012341123456781"


def order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 41, "status": "ready", "access_key": KEY, "series": 1, "number": 1234,
        "issued_at": "2026-11-20T14:03:00-03:00", "store_order_number": "PED-42",
        "recipient": {"name": "João", "document": "12345678909"},
        "delivery_address": {"street": "Rua A", "number": "1", "complement": None, "district": "Centro",
                             "city": "São Paulo", "state": "SP", "postal_code": "01001000"},
        "carrier": {"name": "Transp", "document": "11222333000181"}, "freight_mode": 0,
        "volumes": [{"quantity": 2, "kind": "Caixa", "net_weight_kg": "1.200", "gross_weight_kg": "1.350"}],
        "gross_weight_kg": "1.350",
        "items": [{"line": 1, "sku": "SKU-1", "quantity": "2.0000"},
                  {"line": 2, "sku": " SKU-7 ", "quantity": "1.5000"}],
    }
    base.update(changes)
    return base


def test_create_body_matches_the_reference_shape() -> None:
    body = payload.create_body(order())
    assert body == {
        "cabecalho": {"codigoExterno": KEY, "observacao": "NF-e 1-1234 / Pedido PED-42",
                      "origemPedido": "INTEGRACAO_API"},
        "pedidoItens": [{"numeroDoItem": 1, "codigoProduto": "SKU-1", "quantidade": 2},
                        {"numeroDoItem": 2, "codigoProduto": "SKU-7", "quantidade": 1.5}],
    }
    assert isinstance(body["pedidoItens"][0]["quantidade"], int)


def test_the_input_is_not_modified_and_the_code_is_stable_across_versions() -> None:
    source = order()
    before = copy.deepcopy(source)
    first = payload.create_body(source)
    assert source == before
    assert payload.create_body(order(version=2, number=1234))["cabecalho"] == first["cabecalho"]
    assert payload.cancel_body(source) == {"codigoExterno": KEY,
                                           "motivoCancelamento": payload.CANCEL_REASON}


def test_observacao_without_a_store_order() -> None:
    assert payload.create_body(order(store_order_number=None))["cabecalho"]["observacao"] == "NF-e 1-1234"


@pytest.mark.parametrize(("changes", "words"), [
    ({"items": []}, "no items"),
    ({"items": [{"line": 1, "sku": "S", "quantity": "0.0000"}]}, "item 1: quantity must be > 0"),
    ({"items": [{"line": 3, "sku": "S", "quantity": "x"}]}, "item 3: quantity 'x' is not a number"),
    ({"items": [{"line": 1, "sku": None, "quantity": "1"}]}, "item 1: no sku"),
    ({"access_key": None}, "no access_key"),
    ({"access_key": "K" * 51}, "cap 50"),
])
def test_unsendable_orders_are_refused_in_words(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(payload.PayloadError, match=words):
        payload.create_body(order(**changes))


def test_the_nfe_variant_adds_our_extension_blocks() -> None:
    body = payload.create_body(order(), variant="produto_v1_nfe")
    assert body["notaFiscal"] == {"chaveAcesso": KEY, "numero": "1234", "serie": "1",
                                  "dataEmissao": "2026-11-20T14:03:00-03:00"}
    assert body["destinatario"]["endereco"]["cep"] == "01001000"
    assert body["transportadora"] == {"nome": "Transp", "documento": "11222333000181", "modalidadeFrete": "0"}
    assert body["volumes"] == {"quantidade": 2, "especie": "Caixa", "pesoBruto": 1.35, "pesoLiquido": 1.2}
    assert payload.create_body(order(carrier=None), variant="produto_v1_nfe")["transportadora"] is None
    with pytest.raises(payload.PayloadError, match="unknown payload variant"):
        payload.create_body(order(), variant="v2")


def test_doc_depositante_formats() -> None:
    assert format_document("12345678000195") == "12.345.678/0001-95"
    assert format_document("12.345.678/0001-95", "digits") == "12345678000195"
    assert format_document("12345678909") == "123.456.789-09"
    with pytest.raises(ValueError, match="CNPJ"):
        format_document("123")


def test_duplicate_and_already_canceled_detection() -> None:
    assert is_duplicate(409, [], KEY)
    assert is_duplicate(400, [f"cabecalho.codigoExterno: Já existe o código externo {KEY}"], KEY)
    assert is_duplicate(400, ["codigoExterno: duplicado"], KEY)
    assert not is_duplicate(400, ["pedidoItens[0].codigoProduto: Produto não encontrado"], KEY)
    assert not is_duplicate(400, ["pedido: já existe uma regra"], KEY)  # names neither the field nor us
    assert is_already_canceled(["pedido: Pedido já está cancelado"])
    assert not is_already_canceled(["pedido: Pedido não pode ser cancelado no status FINALIZADO"])
