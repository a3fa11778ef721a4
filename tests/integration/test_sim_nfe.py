"""GET /nfe, /nfe/{id}, /nfe/documento and /nfce: filters, paging, links and documents."""

from __future__ import annotations

import base64
import gzip
import xml.etree.ElementTree as ET
from decimal import Decimal
from urllib.parse import urlsplit

from blingsync.simulator.model import Modelo, NfeSituacao
from tests.conftest import Bling

NS = {"n": "http://www.portalfiscal.inf.br/nfe"}


async def test_default_excludes_cancelled_and_entrada(bling: Bling) -> None:
    auth = await bling.bearer()
    notes = await bling.all_pages("/Api/v3/nfe", auth)
    company = bling.company()
    expected = {n.id for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1
                and n.situacao != NfeSituacao.CANCELADA}
    assert {n["id"] for n in notes} == expected
    cancelled = await bling.all_pages("/Api/v3/nfe", auth, situacao=2)
    assert cancelled and {n["situacao"] for n in cancelled} == {2}


async def test_every_situation_filters_exactly(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    for situacao in range(1, 12):
        for tipo in (0, 1):
            got = await bling.all_pages("/Api/v3/nfe", auth, situacao=situacao, tipo=tipo)
            expected = {n.id for n in company.notes.values() if n.modelo == Modelo.NFE
                        and n.situacao == situacao and n.tipo == tipo}
            assert {n["id"] for n in got} == expected, (situacao, tipo)


async def test_paging_is_complete_stable_and_ends_empty(bling: Bling) -> None:
    auth = await bling.bearer()
    pages = []
    page = 1
    while True:
        r = await bling.get("/Api/v3/nfe", auth, situacao=6, limite=7, pagina=page)
        data = r.json()["data"]
        if not data:
            break
        assert len(data) <= 7
        pages.append([n["id"] for n in data])
        page += 1
    ids = [i for p in pages for i in p]
    assert len(ids) == len(set(ids))
    full = await bling.all_pages("/Api/v3/nfe", auth, situacao=6)
    assert ids == [n["id"] for n in full]
    again = await bling.get("/Api/v3/nfe", auth, situacao=6, limite=7, pagina=2)
    assert [n["id"] for n in again.json()["data"]] == pages[1]
    dates = [n["dataEmissao"] for n in full]
    assert dates == sorted(dates, reverse=True)
    past = await bling.get("/Api/v3/nfe", auth, situacao=6, pagina=page + 10)
    assert past.status_code == 200
    assert past.json() == {"data": []}


async def test_limite_is_capped_at_100(bling: Bling) -> None:
    auth = await bling.bearer()
    r = await bling.get("/Api/v3/nfe", auth, limite=500)
    assert len(r.json()["data"]) == 100


async def test_emission_window_and_one_year_rule(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    start, end = "2026-11-01 00:00:00", "2026-11-10 23:59:59"
    got = await bling.all_pages("/Api/v3/nfe", auth, situacao=6,
                                dataEmissaoInicial=start, dataEmissaoFinal=end)
    expected = {n.id for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1
                and n.situacao == 6 and start <= n.emitted_at.strftime("%Y-%m-%d %H:%M:%S") <= end}
    assert expected and {n["id"] for n in got} == expected
    date_only = await bling.all_pages("/Api/v3/nfe", auth, situacao=6,
                                      dataEmissaoInicial="2026-11-01", dataEmissaoFinal="2026-11-10")
    assert {n["id"] for n in date_only} == expected
    too_long = await bling.get("/Api/v3/nfe", auth, dataEmissaoInicial="2025-01-01 00:00:00",
                               dataEmissaoFinal="2026-03-01 00:00:00")
    assert too_long.status_code == 400
    error = too_long.json()["error"]
    assert error["type"] == "VALIDATION_ERROR"
    assert error["fields"][0]["element"] == "dataEmissaoFinal"
    inverted = await bling.get("/Api/v3/nfe", auth, dataEmissaoInicial="2026-11-10",
                               dataEmissaoFinal="2026-11-01")
    assert inverted.status_code == 400
    exactly_a_year = await bling.get("/Api/v3/nfe", auth, dataEmissaoInicial="2025-03-01 00:00:00",
                                     dataEmissaoFinal="2026-03-01 00:00:00")
    assert exactly_a_year.status_code == 200
    a_year_and_a_day = await bling.get("/Api/v3/nfe", auth, dataEmissaoInicial="2025-03-01",
                                       dataEmissaoFinal="2026-03-01 00:00:01")
    assert a_year_and_a_day.status_code == 400
    garbage = await bling.get("/Api/v3/nfe", auth, dataEmissaoInicial="10/11/2026")
    assert garbage.status_code == 400


async def test_invalid_parameters(bling: Bling) -> None:
    auth = await bling.bearer()
    for params in ({"situacao": 12}, {"situacao": "seis"}, {"tipo": "2"}, {"pagina": 0},
                   {"limite": 0}, {"numero": "x"}):
        r = await bling.get("/Api/v3/nfe", auth, **params)
        assert r.status_code == 400, params
        assert r.json()["error"]["type"] == "VALIDATION_ERROR"


async def test_lookup_filters(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    note = next(n for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1
                and n.situacao == 6 and n.numero_pedido_loja and n.carrier)
    for params in ({"numero": note.numero, "serie": note.serie}, {"chaveAcesso": note.chave},
                   {"numeroLoja": note.numero_pedido_loja}):
        got = await bling.all_pages("/Api/v3/nfe", auth, situacao=6, **params)
        assert note.id in {n["id"] for n in got}, params
        assert len(got) <= 2, params
    assert note.carrier is not None
    by_carrier = await bling.all_pages("/Api/v3/nfe", auth, situacao=6,
                                       idTransportador=note.carrier.id)
    assert note.id in {n["id"] for n in by_carrier}
    assert all(company.notes[n["id"]].carrier.id == note.carrier.id  # type: ignore[union-attr]
               for n in by_carrier)


async def test_detail_links_xml_and_document_agree(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    note = next(n for n in company.notes.values() if n.modelo == Modelo.NFE and n.situacao == 6)
    r = await bling.get(f"/Api/v3/nfe/{note.id}", auth)
    assert r.status_code == 200
    detail = r.json()["data"]
    assert detail["chaveAcesso"] == note.chave
    assert len(detail["xml"]) > 100
    url = urlsplit(detail["xml"])
    xml_response = await bling.http.get(f"{url.path}?{url.query}")  # no bearer
    assert xml_response.status_code == 200
    xml = xml_response.content
    root = ET.fromstring(xml)
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None and inf.get("Id") == f"NFe{note.chave}"
    assert Decimal(root.findtext(".//n:ICMSTot/n:vNF", namespaces=NS) or "") == Decimal(
        str(detail["valorNota"]))
    assert len(root.findall(".//n:det", NS)) == len(detail["itens"])
    assert root.findtext(".//n:ide/n:nNF", namespaces=NS) == str(int(detail["numero"]))
    dest_doc = root.findtext(".//n:dest/n:CPF", namespaces=NS) or root.findtext(
        ".//n:dest/n:CNPJ", namespaces=NS)
    assert dest_doc == detail["contato"]["numeroDocumento"]
    tampered = await bling.http.get(f"{url.path}?chaveAcesso={note.chave}&s&signature=00")
    assert tampered.status_code == 403

    doc = await bling.get(f"/Api/v3/nfe/documento/{note.chave}", auth, formato="xml")
    assert doc.status_code == 200
    (entry,) = doc.json()["data"]
    assert entry["nome"] == f"{note.chave}.xml"
    assert gzip.decompress(base64.b64decode(entry["conteudo"])) == xml
    pdf = await bling.get(f"/Api/v3/nfe/documento/{note.chave}", auth, formato="pdf")
    assert gzip.decompress(base64.b64decode(pdf.json()["data"][0]["conteudo"])).startswith(b"%PDF")
    danfe = urlsplit(detail["linkDanfe"])
    page = await bling.http.get(f"{danfe.path}?{danfe.query}")
    assert page.status_code == 200 and "DANFE" in page.text


async def test_documento_errors(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    note = next(n for n in company.notes.values() if n.situacao == 6)
    assert (await bling.get(f"/Api/v3/nfe/documento/{note.chave}", auth)).status_code == 400
    assert (await bling.get("/Api/v3/nfe/documento/123", auth, formato="xml")).status_code == 400
    missing = await bling.get(f"/Api/v3/nfe/documento/{'1' * 44}", auth, formato="xml")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "RESOURCE_NOT_FOUND"


async def test_pending_note_has_no_links(bling: Bling) -> None:
    auth = await bling.bearer()
    note = next(n for n in bling.company().notes.values()
                if n.modelo == Modelo.NFE and n.situacao == NfeSituacao.PENDENTE)
    detail = (await bling.get(f"/Api/v3/nfe/{note.id}", auth)).json()["data"]
    assert detail["xml"] == "" and detail["linkDanfe"] == ""


async def test_nfce_is_separate(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    nfce = await bling.all_pages("/Api/v3/nfce", auth, situacao=6)
    expected = {n.id for n in company.notes.values() if n.modelo == Modelo.NFCE and n.situacao == 6}
    assert expected and {n["id"] for n in nfce} == expected
    some = next(iter(expected))
    assert (await bling.get(f"/Api/v3/nfe/{some}", auth)).status_code == 404
    assert (await bling.get(f"/Api/v3/nfce/{some}", auth)).status_code == 200
    assert (await bling.get("/Api/v3/nfe/abc", auth)).status_code == 404


async def test_accounts_are_isolated(bling: Bling) -> None:
    auth = await bling.bearer(0)
    other = next(iter(bling.company(1).notes))
    assert (await bling.get(f"/Api/v3/nfe/{other}", auth)).status_code == 404


async def test_unknown_path_is_bling_404_and_wrong_method_405(bling: Bling) -> None:
    r = await bling.http.get("/Api/v3/nao-existe")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "RESOURCE_NOT_FOUND"
    auth = await bling.bearer()
    r = await bling.http.patch("/Api/v3/logisticas/objetos/123", headers=auth, json={})
    assert r.status_code == 405
    assert r.json()["error"]["type"] == "METHOD_NOT_ALLOWED"
    r = await bling.http.delete("/Api/v3/nfe/123", headers=auth)
    assert r.status_code == 405
