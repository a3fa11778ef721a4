"""OAuth2 under /Api/v3/oauth: authorize, token (authorization_code, refresh_token; HTTP Basic
client authentication only, as Bling requires) and revoke.

Authorize behaves like Bling for a browser: a consent page naming the company, the app and its
accesses, with "Autorizar" and "Cancelar" (the form posts back to /oauth/authorize). A client that
does not ask for HTML (tests, scripts, the demo) gets the approval at once, as if the user had
clicked "Autorizar". Either way the admin setting `authorize: deny` makes the user refuse."""

from __future__ import annotations

import base64
import binascii
import html
from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from blingsync.simulator import errors
from blingsync.simulator.errors import BlingJSONResponse
from blingsync.simulator.model import SCOPE_LABELS, Company, OAuthClient
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


def _wants_page(request: Request) -> bool:
    """A browser (it asks for HTML) gets Bling's consent page; an HTTP client that asks for
    anything (tests, scripts, the demo) gets the answer a user's click would give at once."""
    return "text/html" in request.headers.get("accept", "").lower()


def _consent_page(company: Company, client: OAuthClient, fields: dict[str, str]) -> HTMLResponse:
    """What Bling shows a signed-in user: which company, which app, which accesses, and two
    buttons. The form posts back here with the same parameters and the user's decision."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items())
    scopes = "".join(f"<li>{html.escape(SCOPE_LABELS[s])}</li>" for s in sorted(client.scopes))
    body = (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        "<title>Autorizar aplicativo · Bling (simulador)</title>"
        "<style>body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}</style></head><body>"
        "<h1>Autorizar aplicativo</h1>"
        f"<p>Você está conectado ao Bling como <strong>{html.escape(company.nome)}</strong> "
        f"(CNPJ {html.escape(company.cnpj)}).</p>"
        f"<p>O aplicativo <code>{html.escape(client.client_id[:8])}…</code> quer acessar:</p>"
        f"<ul>{scopes}</ul>"
        f'<form method="post" action="authorize">{hidden}'
        '<button type="submit" name="decision" value="approve">Autorizar</button>'
        '<button type="submit" name="decision" value="deny">Cancelar</button>'
        "</form></body></html>"
    )
    return HTMLResponse(body)


def routes(state: SimState) -> list[Route]:
    def _decide(params: Mapping[str, str], decision: str | None) -> Response:
        """Bling's checks of an authorization request, in Bling's order, then the user's
        decision (None: show the consent page, or approve at once for a non-browser)."""
        found = state.client(params.get("client_id", ""))
        if found is None:
            return HTMLResponse(
                "<h1>Aplicativo não encontrado</h1><p>O client_id informado não corresponde a "
                "nenhum aplicativo.</p>",
                status_code=400,
            )
        company, client = found
        redirect_uri = params.get("redirect_uri") or client.redirect_uri
        if redirect_uri != client.redirect_uri:
            return HTMLResponse(
                "<h1>redirect_uri inválido</h1><p>O endereço de retorno não é o cadastrado no "
                "aplicativo.</p>",
                status_code=400,
            )
        back: dict[str, str] = {}
        if "state" in params:
            back["state"] = params["state"]
        if params.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **back})
        if not params.get("state"):
            return _redirect(redirect_uri, {
                "error": "invalid_request",
                "error_description": "O parâmetro state é obrigatório.",
            })
        if not client.active:
            return _redirect(redirect_uri, {
                "error": "app_inativo", "error_description": "O aplicativo está inativo.", **back,
            })
        if state.authorize_decision == "deny" or decision == "deny":
            return _redirect(redirect_uri, {
                "error": "access_denied",
                "error_description": "O usuário negou o acesso ao aplicativo.", **back,
            })
        if decision is None:
            fields = {k: params[k] for k in ("response_type", "client_id", "state", "redirect_uri")
                      if k in params}
            return _consent_page(company, client, fields)
        return _redirect(redirect_uri, {"code": state.issue_code(company, client), **back})

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        return _decide(params, None if _wants_page(request) else "approve")

    async def authorize_form(request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        decision = params.pop("decision", "")
        response = _decide(params, decision if decision in ("approve", "deny") else "deny")
        if isinstance(response, RedirectResponse):
            response.status_code = 303  # after a form POST, the browser follows with a GET
        return response

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
        Route("/oauth/authorize", authorize_form, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
    ]
