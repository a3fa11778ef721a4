"""blingsync.bling.models: every shape Bling sends, both generations, read into one shape.

Payloads come from two places: the real-looking examples of shared/reference/bling-api.md §10
(copied verbatim), and the simulator's own serialisers, run in-process over its generated world
for every situation, NF-e and NFC-e, v2 and v3 (plus a few real HTTP answers over ASGI).
"""

from __future__ import annotations

import base64
import copy
import gzip
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from blingsync.bling import models
from blingsync.bling.models import (
    BRASILIA,
    FreightPayer,
    NoteDetail,
    NoteKind,
    NoteSummary,
    NoteType,
    SalesOrderDetail,
    ShapeError,
    TrackingSituation,
    company_from_v3,
    logistics_object_from_v3,
    note_detail_from_v3,
    note_document_from_v3,
    note_from_v2,
    note_summary_from_v3,
    order_detail_from_v3,
    order_from_v2,
    order_from_v3_list,
    order_situation_from_v2,
    order_situation_from_v3,
    parse_v2_list,
    parse_v3_list,
    parse_v3_object,
    situation_module_from_v3,
    token_set_from_response,
)
from blingsync.bling.secrets import Secret
from blingsync.domain import V2_TEXTS, ApiGeneration, InvoiceStatus
from blingsync.simulator import v2json, v3json
from blingsync.simulator.model import Company, Modelo, NfeSituacao, Note, World
from tests.conftest import Bling, make_sim

# --- payloads copied from shared/reference/bling-api.md §10 --------------------------------

V2_CAPTURE: dict[str, Any] = {"retorno": {"notasfiscais": [{"notafiscal": {
    "id": "15390605809", "serie": "1", "numero": "000132", "loja": "203815689", "numeroPedidoLoja": "01145",
    "tipo": "S", "situacao": "Emitida DANFE",
    "cliente": {"nome": "Maria Exemplo", "cnpj": "12345678909", "ie": "", "rg": "", "endereco": "Rua Exemplo",
                "numero": "181", "complemento": "Apto 701", "cidade": "Criciúma", "bairro": "Centro",
                "cep": "88.801-450", "uf": "SC", "email": "maria@example.com", "fone": "48999990000"},
    "contato": "Maria Exemplo", "cnpj": "12345678909", "vendedor": "",
    "dataEmissao": "2021-11-29 13:43:02", "valorNota": "988.00",
    "chaveAcesso": "42211141747186000124550010000001321906058091",
    "xml": "https://bling.com.br/relatorios/nfe.xml.php?s&chaveAcesso=42211141747186000124550010000001321906058091",
    "linkDanfe": "https://bling.com.br/doc.view.php?id=8f0b3288344b6f16abeba080925a3178",
    "linkPDF": "https://bling.com.br/doc.view.php?PDF=true&id=8f0b3288344b6f16abeba080925a3178",
    "codigosRastreamento": [], "cfops": ["5102", "5102"], "tipoIntegracao": "CoreCommerce",
    "transporte": {"enderecoEntrega": {"nome": "Maria Exemplo", "endereco": "Rua Exemplo", "numero": "181",
                                       "complemento": "Apto 701", "cidade": "Criciúma", "bairro": "Centro",
                                       "cep": "88.801-450", "uf": "SC"}},
}}]}}

V3_LIST: dict[str, Any] = {"data": [
    {"id": 17891234567, "tipo": 1, "situacao": 6, "numero": "004512",
     "dataEmissao": "2026-03-10 14:02:31", "dataOperacao": "2026-03-10 14:02:31",
     "chaveAcesso": "35260312345678000190550010000045121123456780",
     "contato": {"id": 16012345678, "nome": "João Cliente", "tipoPessoa": "F",
                 "numeroDocumento": "12345678909", "ie": "", "rg": "", "contribuinte": 9,
                 "telefone": "11 99999-0000", "email": "joao@example.com",
                 "endereco": {"endereco": "Rua das Flores", "numero": "120", "complemento": "Casa 2",
                              "bairro": "Centro", "cep": "01001000", "municipio": "São Paulo", "uf": "SP",
                              "pais": ""}},
     "naturezaOperacao": {"id": 15000000001},
     "loja": {"id": 204000001, "numero": "LOJA_8864"}},
]}

V3_DETAIL: dict[str, Any] = {"data": {
    "id": 17891234567, "tipo": 1, "situacao": 6, "numero": "004512",
    "dataEmissao": "2026-03-10 14:02:31", "dataOperacao": "2026-03-10 14:02:31",
    "chaveAcesso": "35260312345678000190550010000045121123456780",
    "contato": {"id": 16012345678, "nome": "João Cliente", "tipoPessoa": "F",
                "numeroDocumento": "12345678909", "ie": "", "rg": "", "contribuinte": 9,
                "telefone": "11 99999-0000", "email": "joao@example.com",
                "endereco": {"endereco": "Rua das Flores", "numero": "120", "complemento": "Casa 2",
                             "bairro": "Centro", "cep": "01001000", "municipio": "São Paulo", "uf": "SP",
                             "pais": ""}},
    "naturezaOperacao": {"id": 15000000001}, "loja": {"id": 204000001, "numero": "LOJA_8864"},
    "serie": 1, "valorNota": 259.9, "valorFrete": 12.5, "finalidade": 1,
    "xml": "https://www.bling.com.br/relatorios/nfe.xml.php?chaveAcesso=35260312345678000190550010000045121123456780&s&signature=3f1c…",
    "linkDanfe": "https://www.bling.com.br/doc.view.php?id=9ab1671b3f05765cb49fee83ee0f2496&accessKey=…",
    "linkPDF": "https://www.bling.com.br/doc.view.php?PDF=true&id=9ab1671b3f05765cb49fee83ee0f2496&accessKey=…",
    "optanteSimplesNacional": True, "numeroPedidoLoja": "2000012345678901",
    "transporte": {"fretePorConta": 0,
                   "transportador": {"nome": "Empresa Brasileira de Correios e Telégrafos",
                                     "numeroDocumento": "34028316000103"},
                   "volumes": [{"id": 18800000001}],
                   "etiqueta": {"nome": "João Cliente", "endereco": "Rua das Flores", "numero": "120",
                                "complemento": "Casa 2", "municipio": "São Paulo", "uf": "SP",
                                "cep": "01001000", "bairro": "Centro"}},
    "vendedor": {"id": 0},
    "itens": [{"codigo": "SKU-1", "descricao": "Camiseta azul M", "unidade": "UN", "quantidade": 2,
               "valor": 123.7, "valorTotal": 247.4, "tipo": "P", "pesoBruto": 0.3, "pesoLiquido": 0.25,
               "numeroPedidoCompra": "",
               "classificacaoFiscal": "6109.10.00", "cest": "", "codigoServico": "", "origem": 0,
               "informacoesAdicionais": "", "gtin": "7890000000001", "cfop": "5102",
               "impostos": {"valorAproximadoTotalTributos": 60.1,
                            "icms": {"st": 0, "origem": 0, "modalidade": 3, "aliquota": 18,
                                     "valor": 44.53}}}],
    "parcelas": [{"data": "2026-03-10", "valor": 259.9, "observacoes": "", "caut": "",
                  "formaPagamento": {"id": 1500000002}}],
}}

V3_LIST_ORDER: dict[str, Any] = {
    # A `GET /pedidos/vendas` item (VendasDadosBaseDTO), values invented as in §10.3.
    "id": 19012345678, "numero": 145, "numeroLoja": "01145", "data": "2026-03-09", "dataSaida": "2026-03-10",
    "dataPrevista": "0000-00-00", "totalProdutos": 247.4, "total": 259.9,
    "contato": {"id": 16012345678, "nome": "João Cliente", "tipoPessoa": "F",
                "numeroDocumento": "12345678909"},
    "situacao": {"id": 9, "valor": 1}, "loja": {"id": 204000001, "unidadeNegocio": {"id": 0}},
}

