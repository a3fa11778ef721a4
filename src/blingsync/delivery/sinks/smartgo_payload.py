"""The order JSON → SmartGo request bodies: the one place that knows SmartGo's field names.

SmartGo publishes no specification (docs/delivery.md, "The SmartGo sink";
/work/shared/reference/smartgo-wms.md). The create body below is **low confidence** (no public
code ever ran it), so everything that guesses at SmartGo's contract lives here, pure and
tested, and the sink only sends what this module returns. Swapping the contract once SmartGo
confirms it means editing this module (or adding a variant), not the sink.

Confidence tags, as in the reference: [V] verified against the real gateway, [C] claimed by
integration code that never ran, [I] our inference, [O] ours (names SmartGo never showed).

Create expedição, `POST /expedicao/produto` [C]:

| field | from the order JSON | tag |
|---|---|---|
| `cabecalho.codigoExterno` | `access_key` (44 chars: stable across versions, unique per note) | [I] |
| `cabecalho.observacao` | `"NF-e <series>-<number>"` + `" / Pedido <store_order_number>"` | [I] |
| `cabecalho.origemPedido` | constant `"INTEGRACAO_API"` | [C] |
| `pedidoItens[].numeroDoItem` | item `line` (`det/@nItem`) | [C] |
| `pedidoItens[].codigoProduto` | item `sku` (`cProd`); assumed to match `produtoCodigoInterno` | [I] |
| `pedidoItens[].quantidade` | item `quantity` as a JSON number (integral → int) | [C] |

Variant `produto_v1_nfe` adds our extension blocks (reference §7.2, every name [O]):
`notaFiscal` (chave, número, série, emissão), `destinatario` (name, document, address),
`transportadora` (carrier, freight mode) and `volumes` (count, kind, weights). Off by default:
a strict gateway could reject unknown fields.

Cancel, `PATCH /expedicao/pedido/cancelar` [C]: `codigoExterno` + `motivoCancelamento`. The
gateway reportedly requires `idPedido` [C]; blingsync keeps no SmartGo ids (the sink is
stateless), so it cannot send it, nor `codigoInterno`. Confirm before go-live.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

CREATE_PATH: Final = "/expedicao/produto"
CANCEL_PATH: Final = "/expedicao/pedido/cancelar"
ORIGEM_PEDIDO: Final = "INTEGRACAO_API"
CODIGO_EXTERNO_MAX: Final = 50
"""A precaution (reference §6): the real maximum is unknown; a 44-char chave fits."""
CANCEL_REASON: Final = "Nota fiscal cancelada no Bling"

VARIANTS: Final = frozenset({"produto_v1", "produto_v1_nfe"})
DEFAULT_VARIANT: Final = "produto_v1"


class PayloadError(ValueError):
    """The order cannot be expressed as a SmartGo body (no items, a zero quantity, ...). The
    message names the field and is shown to operators; it holds no secret."""


def codigo_externo(order: Mapping[str, Any]) -> str:
    """Our stable reference for the expedição: the NF-e access key. It is the same on every
    version and retry of the order, so a repeated create is recognisable as a duplicate, and it
    is what comes back in SmartGo's webhooks and stock `pedidosCodigosExternos`."""
    key = order.get("access_key")
    if not isinstance(key, str) or not key.strip():
        raise PayloadError("the order has no access_key to use as codigoExterno")
    key = key.strip()
    if len(key) > CODIGO_EXTERNO_MAX:
        raise PayloadError(f"codigoExterno would be {len(key)} characters (cap {CODIGO_EXTERNO_MAX})")
    return key


def quantity(text: object, line: object) -> int | float:
    """A decimal-string quantity as a JSON number: an int when integral ("2.0000" → 2), which
    is what every integrator sent; otherwise a float (fractional units, e.g. kg)."""
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        raise PayloadError(f"item {line}: quantity {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise PayloadError(f"item {line}: quantity must be > 0, got {text!r}")
    return int(value) if value == value.to_integral_value() else float(value)


def observacao(order: Mapping[str, Any]) -> str:
    """A human aid for the warehouse operator: which note (and store order) this is."""
    text = f"NF-e {order.get('series')}-{order.get('number')}"
    store_order = order.get("store_order_number")
    if store_order:
        text += f" / Pedido {store_order}"
    return text


def items(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One `pedidoItens` line per NF-e item, in document order (lines with the same SKU are
    kept apart: the note's lines are what the warehouse checks against)."""
    raw = order.get("items")
    if not isinstance(raw, list) or not raw:
        raise PayloadError("the order has no items (pedidoItens needs at least one line)")
    lines: list[dict[str, Any]] = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise PayloadError(f"item {position} is not an object")
        line = item.get("line") if isinstance(item.get("line"), int) else position
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise PayloadError(f"item {line}: no sku for codigoProduto")
        lines.append({"numeroDoItem": line, "codigoProduto": sku.strip(),
                      "quantidade": quantity(item.get("quantity"), line)})
    return lines


def _nfe_extension(order: Mapping[str, Any]) -> dict[str, Any]:
    """Reference §7.2, names ours [O]: what the warehouse needs to ship, should SmartGo accept it."""
    recipient = order.get("recipient") or {}
    address = order.get("delivery_address") or {}
    carrier = order.get("carrier")
    volumes = order.get("volumes") or []
    freight = order.get("freight_mode")
    return {
        "notaFiscal": {"chaveAcesso": order.get("access_key"), "numero": str(order.get("number")),
                       "serie": str(order.get("series")), "dataEmissao": order.get("issued_at")},
        "destinatario": {
            "nome": recipient.get("name"), "documento": recipient.get("document"),
            "endereco": {"logradouro": address.get("street"), "numero": address.get("number"),
                         "complemento": address.get("complement"), "bairro": address.get("district"),
                         "municipio": address.get("city"), "uf": address.get("state"),
                         "cep": address.get("postal_code")},
        },
        "transportadora": None if not carrier else {
            "nome": carrier.get("name"), "documento": carrier.get("document"),
            "modalidadeFrete": None if freight is None else str(freight)},
        "volumes": {
            "quantidade": sum(int(v.get("quantity") or 0) for v in volumes),
            "especie": volumes[0].get("kind") if volumes else None,
            "pesoBruto": _weight(order.get("gross_weight_kg")),
            "pesoLiquido": _weight(_sum(v.get("net_weight_kg") for v in volumes)),
        },
    }


def _weight(text: object) -> float | None:
    return None if text is None else float(Decimal(str(text)))


def _sum(values: Any) -> str | None:
    found = [Decimal(str(v)) for v in values if v is not None]
    return str(sum(found)) if found else None


def create_body(order: Mapping[str, Any], *, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
    """The `POST /expedicao/produto` body for one order JSON (`event.data`)."""
    if variant not in VARIANTS:
        raise PayloadError(f"unknown payload variant {variant!r} (known: {', '.join(sorted(VARIANTS))})")
    body: dict[str, Any] = {
        "cabecalho": {"codigoExterno": codigo_externo(order), "observacao": observacao(order),
                      "origemPedido": ORIGEM_PEDIDO},
        "pedidoItens": items(order),
    }
    if variant == "produto_v1_nfe":
        body.update(_nfe_extension(order))
    return body


def cancel_body(order: Mapping[str, Any], *, reason: str = CANCEL_REASON) -> dict[str, Any]:
    """The `PATCH /expedicao/pedido/cancelar` body: the expedição by our codigoExterno."""
    return {"codigoExterno": codigo_externo(order), "motivoCancelamento": reason}
