"""Contract tests: every answer of the simulator that blingsync uses conforms to Bling's official
OpenAPI document (tests/data/bling-openapi-v3.json), by type and shape, with no invented keys.

Why: blingsync is built and tested against the simulator; if the simulator drifted from Bling,
blingsync would be right against a fiction and wrong in production. Each test drives one resource
through the real OAuth flow and the real routes (in-process, through httpx's ASGI transport),
over every status blingsync must handle, and reports every violation with its JSON pointer
(see openapi.py for the checker and for how the document's own mistakes are worked around).
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openapi import (
    API_PREFIX,
    CheckedClient,
    Contract,
    Violation,
    authorization_code,
    checked_client,
    first_client,
    oauth_token,
    summarize,
    token_request,
    token_violations,
)

from blingsync.simulator.app import Simulator
from blingsync.simulator.lifecycle import InvalidTransition
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.model import Company, Modelo, NfeSituacao, Note, Scope

NFE_SITUACOES = range(1, 12)  # the /nfe enum: 1 Pendente ... 11 Bloqueada
NFCE_FILTER_SITUACOES = range(1, 13)  # the /nfce filter enum adds 12 (bling-api.md §4.3)
DATETIME = "%Y-%m-%d %H:%M:%S"
MISSING_ID = 9_999_999_999_999

Connect = Callable[[Simulator], Awaitable[httpx.AsyncClient]]


# --- the world --------------------------------------------------------------------------------


def first_company(sim: Simulator) -> Company:
    """The account whose app the `api` fixture authorises (the first one /_sim/accounts lists)."""
    return sim.state.world.companies[0]


@pytest.fixture(scope="module")
def notes(sim: Simulator) -> dict[tuple[Modelo, int], Note]:
    """One note of the first account per (model, situation): from the seeded history when it has
    one, else made through the simulator's own lifecycle (a few situations are rare). Situations
    the simulator cannot reach are left out; test_every_situation_is_covered reports them."""
    company = first_company(sim)
    found: dict[tuple[Modelo, int], Note] = {}
    for note in sorted(company.notes.values(), key=lambda n: n.id):
        found.setdefault((note.modelo, int(note.situacao)), note)
    for modelo in (Modelo.NFE, Modelo.NFCE):
        for situacao in NFE_SITUACOES:
            if (modelo, situacao) not in found:
                try:
                    note = sim.state.create_note(company, modelo=modelo, situacao=NfeSituacao(situacao))
                except InvalidTransition:
                    continue
                found[(modelo, situacao)] = note
    if not any(n.modelo == Modelo.NFE and n.tipo == 0 for n in company.notes.values()):
        sim.state.create_note(company, tipo=0, situacao=NfeSituacao.EMITIDA_DANFE)
    return found


def nfe(notes: dict[tuple[Modelo, int], Note], situacao: NfeSituacao) -> Note:
    note = notes.get((Modelo.NFE, int(situacao)))
    if note is None:
        pytest.fail(f"the simulator has no NF-e in situation {situacao.name}")
    return note


def data_of(response: httpx.Response) -> Any:
    return response.json()["data"]


async def page_through(api: CheckedClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a list until the empty one (Bling gives no paging metadata, §3.3); each page
    goes through the contract, the empty one too."""
    items: list[dict[str, Any]] = []
    for page in range(1, 50):
        batch = data_of(await api.call("GET", path, 200, params={**params, "pagina": page}))
        if not batch:
            return items
        items += batch
    pytest.fail(f"{path} did not reach an empty page in 50 pages")


# --- the checker itself -----------------------------------------------------------------------


def test_document_errata_are_patched(contract: Contract) -> None:
    """The §14 slips that would fail every real answer are gone, and the other patches ran;
    if a newer document fixes them, this says so instead of hiding it."""
    stripped = contract.stripped_required
    assert stripped["#/components/schemas/NotasFiscaisDadosGetDTO"] == ["data", "valor"]
    assert stripped["#/components/schemas/NotasFiscaisTransporteGetDTO"] == ["numero", "serie", "data"]
    assert stripped["#/components/schemas/VendasItemDTO"] == ["valorLista"]
    assert contract.doc.at("#/components/schemas/ErrorResponse")["required"] == ["error"]
    assert "invalid_token" in contract.doc.at("#/components/schemas/Error/properties/type/enum")
    assert len(contract.patches) == 4