TOKEN: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
    "expires_in": 21600, "token_type": "Bearer", "scope": "98309 318257570",
    "refresh_token": "f0e1d2c3b4a5968778695a4b3c2d1e0f0e1d2c3b",
}

V2_PEDIDO: dict[str, Any] = {
    # The fields of the S12 fixture as §2.3 lists them: `desconto` with a decimal comma, a
    # formatted CNPJ and CEP, `nota.situacao` as the internal code "7", items wrapped in `item`.
    "desconto": "0,00", "observacoes": "Entregar no período da tarde", "observacaointerna": "",
    "data": "2021-11-28", "numero": "000145", "numeroOrdemCompra": "", "vendedor": "",
    "valorfrete": "15.90", "totalprodutos": "972.10", "totalvenda": "988.00", "situacao": "Atendido",
    "dataSaida": "2021-11-29", "dataPrevista": "0000-00-00", "loja": "0", "numeroPedidoLoja": "01145",
    "tipoIntegracao": "Api",
    "cliente": {"id": "16012345678", "nome": "Loja Exemplo Ltda", "cnpj": "96.280.061/0001-29", "ie": "",
                "rg": "", "endereco": "Rua Exemplo", "numero": "181", "complemento": "", "cidade": "Criciúma",
                "bairro": "Centro", "cep": "88.801-450", "uf": "SC", "email": "compras@example.com",
                "celular": "", "fone": "(48) 3433-0000"},
    "nota": {"serie": "1", "numero": "000132", "dataEmissao": "2021-11-29 13:43:02", "situacao": "7",
             "valorNota": "988.00", "chaveAcesso": "42211141747186000124550010000001321906058091"},
    "transporte": {
        "enderecoEntrega": {"nome": "Loja Exemplo Ltda", "endereco": "Rua Exemplo", "numero": "181",
                            "complemento": "", "cidade": "Criciúma", "bairro": "Centro", "cep": "88.801-450",
                            "uf": "SC"},
        "volumes": [{"volume": {
            "id": "18800000001", "idServico": "0", "servico": "SEDEX CONTRATO AG", "codigoServico": "03220",
            "codigoRastreamento": "OY373095400BR", "valorFretePrevisto": "15.90",
            "remessa": {"numero": "", "dataCriacao": ""}, "dataSaida": "2021-11-29",
            "prazoEntregaPrevisto": "3", "valorDeclarado": "988.00", "avisoRecebimento": False,
            "maoPropria": False,
            "dimensoes": {"peso": "1.250", "altura": "10", "largura": "20", "comprimento": "30",
                          "diametro": "0"},
            "urlRastreamento": "https://rastreamento.correios.com.br/app/index.php?objetos=OY373095400BR"}}],
        "servico_correios": ""},
    "itens": [
        {"item": {"codigo": "SKU-1", "descricao": "Camiseta azul M", "quantidade": "2.0000",
                  "valorunidade": "123.7000000000", "precocusto": "0.0000000000", "descontoItem": "0.00",
                  "un": "UN", "pesoBruto": "0.30000", "largura": "0", "altura": "0", "profundidade": "0",
                  "descricaoDetalhada": "", "unidadeMedida": "cm", "gtin": "7890000000001"}},
        {"item": {"codigo": "SKU-2", "descricao": "Boné", "quantidade": "1.0000",
                  "valorunidade": "724.7000000000", "precocusto": "0.0000000000", "descontoItem": "0.00",
                  "un": "UN", "pesoBruto": "0.20000", "largura": "0", "altura": "0", "profundidade": "0",
                  "descricaoDetalhada": "", "unidadeMedida": "cm", "gtin": "SEM GTIN"}},
    ],
    "parcelas": [{"parcela": {"idLancamento": "0", "valor": "988.00", "dataVencimento": "2021-11-28 00:00:00",
                              "obs": "", "destino": 1,
                              "forma_pagamento": {"id": "3", "descricao": "Cartão de Crédito",
                                                  "codigoFiscal": "3"}}}],
    "codigosRastreamento": {"codigoRastreamento": "OY373095400BR"},
}

BRT_OFFSET = timedelta(hours=-3)

SIM_STATUS: dict[NfeSituacao, InvoiceStatus] = {
    # The simulator's situations (v3 numbering) and what each must read as.
    NfeSituacao.PENDENTE: InvoiceStatus.PENDING,
    NfeSituacao.CANCELADA: InvoiceStatus.CANCELED,
    NfeSituacao.AGUARDANDO_RECIBO: InvoiceStatus.AWAITING_RECEIPT,
    NfeSituacao.REJEITADA: InvoiceStatus.REJECTED,
    NfeSituacao.AUTORIZADA: InvoiceStatus.AUTHORIZED,
    NfeSituacao.EMITIDA_DANFE: InvoiceStatus.DANFE_PRINTED,
    NfeSituacao.REGISTRADA: InvoiceStatus.REGISTERED,
    NfeSituacao.AGUARDANDO_PROTOCOLO: InvoiceStatus.AWAITING_PROTOCOL,
    NfeSituacao.DENEGADA: InvoiceStatus.DENIED,
    NfeSituacao.CONSULTA_SITUACAO: InvoiceStatus.CHECKING,
    NfeSituacao.BLOQUEADA: InvoiceStatus.BLOCKED,
    NfeSituacao.CONTINGENCIA: InvoiceStatus.CONTINGENCY,
}

KIND: dict[Modelo, NoteKind] = {Modelo.NFE: NoteKind.NFE, Modelo.NFCE: NoteKind.NFCE}

_DELETE = object()


