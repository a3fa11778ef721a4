"""The simulator's legacy API v2 (/Api/v2), spoken to over HTTP as an old integration would:
apikey, `/page=N/json/`, `filters`, the `retorno` envelope and its three error shapes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from blingsync.simulator.app import Simulator, build
from blingsync.simulator.clock import ManualClock
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.model import (
    BRT,
    V2_SITUACAO,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    V2Permission,
)

ANCHOR = datetime(2026, 11, 20, tzinfo=BRT)
NFE_NS = "{http://www.portalfiscal.inf.br/nfe}"


def make_sim(**kwargs: Any) -> Simulator:
    params: dict[str, Any] = {
        "seed": 3, "accounts": 2, "invoices": 150, "anchor": ANCHOR,
        "limits": LimitSettings(enabled=False),
    }
    params.update(kwargs)
    return build(**params)


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as c:
        yield c


@pytest.fixture
def company(sim: Simulator) -> Company:
    return sim.state.world.companies[0]


@pytest.fixture
def key(company: Company) -> str:
    return company.api_users[0].apikey


async def get(client: httpx.AsyncClient, path: str, key: str | None, **params: str) -> httpx.Response:
    if key is not None:
        params["apikey"] = key
    return await client.get(f"/Api/v2/{path}", params=params)


def erro(body: dict[str, Any]) -> dict[str, Any]:
    """The single error of a v2 answer, whichever of the array/object shapes it uses."""
    erros = body["retorno"]["erros"]
    if isinstance(erros, list):
        assert len(erros) == 1
        return dict(erros[0]["erro"])
    return dict(erros["erro"])


def assert_cod14(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.json() == {"retorno": {"erros": [{"erro": {
        "cod": 14, "msg": "A informacao desejada nao foi encontrada",
    }}]}}


async def all_pages(
    client: httpx.AsyncClient, resource: str, key: str, singular: str, plural: str,
    **params: str,
) -> list[dict[str, Any]]:
    """Page until cod 14, as v2 clients did; checks every page on the way."""
    out: list[dict[str, Any]] = []
    for page in range(1, 100):
        response = await get(client, f"{resource}/page={page}/json/", key, **params)
        body = response.json()
        if "erros" in body["retorno"]:
            assert_cod14(response)
            return out
        assert response.status_code == 200
        items = body["retorno"][plural]
        assert 1 <= len(items) <= 100
        if len(items) < 100:
            # A short page is the last one: the next must say cod 14.
            nxt = await get(client, f"{resource}/page={page + 1}/json/", key, **params)
            assert_cod14(nxt)
            return out + [i[singular] for i in items]
        out.extend(i[singular] for i in items)
    raise AssertionError("never reached cod 14")


def nfes(company: Company, **kw: Any) -> list[Note]:
    return [
        n for n in company.notes.values()
        if n.modelo == Modelo.NFE and all(getattr(n, k) == v for k, v in kw.items())
    ]


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, f"{path}[]")
    else:
        yield path, value


def br(d: datetime) -> str:
    return d.strftime("%d/%m/%Y")


# --- NF-e lists ----------------------------------------------------------------------------


async def test_pages_of_100_until_cod14(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais")
    expected = nfes(company)
    assert len(expected) > 100  # the test needs at least two pages
    assert len(notes) == len(expected)
    assert len({n["id"] for n in notes}) == len(notes)
    assert {n["id"] for n in notes} == {str(n.id) for n in expected}
    # Newest emission first, then id: stable across calls.
    keys = [(n["dataEmissao"], int(n["id"])) for n in notes]
    assert keys == sorted(keys, reverse=True)
    first = await get(client, "notasfiscais/json/", key)
    assert [n["notafiscal"]["id"] for n in first.json()["retorno"]["notasfiscais"]] == [
        n["id"] for n in notes[:100]
    ]


async def test_path_without_final_slash(client: httpx.AsyncClient, key: str) -> None:
    with_slash = await get(client, "notasfiscais/page=1/json/", key)
    without = await get(client, "notasfiscais/page=1/json", key)
    assert without.status_code == 200
    assert without.json() == with_slash.json()


async def test_situacao_7_is_emitida_danfe(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais",
                            filters="situacao[7];tipo[S]")
    expected = nfes(company, situacao=NfeSituacao.EMITIDA_DANFE, tipo=1)
    assert expected
    assert len(notes) == len(expected)
    assert {n["situacao"] for n in notes} == {"Emitida DANFE"}
    assert {n["tipo"] for n in notes} == {"S"}


@pytest.mark.parametrize(("situacao", "code_text"), [
    (s, V2_SITUACAO[s]) for s in sorted(V2_SITUACAO, key=lambda s: V2_SITUACAO[s][0])
])
async def test_every_situacao_code_maps_to_its_text(
    client: httpx.AsyncClient, company: Company, key: str,
    situacao: NfeSituacao, code_text: tuple[int, str],
) -> None:
    code, text = code_text
    expected = nfes(company, situacao=situacao)
    response = await get(client, "notasfiscais/page=1/json/", key, filters=f"situacao[{code}]")
    if not expected:
        assert_cod14(response)
        return
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais",
                            filters=f"situacao[{code}]")
    assert len(notes) == len(expected)
    assert {n["situacao"] for n in notes} == {text}


async def test_situacao_0_is_all_and_2_is_nothing(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais",
                            filters="situacao[0]")
    assert len(notes) == len(nfes(company))
    # 2 "Emitida" has no counterpart in the simulated (v3) world.
    assert_cod14(await get(client, "notasfiscais/json/", key, filters="situacao[2]"))


def test_situacoes_present_in_the_world(company: Company) -> None:
    # Guards the parametrised test above from passing vacuously.
    assert {NfeSituacao.EMITIDA_DANFE, NfeSituacao.AUTORIZADA} <= {
        n.situacao for n in nfes(company)
    }


async def test_tipo_filter(client: httpx.AsyncClient, company: Company, key: str) -> None:
    saidas = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais",
                             filters="tipo[S]")
    assert len(saidas) == len(nfes(company, tipo=1))
    assert {n["tipo"] for n in saidas} == {"S"}
    entradas = nfes(company, tipo=0)
    response = await get(client, "notasfiscais/json/", key, filters="tipo[E]")
    if entradas:
        got = response.json()["retorno"]["notasfiscais"]
        assert len(got) == len(entradas)
        assert {n["notafiscal"]["tipo"] for n in got} == {"E"}
    else:
        assert_cod14(response)


async def test_data_emissao_filter(client: httpx.AsyncClient, company: Company, key: str) -> None:
    ordered = sorted(nfes(company), key=lambda n: n.emitted_at)
    start = ordered[len(ordered) // 3].emitted_at
    end = ordered[2 * len(ordered) // 3].emitted_at
    # Date-only bounds: the end date covers its whole day.
    expected = [
        n for n in ordered
        if start.date() <= n.emitted_at.date() <= end.date()
    ]
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais",
                            filters=f"dataEmissao[{br(start)} TO {br(end)}]")
    assert {n["id"] for n in notes} == {str(n.id) for n in expected}

    # With times: exactly one note's second.
    target = ordered[len(ordered) // 2]
    at = target.emitted_at.strftime("%d/%m/%Y %H:%M:%S")
    response = await get(client, "notasfiscais/json/", key,
                         filters=f" dataEmissao[{at} TO {at}] ;  situacao[0] ; ")
    got = {n["notafiscal"]["id"] for n in response.json()["retorno"]["notasfiscais"]}
    assert str(target.id) in got
    assert all(
        n.emitted_at.replace(microsecond=0) == target.emitted_at.replace(microsecond=0)
        for n in ordered if str(n.id) in got
    )

    # A window with no note at all ends at once with cod 14.
    assert_cod14(await get(client, "notasfiscais/json/", key,
                           filters="dataEmissao[01/01/2001 TO 31/01/2001]"))


async def test_combined_filters(client: httpx.AsyncClient, company: Company, key: str) -> None:
    ordered = sorted(nfes(company), key=lambda n: n.emitted_at)
    start, end = ordered[0].emitted_at, ordered[len(ordered) // 2].emitted_at
    expected = [
        n for n in ordered
        if n.situacao == NfeSituacao.EMITIDA_DANFE and n.tipo == 1
        and start.date() <= n.emitted_at.date() <= end.date()
    ]
    response = await get(
        client, "notasfiscais/json/", key,
        filters=f"dataEmissao[{br(start)} TO {br(end)}]; situacao[7]; tipo[S]",
    )
    if expected:
        got = response.json()["retorno"]["notasfiscais"]
        assert {n["notafiscal"]["id"] for n in got} == {str(n.id) for n in expected}
    else:
        assert_cod14(response)


# --- the notafiscal object -----------------------------------------------------------------


async def test_notafiscal_scalars_are_strings(
    client: httpx.AsyncClient, key: str
) -> None:
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais")
    checked = 0
    for note in notes:
        for path, value in leaves(note):
            if path.endswith((".avisoRecebimento", ".maoPropria")):
                assert isinstance(value, bool), path  # as in the captured fixture
            else:
                assert isinstance(value, str), (path, value)
                checked += 1
    assert checked > 1000


async def test_notafiscal_fields(client: httpx.AsyncClient, company: Company, key: str) -> None:
    notes = await all_pages(client, "notasfiscais", key, "notafiscal", "notasfiscais")
    by_id = {str(n.id): n for n in nfes(company)}
    for nf in notes:
        note = by_id[nf["id"]]
        assert re.fullmatch(r"\d{6}", nf["numero"])
        assert int(nf["numero"]) == note.numero
        assert nf["serie"] == str(note.serie)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", nf["dataEmissao"])
        assert re.fullmatch(r"\d+\.\d\d", nf["valorNota"])
        assert nf["valorNota"] == f"{note.valor_nota:.2f}"
        assert nf["situacao"] == V2_SITUACAO[note.situacao][1]
        cliente = nf["cliente"]
        assert cliente["cnpj"].isdigit()
        assert nf["cnpj"] == cliente["cnpj"]
        assert nf["contato"] == cliente["nome"]
        assert re.fullmatch(r"\d\d\.\d{3}-\d{3}", cliente["cep"])
        assert re.fullmatch(r"\d\d\.\d{3}-\d{3}", nf["transporte"]["enderecoEntrega"]["cep"])
        assert nf["cfops"] == [i.cfop for i in note.items]
        assert all(re.fullmatch(r"\d{4}", c) for c in nf["cfops"])
        assert nf["tipoIntegracao"] == (
            "Api" if note.store is None else "".join(note.store.nome.split())
        )
        assert nf["transporte"]["tipo_frete"] in {"R", "D", "T", "3", "4", "S"}
        assert nf["loja"] == (str(note.store.id) if note.store else "0")
        if note.is_authorised:
            assert nf["xml"].startswith("http://sim/relatorios/nfe.xml.php?s&chaveAcesso=")
            assert nf["chaveAcesso"] == note.chave
            assert len(note.chave) == 44
        else:
            assert nf["xml"] == ""
        if note.danfe_hash:
            assert nf["linkDanfe"] == f"http://sim/doc.view.php?id={note.danfe_hash}"
            assert nf["linkPDF"] == f"http://sim/doc.view.php?PDF=true&id={note.danfe_hash}"
        codes = nf["codigosRastreamento"]
        assert codes == [] or set(codes) == {"codigoRastreamento"}
        for vol in nf["transporte"].get("volumes", []):
            assert set(vol) == {"volume"}
            assert re.fullmatch(r"\d+\.\d{3}", vol["volume"]["dimensoes"]["peso"])
    assert any(n["transporte"].get("volumes") for n in notes)


async def test_xml_link_serves_the_notes_xml(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    response = await get(client, "notasfiscais/json/", key, filters="situacao[7]")
    nf = response.json()["retorno"]["notasfiscais"][0]["notafiscal"]
    url = urlsplit(nf["xml"])
    xml = await client.get(f"{url.path}?{url.query}")
    assert xml.status_code == 200
    root = ElementTree.fromstring(xml.content)
    assert root.findtext(f".//{NFE_NS}chNFe") == nf["chaveAcesso"]
    # A tampered signature is refused.
    bad = await client.get(f"{url.path}?{url.query[:-4]}0000")
    assert bad.status_code == 403


async def test_one_note_by_numero_and_serie(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    note = next(n for n in nfes(company) if n.situacao == NfeSituacao.EMITIDA_DANFE)
    response = await get(client, f"notafiscal/{note.numero:06d}/{note.serie}/json/", key)
    assert response.status_code == 200
    items = response.json()["retorno"]["notasfiscais"]
    assert len(items) == 1
    assert items[0]["notafiscal"]["id"] == str(note.id)
    unpadded = await get(client, f"notafiscal/{note.numero}/{note.serie}/json", key)
    assert unpadded.json() == response.json()
    assert_cod14(await get(client, "notafiscal/999999/1/json/", key))
    assert_cod14(await get(client, f"notafiscal/{note.numero}/77/json/", key))


# --- NFC-e ---------------------------------------------------------------------------------


async def test_nfce_list_comes_under_notasfiscais(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    expected = [n for n in company.notes.values() if n.modelo == Modelo.NFCE]
    response = await get(client, "nfces/json/", key)
    if not expected:
        assert_cod14(response)
        return
    notes = await all_pages(client, "nfces", key, "notafiscal", "notasfiscais")
    assert {n["id"] for n in notes} == {str(n.id) for n in expected}
    one = expected[0]
    single = await get(client, f"nfce/{one.numero}/{one.serie}/json/", key)
    assert single.json()["retorno"]["notasfiscais"][0]["notafiscal"]["id"] == str(one.id)
    # An NF-e is never found through the NFC-e lookup.
    nfe = nfes(company)[0]
    if not any((n.numero, n.serie) == (nfe.numero, nfe.serie) for n in expected):
        assert_cod14(await get(client, f"nfce/{nfe.numero}/{nfe.serie}/json/", key))


async def test_nfce_date_filter_leaves_cancelled_out(
    client: httpx.AsyncClient, sim: Simulator, company: Company, key: str
) -> None:
    nfce = sim.state.create_note(company, modelo=Modelo.NFCE, situacao=NfeSituacao.CANCELADA)
    day = br(nfce.emitted_at)
    dated = await get(client, "nfces/json/", key, filters=f"dataEmissao[{day} TO {day}]")
    ids = (
        {n["notafiscal"]["id"] for n in dated.json()["retorno"]["notasfiscais"]}
        if "notasfiscais" in dated.json()["retorno"] else set()
    )
    assert str(nfce.id) not in ids
    explicit = await get(client, "nfces/json/", key,
                         filters=f"dataEmissao[{day} TO {day}];situacao[3]")
    got = {n["notafiscal"]["id"] for n in explicit.json()["retorno"]["notasfiscais"]}
    assert str(nfce.id) in got


# --- errors and guards ---------------------------------------------------------------------


async def test_invalid_or_missing_key(client: httpx.AsyncClient) -> None:
    for key in (None, "", "0" * 72):
        response = await get(client, "notasfiscais/json/", key)
        assert response.status_code == 401
        assert response.json() == {"retorno": {"erros": [{"erro": {
            "cod": 3, "msg": "API Key invalida",
        }}]}}


async def test_key_without_notas_fiscais(
    client: httpx.AsyncClient, sim: Simulator, company: Company
) -> None:
    user = sim.state.add_api_user(
        company, frozenset({V2Permission.PEDIDOS_VENDA, V2Permission.NFCE})
    )
    refused = await get(client, "notasfiscais/json/", user.apikey)
    assert refused.status_code == 403
    assert erro(refused.json()) == {
        "cod": 9, "msg": "Usuário sem permissão de acesso ao recurso: Notas Fiscais",
    }
    single = await get(client, "notafiscal/1/1/json/", user.apikey)
    assert single.status_code == 403
    orders = await get(client, "pedidos/json/", user.apikey)
    assert orders.status_code == 200
    assert orders.json()["retorno"]["pedidos"]
    situations = await get(client, "situacao/Vendas/json/", user.apikey)
    assert situations.status_code == 200
    counters = sim.state.counters[company.id]
    assert counters.errors["GET /Api/v2/notasfiscais 403"] == 1
    assert counters.requests["GET /Api/v2/pedidos"] == 1


async def test_key_without_nfce_or_orders(
    client: httpx.AsyncClient, sim: Simulator, company: Company
) -> None:
    user = sim.state.add_api_user(company, frozenset({V2Permission.NOTAS_FISCAIS}))
    nfce = await get(client, "nfces/json/", user.apikey)
    assert nfce.status_code == 403
    assert erro(nfce.json())["msg"].endswith("Nota fiscal de consumidor eletrônica (NFC-e)")
    orders = await get(client, "pedidos/json/", user.apikey)
    assert orders.status_code == 403
    assert erro(orders.json())["msg"].endswith(": Pedidos de Venda")
    situations = await get(client, "situacao/Vendas/json/", user.apikey)
    assert situations.status_code == 403
    assert (await get(client, "notasfiscais/json/", user.apikey)).status_code == 200


async def test_discontinued_answers_before_the_key(
    client: httpx.AsyncClient, sim: Simulator, key: str
) -> None:
    sim.state.v2_discontinued = True
    for apikey in (key, "wrong", None):
        response = await get(client, "notasfiscais/json/", apikey)
        assert response.status_code == 410
        assert "descontinuada" in erro(response.json())["msg"]
    assert (await client.get("/Api/v2/nada/json/")).status_code == 410
    assert sum(sim.state.counters[sim.state.world.companies[0].id].requests.values()) == 0
    sim.state.v2_discontinued = False
    assert (await get(client, "notasfiscais/json/", key)).status_code == 200


async def test_rate_limit_is_cod_18_and_shared_with_v3() -> None:
    clock = ManualClock(start=ANCHOR.timestamp())
    sim = make_sim(limits=LimitSettings(), clock=clock)
    company = sim.state.world.companies[0]
    key = company.api_users[0].apikey
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        for _ in range(3):
            assert (await get(client, "notasfiscais/json/", key)).status_code == 200
        refused = await get(client, "pedidos/json/", key)
        assert refused.status_code == 429
        assert refused.json() == {"retorno": {"erros": {"erro": {
            "cod": 18,
            "msg": "O limite de requisições por segundo foi atingido, tente novamente mais tarde.",
        }}}}
        # Another account is not affected.
        other = sim.state.world.companies[1].api_users[0].apikey
        assert (await get(client, "notasfiscais/json/", other)).status_code == 200
        clock.advance(1.0)
        assert (await get(client, "pedidos/json/", key)).status_code == 200
        # The same per-account counter as v3: 4 accepted requests today.
        assert sim.state.limiter.used_today(company.id) == 4
        assert sim.state.counters[company.id].rate_limited == 1


async def test_daily_quota_message() -> None:
    clock = ManualClock(start=ANCHOR.timestamp())
    sim = make_sim(limits=LimitSettings(per_day=2), clock=clock)
    key = sim.state.world.companies[0].api_users[0].apikey
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        for _ in range(2):
            assert (await get(client, "pedidos/json/", key)).status_code == 200
            clock.advance(2.0)
        refused = await get(client, "pedidos/json/", key)
        assert refused.status_code == 429
        assert erro(refused.json()) == {
            "cod": 18, "msg": "O limite de requisições por dia foi atingido, tente novamente amanhã.",
        }
        assert isinstance(refused.json()["retorno"]["erros"], dict)


async def test_injected_429_burst_answers_cod_18() -> None:
    sim = make_sim(faults=FaultSpec.parse("429=1,burst=2"))
    company = sim.state.world.companies[0]
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        refused = await get(client, "notasfiscais/json/", company.api_users[0].apikey)
    assert refused.status_code == 429
    assert erro(refused.json())["cod"] == 18
    assert isinstance(refused.json()["retorno"]["erros"], dict)
    assert sim.state.counters[company.id].rate_limited == 1


@pytest.mark.parametrize("filters", [
    "situacao7",
    "situacao[7",
    "situacao[x]",
    "situacao[99]",
    "situacao[]",
    "tipo[X]",
    "foo[1]",
    "dataEmissao[32/13/2026 TO 01/01/2027]",
    "dataEmissao[01/11/2026 TO]",
    "dataEmissao[2026-11-01 TO 2026-11-20]",
    "dataEmissao[20/11/2026 TO 01/11/2026]",
    "dataEmissao[01/11/2026 TO 02/11/2026 TO 03/11/2026]",
    "dataEmissao[01/11/2026 25:00:00 TO 02/11/2026]",
    "situacao[7];;tipo[S];garbage",
])
async def test_malformed_filters_get_a_v2_error(
    client: httpx.AsyncClient, key: str, filters: str
) -> None:
    response = await get(client, "notasfiscais/page=1/json/", key, filters=filters)
    assert response.status_code == 400
    error = erro(response.json())
    assert error["cod"] == 10
    assert error["msg"]


@pytest.mark.parametrize("path", [
    "notasfiscais/page=0/json/", "notasfiscais/page=abc/json/", "pedidos/page=-1/json/",
])
async def test_bad_page_numbers(client: httpx.AsyncClient, key: str, path: str) -> None:
    response = await get(client, path, key)
    assert response.status_code == 400
    assert erro(response.json())["cod"] == 10


async def test_xml_format_is_refused_clearly(client: httpx.AsyncClient, key: str) -> None:
    response = await get(client, "notasfiscais/xml/", key)
    assert response.status_code == 400
    assert "json" in erro(response.json())["msg"]


async def test_unknown_path(client: httpx.AsyncClient, key: str) -> None:
    response = await get(client, "produtos/json/", key)
    assert response.status_code == 404
    assert erro(response.json())["cod"] == 1


# --- orders --------------------------------------------------------------------------------


async def test_orders_paging_and_filters(
    client: httpx.AsyncClient, company: Company, key: str
) -> None:
    everything = await all_pages(client, "pedidos", key, "pedido", "pedidos")
    assert len(everything) == len(company.orders)
    orders = sorted(company.orders.values(), key=lambda o: (o.data, o.id))

    situation = orders[0].situacao_id
    by_situation = await all_pages(client, "pedidos", key, "pedido", "pedidos",
                                   filters=f"idSituacao[{situation}]")
    assert len(by_situation) == sum(o.situacao_id == situation for o in orders)

    contact = orders[-1].contato.id
    by_contact = await all_pages(client, "pedidos", key, "pedido", "pedidos",
                                 filters=f"idContato[{contact}]")
    assert {p["numero"] for p in by_contact} == {
        str(o.numero) for o in orders if o.contato.id == contact
    }

    first, last = orders[len(orders) // 4].data, orders[len(orders) // 2].data
    by_date = await all_pages(
        client, "pedidos", key, "pedido", "pedidos",
        filters=f"dataEmissao[{first:%d/%m/%Y} TO {last:%d/%m/%Y}]",
    )
    assert {p["numero"] for p in by_date} == {
        str(o.numero) for o in orders if first <= o.data <= last
    }

    changed = sorted(orders, key=lambda o: o.altered_at)[len(orders) // 2].altered_at
    by_change = await all_pages(
        client, "pedidos", key, "pedido", "pedidos",
        filters=f"dataAlteracao[{changed:%d/%m/%Y %H:%M:%S} TO 31/12/2099]",
    )
    assert {p["numero"] for p in by_change} == {
        str(o.numero) for o in orders if o.altered_at >= changed.replace(microsecond=0)
    }
    bad = await get(client, "pedidos/json/", key, filters="idSituacao[abc]")
    assert bad.status_code == 400


async def test_pedido_object(client: httpx.AsyncClient, company: Company, key: str) -> None:
    order = next(o for o in company.orders.values() if o.note_id is not None)
    note = company.notes[order.note_id] if order.note_id is not None else None
    assert note is not None
    response = await get(client, f"pedido/{order.numero}/json/", key)
    assert response.status_code == 200
    pedido = response.json()["retorno"]["pedidos"][0]["pedido"]
    for path, value in leaves(pedido):
        if path.endswith((".avisoRecebimento", ".maoPropria", ".destino")):
            continue  # non-strings in the captured fixture itself
        assert isinstance(value, str), (path, value)
    assert pedido["numero"] == str(order.numero)
    assert pedido["desconto"] == "0,00"
    situation = next(s for s in company.order_situations if s.id == order.situacao_id)
    assert pedido["situacao"] == situation.nome
    assert pedido["nota"]["situacao"] == str(V2_SITUACAO[note.situacao][0])
    assert pedido["nota"]["numero"] == f"{note.numero:06d}"
    assert pedido["nota"]["chaveAcesso"] == note.chave
    assert re.fullmatch(r"\d{3}\.\d{3}\.\d{3}-\d\d|\d\d\.\d{3}\.\d{3}/\d{4}-\d\d",
                        pedido["cliente"]["cnpj"])
    assert re.fullmatch(r"\d\d\.\d{3}-\d{3}", pedido["cliente"]["cep"])
    assert pedido["totalvenda"] == f"{order.total:.2f}"
    for item, source in zip(pedido["itens"], order.items, strict=True):
        assert re.fullmatch(r"\d+\.\d{4}", item["item"]["quantidade"])
        assert re.fullmatch(r"\d+\.\d{10}", item["item"]["valorunidade"])
        assert item["item"]["codigo"] == source.product.sku
    assert_cod14(await get(client, "pedido/99999999/json/", key))


async def test_change_order_situation_with_put(
    client: httpx.AsyncClient, sim: Simulator, company: Company, key: str
) -> None:
    order = sorted(company.orders.values(), key=lambda o: o.id)[0]
    target = next(s for s in company.order_situations if s.id != order.situacao_id)
    events: list[tuple[str, dict[str, Any]]] = []
    sim.state.listeners.append(lambda c, event, data: events.append((event, data)))
    before = order.altered_at

    response = await client.put(
        f"/Api/v2/pedido/{order.numero}/json/",
        data={"apikey": key, "xml": f"<pedido><idSituacao>{target.id}</idSituacao></pedido>"},
    )
    assert response.status_code == 200
    assert response.json()["retorno"]["pedidos"][0]["pedido"]["situacao"] == target.nome
    assert order.situacao_id == target.id
    assert order.altered_at != before
    assert [e for e, _ in events] == ["order.updated"]
    assert events[0][1]["situacao"]["id"] == target.id
    shown = await get(client, f"pedido/{order.numero}/json/", key)
    assert shown.json()["retorno"]["pedidos"][0]["pedido"]["situacao"] == target.nome
    assert sim.state.counters[company.id].requests["PUT /Api/v2/pedido"] == 1

    # The apikey may also come in the query string.
    again = await client.put(
        f"/Api/v2/pedido/{order.numero}/json/", params={"apikey": key},
        data={"xml": f"<pedido><idSituacao>{target.id}</idSituacao></pedido>"},
    )
    assert again.status_code == 200
    assert len(events) == 1  # nothing changed, nothing announced

    for xml in ("", "<pedido>", "<pedido><idSituacao>x</idSituacao></pedido>",
                "<venda><idSituacao>1</idSituacao></venda>",
                '<!DOCTYPE p [<!ENTITY a "b">]><pedido><idSituacao>&a;</idSituacao></pedido>',
                "<pedido><idSituacao>987654321</idSituacao></pedido>"):
        bad = await client.put(f"/Api/v2/pedido/{order.numero}/json/",
                               data={"apikey": key, "xml": xml})
        assert bad.status_code == 400, xml
        assert erro(bad.json())["cod"] == 10
    missing = await client.put("/Api/v2/pedido/99999999/json/",
                               data={"apikey": key, "xml": "<pedido><idSituacao>1</idSituacao></pedido>"})
    assert_cod14(missing)
    no_key = await client.put(f"/Api/v2/pedido/{order.numero}/json/", data={"xml": "<pedido/>"})
    assert no_key.status_code == 401


async def test_put_needs_the_situations_permission(
    client: httpx.AsyncClient, sim: Simulator, company: Company
) -> None:
    user = sim.state.add_api_user(company, frozenset({V2Permission.PEDIDOS_VENDA}))
    order = next(iter(company.orders.values()))
    response = await client.put(
        f"/Api/v2/pedido/{order.numero}/json/",
        data={"apikey": user.apikey, "xml": "<pedido><idSituacao>1</idSituacao></pedido>"},
    )
    assert response.status_code == 403
    assert erro(response.json())["msg"].endswith("Gerenciar situações dos Pedidos de Venda")


async def test_sales_situations(client: httpx.AsyncClient, company: Company, key: str) -> None:
    response = await get(client, "situacao/Vendas/json/", key)
    assert response.status_code == 200
    got = [s["situacao"] for s in response.json()["retorno"]["situacoes"]]
    assert got == [
        {"id": str(s.id), "nome": s.nome, "idHerdado": str(s.id_herdado), "cor": s.cor}
        for s in company.order_situations
    ]
    assert_cod14(await get(client, "situacao/Inexistente/json/", key))


async def test_counters_label_every_answer(
    client: httpx.AsyncClient, sim: Simulator, company: Company, key: str
) -> None:
    await get(client, "notasfiscais/json/", key)
    await get(client, "notasfiscais/page=99/json/", key)
    await get(client, "notasfiscais/json/", key, filters="bad")
    counters = sim.state.counters[company.id]
    assert counters.requests["GET /Api/v2/notasfiscais"] == 3
    assert counters.statuses["200"] == 2
    assert counters.errors["GET /Api/v2/notasfiscais 400"] == 1


async def test_ordering_is_stable_between_calls(client: httpx.AsyncClient, key: str) -> None:
    first = await get(client, "notasfiscais/page=2/json/", key)
    second = await get(client, "notasfiscais/page=2/json/", key)
    assert first.json() == second.json()