def test_checker_flags_planted_mistakes(contract: Contract) -> None:
    """The checker is strict where it matters: wrong types, enums and formats, a missing required
    field, and keys the schema does not declare (the document never closes its objects), while a
    writeOnly field Bling really sends (contato.tipoPessoa) and readOnly fields pass."""
    good: dict[str, Any] = {
        "id": 1, "tipo": 1, "situacao": 6, "numero": "000001", "dataEmissao": "2026-11-19 10:00:00",
        "dataOperacao": "2026-11-19 10:00:00", "chaveAcesso": "3" * 44,
        "contato": {"id": 2, "nome": "A", "tipoPessoa": "F", "numeroDocumento": "1", "contribuinte": 9},
        "naturezaOperacao": {"id": 3}, "loja": {"id": 0},
    }
    pointer = "#/paths/~1nfe/get/responses/200/content/application~1json/schema"

    def check(body: Any) -> list[Violation]:
        return contract.check_body(body, pointer, operation="GET /nfe", status=200, request="planted")

    assert check({"data": [good]}) == []
    bad = {
        **good, "id": "1", "situacao": 12, "dataEmissao": "2026-11-19T10:00:00Z", "invented": True,
        "contato": {**good["contato"], "extra": 1}, "naturezaOperacao": {},
    }
    found = {(v.pointer, v.keyword) for v in check({"data": [bad]})}
    assert found == {
        ("/data/0/id", "type"),
        ("/data/0/situacao", "enum"),
        ("/data/0/dataEmissao", "format"),
        ("/data/0/naturezaOperacao", "required"),
        ("/data/0/invented", "undeclared"),
        ("/data/0/contato/extra", "undeclared"),
    }


# --- OAuth --------------------------------------------------------------------------------------


