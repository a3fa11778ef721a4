"""The v2 (legacy) JSON shapes of the simulated records: `notafiscal`, `pedido`, `situacao`.

v2 was a PHP API that serialised everything as text, so every scalar here is a **string**
(`"valorNota": "988.00"`, `"numero": "000132"`), CEPs are formatted (`"88.801-450"`) and a
note's `situacao` is a text (`"Emitida DANFE"`) while an order's `nota.situacao` is the internal
numeric code as a string (`"7"`). Shapes follow the real captures quoted in
shared/reference/bling-api.md §2.3 and §10.1; the few non-strings (`avisoRecebimento`,
`maoPropria` booleans, a parcela's `destino` integer) are there because the captured order
fixture has them so, and a client must cope with exactly that.

Pure functions of the records (plus the links the caller computed): no clock, no state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from blingsync.simulator.model import (
    V2_SITUACAO,
    Address,
    Company,
    LogisticObject,
    Note,
    NoteItem,
    OrderSituation,
    Party,
    SalesOrder,
    Volume,
)

DATETIME = "%Y-%m-%d %H:%M:%S"

TIPO_FRETE: dict[int, str] = {
    # modFrete (frete_por_conta) -> the letter v2 shows in `transporte.tipo_frete`.
    0: "R",  # por conta do remetente (CIF)
    1: "D",  # por conta do destinatário (FOB)
    2: "T",  # de terceiros
    3: "3",  # próprio, por conta do remetente
    4: "4",  # próprio, por conta do destinatário
    9: "S",  # sem frete
}

FORMAS_PAGAMENTO: dict[str, str] = {
    # tPag -> the payment form's name as Bling lists it.
    "01": "Dinheiro",
    "02": "Cheque",
    "03": "Cartão de Crédito",
    "04": "Cartão de Débito",
    "05": "Crédito Loja",
    "10": "Vale Alimentação",
    "11": "Vale Refeição",
    "15": "Boleto Bancário",
    "16": "Depósito Bancário",
    "17": "PIX",
    "18": "Transferência bancária",
    "99": "Outros",
}


# --- scalars -------------------------------------------------------------------------------


def money(value: Decimal) -> str:
    """`988.00`: v2 money has a dot and two decimals (only `pedido.desconto` differs)."""
    return f"{value.quantize(Decimal('0.01')):f}"


def money_comma(value: Decimal) -> str:
    """`0,00`: the order's `desconto` comes formatted for display, with a decimal comma."""
    return money(value).replace(".", ",")


def plain(value: Decimal) -> str:
    """A measure without trailing zeros (`"0"`, `"12.5"`), as v2 prints dimensions."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def cep(value: str) -> str:
    """`88801450` -> `88.801-450`, the form v2 used (v3 dropped the formatting in v338)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) != 8:
        return value
    return f"{digits[:2]}.{digits[2:5]}-{digits[5:]}"


def documento(value: str) -> str:
    """CPF `000.000.000-08` or CNPJ `00.000.000/0000-00`: the order's `cliente.cnpj` is
    formatted, while the note's is bare digits (captures S12 vs S10)."""
    if len(value) == 11:
        return f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}"
    if len(value) == 14:
        return f"{value[:2]}.{value[2:5]}.{value[5:8]}/{value[8:12]}-{value[12:]}"
    return value


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def is_mobile(phone: str) -> bool:
    """A Brazilian mobile number: DDD plus nine digits starting with 9."""
    d = digits(phone)
    return len(d) == 11 and d[2] == "9"


def tipo_integracao(note_or_order: Note | SalesOrder) -> str:
    """`Api` for sales made in Bling or through the API; otherwise the channel's name without
    spaces (`MercadoLivre`, `Shopee`), as v2 named its integrations."""
    store = note_or_order.store
    if store is None:
        return "Api"
    return "".join(store.nome.split())


# --- shared pieces -------------------------------------------------------------------------


def _endereco_entrega(nome: str, address: Address) -> dict[str, str]:
    return {
        "nome": nome,
        "endereco": address.logradouro,
        "numero": address.numero,
        "complemento": address.complemento,
        "cidade": address.municipio,
        "bairro": address.bairro,
        "cep": cep(address.cep),
        "uf": address.uf,
    }


