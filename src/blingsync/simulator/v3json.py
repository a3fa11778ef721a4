"""The v3 JSON shapes of the simulated records, as the official OpenAPI document defines them
(NotasFiscaisDadosBaseDTO / ...GetDTO, VendasDadosBaseDTO / VendasDadosDTO, LogisticasObjetos...,
EmpresasDadosBasicosDTO). CEPs are unformatted digits, as Bling sends them since v338."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from blingsync.simulator.model import (
    Address,
    Company,
    LogisticObject,
    Note,
    NoteItem,
    Party,
    SalesOrder,
)

DATETIME = "%Y-%m-%d %H:%M:%S"


def money(value: Decimal) -> float:
    return float(value)


def contato(party: Party) -> dict[str, Any]:
    a = party.endereco
    return {
        "id": party.id,
        "nome": party.nome,
        "tipoPessoa": party.tipo_pessoa,
        "numeroDocumento": party.documento,
        "ie": party.ie,
        "rg": party.rg,
        "contribuinte": party.contribuinte,
        "telefone": party.telefone,
        "email": party.email,
        "endereco": {
            "endereco": a.logradouro,
            "numero": a.numero,
            "complemento": a.complemento,
            "bairro": a.bairro,
            "cep": a.cep,
            "municipio": a.municipio,
            "uf": a.uf,
            "pais": "",
        },
    }


def note_base(note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "tipo": note.tipo,
        "situacao": int(note.situacao),
        "numero": f"{note.numero:06d}",
        "dataEmissao": note.emitted_at.strftime(DATETIME),
        "dataOperacao": note.operation_at.strftime(DATETIME),
        "chaveAcesso": note.chave,
        "contato": contato(note.recipient),
        "naturezaOperacao": {"id": note.natureza_operacao_id},
        "loja": {"id": note.store.id if note.store else 0},
    }


def _etiqueta(note: Note) -> dict[str, Any]:
    address: Address = note.delivery or note.recipient.endereco
    return {
        "nome": note.recipient.nome,
        "endereco": address.logradouro,
        "numero": address.numero,
        "complemento": address.complemento,
        "municipio": address.municipio,
        "uf": address.uf,
        "cep": address.cep,
        "bairro": address.bairro,
    }


def _item(item: NoteItem) -> dict[str, Any]:
    p = item.product
    return {
        "codigo": p.sku,
        "descricao": p.descricao,
        "unidade": p.unidade,
        "quantidade": float(item.quantidade),
        "valor": money(item.valor_unitario),
        "valorTotal": money(item.valor_total),
        "tipo": "P",
        "pesoBruto": float(p.peso_bruto),
        "pesoLiquido": float(p.peso_liquido),
        "numeroPedidoCompra": item.pedido_compra,
        "classificacaoFiscal": f"{p.ncm[:4]}.{p.ncm[4:6]}.{p.ncm[6:]}",
        "cest": p.cest,
        "codigoServico": "",
        "origem": p.origem,
        "informacoesAdicionais": "",
        "gtin": "" if p.ean == "SEM GTIN" else p.ean,
        "cfop": item.cfop,
        "impostos": {
            "valorAproximadoTotalTributos": money(
                (item.valor_total * Decimal("0.2345")).quantize(Decimal("0.01"))
            ),
        },
    }


def note_detail(note: Note, links: dict[str, str], simples: bool) -> dict[str, Any]:
    out = note_base(note)
    out.update({
        "serie": note.serie,
        "valorNota": money(note.valor_nota),
        "valorFrete": money(note.valor_frete),
        "finalidade": note.finalidade,
        "xml": links.get("xml", ""),
        "linkDanfe": links.get("danfe", ""),
        "linkPDF": links.get("pdf", ""),
        "optanteSimplesNacional": simples,
        "numeroPedidoLoja": note.numero_pedido_loja,
        "transporte": {
            "fretePorConta": note.frete_por_conta,
            "transportador": (
                {"nome": note.carrier.nome, "numeroDocumento": note.carrier.documento}
                if note.carrier
                else {"nome": "", "numeroDocumento": ""}
            ),
            "volumes": [{"id": v.logistic_object_id} for v in note.volumes],
            "etiqueta": _etiqueta(note),
        },
        "vendedor": {"id": note.vendedor_id},
        "itens": [_item(i) for i in note.items],
        "parcelas": [{
            "data": note.emitted_at.date().isoformat(),
            "valor": money(note.valor_nota),
            "observacoes": "",
            "caut": "",
            "formaPagamento": {"id": 1_500_000_000 + int(note.pagamento)},
        }],
    })
    return out


def order_base(company: Company, order: SalesOrder) -> dict[str, Any]:
    situation = next(s for s in company.order_situations if s.id == order.situacao_id)
    return {
        "id": order.id,
        "numero": order.numero,
        "numeroLoja": order.numero_loja,
        "data": order.data.isoformat(),
        "dataSaida": order.data_saida.isoformat(),
        "dataPrevista": order.data_prevista.isoformat(),
        "totalProdutos": money(order.total_produtos),
        "total": money(order.total),
        "contato": {
            "id": order.contato.id,
            "nome": order.contato.nome,
            "tipoPessoa": order.contato.tipo_pessoa,
            "numeroDocumento": order.contato.documento,
        },
        "situacao": {"id": situation.id, "valor": situation.valor},
        "loja": {"id": order.store.id if order.store else 0, "unidadeNegocio": {"id": 0}},
    }


def order_detail(company: Company, order: SalesOrder) -> dict[str, Any]:
    out = order_base(company, order)
    e = order.etiqueta
    weight = sum((i.product.peso_bruto * i.quantidade for i in order.items), Decimal(0))
    out.update({
        "numeroPedidoCompra": "",
        "outrasDespesas": 0,
        "observacoes": order.observacoes,
        "observacoesInternas": "",
        "desconto": {"valor": 0, "unidade": "REAL"},
        "categoria": {"id": 0},
        "notaFiscal": {"id": order.note_id or 0},
        "tributacao": {"totalICMS": 0, "totalIPI": 0},
        "itens": [
            {
                "id": order.id * 100 + n,
                "codigo": i.product.sku,
                "unidade": i.product.unidade,
                "quantidade": float(i.quantidade),
                "desconto": 0,
                "valor": money(i.valor_unitario),
                "aliquotaIPI": 0,
                "descricao": i.product.descricao,
                "descricaoDetalhada": "",
                "produto": {"id": order.id * 100 + 50 + n},
                "comissao": {"base": 0, "aliquota": 0, "valor": 0},
                "naturezaOperacao": {"id": 0},
            }
            for n, i in enumerate(order.items, start=1)
        ],
        "parcelas": [{
            "id": order.id * 10 + 1,
            "dataVencimento": order.data.isoformat(),
            "valor": money(order.total),
            "observacoes": "",
            "caut": "",
            "formaPagamento": {"id": 1_500_000_003},
        }],
        "transporte": {
            "fretePorConta": order.frete_por_conta,
            "frete": money(order.frete),
            "quantidadeVolumes": len(order.volume_ids),
            "pesoBruto": float(weight.quantize(Decimal("0.001"))),
            "prazoEntrega": 0,
            "contato": {"id": 0, "nome": ""},
            "etiqueta": {
                "nome": order.contato.nome,
                "endereco": e.logradouro,
                "numero": e.numero,
                "complemento": e.complemento,
                "municipio": e.municipio,
                "uf": e.uf,
                "cep": e.cep,
                "bairro": e.bairro,
                "nomePais": "BRASIL",
            },
            "volumes": [
                {"id": vid, "servico": "", "codigoRastreamento": ""} for vid in order.volume_ids
            ],
        },
        "vendedor": {"id": order.vendedor_id},
        "intermediador": (
            {
                "cnpj": order.store.intermediary.cnpj,
                "nomeUsuario": order.store.intermediary.id_cadastro,
            }
            if order.store and order.store.intermediary
            else {"cnpj": "", "nomeUsuario": ""}
        ),
        "taxas": {"taxaComissao": 0, "custoFrete": 0, "valorBase": 0},
    })
    return out


def logistic_object(obj: LogisticObject) -> dict[str, Any]:
    return {
        "pedidoVenda": {"id": obj.pedido_venda_id or 0},
        "notaFiscal": {"id": obj.nota_fiscal_id or 0},
        "servico": {"id": obj.servico_id or 0},
        "rastreamento": {
            "codigo": obj.tracking_code,
            "descricao": obj.tracking_description,
            "situacao": obj.tracking_situacao,
            "origem": obj.origem,
            "destino": obj.destino,
            "ultimaAlteracao": obj.tracking_updated_at.strftime(DATETIME),
            "url": obj.tracking_url,
        },
        "dimensao": {
            "peso": float(obj.peso),
            "altura": float(obj.altura),
            "largura": float(obj.largura),
            "comprimento": float(obj.comprimento),
            "diametro": float(obj.diametro),
        },
        "embalagem": {"id": obj.embalagem_id or 0},
        "dataSaida": obj.data_saida,
        "prazoEntregaPrevisto": obj.prazo_entrega_previsto,
        "fretePrevisto": money(obj.frete_previsto),
        "valorDeclarado": money(obj.valor_declarado),
        "avisoRecebimento": obj.aviso_recebimento,
        "maoPropria": obj.mao_propria,
    }


def company_basic(company: Company) -> dict[str, Any]:
    return {
        "id": company.company_id,
        "nome": company.nome,
        "cnpj": (
            f"{company.cnpj[:2]}.{company.cnpj[2:5]}.{company.cnpj[5:8]}/"
            f"{company.cnpj[8:12]}-{company.cnpj[12:]}"
        ),
        "email": company.email,
        "dataContrato": company.data_contrato.isoformat(),
    }