async def test_token_answers(http: httpx.AsyncClient, contract: Contract) -> None:
    """The token answer is not in the document; its shape is §3.2/§10.7: access_token,
    expires_in 21600, token_type Bearer, scope (numeric ids), refresh_token, nothing else. The
    same for a refresh (which rotates the refresh token) and for a JWT token (enable-jwt: 1),
    which is 1,500-3,000 characters in three base64url parts (§3.2 step 6)."""
    _, client_id, secret = await first_client(http)
    problems: list[str] = []

    first = await oauth_token(http, client_id, secret)
    assert first.status_code == 200, first.text
    problems += [f"authorization_code: {p}" for p in token_violations(first.json())]

    refreshed = await token_request(
        http, client_id, secret,
        {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    problems += [f"refresh_token: {p}" for p in token_violations(refreshed.json())]
    assert refreshed.json()["refresh_token"] != first.json()["refresh_token"], "refresh must rotate"

    jwt = await oauth_token(http, client_id, secret, jwt=True)
    assert jwt.status_code == 200, jwt.text
    problems += [f"enable-jwt: {p}" for p in token_violations(jwt.json())]
    access = jwt.json()["access_token"]
    if not 1500 <= len(access) <= 3000 or len(access.split(".")) != 3:
        problems.append(f"enable-jwt: access_token is not a 1,500-3,000 character JWT ({len(access)})")

    assert not problems, "\n".join(problems)


async def test_token_endpoint_errors(http: httpx.AsyncClient, contract: Contract) -> None:
    """Token-endpoint refusals use the v3 error envelope with Bling's OAuth types (§3.2): wrong
    client secret, a code used twice, a missing Basic header."""
    _, client_id, secret = await first_client(http)
    found: list[Violation] = []

    async def refused(answer: httpx.Response, status: int, type_: str) -> None:
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["error"]["type"] == type_, body
        found.extend(contract.check_body(
            body, "#/components/schemas/ErrorResponse", operation="POST /oauth/token",
            status=status, request=f"POST {answer.request.url.path} ({type_})",
        ))

    code = await authorization_code(http, client_id)
    form = {"grant_type": "authorization_code", "code": code}
    await refused(await token_request(http, client_id, "wrong" + secret, form), 401, "invalid_client")
    assert (await token_request(http, client_id, secret, form)).status_code == 200
    await refused(await token_request(http, client_id, secret, form), 400, "VALIDATION_ERROR")
    await refused(await http.post(f"{API_PREFIX}/oauth/token", data=form), 400, "invalid_request")
    assert not found, "\n".join(summarize(found))


# --- NF-e ---------------------------------------------------------------------------------------


def test_every_situation_is_covered(notes: dict[tuple[Modelo, int], Note]) -> None:
    """The detail tests below see a note in every v3 situation (NF-e and NFC-e), pending ones
    without a chave included; a situation the simulator cannot produce is a gap to report."""
    missing = [
        f"{modelo.name} {NfeSituacao(s).name}"
        for modelo in (Modelo.NFE, Modelo.NFCE)
        for s in NFE_SITUACOES
        if (modelo, s) not in notes
    ]
    assert not missing, f"no note in situation(s): {', '.join(missing)}"


async def test_nfe_list(api: CheckedClient, sim: Simulator, notes: dict[tuple[Modelo, int], Note]) -> None:
    """GET /nfe: all pages, every situacao x tipo, the other documented filters, past the end."""
    company = first_company(sim)
    listed = await page_through(api, "/nfe", {})
    assert listed, "the first account lists no NF-e"
    non_empty = 0
    for situacao in NFE_SITUACOES:
        for tipo in ("0", "1"):
            items = data_of(await api.call("GET", "/nfe", 200, params={"situacao": situacao, "tipo": tipo}))
            assert all(i["situacao"] == situacao and i["tipo"] == int(tipo) for i in items)
            non_empty += bool(items)
    assert non_empty >= 5, "too few non-empty situacao x tipo lists to prove anything"

    own = [n for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1]
    sample = next(n for n in own if n.situacao == NfeSituacao.EMITIDA_DANFE)
    end = sample.emitted_at
    window = {
        "dataEmissaoInicial": (end - timedelta(days=30)).strftime(DATETIME),
        "dataEmissaoFinal": end.strftime(DATETIME),
    }
    filters: list[dict[str, Any]] = [
        {"pagina": 1, "limite": 5},
        {"limite": 100, "situacao": 6, "tipo": "1", **window},
        window,
        {"numero": sample.numero, "serie": sample.serie},
        {"chaveAcesso": sample.chave},
    ]
    with_store = next((n for n in own if n.numero_pedido_loja), None)
    if with_store is not None:
        filters.append({"numeroLoja": with_store.numero_pedido_loja, "situacao": int(with_store.situacao)})
    with_carrier = next((n for n in own if n.carrier), None)
    if with_carrier is not None and with_carrier.carrier is not None:
        filters.append({"idTransportador": with_carrier.carrier.id})
    for params in filters:
        assert data_of(await api.call("GET", "/nfe", 200, params=params)), f"no NF-e for {params}"
    assert data_of(await api.call("GET", "/nfe", 200, params={"pagina": 9999})) == []
    api.assert_clean()


async def test_nfe_detail(api: CheckedClient, sim: Simulator, notes: dict[tuple[Modelo, int], Note]) -> None:
    """GET /nfe/{id} for a note in every situation (a pending one has no chave yet), then for
    every other NF-e of the account, so every variant the generator makes is seen once."""
    for situacao in NFE_SITUACOES:
        note = notes.get((Modelo.NFE, situacao))
        if note is None:
            continue  # reported by test_every_situation_is_covered
        detail = data_of(await api.call("GET", f"/nfe/{note.id}", 200))
        assert detail["situacao"] == situacao
        if situacao == NfeSituacao.PENDENTE:
            assert detail["chaveAcesso"] == "", "a pending note has no chave"
    for note in first_company(sim).notes.values():
        if note.modelo == Modelo.NFE:
            await api.call("GET", f"/nfe/{note.id}", 200)
    api.assert_clean()


async def test_nfe_documents(api: CheckedClient, notes: dict[tuple[Modelo, int], Note]) -> None:
    """GET /nfe/documento/{chave}?formato=xml|pdf: base64(gzip(file)) (§4.6) for authorised
    notes; 400 for a bad format or key; 404 for a key of no authorised note."""
    for situacao in (NfeSituacao.AUTORIZADA, NfeSituacao.EMITIDA_DANFE):
        note = nfe(notes, situacao)
        for formato, magic in (("xml", b"<"), ("pdf", b"%PDF")):
            answer = await api.call("GET", f"/nfe/documento/{note.chave}", 200, params={"formato": formato})
            (document,) = data_of(answer)
            content = gzip.decompress(base64.b64decode(document["conteudo"], validate=True))
            assert content.lstrip().startswith(magic), f"{formato}: {content[:40]!r}"
    chave = nfe(notes, NfeSituacao.EMITIDA_DANFE).chave
    await api.call("GET", f"/nfe/documento/{chave}", 400, params={"formato": "html"},
                   documented_request=False)
    await api.call("GET", "/nfe/documento/123", 400, params={"formato": "xml"}, documented_request=False)
    await api.call("GET", f"/nfe/documento/{'9' * 44}", 404, params={"formato": "xml"})
    rejected = notes.get((Modelo.NFE, int(NfeSituacao.REJEITADA)))
    if rejected is not None and rejected.chave:
        await api.call("GET", f"/nfe/documento/{rejected.chave}", 404, params={"formato": "pdf"})
    api.assert_clean()


# --- NFC-e --------------------------------------------------------------------------------------


async def test_nfce(api: CheckedClient, sim: Simulator, notes: dict[tuple[Modelo, int], Note]) -> None:
    """GET /nfce (all pages, every documented situacao filter incl. 12) and GET /nfce/{id} for
    every NFC-e of the account."""
    await page_through(api, "/nfce", {})
    for situacao in NFCE_FILTER_SITUACOES:
        items = data_of(await api.call("GET", "/nfce", 200, params={"situacao": situacao}))
        assert all(i["situacao"] == situacao for i in items)
    sample = notes.get((Modelo.NFCE, int(NfeSituacao.EMITIDA_DANFE)))
    if sample is not None:
        assert data_of(await api.call("GET", "/nfce", 200, params={"chaveAcesso": sample.chave}))
        same = {"numero": sample.numero, "serie": sample.serie}
        assert data_of(await api.call("GET", "/nfce", 200, params=same))
    for note in first_company(sim).notes.values():
        if note.modelo == Modelo.NFCE:
            await api.call("GET", f"/nfce/{note.id}", 200)
    api.assert_clean()


# --- sales orders and situations --------------------------------------------------------------


async def test_orders(api: CheckedClient, sim: Simulator) -> None:
    """GET /pedidos/vendas (all pages, the documented filters) and GET /pedidos/vendas/{id} for
    every order of the account."""
    company = first_company(sim)
    assert await page_through(api, "/pedidos/vendas", {}), "the first account lists no order"
    order = max(company.orders.values(), key=lambda o: o.data)
    filters: list[dict[str, Any]] = [
        {"pagina": 1, "limite": 10},
        {"idsSituacoes[]": [str(s.id) for s in company.order_situations[:2]]},
        {"idsSituacoes[]": str(order.situacao_id)},
        {"dataInicial": (order.data - timedelta(days=30)).isoformat(), "dataFinal": order.data.isoformat()},
        {"dataAlteracaoInicial": (order.altered_at - timedelta(days=1)).strftime(DATETIME),
         "dataAlteracaoFinal": (order.altered_at + timedelta(days=1)).strftime(DATETIME)},
        {"dataPrevistaInicial": order.data_prevista.isoformat(),
         "dataPrevistaFinal": order.data_prevista.isoformat()},
        {"numero": order.numero},
        {"idContato": order.contato.id},
        {"idVendedor": order.vendedor_id},
    ]
    if order.store is not None:
        filters.append({"idLoja": order.store.id})
    if order.numero_loja:
        filters.append({"numerosLojas[]": [order.numero_loja]})
    for params in filters:
        assert data_of(await api.call("GET", "/pedidos/vendas", 200, params=params)), f"no order for {params}"
    assert data_of(await api.call("GET", "/pedidos/vendas", 200, params={"pagina": 9999})) == []
    for each in company.orders.values():
        await api.call("GET", f"/pedidos/vendas/{each.id}", 200)
    api.assert_clean()


async def test_order_situation_change(api: CheckedClient, sim: Simulator) -> None:
    """PATCH /pedidos/vendas/{id}/situacoes/{idSituacao}: 204 without a body, 400 for a situation
    the sales module does not have, 404 for an unknown order."""
    company = first_company(sim)
    order = next(iter(company.orders.values()))
    target = next(s for s in company.order_situations if s.id != order.situacao_id)
    await api.call("PATCH", f"/pedidos/vendas/{order.id}/situacoes/{target.id}", 204)
    detail = data_of(await api.call("GET", f"/pedidos/vendas/{order.id}", 200))
    assert detail["situacao"]["id"] == target.id
    await api.call("PATCH", f"/pedidos/vendas/{order.id}/situacoes/{MISSING_ID}", 400)
    await api.call("PATCH", f"/pedidos/vendas/{MISSING_ID}/situacoes/{target.id}", 404)
    api.assert_clean()


async def test_situation_modules(api: CheckedClient) -> None:
    """GET /situacoes/modulos and GET /situacoes/modulos/{id} for each module; 404 for an
    unknown module."""
    modules = data_of(await api.call("GET", "/situacoes/modulos", 200))
    assert any(m["nome"] == "Vendas" for m in modules)
    for module in modules:
        assert data_of(await api.call("GET", f"/situacoes/modulos/{module['id']}", 200))
    await api.call("GET", f"/situacoes/modulos/{MISSING_ID}", 404)
    api.assert_clean()


# --- logistics ----------------------------------------------------------------------------------


def _object_body(order_id: int, note_id: int) -> dict[str, Any]:
    """A create body with every field LogisticasObjetosDadosCreateRequestDTO requires."""
    return {
        "pedidoVenda": {"id": order_id},
        "notaFiscal": {"id": note_id},
        "servico": {"id": 12345678},
        **_update_body("BR123456789BR", 8),
    }


def _update_body(codigo: str, situacao: int) -> dict[str, Any]:
    """An update body with every field LogisticasObjetosUpdateRequestDTO requires."""
    return {
        "rastreamento": {
            "codigo": codigo, "descricao": "Objeto postado", "situacao": situacao,
            "origem": "São Paulo, SP", "destino": "Curitiba, PR",
            "ultimaAlteracao": "2026-11-20 10:00:00", "url": f"https://rastreio.example/{codigo}",
        },
        "dimensoes": {"peso": 1.25, "altura": 10, "largura": 20, "comprimento": 30, "diametro": 0},
        "embalagem": {"id": 0},
        "dataSaida": "2026-11-21",
        "prazoEntregaPrevisto": 5,
        "fretePrevisto": 19.9,
        "valorDeclarado": 120.5,
        "avisoRecebimento": False,
        "maoPropria": False,
    }


async def test_logistics_objects(
    api: CheckedClient, sim: Simulator, notes: dict[tuple[Modelo, int], Note]
) -> None:
    """POST /logisticas/objetos (201), GET and PUT /logisticas/objetos/{id}, DELETE (204), and
    their 400 and 404 answers; plus GET of the objects the seeded notes' transporte.volumes point
    to, which is how blingsync reaches them."""
    note = nfe(notes, NfeSituacao.EMITIDA_DANFE)
    order_id = note.order_id or next(iter(first_company(sim).orders))
    body = _object_body(order_id, note.id)
    created = data_of(await api.call("POST", "/logisticas/objetos", 201, json_body=body))
    path = f"/logisticas/objetos/{created['id']}"
    await api.call("GET", path, 200)
    updated = data_of(await api.call("PUT", path, 200, json_body=_update_body("BR987654321BR", 0)))
    assert updated["id"] == created["id"]
    assert data_of(await api.call("GET", path, 200))["rastreamento"]["codigo"] == "BR987654321BR"

    await api.call("POST", "/logisticas/objetos", 400, json_body=_object_body(MISSING_ID, note.id))
    await api.call("POST", "/logisticas/objetos", 400, documented_request=False)  # empty body
    await api.call("PUT", path, 400, json_body={"rastreamento": {"situacao": 42}}, documented_request=False)
    await api.call("PUT", f"/logisticas/objetos/{MISSING_ID}", 404, json_body=_update_body("X", 8))

    await api.call("DELETE", path, 204)
    await api.call("GET", path, 404)
    await api.call("DELETE", path, 404)

    volumes = {v.logistic_object_id for n in first_company(sim).notes.values() for v in n.volumes}
    seeded = sorted(volumes & set(first_company(sim).logistic_objects))
    for object_id in seeded:
        await api.call("GET", f"/logisticas/objetos/{object_id}", 200)
    api.assert_clean()
    assert seeded, "no seeded logistics object is referenced by a note's transporte.volumes"


# --- company ------------------------------------------------------------------------------------


async def test_company_basic_data(api: CheckedClient) -> None:
    """GET /empresas/me/dados-basicos: the account's id (32 hex), name, CNPJ, e-mail, contract date."""
    data = data_of(await api.call("GET", "/empresas/me/dados-basicos", 200))
    assert len(data["id"]) == 32
    api.assert_clean()


# --- error answers ------------------------------------------------------------------------------


def _read_operations(sim: Simulator, notes: dict[tuple[Modelo, int], Note]) -> Iterator[tuple[str, str]]:
    """Every operation the simulator serves, with real ids, for the auth sweeps."""
    company = first_company(sim)
    note = nfe(notes, NfeSituacao.EMITIDA_DANFE)
    nfce = next(n for n in company.notes.values() if n.modelo == Modelo.NFCE)
    order = next(iter(company.orders.values()))
    yield "GET", "/nfe"
    yield "GET", f"/nfe/{note.id}"
    yield "GET", f"/nfe/documento/{note.chave}?formato=xml"
    yield "GET", "/nfce"
    yield "GET", f"/nfce/{nfce.id}"
    yield "GET", "/pedidos/vendas"
    yield "GET", f"/pedidos/vendas/{order.id}"
    yield "PATCH", f"/pedidos/vendas/{order.id}/situacoes/{order.situacao_id}"
    yield "GET", "/situacoes/modulos"
    yield "GET", "/situacoes/modulos/98310"
    yield "POST", "/logisticas/objetos"
    yield "GET", f"/logisticas/objetos/{MISSING_ID}"
    yield "PUT", f"/logisticas/objetos/{MISSING_ID}"
    yield "DELETE", f"/logisticas/objetos/{MISSING_ID}"
    yield "GET", "/empresas/me/dados-basicos"


async def test_not_found(api: CheckedClient) -> None:
    """404 RESOURCE_NOT_FOUND for unknown ids on every by-id read."""
    for path in ("/nfe", "/nfce", "/pedidos/vendas", "/logisticas/objetos", "/situacoes/modulos"):
        answer = await api.call("GET", f"{path}/{MISSING_ID}", 404)
        assert answer.json()["error"]["type"] == "RESOURCE_NOT_FOUND"
    api.assert_clean()


async def test_validation_errors(api: CheckedClient) -> None:
    """400 VALIDATION_ERROR with `fields` for a period over one year (§3.3) on each list, and
    for out-of-range filters."""
    two_years = [
        ("/nfe", {"dataEmissaoInicial": "2024-11-01 00:00:00", "dataEmissaoFinal": "2026-11-01 00:00:00"}),
        ("/nfce", {"dataEmissaoInicial": "2024-11-01 00:00:00", "dataEmissaoFinal": "2026-11-01 00:00:00"}),
        ("/pedidos/vendas", {"dataInicial": "2024-11-01", "dataFinal": "2026-11-01"}),
        ("/pedidos/vendas", {"dataAlteracaoInicial": "2024-11-01 00:00:00",
                             "dataAlteracaoFinal": "2026-11-01 00:00:00"}),
    ]
    for path, params in two_years:
        error = (await api.call("GET", path, 400, params=params)).json()["error"]
        assert error["type"] == "VALIDATION_ERROR" and error["fields"], error
    out_of_range: list[dict[str, Any]] = [{"situacao": 99}, {"tipo": "2"}, {"limite": 0}]
    for wrong in out_of_range:
        error = (await api.call("GET", "/nfe", 400, params=wrong, documented_request=False)).json()["error"]
        assert error["type"] == "VALIDATION_ERROR", error
    api.assert_clean()


async def test_invalid_token(
    http: httpx.AsyncClient, contract: Contract, sim: Simulator, notes: dict[tuple[Modelo, int], Note]
) -> None:
    """401 invalid_token on every operation, without a token and with an unknown one."""
    for token in (None, "not-a-token"):
        api = CheckedClient(http, contract, token)
        for method, path in _read_operations(sim, notes):
            answer = await api.call(method, path, 401, documented_request=False)
            assert answer.json()["error"]["type"] == "invalid_token"
        api.assert_clean()


async def test_expired_token(contract: Contract, new_sim: Callable[..., Simulator], connect: Connect) -> None:
    """401 invalid_token "...has expired" once the 6-hour access token runs out."""
    other = new_sim(accounts=1, invoices=20)
    http = await connect(other)
    api = await checked_client(http, contract)
    await api.call("GET", "/empresas/me/dados-basicos", 200)
    moved = await http.post("/_sim/clock/advance", json={"seconds": 21601})
    assert moved.status_code == 200, moved.text
    error = (await api.call("GET", "/empresas/me/dados-basicos", 401)).json()["error"]
    assert error["type"] == "invalid_token" and "expired" in error["description"], error
    api.assert_clean()


async def test_insufficient_scope(
    http: httpx.AsyncClient, contract: Contract, sim: Simulator, notes: dict[tuple[Modelo, int], Note]
) -> None:
    """403 insufficient_scope on every operation outside an app's scopes (an app with NF-e only)."""
    client = sim.state.add_client(first_company(sim), frozenset({Scope.NFE}))
    api = await checked_client(http, contract, client.client_id, client.client_secret)
    await api.call("GET", "/nfe", 200)
    for method, path in _read_operations(sim, notes):
        if path.startswith("/nfe"):
            continue
        answer = await api.call(method, path, 403, documented_request=False)
        assert answer.json()["error"]["type"] == "insufficient_scope"
    api.assert_clean()


@pytest.mark.parametrize(
    ("limits", "period", "limit"),
    [
        (LimitSettings(per_second=3), "second", 3),
        (LimitSettings(per_second=1000, per_day=2), "day", 2),
    ],
    ids=["per-second", "per-day"],
)
async def test_too_many_requests(
    contract: Contract, new_sim: Callable[..., Simulator], connect: Connect,
    limits: LimitSettings, period: str, limit: int,
) -> None:
    """429 TOO_MANY_REQUESTS with Bling's `limit` and `period` (§3.4), from a simulator whose
    limits are on."""
    other = new_sim(accounts=1, invoices=20, limits=limits)
    api = await checked_client(await connect(other), contract)
    for _ in range(limit):
        await api.call("GET", "/empresas/me/dados-basicos", 200)
    error = (await api.call("GET", "/empresas/me/dados-basicos", 429)).json()["error"]
    assert error["type"] == "TOO_MANY_REQUESTS", error
    assert (error.get("limit"), error.get("period")) == (limit, period), error
    api.assert_clean()