def volume(obj: LogisticObject | None, object_id: int, fallback: Volume | None = None) -> dict[str, Any]:
    """One `{volume: {...}}` entry from a logistics object. A volume whose object is gone
    (deleted through v3) keeps its id and the weight the NF-e declared."""
    if obj is None:
        peso = fallback.peso_bruto if fallback is not None else Decimal(0)
        return {"volume": {
            "id": str(object_id), "idServico": "0", "servico": "", "codigoServico": "",
            "codigoRastreamento": "", "valorFretePrevisto": "0.00",
            "remessa": {"numero": "", "dataCriacao": ""}, "dataSaida": "",
            "prazoEntregaPrevisto": "0", "valorDeclarado": "0.00",
            "avisoRecebimento": False, "maoPropria": False,
            "dimensoes": {"peso": f"{peso:.3f}", "altura": "0", "largura": "0",
                          "comprimento": "0", "diametro": "0"},
            "urlRastreamento": "",
        }}
    return {"volume": {
        "id": str(obj.id),
        "idServico": str(obj.servico_id or 0),
        # The simulator keeps no catalogue of logistics services, so the name is empty.
        "servico": "",
        "codigoServico": "",
        "codigoRastreamento": obj.tracking_code,
        "valorFretePrevisto": money(obj.frete_previsto),
        "remessa": {"numero": "", "dataCriacao": ""},
        "dataSaida": obj.data_saida,
        "prazoEntregaPrevisto": str(obj.prazo_entrega_previsto),
        "valorDeclarado": money(obj.valor_declarado),
        "avisoRecebimento": obj.aviso_recebimento,
        "maoPropria": obj.mao_propria,
        "dimensoes": {
            "peso": f"{obj.peso:.3f}",
            "altura": plain(obj.altura),
            "largura": plain(obj.largura),
            "comprimento": plain(obj.comprimento),
            "diametro": plain(obj.diametro),
        },
        "urlRastreamento": obj.tracking_url,
    }}


def codigos_rastreamento(codes: list[str]) -> list[Any] | dict[str, Any]:
    """`[]` when there is none, `{"codigoRastreamento": "AB1…"}` for one, and a list under
    the same key for several (PHP's XML-to-JSON turns repeated elements into arrays)."""
    if not codes:
        return []
    if len(codes) == 1:
        return {"codigoRastreamento": codes[0]}
    return {"codigoRastreamento": list(codes)}


def _objects(company: Company, ids: list[int]) -> list[LogisticObject]:
    return [company.logistic_objects[i] for i in ids if i in company.logistic_objects]


# --- notafiscal ----------------------------------------------------------------------------


def _cliente_nota(party: Party) -> dict[str, str]:
    a = party.endereco
    return {
        "nome": party.nome,
        "cnpj": party.documento,
        "ie": party.ie,
        "rg": party.rg,
        "endereco": a.logradouro,
        "numero": a.numero,
        "complemento": a.complemento,
        "cidade": a.municipio,
        "bairro": a.bairro,
        "cep": cep(a.cep),
        "uf": a.uf,
        "email": party.email,
        "fone": digits(party.telefone),
    }


def nota_fiscal(company: Company, note: Note, links: dict[str, str]) -> dict[str, Any]:
    """The `notafiscal` object (capture S10), for NF-e and NFC-e alike.

    `transporte` carries `transportadora`/`cnpj` only when the note has a carrier and
    `volumes` only when it has volumes: the real capture of a note without them shows just
    `enderecoEntrega`, so clients must not expect the keys to be there."""
    transporte: dict[str, Any] = {}
    if note.carrier is not None:
        transporte["transportadora"] = note.carrier.nome
        transporte["cnpj"] = note.carrier.documento
    transporte["tipo_frete"] = TIPO_FRETE.get(note.frete_por_conta, "S")
    if note.volumes:
        transporte["volumes"] = [
            volume(company.logistic_objects.get(v.logistic_object_id), v.logistic_object_id, v)
            for v in note.volumes
        ]
    transporte["enderecoEntrega"] = _endereco_entrega(
        note.recipient.nome, note.delivery or note.recipient.endereco
    )
    codes = [
        o.tracking_code
        for o in _objects(company, [v.logistic_object_id for v in note.volumes])
        if o.tracking_code
    ]
    return {
        "id": str(note.id),
        "serie": str(note.serie),
        "numero": f"{note.numero:06d}",
        "loja": str(note.store.id) if note.store else "0",
        "numeroPedidoLoja": note.numero_pedido_loja,
        "tipo": "S" if note.tipo == 1 else "E",
        "situacao": V2_SITUACAO[note.situacao][1],
        "cliente": _cliente_nota(note.recipient),
        "contato": note.recipient.nome,
        "cnpj": note.recipient.documento,
        # v2 shows the seller's name; the simulator has only seller ids, and the capture
        # shows "" for a note without one.
        "vendedor": "",
        "dataEmissao": note.emitted_at.strftime(DATETIME),
        "valorNota": money(note.valor_nota),
        "chaveAcesso": note.chave,
        "xml": links.get("xml", ""),
        "linkDanfe": links.get("danfe", ""),
        "linkPDF": links.get("pdf", ""),
        "codigosRastreamento": codigos_rastreamento(codes),
        "cfops": [item.cfop for item in note.items],
        "tipoIntegracao": tipo_integracao(note),
        "transporte": transporte,
    }


