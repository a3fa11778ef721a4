"""The /_sim admin API: credentials, notes, situations, settings, counters and time."""

from __future__ import annotations

from tests.conftest import Bling, basic


async def test_accounts_expose_working_credentials(bling: Bling) -> None:
    accounts = (await bling.http.get("/_sim/accounts")).json()["accounts"]
    assert len(accounts) == 2
    first = accounts[0]
    client = first["clients"][0]
    assert len(client["client_id"]) == 40 and len(client["client_secret"]) == 60
    assert "Notas Fiscais" in client["scope_labels"]
    assert first["api_keys"][0]["permissions"]
    listed = await bling.http.post("/Api/v3/oauth/token", data={
        "grant_type": "authorization_code", "code": client["authorization_code"],
    }, headers={"authorization": basic(bling.company().clients[0])})
    assert listed.status_code == 200
    listed = await bling.http.post("/Api/v3/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": client["refresh_token"],
    }, headers={"authorization": basic(bling.company().clients[0])})
    assert listed.status_code == 200
    code = (await bling.http.post(f"/_sim/accounts/{first['id']}/code")).json()["code"]
    company = bling.company()
    r = await bling.http.post("/Api/v3/oauth/token",
                              data={"grant_type": "authorization_code", "code": code},
                              headers={"authorization": basic(company.clients[0])})
    assert r.status_code == 200
    refresh = (await bling.http.post(f"/_sim/accounts/{first['id']}/refresh-token")).json()
    r = await bling.http.post(
        "/Api/v3/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh["refresh_token"]},
        headers={"authorization": basic(company.clients[0])},
    )
    assert r.status_code == 200


async def test_create_and_move_notes(bling: Bling) -> None:
    company = bling.company()
    before = len(company.notes)
    r = await bling.http.post(f"/_sim/accounts/{company.id}/notes", json={"count": 3})
    assert r.status_code == 200
    created = r.json()["notes"]
    assert len(created) == 3 and len(company.notes) == before + 3
    assert all(n["situacao"] == 1 and n["chave"] == "" for n in created)
    note_id = created[0]["id"]
    r = await bling.http.post(f"/_sim/notes/{note_id}/situacao", json={"situacao": 6})
    assert r.status_code == 200
    moved = r.json()
    assert moved["situacao"] == 6 and moved["situacao_v2"] == "Emitida DANFE"
    assert len(moved["chave"]) == 44
    r = await bling.http.post(f"/_sim/notes/{note_id}/situacao", json={"action": "cancel"})
    assert r.json()["situacao"] == 2
    r = await bling.http.post(f"/_sim/notes/{note_id}/situacao", json={"action": "authorise"})
    assert r.status_code == 409
    assert "error" in r.json()


