"""OAuth2 as Bling runs it: authorize, code exchange, rotation, expiry, revocation, errors."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from blingsync.simulator.model import Scope
from tests.conftest import Bling, basic


async def _exchange(bling: Bling, client, code: str):  # type: ignore[no-untyped-def]
    return await bling.http.post(
        "/Api/v3/oauth/token", data={"grant_type": "authorization_code", "code": code},
        headers={"authorization": basic(client)},
    )


async def test_authorize_redirects_with_code_and_state(bling: Bling) -> None:
    client = bling.company().clients[0]
    r = await bling.http.get("/Api/v3/oauth/authorize", params={
        "response_type": "code", "client_id": client.client_id, "state": "s-123",
    })
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == client.redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    assert len(query["code"][0]) >= 20


async def test_authorize_errors(bling: Bling) -> None:
    client = bling.company().clients[0]
    unknown = await bling.http.get("/Api/v3/oauth/authorize",
                                   params={"client_id": "nope", "state": "a"})
    assert unknown.status_code == 400
    wrong_uri = await bling.http.get("/Api/v3/oauth/authorize", params={
        "client_id": client.client_id, "state": "a", "redirect_uri": "http://evil.test/cb",
    })
    assert wrong_uri.status_code == 400
    no_state = await bling.http.get("/Api/v3/oauth/authorize",
                                    params={"client_id": client.client_id})
    assert parse_qs(urlsplit(no_state.headers["location"]).query)["error"] == ["invalid_request"]
    bling.sim.state.authorize_decision = "deny"
    denied = await bling.http.get("/Api/v3/oauth/authorize",
                                  params={"client_id": client.client_id, "state": "k"})
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["k"]


async def test_token_response_and_jwt_sizes(bling: Bling) -> None:
    client = bling.company().clients[0]
    opaque = await bling.token(client, jwt=False)
    assert set(opaque) == {"access_token", "expires_in", "token_type", "scope", "refresh_token"}
    assert opaque["expires_in"] == 21600
    assert opaque["token_type"] == "Bearer"
    assert all(part.isdigit() for part in opaque["scope"].split())
    assert len(opaque["access_token"]) < 100
    jwt = await bling.token(client, jwt=True)
    assert 1500 <= len(jwt["access_token"]) <= 3000
    narrow = bling.sim.state.add_client(bling.company(), frozenset({Scope.NFE}))
    for _ in range(20):  # whatever the app's scopes, Bling's JWTs are 1,500-3,000 characters
        assert 1500 <= len((await bling.token(narrow))["access_token"]) <= 3000
    _header, payload, _sig = jwt["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == bling.company().company_id
    assert claims["exp"] - claims["iat"] == 21600
    r = await bling.get("/Api/v3/empresas/me/dados-basicos",
                        {"authorization": f"Bearer {jwt['access_token']}", "enable-jwt": "1"})
    assert r.status_code == 200


async def test_code_is_single_use_and_reuse_revokes(bling: Bling) -> None:
    client = bling.company().clients[0]
    code = await bling.code(client)
    first = await _exchange(bling, client, code)
    assert first.status_code == 200
    auth = {"authorization": f"Bearer {first.json()['access_token']}"}
    assert (await bling.get("/Api/v3/empresas/me/dados-basicos", auth)).status_code == 200
    again = await _exchange(bling, client, code)
    assert again.status_code == 400
    assert again.json()["error"]["type"] == "VALIDATION_ERROR"
    assert again.json()["error"]["message"] == "Invalid authorization code"
    revoked = await bling.get("/Api/v3/empresas/me/dados-basicos", auth)
    assert revoked.status_code == 401
    assert revoked.json()["error"]["type"] == "invalid_token"


async def test_code_expires_after_60_seconds(bling: Bling) -> None:
    client = bling.company().clients[0]
    code = await bling.code(client)
    bling.clock.advance(61)
    r = await _exchange(bling, client, code)
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_grant", "message": "invalid_grant",
                                 "description": "The authorization code has expired"}


async def test_code_of_another_client_is_refused(bling: Bling) -> None:
    code = await bling.code(bling.company(0).clients[0])
    r = await _exchange(bling, bling.company(1).clients[0], code)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_grant"


async def test_refresh_rotates(bling: Bling) -> None:
    client = bling.company().clients[0]
    first = await bling.token(client)

    async def refresh(token: str):  # type: ignore[no-untyped-def]
        return await bling.http.post(
            "/Api/v3/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token},
            headers={"authorization": basic(client), "enable-jwt": "1"},
        )

    second = await refresh(first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    stale = await refresh(first["refresh_token"])
    assert stale.status_code == 400
    assert stale.json()["error"]["type"] == "invalid_grant"
    third = await refresh(second.json()["refresh_token"])
    assert third.status_code == 200


async def test_access_token_expires(bling: Bling) -> None:
    auth = await bling.bearer()
    bling.clock.advance(21599)
    assert (await bling.get("/Api/v3/empresas/me/dados-basicos", auth)).status_code == 200
    bling.clock.advance(2)
    r = await bling.get("/Api/v3/empresas/me/dados-basicos", auth)
    assert r.status_code == 401
    assert r.json() == {"error": {"type": "invalid_token", "message": "invalid_token",
                                  "description": "The access token provided has expired"}}


async def test_client_authentication_errors(bling: Bling) -> None:
    client = bling.company().clients[0]
    code = await bling.code(client)
    wrong = base64.b64encode(f"{client.client_id}:wrong".encode()).decode()
    r = await bling.http.post("/Api/v3/oauth/token",
                              data={"grant_type": "authorization_code", "code": code},
                              headers={"authorization": f"Basic {wrong}"})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_client"
    r = await bling.http.post("/Api/v3/oauth/token", data={
        "grant_type": "authorization_code", "code": code,
        "client_id": client.client_id, "client_secret": client.client_secret,
    })
    assert r.status_code == 400
    assert r.json()["error"]["description"] == "Malformed auth header"
    r = await bling.http.post("/Api/v3/oauth/token", data={"grant_type": "password"},
                              headers={"authorization": basic(client)})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request"


async def test_revoke(bling: Bling) -> None:
    client = bling.company().clients[0]
    token = await bling.token(client)
    r = await bling.http.post("/Api/v3/oauth/revoke", data={"token": token["access_token"]},
                              headers={"authorization": basic(client)})
    assert r.status_code == 200
    r = await bling.get("/Api/v3/empresas/me/dados-basicos",
                        {"authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 401


async def test_bearer_errors(bling: Bling) -> None:
    missing = await bling.http.get("/Api/v3/nfe")
    assert missing.status_code == 401
    assert missing.json()["error"]["description"] == "The access token provided is invalid"
    malformed = await bling.get("/Api/v3/nfe", {"authorization": "Token abc"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request"
    unknown = await bling.get("/Api/v3/nfe", {"authorization": "Bearer 0123456789abcdef"})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["type"] == "invalid_token"


async def test_scopes_are_enforced(bling: Bling) -> None:
    company = bling.company()
    limited = bling.sim.state.add_client(company, frozenset({Scope.NFE}))
    auth = await bling.bearer(client=limited)
    assert (await bling.get("/Api/v3/nfe", auth)).status_code == 200
    for path in ("/Api/v3/nfce", "/Api/v3/pedidos/vendas", "/Api/v3/situacoes/modulos",
                 "/Api/v3/empresas/me/dados-basicos", "/Api/v3/logisticas/objetos/1"):
        r = await bling.get(path, auth)
        assert r.status_code == 403, path
        assert r.json()["error"] == {
            "type": "insufficient_scope", "message": "insufficient_scope",
            "description": "The request requires higher privileges than provided by the "
                           "access token",
        }


async def test_inactive_app(bling: Bling) -> None:
    client = bling.company().clients[0]
    auth = await bling.bearer()
    client.active = False
    assert (await bling.get("/Api/v3/nfe", auth)).status_code == 401
    r = await bling.http.get("/Api/v3/oauth/authorize",
                             params={"client_id": client.client_id, "state": "z"})
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["app_inativo"]