# --- pedido --------------------------------------------------------------------------------


def _cliente_pedido(party: Party) -> dict[str, str]:
    a = party.endereco
    return {
        "id": str(party.id),
        "nome": party.nome,
        "cnpj": documento(party.documento),
        "ie": party.ie,
        "rg": party.rg,
        "endereco": a.logradouro,
        "numero": a.numero,
        "complemento": a.complemento,
        "cidade": a.municipio,
        "bairro": a.bairro,
        "cep": cep(a.cep),
        "uf": a.uf,
        "email": party.email,
        "celular": party.telefone if is_mobile(party.telefone) else "",
        "fone": party.telefone,
    }


def _item_pedido(item: NoteItem) -> dict[str, Any]:
    p = item.product
    return {"item": {
        "codigo": p.sku,
        "descricao": p.descricao,
        "quantidade": f"{item.quantidade:.4f}",
        "valorunidade": f"{item.valor_unitario:.10f}",
        # The simulator keeps no cost price; Bling prints zero when a product has none.
        "precocusto": f"{Decimal(0):.10f}",
        "descontoItem": "0.00",
        "un": p.unidade,
        "pesoBruto": f"{p.peso_bruto:.5f}",
        "largura": "0",
        "altura": "0",
        "profundidade": "0",
        "descricaoDetalhada": "",
        "unidadeMedida": "cm",
        "gtin": "" if p.ean == "SEM GTIN" else p.ean,
    }}


def _nota_do_pedido(note: Note) -> dict[str, str]:
    return {
        "serie": str(note.serie),
        "numero": f"{note.numero:06d}",
        "dataEmissao": note.emitted_at.strftime(DATETIME),
        # Not the text: the internal numeric code as a string ("7" = Emitida DANFE).
        "situacao": str(V2_SITUACAO[note.situacao][0]),
        "valorNota": money(note.valor_nota),
        "chaveAcesso": note.chave,
    }


def pedido(company: Company, order: SalesOrder) -> dict[str, Any]:
    """The `pedido` object (fixture S12). `situacao` is the situation's name."""
    situation = next(s for s in company.order_situations if s.id == order.situacao_id)
    note = company.notes.get(order.note_id) if order.note_id is not None else None
    objects = _objects(company, order.volume_ids)
    volumes = [volume(company.logistic_objects.get(i), i) for i in order.volume_ids]
    tpag = note.pagamento if note is not None else "01"
    out: dict[str, Any] = {
        "desconto": money_comma(Decimal(0)),
        "observacoes": order.observacoes,
        "observacaointerna": "",
        "data": order.data.isoformat(),
        "numero": str(order.numero),
        "numeroOrdemCompra": "",
        "vendedor": "",
        "valorfrete": money(order.frete),
        "totalprodutos": money(order.total_produtos),
        "totalvenda": money(order.total),
        "situacao": situation.nome,
        "dataSaida": order.data_saida.isoformat(),
        "loja": str(order.store.id) if order.store else "0",
        "numeroPedidoLoja": order.numero_loja,
        "tipoIntegracao": tipo_integracao(order),
        "dataPrevista": order.data_prevista.isoformat(),
        "cliente": _cliente_pedido(order.contato),
    }
    if note is not None:
        out["nota"] = _nota_do_pedido(note)
    out["transporte"] = {
        "enderecoEntrega": _endereco_entrega(order.contato.nome, order.etiqueta),
        "volumes": volumes,
        "servico_correios": "",
    }
    out["itens"] = [_item_pedido(i) for i in order.items]
    out["parcelas"] = [{"parcela": {
        "idLancamento": "0",
        "valor": money(order.total),
        "dataVencimento": f"{order.data.isoformat()} 00:00:00",
        "obs": "",
        "destino": 1,
        "forma_pagamento": {
            "id": str(int(tpag)),
            "descricao": FORMAS_PAGAMENTO.get(tpag, "Outros"),
            "codigoFiscal": str(int(tpag)),
        },
    }}]
    out["codigosRastreamento"] = codigos_rastreamento(
        [o.tracking_code for o in objects if o.tracking_code]
    )
    return out


# --- situacao ------------------------------------------------------------------------------


def situacao(s: OrderSituation) -> dict[str, Any]:
    return {"situacao": {
        "id": str(s.id), "nome": s.nome, "idHerdado": str(s.id_herdado), "cor": s.cor,
    }}