def mutate(payload: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of `payload` with the value at `a.b.0.c` replaced (or deleted)."""
    out = copy.deepcopy(payload)
    node: Any = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def without_generation(summary: BaseModel) -> dict[str, Any]:
    return summary.model_dump(exclude={"generation"})


def links(note: Note) -> dict[str, str]:
    if not note.chave:
        return {}
    return {
        "xml": f"http://bling.test/relatorios/nfe.xml.php?chaveAcesso={note.chave}&s&signature=ab12cd34",
        "danfe": f"http://bling.test/doc.view.php?id={note.danfe_hash}&accessKey={note.chave}",
        "pdf": f"http://bling.test/doc.view.php?PDF=true&id={note.danfe_hash}&accessKey={note.chave}",
    }


def read_v3(note: Note) -> tuple[NoteSummary, NoteDetail]:
    kind = KIND[note.modelo]
    summary = note_summary_from_v3(v3json.note_base(note), kind=kind)
    detail = note_detail_from_v3(v3json.note_detail(note, links(note), simples=True), kind=kind)
    return summary, detail


def read_v2(company: Company, note: Note) -> NoteDetail:
    return note_from_v2(v2json.nota_fiscal(company, note, links(note)), kind=KIND[note.modelo])


@pytest.fixture(scope="module")
def world() -> World:
    return make_sim().state.world


def all_notes(world: World) -> list[tuple[Company, Note]]:
    return [(c, n) for c in world.companies for n in c.notes.values()]


# --- the reference examples ----------------------------------------------------------------


def test_v2_capture_reads_into_the_unified_shape() -> None:
    [note] = parse_v2_list(V2_CAPTURE, "notasfiscais", "notafiscal", note_from_v2)
    s = note.summary
    assert s.bling_id == 15390605809
    assert s.generation is ApiGeneration.V2
    assert (s.kind, s.modelo, s.tipo) == (NoteKind.NFE, 55, NoteType.SAIDA)
    assert s.status is InvoiceStatus.DANFE_PRINTED
    assert (s.numero, s.serie) == (132, 1)
    assert s.chave == "42211141747186000124550010000001321906058091"
    assert s.issued_at == datetime(2021, 11, 29, 13, 43, 2, tzinfo=timezone(BRT_OFFSET))
    assert s.issued_at.utcoffset() == BRT_OFFSET
    assert s.store_id == 203815689
    assert s.recipient is not None
    assert (s.recipient.name, s.recipient.document, s.recipient.ie) == ("Maria Exemplo", "12345678909", None)
    assert s.recipient.address is not None
    assert s.recipient.address.cep == "88801450"
    assert s.recipient.address.city == "Criciúma"
    assert note.valor_nota == Decimal("988.00")
    assert note.valor_frete is None and note.finalidade is None and note.items is None
    assert note.numero_pedido_loja == "01145"
    assert note.cfops == ("5102", "5102")
    assert note.tracking_codes == ()
    assert note.xml_url is not None
    assert note.xml_url.reveal().endswith("chaveAcesso=42211141747186000124550010000001321906058091")
    assert note.transporte.carrier is None
    assert note.transporte.frete_por_conta is None
    assert note.transporte.volumes == ()
    assert note.transporte.etiqueta is not None
    assert note.transporte.etiqueta.name == "Maria Exemplo"
    assert note.transporte.etiqueta.cep == "88801450"


def test_v3_list_item_reads_into_the_unified_shape() -> None:
    [s] = parse_v3_list(V3_LIST, note_summary_from_v3)
    assert s.generation is ApiGeneration.V3
    assert s.status is InvoiceStatus.DANFE_PRINTED
    assert (s.numero, s.kind, s.tipo) == (4512, NoteKind.NFE, NoteType.SAIDA)
    assert s.serie == 1  # not in the list item: read from the chave
    assert s.issued_at == datetime(2026, 3, 10, 14, 2, 31, tzinfo=BRASILIA)
    assert s.store_id == 204000001
    assert s.recipient is not None
    assert s.recipient.phone == "11999990000"
    assert s.recipient.ie is None
    assert s.recipient.address is not None
    assert s.recipient.address.country is None


def test_v3_detail_reads_into_the_unified_shape_with_exact_decimals() -> None:
    d = parse_v3_object(V3_DETAIL, note_detail_from_v3)
    assert d.valor_nota == Decimal("259.9")
    assert d.valor_nota != Decimal(259.9)  # noqa: RUF032 - the binary value we must not get
    assert str(d.valor_nota) == "259.9"
    assert d.valor_frete == Decimal("12.5")
    assert d.finalidade == 1
    assert d.numero_pedido_loja == "2000012345678901"
    assert d.items is not None
    [item] = d.items
    assert (item.code, item.unit, item.gtin, item.ncm, item.cfop) == (
        "SKU-1", "UN", "7890000000001", "61091000", "5102")
    assert (item.quantity, item.unit_value, item.total) == (Decimal(2), Decimal("123.7"), Decimal("247.4"))
    assert str(item.total) == "247.4"
    assert item.gross_weight == Decimal("0.3")
    assert d.cfops == ("5102",)
    t = d.transporte
    assert t.frete_por_conta is FreightPayer.REMETENTE
    assert t.carrier == models.Carrier(name="Empresa Brasileira de Correios e Telégrafos",
                                       document="34028316000103")
    assert t.volume_ids == (18800000001,)
    assert t.etiqueta is not None
    assert (t.etiqueta.name, t.etiqueta.street) == ("João Cliente", "Rua das Flores")
    assert t.etiqueta.cep == "01001000"
    assert d.tracking_codes == ()


def test_v3_list_item_and_detail_give_the_same_summary() -> None:
    [listed] = parse_v3_list(V3_LIST, note_summary_from_v3)
    assert parse_v3_object(V3_DETAIL, note_detail_from_v3).summary == listed


def test_token_response_reads_into_a_token_set() -> None:
    token = token_set_from_response(TOKEN)
    assert isinstance(token.access_token, Secret)
    assert token.access_token.reveal() == TOKEN["access_token"]
    assert token.refresh_token is not None
    assert token.refresh_token.reveal() == TOKEN["refresh_token"]
    assert token.expires_in == 21600
    assert token.token_type == "Bearer"
    assert token.scope == (98309, 318257570)
    shown = repr(token) + str(token) + str(token.model_dump()) + token.model_dump_json()
    assert TOKEN["access_token"] not in shown
    assert TOKEN["refresh_token"] not in shown


def test_webhook_invoice_data_reads_as_a_summary() -> None:
    # §10.6: the `data` of an `invoice.updated` event (no chave, `contato` is `{id}` only).
    data = {"id": 12345678, "tipo": 1, "situacao": 6, "numero": "1234", "dataEmissao": "2024-09-27 11:24:56",
            "dataOperacao": "2024-09-27 11:00:00", "contato": {"id": 12345678},
            "naturezaOperacao": {"id": 12345678}, "loja": {"id": 12345678}}
    s = note_summary_from_v3(data)
    assert (s.bling_id, s.numero, s.status) == (12345678, 1234, InvoiceStatus.DANFE_PRINTED)
    assert (s.chave, s.serie, s.recipient, s.store_id) == (None, None, None, 12345678)


def test_token_lifetime_is_also_read_under_token_validate() -> None:
    body = {k: v for k, v in TOKEN.items() if k != "expires_in"} | {"token_validate": "21600"}
    assert token_set_from_response(body).expires_in == 21600


@pytest.mark.parametrize("refresh", [_DELETE, "", None])
def test_a_refresh_answer_without_refresh_token_leaves_it_none(refresh: object) -> None:
    body = mutate(TOKEN, "refresh_token", refresh)
    assert token_set_from_response(body).refresh_token is None


def test_token_scope_may_be_empty_and_extra_fields_are_ignored() -> None:
    body = TOKEN | {"scope": "", "id_token": "x", "novoCampo": {"a": 1}}
    assert token_set_from_response(body).scope == ()
    assert token_set_from_response(TOKEN | {"scope": 98309}).scope == (98309,)


# --- the simulator: every situation, both generations, NF-e and NFC-e ----------------------


@pytest.mark.parametrize("modelo", list(Modelo))
@pytest.mark.parametrize("situacao", list(NfeSituacao))
def test_every_situation_reads_right_in_both_generations(
    world: World, modelo: Modelo, situacao: NfeSituacao
) -> None:
    company = world.companies[0]
    base = next(n for n in company.notes.values() if n.modelo == modelo and n.chave)
    note = replace(base, situacao=situacao)
    expected = SIM_STATUS[situacao]

    summary, detail = read_v3(note)
    v2 = read_v2(company, note)

    assert summary.status is expected
    assert detail.summary.status is expected
    assert v2.summary.status is expected
    assert summary == detail.summary
    assert without_generation(v2.summary) == without_generation(detail.summary)
    assert v2.summary.kind is KIND[modelo]
    assert v2.summary.modelo == int(modelo)
    assert v2.valor_nota == detail.valor_nota == note.valor_nota


def test_v3_6_and_v2_emitida_danfe_are_both_danfe_printed(world: World) -> None:
    company = world.companies[0]
    note = next(n for n in company.notes.values() if n.situacao == NfeSituacao.EMITIDA_DANFE)
    v3 = v3json.note_base(note)
    v2 = v2json.nota_fiscal(company, note, {})
    assert (v3["situacao"], v2["situacao"]) == (6, "Emitida DANFE")
    assert note_summary_from_v3(v3).status is InvoiceStatus.DANFE_PRINTED
    assert note_from_v2(v2).summary.status is InvoiceStatus.DANFE_PRINTED


def test_v2_autorizada_text_is_authorized_and_v3_5_too(world: World) -> None:
    company = world.companies[0]
    note = next(n for n in company.notes.values() if n.situacao == NfeSituacao.AUTORIZADA)
    v2 = v2json.nota_fiscal(company, note, {})
    assert v2["situacao"] == "Autorizada"
    assert note_from_v2(v2).summary.status is InvoiceStatus.AUTHORIZED
    assert note_summary_from_v3(v3json.note_base(note)).status is InvoiceStatus.AUTHORIZED


def test_every_generated_note_reads_the_same_through_v2_and_v3(world: World) -> None:
    notes = all_notes(world)
    assert {n.modelo for _, n in notes} == set(Modelo)
    assert any(not n.chave for _, n in notes)  # pending notes without a chave are in
    for company, note in notes:
        listed, detail = read_v3(note)
        summary = detail.summary
        v2 = read_v2(company, note)
        if note.chave:
            assert listed == summary
        else:
            # The v3 list sends no `serie`; only the chave (absent here) tells it.
            assert listed.serie is None
            assert listed == summary.model_copy(update={"serie": None})
        assert without_generation(v2.summary) == without_generation(summary), note.id
        # The fields the brief singles out, explicitly.
        for s in (summary, v2.summary):
            assert (s.bling_id, s.numero, s.serie) == (note.id, note.numero, note.serie)
            assert (s.chave or "") == note.chave
            assert s.status is SIM_STATUS[note.situacao]
            assert s.issued_at == note.emitted_at
            assert s.kind is KIND[note.modelo]
            assert s.store_id == (note.store.id if note.store else None)
        assert v2.valor_nota == detail.valor_nota == note.valor_nota
        assert v2.numero_pedido_loja == detail.numero_pedido_loja
        assert (v2.xml_url, v2.danfe_url, v2.pdf_url) == (detail.xml_url, detail.danfe_url, detail.pdf_url)
        assert v2.transporte.frete_por_conta == detail.transporte.frete_por_conta
        assert v2.transporte.frete_por_conta is FreightPayer(note.frete_por_conta)
        assert v2.transporte.carrier == detail.transporte.carrier
        assert v2.transporte.volume_ids == detail.transporte.volume_ids
        assert v2.transporte.volume_ids == tuple(v.logistic_object_id for v in note.volumes)
        assert v2.transporte.etiqueta == detail.transporte.etiqueta
        assert v2.cfops == detail.cfops
        # Exact money: the items add up to the note without a cent lost.
        assert detail.items is not None
        assert sum((i.total for i in detail.items), Decimal(0)) + (detail.valor_frete or 0) == note.valor_nota
        assert detail.valor_frete == note.valor_frete


def test_v2_tracking_codes_match_the_logistics_objects(world: World) -> None:
    seen_forms: set[str] = set()
    for company, note in all_notes(world):
        raw = v2json.nota_fiscal(company, note, {})
        codes = tuple(
            company.logistic_objects[v.logistic_object_id].tracking_code
            for v in note.volumes
            if v.logistic_object_id in company.logistic_objects
            and company.logistic_objects[v.logistic_object_id].tracking_code
        )
        seen_forms.add(type(raw["codigosRastreamento"]).__name__)
        detail = note_from_v2(raw)
        assert detail.tracking_codes == codes
        for volume in detail.transporte.volumes:
            obj = company.logistic_objects.get(volume.id)
            if obj is not None:
                assert volume.tracking_code == (obj.tracking_code or None)
                assert volume.dimensions is not None
                assert volume.dimensions.weight == obj.peso
    assert seen_forms == {"list", "dict"}


def test_orders_read_the_same_through_v2_and_v3(world: World) -> None:
    checked_notes = 0
    for company in world.companies:
        by_id = {s.id: s for s in company.order_situations}
        for order in company.orders.values():
            listed = order_from_v3_list(v3json.order_base(company, order))
            v3 = order_detail_from_v3(v3json.order_detail(company, order))
            v2 = order_from_v2(v2json.pedido(company, order))
            assert listed == v3.summary
            a, b = v3.summary, v2.summary
            assert (a.bling_id, b.bling_id) == (order.id, None)
            for s in (a, b):
                assert s.numero == order.numero
                assert s.numero_loja == (order.numero_loja or None)
                assert (s.data, s.data_saida) == (order.data, order.data_saida)
                assert s.data_prevista == order.data_prevista
                assert (s.total, s.total_produtos) == (order.total, order.total_produtos)
                assert s.contact.document == order.contato.documento
                assert s.contact.name == order.contato.nome
                assert s.contact.bling_id == order.contato.id
                assert s.store_id == (order.store.id if order.store else None)
            assert a.situacao.id == order.situacao_id
            assert a.situacao.valor == by_id[order.situacao_id].valor
            assert b.situacao.name == by_id[order.situacao_id].nome
            for d in (v3, v2):
                assert d.transporte.volume_ids == tuple(order.volume_ids)
                assert [(i.code, i.quantity, i.unit_value) for i in d.items] == [
                    (i.product.sku, i.quantidade, i.valor_unitario) for i in order.items]
                assert d.valor_frete == order.frete
                assert d.discount is not None and d.discount.value == 0
                assert d.transporte.etiqueta is not None
                assert d.transporte.etiqueta.cep == order.etiqueta.cep
                assert d.transporte.etiqueta.name == order.contato.nome
            assert v3.transporte.etiqueta is not None and v2.transporte.etiqueta is not None
            # v3 adds `nomePais`; v2 has no country.
            assert v3.transporte.etiqueta.model_dump(exclude={"country"}) == (
                v2.transporte.etiqueta.model_dump(exclude={"country"}))
            assert v3.note_id == order.note_id
            if order.note_id is None:
                assert v2.note is None
            else:
                note = company.notes[order.note_id]
                assert v2.note is not None
                assert v2.note.status is SIM_STATUS[note.situacao]
                assert (v2.note.numero, v2.note.serie) == (note.numero, note.serie)
                assert v2.note.valor_nota == note.valor_nota
                assert v2.note.issued_at == note.emitted_at
                checked_notes += 1
    assert checked_notes > 0


def test_v2_pedido_nota_situacao_7_is_danfe_printed_not_a_v3_code(world: World) -> None:
    company = world.companies[0]
    order = next(
        o for o in company.orders.values()
        if o.note_id is not None and company.notes[o.note_id].situacao == NfeSituacao.EMITIDA_DANFE
    )
    raw = v2json.pedido(company, order)
    assert raw["nota"]["situacao"] == "7"
    detail = order_from_v2(raw)
    assert detail.note is not None
    assert detail.note.status is InvoiceStatus.DANFE_PRINTED


@pytest.mark.parametrize(("code", "status"), [
    ("7", InvoiceStatus.DANFE_PRINTED),
    ("6", InvoiceStatus.AUTHORIZED),  # 6 would be Emitida DANFE in v3: not here
    ("2", InvoiceStatus.ISSUED),
    ("3", InvoiceStatus.CANCELED),
    ("13", InvoiceStatus.CONTINGENCY),
    ("Emitida DANFE", InvoiceStatus.DANFE_PRINTED),  # should the text ever appear here
])
def test_v2_pedido_nota_situacao_uses_v2_numbering(code: str, status: InvoiceStatus) -> None:
    detail = order_from_v2(mutate(V2_PEDIDO, "nota.situacao", code))
    assert detail.note is not None
    assert detail.note.status is status


def test_v2_pedido_capture_like_fixture() -> None:
    d = order_from_v2(V2_PEDIDO)
    s = d.summary
    assert (s.numero, s.numero_loja, s.store_id) == (145, "01145", None)
    assert (s.data, s.data_saida, s.data_prevista) == (date(2021, 11, 28), date(2021, 11, 29), None)
    assert (s.total, s.total_produtos) == (Decimal("988.00"), Decimal("972.10"))
    assert s.contact == models.OrderContact(bling_id=16012345678, name="Loja Exemplo Ltda",
                                            document="96280061000129")
    assert s.situacao == models.OrderSituationRef(name="Atendido")
    assert d.discount == models.Discount(value=Decimal("0.00"), unit=models.DiscountUnit.REAL)
    assert d.valor_frete == Decimal("15.90")
    assert d.observacoes == "Entregar no período da tarde"
    assert d.observacoes_internas is None
    assert [(i.code, i.quantity, i.unit_value, i.gtin) for i in d.items] == [
        ("SKU-1", Decimal("2"), Decimal("123.7"), "7890000000001"),
        ("SKU-2", Decimal("1"), Decimal("724.7"), None),  # "SEM GTIN" is no GTIN
    ]
    assert str(d.items[0].unit_value) == "123.7000000000"  # exact, as written
    [volume] = d.transporte.volumes
    assert volume == models.ShipmentVolume(
        id=18800000001, service="SEDEX CONTRATO AG", tracking_code="OY373095400BR",
        tracking_url="https://rastreamento.correios.com.br/app/index.php?objetos=OY373095400BR",
        dimensions=models.Dimensions(weight=Decimal("1.250"), height=Decimal(10), width=Decimal(20),
                                     length=Decimal(30), diameter=Decimal(0)),
    )
    assert d.tracking_codes == ("OY373095400BR",)
    assert d.note == models.OrderNote(
        numero=132, serie=1, issued_at=datetime(2021, 11, 29, 13, 43, 2, tzinfo=BRASILIA),
        status=InvoiceStatus.DANFE_PRINTED, valor_nota=Decimal("988.00"),
        chave="42211141747186000124550010000001321906058091",
    )
    assert d.note_id is None  # v2 does not give the note's Bling id


def test_logistics_objects_read_exactly(world: World) -> None:
    for company in world.companies:
        for obj in company.logistic_objects.values():
            lo = logistics_object_from_v3(v3json.logistic_object(obj), object_id=obj.id)
            assert lo.id == obj.id
            assert (lo.sales_order_id, lo.note_id, lo.service_id) == (
                obj.pedido_venda_id, obj.nota_fiscal_id, obj.servico_id)
            assert lo.dimensions == models.Dimensions(weight=obj.peso, height=obj.altura, width=obj.largura,
                                                      length=obj.comprimento, diameter=obj.diametro)
            assert lo.tracking is not None
            assert lo.tracking.code == (obj.tracking_code or None)
            assert lo.tracking.situacao == obj.tracking_situacao
            assert lo.tracking.situation is TrackingSituation(obj.tracking_situacao)
            assert lo.tracking.url == (obj.tracking_url or None)
            assert lo.tracking.updated_at == obj.tracking_updated_at.replace(microsecond=0)
            assert lo.data_saida == (date.fromisoformat(obj.data_saida) if obj.data_saida else None)
            assert (lo.frete_previsto, lo.valor_declarado) == (obj.frete_previsto, obj.valor_declarado)
            assert (lo.aviso_recebimento, lo.mao_propria) == (obj.aviso_recebimento, obj.mao_propria)


def test_logistics_object_tolerates_new_tracking_codes_and_the_post_spelling() -> None:
    body = {"rastreamento": {"codigo": "AB1", "situacao": 42}, "dimensoes": {"peso": "1,5"}}
    lo = logistics_object_from_v3(body)
    assert lo.id is None
    assert lo.tracking is not None
    assert lo.tracking.situacao == 42 and lo.tracking.situation is None
    assert lo.dimensions is not None and lo.dimensions.weight == Decimal("1.5")


def test_company_basic_data_cnpj_becomes_digits(world: World) -> None:
    for company in world.companies:
        raw = v3json.company_basic(company)
        assert "/" in raw["cnpj"]
        info = company_from_v3(raw)
        assert info.cnpj == company.cnpj and info.cnpj.isdigit() and len(info.cnpj) == 14
        assert info.id == company.company_id
        assert info.nome == company.nome
        assert info.data_contrato == company.data_contrato
    assert company_from_v3({"id": "436C56A5679921F5F13A3D6433561773", "nome": "Empresa Teste LTDA",
                            "cnpj": "96.280.061/0001-29"}).id == "436c56a5679921f5f13a3d6433561773"


def test_order_situations_read_in_both_generations(world: World) -> None:
    company = world.companies[0]
    for s in company.order_situations:
        v3 = order_situation_from_v3({"id": s.id, "nome": s.nome, "idHerdado": s.id_herdado, "cor": s.cor})
        v2 = order_situation_from_v2(v2json.situacao(s)["situacao"])
        expected = models.OrderSituation(id=s.id, nome=s.nome, id_herdado=s.id_herdado or None, cor=s.cor)
        assert v3 == v2 == expected
    shipped = company.order_situations[-1]
    assert order_situation_from_v3(
        {"id": shipped.id, "nome": shipped.nome, "idHerdado": shipped.id_herdado, "cor": shipped.cor}
    ).id_herdado == company.order_situations[1].id


def test_situation_modules() -> None:
    module = situation_module_from_v3(
        {"id": 98310, "nome": "Vendas", "descricao": "Pedidos de Venda", "criarSituacoes": True})
    assert module == models.SituationModule(id=98310, nome="Vendas", descricao="Pedidos de Venda",
                                            criar_situacoes=True)


# --- the simulator over HTTP (ASGI) ---------------------------------------------------------


async def test_v2_and_v3_http_answers_agree(bling: Bling) -> None:
    company = bling.company()
    headers = await bling.bearer()
    r3 = await bling.get("/Api/v3/nfe", headers, pagina=1, limite=100)
    listed = parse_v3_list(r3.json(), note_summary_from_v3)
    apikey = company.api_users[0].apikey
    r2 = await bling.http.get("/Api/v2/notasfiscais/page=1/json/", params={"apikey": apikey})
    assert r2.status_code == 200, r2.text
    v2_notes = parse_v2_list(r2.json(), "notasfiscais", "notafiscal", note_from_v2)
    v2_by_id = {d.summary.bling_id: d for d in v2_notes}
    compared = 0
    for summary in listed[:25]:
        detail = parse_v3_object((await bling.get(f"/Api/v3/nfe/{summary.bling_id}", headers)).json(),
                                 note_detail_from_v3)
        if summary.chave is not None:
            assert detail.summary == summary
        else:  # the list has no `serie` and no chave to read it from
            assert detail.summary.model_copy(update={"serie": None}) == summary
        summary = detail.summary
        v2 = v2_by_id.get(summary.bling_id)
        if v2 is not None:
            assert without_generation(v2.summary) == without_generation(summary)
            assert v2.valor_nota == detail.valor_nota
            compared += 1
    assert compared >= 10


async def test_nfce_list_over_http(bling: Bling) -> None:
    headers = await bling.bearer()
    r = await bling.get("/Api/v3/nfce", headers, pagina=1, situacao=6)
    notes = parse_v3_list(r.json(), partial(note_summary_from_v3, kind=NoteKind.NFCE))
    assert notes
    assert all(n.kind is NoteKind.NFCE and n.modelo == 65 for n in notes)
    assert all(n.status is InvoiceStatus.DANFE_PRINTED for n in notes)


async def test_note_document_over_http(bling: Bling) -> None:
    headers = await bling.bearer()
    listed = parse_v3_list((await bling.get("/Api/v3/nfe", headers, situacao=6)).json(), note_summary_from_v3)
    chave = listed[0].chave
    r = await bling.get(f"/Api/v3/nfe/documento/{chave}", headers, formato="xml")
    [doc] = parse_v3_list(r.json(), note_document_from_v3)
    assert doc.name == f"{chave}.xml"
    assert b"nfeProc" in doc.content
    assert chave is not None and chave.encode() in doc.content


async def test_orders_company_and_situations_over_http(bling: Bling) -> None:
    headers = await bling.bearer()
    orders = parse_v3_list((await bling.get("/Api/v3/pedidos/vendas", headers)).json(), order_from_v3_list)
    assert orders
    r = await bling.get(f"/Api/v3/pedidos/vendas/{orders[0].bling_id}", headers)
    detail = parse_v3_object(r.json(), order_detail_from_v3)
    assert detail.summary == orders[0]
    company = parse_v3_object((await bling.get("/Api/v3/empresas/me/dados-basicos", headers)).json(),
                              company_from_v3)
    assert company.id == bling.company().company_id
    modules = parse_v3_list((await bling.get("/Api/v3/situacoes/modulos", headers)).json(),
                            situation_module_from_v3)
    vendas = next(m for m in modules if m.nome == "Vendas")
    situations = parse_v3_list((await bling.get(f"/Api/v3/situacoes/modulos/{vendas.id}", headers)).json(),
                               order_situation_from_v3)
    assert detail.summary.situacao.id in {s.id for s in situations}


# --- v2 quirks, one by one ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("988.00", Decimal("988.00")),
    ("1.0000", Decimal("1")),
    ("123.7000000000", Decimal("123.7")),
    ("0,00", Decimal("0")),
    ("1.234,56", Decimal("1234.56")),
    ("1,5", Decimal("1.5")),
    ("1,234.56", Decimal("1234.56")),
    (" 12 ", Decimal("12")),
    (259.9, Decimal("259.9")),
    (12, Decimal("12")),
    (0.1, Decimal("0.1")),
    (1e-05, Decimal("0.00001")),
])
def test_numbers_in_every_form_are_exact_decimals(text: object, value: Decimal) -> None:
    d = order_from_v2(mutate(V2_PEDIDO, "desconto", text))
    assert d.discount is not None
    assert d.discount.value == value
    if isinstance(text, float):
        # Built from the float's shortest text, not from its binary value.
        assert d.discount.value.as_tuple() == Decimal(repr(text)).as_tuple()
        assert d.discount.value != Decimal(text)


@pytest.mark.parametrize("text", ["1.234.567", "abc", "NaN", "Infinity", "1,2,3", "12a", True, [], {"v": 1}])
def test_malformed_numbers_raise_shape_error_naming_the_field(text: object) -> None:
    with pytest.raises(ShapeError, match=r"at desconto: expected a number") as info:
        order_from_v2(mutate(V2_PEDIDO, "desconto", text))
    assert info.value.path == "desconto"


def test_numbers_as_strings_and_zero_padding() -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    s = note_from_v2(mutate(mutate(body, "serie", "001"), "numero", "000132")).summary
    assert (s.numero, s.serie) == (132, 1)
    assert order_from_v2(mutate(V2_PEDIDO, "itens.0.item.quantidade", "1.0000")).items[0].quantity == 1


def test_formatted_cep_cpf_and_cnpj_become_digits() -> None:
    cliente = V2_PEDIDO["cliente"] | {"cnpj": "836.051.027-00", "cep": "88.801-450"}
    d = order_from_v2(V2_PEDIDO | {"cliente": cliente})
    assert d.summary.contact.document == "83605102700"
    assert order_from_v2(V2_PEDIDO).summary.contact.document == "96280061000129"
    assert d.transporte.etiqueta is not None and d.transporte.etiqueta.cep == "88801450"
    v3_old_format = mutate(V3_DETAIL["data"], "transporte.etiqueta.cep", "95702-000")
    etiqueta = note_detail_from_v3(v3_old_format).transporte.etiqueta
    assert etiqueta is not None and etiqueta.cep == "95702000"


def test_a_foreign_postcode_is_kept_as_text() -> None:
    body = mutate(V3_DETAIL["data"], "transporte.etiqueta.cep", "SW1A 1AA")
    etiqueta = note_detail_from_v3(body).transporte.etiqueta
    assert etiqueta is not None and etiqueta.cep == "SW1A 1AA"


def test_empty_strings_mean_none() -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"] | {
        "linkDanfe": "", "linkPDF": "", "xml": "", "numeroPedidoLoja": "", "chaveAcesso": "", "serie": "",
    }
    d = note_from_v2(body)
    assert (d.xml_url, d.danfe_url, d.pdf_url, d.numero_pedido_loja) == (None, None, None, None)
    assert (d.summary.chave, d.summary.serie) == (None, None)
    assert d.summary.recipient is not None and d.summary.recipient.ie is None


@pytest.mark.parametrize("loja", ["0", "", None, _DELETE])
def test_store_zero_or_absent_means_no_store(loja: object) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    assert note_from_v2(mutate(body, "loja", loja)).summary.store_id is None
    assert order_from_v2(mutate(V2_PEDIDO, "loja", loja)).summary.store_id is None


def test_v3_reference_id_zero_means_none() -> None:
    body = mutate(V3_LIST["data"][0], "loja", {"id": 0})
    assert note_summary_from_v3(body).store_id is None
    order = mutate(mutate(V3_LIST_ORDER, "contato.id", 0), "situacao.id", "0")
    s = order_from_v3_list(order)
    assert (s.contact.bling_id, s.situacao.id) == (None, None)


@pytest.mark.parametrize(("value", "codes"), [
    ([], ()),
    ({}, ()),
    ("", ()),
    (_DELETE, ()),
    ({"codigoRastreamento": "OY373095400BR"}, ("OY373095400BR",)),
    ({"codigoRastreamento": ["AB1", "AB2"]}, ("AB1", "AB2")),
    ([{"codigoRastreamento": "AB1"}, {"codigoRastreamento": "AB2"}], ("AB1", "AB2")),
    (["AB1", "AB2"], ("AB1", "AB2")),
])
def test_codigos_rastreamento_in_each_of_its_forms(value: object, codes: tuple[str, ...]) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    assert note_from_v2(mutate(body, "codigosRastreamento", value)).tracking_codes == codes
    assert order_from_v2(mutate(V2_PEDIDO, "codigosRastreamento", value)).tracking_codes == codes


@pytest.mark.parametrize("value", [{"outro": "x"}, 5, True])
def test_malformed_codigos_rastreamento_raise(value: object) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    with pytest.raises(ShapeError) as info:
        note_from_v2(mutate(body, "codigosRastreamento", value))
    assert info.value.path == "codigosRastreamento"


@pytest.mark.parametrize("transporte", [_DELETE, None, [], {}])
def test_transporte_missing_or_empty(transporte: object) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    t = note_from_v2(mutate(body, "transporte", transporte)).transporte
    assert t == models.NoteTransport()
    o = order_from_v2(mutate(V2_PEDIDO, "transporte", transporte)).transporte
    assert o == models.OrderTransport()


def test_transporte_with_only_some_keys() -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    t = note_from_v2(mutate(body, "transporte", {"tipo_frete": "D"})).transporte
    assert t.frete_por_conta is FreightPayer.DESTINATARIO
    assert (t.carrier, t.volumes, t.etiqueta) == (None, (), None)


def test_a_single_volume_printed_as_an_object_instead_of_an_array() -> None:
    volume = V2_PEDIDO["transporte"]["volumes"][0]
    d = order_from_v2(mutate(V2_PEDIDO, "transporte.volumes", volume))
    assert d.transporte.volume_ids == (18800000001,)


@pytest.mark.parametrize(("letter", "payer"), [
    ("R", FreightPayer.REMETENTE), ("D", FreightPayer.DESTINATARIO), ("T", FreightPayer.TERCEIROS),
    ("3", FreightPayer.PROPRIO_REMETENTE), ("4", FreightPayer.PROPRIO_DESTINATARIO),
    ("S", FreightPayer.SEM_FRETE),
])
def test_v2_tipo_frete_letters(letter: str, payer: FreightPayer) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    assert note_from_v2(mutate(body, "transporte.tipo_frete", letter)).transporte.frete_por_conta is payer


@pytest.mark.parametrize(("text", "status"), sorted(V2_TEXTS.items()))
def test_every_v2_situacao_text(text: str, status: InvoiceStatus) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    assert note_from_v2(mutate(body, "situacao", text)).summary.status is status


@pytest.mark.parametrize(("text", "status"), [
    ("EMITIDA DANFE", InvoiceStatus.DANFE_PRINTED),
    ("Enviada Aguardando recibo", InvoiceStatus.AWAITING_RECEIPT),
    ("Contingencia", InvoiceStatus.CONTINGENCY),
    ("Emitida", InvoiceStatus.ISSUED),  # v2 only: no v3 equivalent
])
def test_v2_situacao_text_spellings(text: str, status: InvoiceStatus) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    assert note_from_v2(mutate(body, "situacao", text)).summary.status is status


def test_v2_tipo_entrada() -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    assert note_from_v2(mutate(body, "tipo", "E")).summary.tipo is NoteType.ENTRADA
    assert note_summary_from_v3(mutate(V3_LIST["data"][0], "tipo", 0)).tipo is NoteType.ENTRADA


def test_php_empty_object_printed_as_empty_array() -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    s = note_from_v2(mutate(body, "cliente", [])).summary
    # Falls back on the note's own duplicates of cliente.nome and cliente.cnpj.
    assert s.recipient == models.Party(name="Maria Exemplo", document="12345678909")


def test_v2_booleans_in_text() -> None:
    lo = logistics_object_from_v3({"avisoRecebimento": "S", "maoPropria": "false"})
    assert (lo.aviso_recebimento, lo.mao_propria) == (True, False)


# --- datetimes -----------------------------------------------------------------------------


def test_datetimes_are_aware_brasilia_time() -> None:
    s = note_summary_from_v3(V3_LIST["data"][0])
    assert s.issued_at.tzinfo is not None
    assert s.issued_at.utcoffset() == BRT_OFFSET
    assert s.issued_at == datetime(2026, 3, 10, 17, 2, 31, tzinfo=UTC)


def test_a_datetime_with_an_offset_is_converted_to_brasilia() -> None:
    s = note_summary_from_v3(mutate(V3_LIST["data"][0], "dataEmissao", "2026-03-10T17:02:31Z"))
    assert s.issued_at == datetime(2026, 3, 10, 14, 2, 31, tzinfo=BRASILIA)
    assert s.issued_at.utcoffset() == BRT_OFFSET


def test_php_zero_dates_mean_none_where_optional() -> None:
    d = order_from_v2(mutate(V2_PEDIDO, "dataSaida", "0000-00-00"))
    assert d.summary.data_saida is None
    with pytest.raises(ShapeError) as info:
        note_summary_from_v3(mutate(V3_LIST["data"][0], "dataEmissao", "0000-00-00 00:00:00"))
    assert info.value.path == "dataEmissao"


def test_a_v2_date_written_with_a_time_keeps_its_date() -> None:
    d = order_from_v2(mutate(V2_PEDIDO, "data", "2021-11-28 00:00:00"))
    assert d.summary.data == date(2021, 11, 28)


# --- kinds, chaves, tolerance ---------------------------------------------------------------


def test_the_chave_decides_the_kind_and_the_endpoint_only_without_one() -> None:
    nfce_chave = "35260312345678000190650010000045121123456780"
    body = mutate(V3_LIST["data"][0], "chaveAcesso", nfce_chave)
    assert note_summary_from_v3(body).kind is NoteKind.NFCE  # hint NFE, chave 65
    pending = mutate(V3_LIST["data"][0], "chaveAcesso", "")
    assert note_summary_from_v3(pending).kind is NoteKind.NFE
    assert note_summary_from_v3(pending, kind=NoteKind.NFCE).kind is NoteKind.NFCE
    assert note_summary_from_v3(pending).serie is None


@pytest.mark.parametrize("chave", ["123", "3526031234567800019055001000004512112345678X",
                                   "35260312345678000190570010000045121123456780"])
def test_a_bad_chave_raises(chave: str) -> None:
    with pytest.raises(ShapeError) as info:
        note_summary_from_v3(mutate(V3_LIST["data"][0], "chaveAcesso", chave))
    assert info.value.path == "chaveAcesso"


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = copy.deepcopy(V3_DETAIL["data"])
    body["campoNovo2027"] = {"qualquer": [1, 2, 3]}
    body["contato"]["novo"] = True
    body["contato"]["endereco"]["geo"] = {"lat": -23.5}
    body["transporte"]["volumes"][0]["codigoRastreamento"] = "NEW"
    body["itens"][0]["ibs"] = {"aliquota": 0.1}
    body["transporte"]["etiqueta"]["referencia"] = "portão azul"
    assert note_detail_from_v3(body) == note_detail_from_v3(V3_DETAIL["data"])
    v2 = copy.deepcopy(V2_PEDIDO)
    v2["novo"] = "x"
    v2["itens"][0]["item"]["novo"] = "y"
    v2["transporte"]["volumes"][0]["volume"]["novo"] = {"z": 1}
    assert order_from_v2(v2) == order_from_v2(V2_PEDIDO)
    assert company_from_v3({"id": "0" * 32, "nome": "X", "cnpj": "96280061000129", "plano": "ouro"}).cnpj


def test_all_public_models_are_complete_despite_postponed_annotations() -> None:
    public = [getattr(models, name) for name in models.__all__]
    model_classes = [c for c in public if isinstance(c, type) and issubclass(c, BaseModel)]
    assert len(model_classes) > 20
    for cls in model_classes:
        assert cls.__pydantic_complete__, cls.__name__
        cls.model_json_schema()  # resolves every annotation, or raises


def test_unified_models_are_frozen_and_strict() -> None:
    s = note_summary_from_v3(V3_LIST["data"][0])
    with pytest.raises(ValidationError):
        s.numero = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        models.Carrier(name="x", document=None, nickname="y")  # type: ignore[call-arg]
    assert hash(s) == hash(note_summary_from_v3(V3_LIST["data"][0]))


# --- ShapeError ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "value", "where"), [
    ("valorNota", "abc", "valorNota"),
    ("valorNota", _DELETE, "valorNota"),
    ("id", _DELETE, "id"),
    ("situacao", 99, "situacao"),
    ("situacao", "Emitida DANFE", "situacao"),
    ("numero", "", "numero"),
    ("numero", "12A", "numero"),
    ("tipo", 7, "tipo"),
    ("dataEmissao", "10/03/2026 14:02:31", "dataEmissao"),
    ("contato", "João Cliente", "contato"),
    ("contato.endereco.cep", {"x": 1}, "contato.endereco.cep"),
    ("itens.0.quantidade", "dois", "itens[0].quantidade"),
    ("itens", "nenhum", "itens"),
    ("transporte.volumes.0.id", "x", "transporte.volumes[0].id"),
    ("transporte.fretePorConta", 7, "transporte.fretePorConta"),
])
def test_malformed_v3_detail_raises_shape_error_naming_the_field(
    path: str, value: object, where: str
) -> None:
    with pytest.raises(ShapeError) as info:
        note_detail_from_v3(mutate(V3_DETAIL["data"], path, value))
    error = info.value
    assert error.path == where
    assert f"at {where}:" in str(error)
    assert "v3 nfe detail" in str(error)
    assert isinstance(error, ValueError)
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize(("path", "value", "where"), [
    ("situacao", "Inexistente", "situacao"),
    ("situacao", "99", "situacao"),
    ("tipo", "X", "tipo"),
    ("valorNota", "9,8,7", "valorNota"),
    ("transporte.tipo_frete", "Z", "transporte.tipo_frete"),
    ("transporte.volumes", [{"volume": {"id": "abc"}}], "transporte.volumes[0].volume.id"),
    ("transporte.volumes", [{"outro": {}}], "transporte.volumes[0].volume"),
])
def test_malformed_v2_note_raises_shape_error_naming_the_field(path: str, value: object, where: str) -> None:
    body = V2_CAPTURE["retorno"]["notasfiscais"][0]["notafiscal"]
    with pytest.raises(ShapeError) as info:
        note_from_v2(mutate(body, path, value))
    assert info.value.path == where
    assert "v2 nfe notafiscal" in str(info.value)


def test_shape_error_shows_the_offending_value_briefly() -> None:
    with pytest.raises(ShapeError) as info:
        note_detail_from_v3(mutate(V3_DETAIL["data"], "valorNota", "abc"))
    assert str(info.value) == (
        "unexpected v3 nfe detail from Bling at valorNota: expected a number (got 'abc')")
    with pytest.raises(ShapeError) as info:
        note_detail_from_v3(mutate(V3_DETAIL["data"], "valorNota", "x" * 500))
    assert len(str(info.value)) < 250
    with pytest.raises(ShapeError) as info:
        note_detail_from_v3(mutate(V3_DETAIL["data"], "contato", ["João", {"cpf": "12345678909"}]))
    assert "12345678909" not in str(info.value)
    assert "an array of 2 items" in str(info.value)


@pytest.mark.parametrize("payload", ["texto", None, 42, ["a"]])
def test_a_payload_that_is_not_an_object_raises(payload: object) -> None:
    for parse in (note_from_v2, note_summary_from_v3, note_detail_from_v3, order_from_v2, company_from_v3):
        with pytest.raises(ShapeError, match="<root>"):
            parse(payload)


def test_list_envelopes_name_the_item() -> None:
    good = V3_LIST["data"][0]
    with pytest.raises(ShapeError) as info:
        parse_v3_list({"data": [good, mutate(good, "situacao", 0)]}, note_summary_from_v3)
    assert info.value.path == "data[1].situacao"
    with pytest.raises(ShapeError) as info:
        parse_v3_list({"error": {"type": "SERVER_ERROR"}}, note_summary_from_v3)
    assert info.value.path == ""
    with pytest.raises(ShapeError) as info:
        parse_v3_list({"data": {"id": 1}}, note_summary_from_v3)
    assert info.value.path == "data"
    with pytest.raises(ShapeError) as info:
        parse_v3_object({"data": mutate(V3_DETAIL["data"], "valorNota", None)}, note_detail_from_v3)
    assert info.value.path == "data.valorNota"
    assert parse_v3_list({"data": []}, note_summary_from_v3) == []


def test_v2_envelope_names_the_record() -> None:
    bad = mutate(V2_CAPTURE, "retorno.notasfiscais.0.notafiscal.valorNota", "x")
    with pytest.raises(ShapeError) as info:
        parse_v2_list(bad, "notasfiscais", "notafiscal", note_from_v2)
    assert info.value.path == "retorno.notasfiscais[0].notafiscal.valorNota"
    with pytest.raises(ShapeError) as info:
        parse_v2_list({"retorno": {"notasfiscais": [{"nota": {}}]}}, "notasfiscais", "notafiscal",
                      note_from_v2)
    assert info.value.path == "retorno.notasfiscais[0]"
    with pytest.raises(ShapeError) as info:
        parse_v2_list({"retorno": {"erros": []}}, "notasfiscais", "notafiscal", note_from_v2)
    assert info.value.path == "retorno.notasfiscais"
    # One record printed as a bare object rather than an array of one.
    single = {"retorno": {"notasfiscais": V2_CAPTURE["retorno"]["notasfiscais"][0]}}
    assert len(parse_v2_list(single, "notasfiscais", "notafiscal", note_from_v2)) == 1


def test_company_and_situation_shapes_are_checked() -> None:
    with pytest.raises(ShapeError) as info:
        company_from_v3({"id": "abc", "nome": "X", "cnpj": "96280061000129"})
    assert info.value.path == "id"
    with pytest.raises(ShapeError) as info:
        company_from_v3({"id": "0" * 32, "nome": "X", "cnpj": "96.280.061/0001"})
    assert info.value.path == "cnpj"
    with pytest.raises(ShapeError) as info:
        order_situation_from_v2({"id": "9", "nome": ""})
    assert info.value.path == "nome"


# --- secrets never leak ----------------------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"access_token": 1234567890123456789},
    {"access_token": None},
    {"expires_in": "nunca"},
    {"expires_in": 0},
    {"scope": "nfe pedidos"},
    {"refresh_token": ["x"]},
])
def test_token_errors_never_show_a_token(change: dict[str, Any]) -> None:
    body = TOKEN | change
    with pytest.raises(ShapeError) as info:
        token_set_from_response(body)
    text = str(info.value) + repr(info.value) + repr(info.value.args)
    for value in (TOKEN["access_token"], TOKEN["refresh_token"], "1234567890123456789"):
        assert value not in text
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_a_missing_access_token_shows_only_key_names() -> None:
    body = {k: v for k, v in TOKEN.items() if k != "access_token"}
    with pytest.raises(ShapeError) as info:
        token_set_from_response(body)
    assert info.value.path == "access_token"
    assert TOKEN["refresh_token"] not in str(info.value)
    with pytest.raises(ShapeError) as info:
        token_set_from_response([TOKEN])
    assert TOKEN["access_token"] not in str(info.value)


def test_document_links_are_secrets() -> None:
    d = note_detail_from_v3(V3_DETAIL["data"])
    assert isinstance(d.xml_url, Secret)
    assert d.xml_url.reveal() == V3_DETAIL["data"]["xml"]
    assert "signature" not in repr(d) and "9ab1671b3f05765cb49fee83ee0f2496" not in repr(d)


def test_a_signed_url_in_an_error_is_redacted() -> None:
    url = "https://www.bling.com.br/relatorios/nfe.xml.php?chaveAcesso=1&s&signature=3f1cdeadbeefcafe0123456789"
    with pytest.raises(ShapeError) as info:
        note_detail_from_v3(mutate(V3_DETAIL["data"], "numero", url))
    assert "3f1cdeadbeefcafe0123456789" not in str(info.value)


# --- /nfe/documento ----------------------------------------------------------------------------


def _document(content: bytes, *, gz: bool = True) -> dict[str, Any]:
    data = gzip.compress(content, mtime=0) if gz else content
    return {"nome": "x.xml", "conteudo": base64.b64encode(data).decode()}


def test_note_document_is_decoded_and_decompressed() -> None:
    xml = b"<?xml version='1.0'?><nfeProc/>"
    assert note_document_from_v3(_document(xml)).content == xml
    assert note_document_from_v3(_document(xml, gz=False)).content == xml


@pytest.mark.parametrize("conteudo", ["não é base64!", "", "H4sIAAAA"])
def test_a_malformed_document_raises(conteudo: str) -> None:
    with pytest.raises(ShapeError) as info:
        note_document_from_v3({"nome": "x.xml", "conteudo": conteudo})
    assert info.value.path == "conteudo"


def test_a_document_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "MAX_DOCUMENT_BYTES", 1000)
    assert len(note_document_from_v3(_document(b"a" * 1000)).content) == 1000
    with pytest.raises(ShapeError, match="larger than"):
        note_document_from_v3(_document(b"a" * 1001))


def test_parsers_are_uniform_callables() -> None:
    parsers: list[Callable[[object], object]] = [
        note_from_v2, note_summary_from_v3, note_detail_from_v3, order_from_v2, order_from_v3_list,
        order_detail_from_v3, logistics_object_from_v3, company_from_v3, order_situation_from_v3,
        order_situation_from_v2, situation_module_from_v3, token_set_from_response, note_document_from_v3,
    ]
    for parse in parsers:
        with pytest.raises(ShapeError):
            parse("not an object")
    assert isinstance(order_from_v2(V2_PEDIDO), SalesOrderDetail)