async def test_admin_input_errors(bling: Bling) -> None:
    company = bling.company()
    cases = [
        ("post", f"/_sim/accounts/{company.id}/notes", {"count": 0}, 400),
        ("post", f"/_sim/accounts/{company.id}/notes", {"modelo": "nfse"}, 400),
        ("post", f"/_sim/accounts/{company.id}/notes", {"situacao": 99}, 400),
        ("post", "/_sim/accounts/999/notes", {}, 404),
        ("post", "/_sim/notes/1/situacao", {"situacao": 6}, 404),
        ("put", "/_sim/faults", {"spec": "5xx=2"}, 400),
        ("put", "/_sim/settings", {"per_second": "three"}, 400),
        ("put", "/_sim/settings", {"warp": True}, 400),
        ("post", f"/_sim/accounts/{company.id}/clients", {"scopes": ["everything"]}, 400),
        ("post", "/_sim/clock/advance", {"seconds": -1}, 400),
    ]
    for method, path, body, status in cases:
        r = await bling.http.request(method.upper(), path, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert r.json()["error"]
    r = await bling.http.post(f"/_sim/accounts/{company.id}/notes", content=b"{bad json")
    assert r.status_code == 400


async def test_settings_and_faults_at_run_time(bling: Bling) -> None:
    r = await bling.http.put("/_sim/settings", json={"enabled": True, "per_second": 2,
                                                     "v2_discontinued": True})
    assert r.json()["per_second"] == 2 and r.json()["v2_discontinued"] is True
    auth = await bling.bearer()
    statuses = [(await bling.get("/Api/v3/empresas/me/dados-basicos", auth)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    r = await bling.http.put("/_sim/faults", json={"spec": "5xx=1,seed=2"})
    assert r.json()["spec"] == "5xx=1,seed=2"
    assert (await bling.http.get("/Api/v3/nfe")).status_code >= 500
    assert (await bling.http.get("/_sim/")).status_code == 200  # admin is never faulted


async def test_counters(bling: Bling) -> None:
    auth = await bling.bearer()
    company = bling.company()
    await bling.get("/Api/v3/nfe", auth)
    await bling.get("/Api/v3/nfe/1", auth)
    counters = (await bling.http.get(f"/_sim/accounts/{company.id}/counters")).json()
    assert counters["by_endpoint"]["GET /Api/v3/nfe"] == 1
    assert counters["by_endpoint"]["GET /Api/v3/nfe/{id}"] == 1
    assert counters["errors"] == {"GET /Api/v3/nfe/{id} 404": 1}
    assert counters["requests_today"] == 2


async def test_evolve_and_clock(bling: Bling) -> None:
    before = sum(len(c.notes) for c in bling.sim.state.world.companies)
    r = await bling.http.post("/_sim/evolve", json={"steps": 5})
    assert r.status_code == 200
    assert r.json()["changes"]
    after = sum(len(c.notes) for c in bling.sim.state.world.companies)
    assert after >= before
    now = bling.clock.time()
    r = await bling.http.post("/_sim/clock/advance", json={"seconds": 90})
    assert r.status_code == 200
    assert bling.clock.time() == now + 90


async def test_bad_admin_values_are_refused_and_break_nothing(bling: Bling) -> None:
    company = bling.company()
    cases = [
        ("put", "/_sim/webhooks", {"knobs": {"drop": "x"}}),
        ("put", "/_sim/webhooks", {"knobs": {"delay_min": 5, "delay_max": 1}}),
        ("put", "/_sim/webhooks", {"knobs": {"seed": "abc"}}),
        ("put", "/_sim/webhooks", {"knobs": {"duplicate": 2}}),
        ("put", "/_sim/webhooks", {"url": 123}),
        ("put", "/_sim/webhooks", {"url": "ftp://x.test/h"}),
        ("post", f"/_sim/accounts/{company.id}/clients", {"webhook_url": 5}),
        ("post", "/_sim/clock/advance", {"seconds": 1e300}),
        ("post", f"/_sim/accounts/{company.id}/notes", {"situacao": None}),
        ("post", f"/_sim/accounts/{company.id}/notes", {"situacao": [1]}),
        ("post", f"/_sim/accounts/{company.id}/notes", {"tipo": True}),
        ("put", "/_sim/settings", {"ip_window": -1.0}),
    ]
    for method, path, body in cases:
        r = await bling.http.request(method.upper(), path, json=body)
        assert r.status_code == 400, (path, body, r.text)
    r = await bling.http.post("/_sim/clock/advance", content=b'{"seconds": NaN}',
                              headers={"content-type": "application/json"})
    assert r.status_code == 400
    # Everything still works: events flow, the clock is sane, the API answers.
    auth = await bling.bearer()
    order = next(iter(company.orders.values()))
    target = next(s for s in company.order_situations if s.id != order.situacao_id)
    r = await bling.http.patch(f"/Api/v3/pedidos/vendas/{order.id}/situacoes/{target.id}",
                               headers=auth)
    assert r.status_code == 204
    assert (await bling.get("/Api/v3/nfe", auth)).status_code == 200


async def test_a_delivery_error_does_not_stop_the_hub(bling: Bling) -> None:
    company = bling.company()
    company.clients[0].webhook_url = "http://127.0.0.1:9/hook"  # nothing listens: connect error
    auth = await bling.bearer()
    order = next(iter(company.orders.values()))
    target = next(s for s in company.order_situations if s.id != order.situacao_id)
    await bling.http.patch(f"/Api/v3/pedidos/vendas/{order.id}/situacoes/{target.id}",
                           headers=auth)
    assert await bling.sim.hub.flush() == 1
    delivery = bling.sim.hub.deliveries[-1]
    assert delivery.status == "pending" and delivery.last_error.startswith("ConnectError")
