"""OAuth2 under /Api/v3/oauth: authorize (auto-approves, or denies when told to), token
(authorization_code, refresh_token; HTTP Basic client authentication only, as Bling requires)
and revoke."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from blingsync.simulator import errors
from blingsync.simulator.errors import BlingJSONResponse
from blingsync.simulator.model import Company, OAuthClient
from blingsync.simulator.state import OAuthFailure, SimState


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    sep = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{sep}{urlencode(params)}", status_code=302)


def _basic_client(state: SimState, request: Request) -> tuple[Company, OAuthClient] | Response:
    header = request.headers.get("authorization", "")
    kind, _, encoded = header.partition(" ")
    if kind.lower() != "basic" or not encoded:
        return errors.malformed_auth_header()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return errors.malformed_auth_header()
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return errors.malformed_auth_header()
    found = state.client(client_id)
    if found is None or found[1].client_secret != secret:
        return errors.oauth_error(401, "invalid_client", "The client credentials are invalid")
    return found


def routes(state: SimState) -> list[Route]:
    async def authorize(request: Request) -> Response:
        q = request.query_params
        found = state.client(q.get("client_id", ""))
        if found is None:
            return HTMLResponse(
                "<h1>Aplicativo não encontrado</h1><p>O client_id informado não corresponde a "
                "nenhum aplicativo.</p>",
                status_code=400,
            )
        company, client = found
        redirect_uri = q.get("redirect_uri") or client.redirect_uri
        if redirect_uri != client.redirect_uri:
            return HTMLResponse(
                "<h1>redirect_uri inválido</h1><p>O endereço de retorno não é o cadastrado no "
                "aplicativo.</p>",
                status_code=400,
            )
        back: dict[str, str] = {}
        if "state" in q:
            back["state"] = q["state"]
        if q.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **back})
        if not q.get("state"):
            return _redirect(redirect_uri, {
                "error": "invalid_request",
                "error_description": "O parâmetro state é obrigatório.",
            })
        if not client.active:
            return _redirect(redirect_uri, {
                "error": "app_inativo", "error_description": "O aplicativo está inativo.", **back,
            })
        if state.authorize_decision == "deny":
            return _redirect(redirect_uri, {
                "error": "access_denied",
                "error_description": "O usuário negou o acesso ao aplicativo.", **back,
            })
        return _redirect(redirect_uri, {"code": state.issue_code(company, client), **back})

    async def token(request: Request) -> Response:
        found = _basic_client(state, request)
        if isinstance(found, Response):
            return found
        _, client = found
        form = await request.form()
        grant_type = str(form.get("grant_type", ""))
        jwt = request.headers.get("enable-jwt") == "1"
        try:
            if grant_type == "authorization_code":
                code = str(form.get("code", ""))
                if not code:
                    return errors.oauth_error(400, "invalid_request", "Missing parameter: code")
                payload = state.exchange_code(client, code, jwt)
            elif grant_type == "refresh_token":
                refresh = str(form.get("refresh_token", ""))
                if not refresh:
                    return errors.oauth_error(
                        400, "invalid_request", "Missing parameter: refresh_token"
                    )
                payload = state.refresh(client, refresh, jwt)
            else:
                return errors.oauth_error(
                    400, "invalid_request",
                    f"The grant type {grant_type or '(empty)'} is not supported",
                )
        except OAuthFailure as failure:
            return errors.oauth_error(
                failure.status, failure.type, failure.description, failure.message
            )
        return BlingJSONResponse(payload, headers={"cache-control": "no-store"})

    async def revoke(request: Request) -> Response:
        found = _basic_client(state, request)
        if isinstance(found, Response):
            return found
        form = await request.form()
        token_value = str(form.get("token", ""))
        if not token_value:
            return errors.oauth_error(400, "invalid_request", "Missing parameter: token")
        state.revoke(found[1], token_value)
        return BlingJSONResponse({})

    return [
        Route("/oauth/authorize", authorize, methods=["GET"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
    ]
