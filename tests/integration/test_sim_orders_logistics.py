"""Sales orders, their situations, logistics objects and the company's data over v3."""

from __future__ import annotations

from blingsync.simulator.webhooks import WebhookHub
from tests.conftest import Bling


async def test_orders_list_detail_and_link_to_note(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    orders = await bling.all_pages("/Api/v3/pedidos/vendas", auth)
    assert {o["id"] for o in orders} == set(company.orders)
    linked = next(o for o in company.orders.values() if o.note_id)
    detail = (await bling.get(f"/Api/v3/pedidos/vendas/{linked.id}", auth)).json()["data"]
    assert detail["notaFiscal"]["id"] == linked.note_id
    note = company.notes[linked.note_id]  # type: ignore[index]
    assert note.order_id == linked.id
    assert detail["numeroLoja"] == note.numero_pedido_loja
    assert detail["transporte"]["etiqueta"]["cep"].isdigit()
    assert (await bling.get("/Api/v3/pedidos/vendas/1", auth)).status_code == 404


async def test_orders_filters(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    situation = company.order_situations[0]
    got = await bling.all_pages("/Api/v3/pedidos/vendas", auth,
                                **{"idsSituacoes[]": [situation.id]})
    assert {o["id"] for o in got} == {o.id for o in company.orders.values()
                                      if o.situacao_id == situation.id}
    some = next(iter(company.orders.values()))
    got = await bling.all_pages("/Api/v3/pedidos/vendas", auth, numero=some.numero)
    assert [o["id"] for o in got] == [some.id]
    since = "2026-11-15 00:00:00"
    got = await bling.all_pages("/Api/v3/pedidos/vendas", auth, dataAlteracaoInicial=since)
    assert {o["id"] for o in got} == {o.id for o in company.orders.values()
                                      if o.altered_at.strftime("%Y-%m-%d %H:%M:%S") >= since}


async def test_change_order_situation(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    modules = (await bling.get("/Api/v3/situacoes/modulos", auth)).json()["data"]
    sales = next(m for m in modules if m["nome"] == "Vendas")
    situations = (await bling.get(f"/Api/v3/situacoes/modulos/{sales['id']}", auth)).json()["data"]
    names = {s["nome"] for s in situations}
    assert {"Em aberto", "Atendido", "Cancelado"} <= names
    target = next(s for s in situations if s["nome"] == "Atendido")
    order = next(o for o in company.orders.values() if o.situacao_id != target["id"])
    r = await bling.http.patch(
        f"/Api/v3/pedidos/vendas/{order.id}/situacoes/{target['id']}", headers=auth)
    assert r.status_code == 204 and r.content == b""
    detail = (await bling.get(f"/Api/v3/pedidos/vendas/{order.id}", auth)).json()["data"]
    assert detail["situacao"]["id"] == target["id"]
    bad = await bling.http.patch(f"/Api/v3/pedidos/vendas/{order.id}/situacoes/999", headers=auth)
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "VALIDATION_ERROR"
    assert (await bling.get("/Api/v3/situacoes/modulos/1", auth)).status_code == 404


async def test_logistics_object_lifecycle(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    order = next(o for o in company.orders.values() if o.note_id)
    created = await bling.http.post("/Api/v3/logisticas/objetos", headers=auth, json={
        "pedidoVenda": {"id": order.id}, "notaFiscal": {"id": order.note_id},
        "rastreamento": {"codigo": "", "situacao": 8},
        "dimensoes": {"peso": 1.25, "altura": 10, "largura": 20, "comprimento": 30, "diametro": 0},
    })
    assert created.status_code == 201, created.text
    object_id = created.json()["data"]["id"]
    assert object_id in company.orders[order.id].volume_ids
    got = (await bling.get(f"/Api/v3/logisticas/objetos/{object_id}", auth)).json()["data"]
    assert got["pedidoVenda"]["id"] == order.id
    assert got["dimensao"]["peso"] == 1.25
    assert got["rastreamento"]["situacao"] == 8
    updated = await bling.http.put(f"/Api/v3/logisticas/objetos/{object_id}", headers=auth, json={
        "rastreamento": {"codigo": "QB123456789BR", "situacao": 0, "descricao": "Postado",
                         "url": "https://rastreamento.correios.com.br/QB123456789BR"},
        "dataSaida": "2026-11-20",
    })
    assert updated.status_code == 200 and updated.json() == {"data": {"id": object_id}}
    got = (await bling.get(f"/Api/v3/logisticas/objetos/{object_id}", auth)).json()["data"]
    assert got["rastreamento"]["codigo"] == "QB123456789BR"
    assert got["rastreamento"]["situacao"] == 0
    assert got["dataSaida"] == "2026-11-20"


async def test_logistics_object_errors(bling: Bling) -> None:
    auth = await bling.bearer()
    post = bling.http.post
    assert (await post("/Api/v3/logisticas/objetos", headers=auth)).json()["error"]["type"] == (
        "EMPTY_REQUEST_BODY")
    r = await post("/Api/v3/logisticas/objetos", headers=auth, content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["type"] == "INVALID_REQUEST_BODY"
    r = await post("/Api/v3/logisticas/objetos", headers=auth, json={"pedidoVenda": {"id": 1}})
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["element"] == "pedidoVenda"
    r = await post("/Api/v3/logisticas/objetos", headers=auth, json={"rastreamento": {}})
    assert r.status_code == 400
    assert (await bling.get("/Api/v3/logisticas/objetos/1", auth)).status_code == 404
    obj_id = next(iter(bling.company().logistic_objects))
    r = await bling.http.put(f"/Api/v3/logisticas/objetos/{obj_id}", headers=auth,
                             json={"rastreamento": {"situacao": 42}})
    assert r.status_code == 400


async def test_company_basic_data(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    data = (await bling.get("/Api/v3/empresas/me/dados-basicos", auth)).json()["data"]
    assert data["id"] == company.company_id
    assert len(data["id"]) == 32
    assert data["nome"] == company.nome
    assert "".join(ch for ch in data["cnpj"] if ch.isdigit()) == company.cnpj


async def test_order_situation_change_emits_webhook(bling: Bling) -> None:
    received: list[bytes] = []
    hub: WebhookHub = bling.sim.hub
    company = bling.company()
    company.clients[0].webhook_url = "http://receiver.test/hook"

    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        return httpx.Response(200)

    hub.transport = httpx.MockTransport(handler)
    auth = await bling.bearer()
    order = next(iter(company.orders.values()))
    target = next(s for s in company.order_situations if s.id != order.situacao_id)
    await bling.http.patch(f"/Api/v3/pedidos/vendas/{order.id}/situacoes/{target.id}",
                           headers=auth)
    await hub.flush()
    assert len(received) == 1
    assert b'"event":"order.updated"' in received[0]


async def test_logistics_object_rejects_values_json_cannot_carry(bling: Bling) -> None:
    auth = await bling.bearer()
    order = next(o for o in bling.company().orders.values() if o.note_id)
    bad_bodies = [
        {"prazoEntregaPrevisto": "NaN"},
        {"prazoEntregaPrevisto": True},
        {"dimensoes": {"peso": "NaN"}},
        {"dimensoes": {"peso": "1e999999"}},
        {"dimensoes": {"peso": "Infinity"}},
        {"dataSaida": {"x": 1}},
        {"dataSaida": "20/11/2026"},
        {"rastreamento": {"codigo": None}},
        {"avisoRecebimento": "sim"},
    ]
    for extra in bad_bodies:
        r = await bling.http.post("/Api/v3/logisticas/objetos", headers=auth,
                                  json={"pedidoVenda": {"id": order.id}, **extra})
        assert r.status_code == 400, (extra, r.text)
        assert r.json()["error"]["type"] == "VALIDATION_ERROR"


async def test_order_period_rules(bling: Bling) -> None:
    auth = await bling.bearer()
    inverted = await bling.get("/Api/v3/pedidos/vendas", auth, dataInicial="2026-11-10",
                               dataFinal="2026-11-01")
    assert inverted.status_code == 400
    too_long = await bling.get("/Api/v3/pedidos/vendas", auth, dataInicial="2025-01-01")
    assert too_long.status_code == 400
    other_unit = await bling.get("/Api/v3/pedidos/vendas", auth, idUnidadeNegocio=5)
    assert other_unit.json() == {"data": []}
    unit_zero = await bling.get("/Api/v3/pedidos/vendas", auth, idUnidadeNegocio=0)
    assert unit_zero.json()["data"]
