"""What stands in front of every Bling route: the IP guard and injected faults (an ASGI
middleware), and, for v3 routes, bearer authentication, scopes, the account's rate limit and
its counters (a wrapper around each endpoint)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blingsync.simulator import errors
from blingsync.simulator.faults import FaultDecision
from blingsync.simulator.model import Company, OAuthClient
from blingsync.simulator.model import Scope as BlingScope
from blingsync.simulator.state import SimState

FAULTABLE_PREFIXES = ("/Api/", "/relatorios/", "/doc.view.php")

_PROXY_PAGES = {
    502: b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>",
    503: b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
    b"<h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body>"
    b"</html>",
    504: b"<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway "
    b"Time-out</h1></center><hr><center>nginx</center></body></html>",
}


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _send_simple(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


class BlingEdge:
    """ASGI middleware: IP blocks, latency, 5xx, timeouts and truncated bodies."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(FAULTABLE_PREFIXES):
            await self.app(scope, receive, send)
            return
        state = self.state
        ip = client_ip(scope)
        blocked = state.ip_guard.admit(ip, token_call=path.endswith("/oauth/token"))
        if blocked > 0:
            response = errors.ip_blocked(int(blocked) + 1)
            await response(scope, receive, send)
            return
        decision = state.faults.decide()
        scope.setdefault("state", {})["fault"] = decision
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.kind == "5xx":
            state.ip_guard.record_error(ip)
            if decision.status == 500:
                await errors.server_error()(scope, receive, send)
            else:
                await _send_simple(send, decision.status, _PROXY_PAGES[decision.status],
                                   b"text/html")
            return
        if decision.kind == "timeout":
            await asyncio.sleep(state.faults.spec.hang)
            state.ip_guard.record_error(ip)
            await _send_simple(send, 504, _PROXY_PAGES[504], b"text/html")
            return

        truncate = decision.kind == "truncate"
        pending_start: Message | None = None
        body = bytearray()

        async def guarded_send(message: Message) -> None:
            nonlocal pending_start
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    state.ip_guard.record_error(ip)
                if not truncate:
                    await send(message)
                    return
                pending_start = message
                return
            if not truncate or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            if pending_start is None:  # pragma: no cover - ASGI always starts first
                raise RuntimeError("response body before response start")
            cut = bytes(body[: max(1, int(len(body) * decision.cut))])
            headers = [(k, v) for k, v in pending_start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(cut)).encode()))
            await send({**pending_start, "headers": headers})
            await send({"type": "http.response.body", "body": cut})

        await self.app(scope, receive, guarded_send)


def fault_of(request: Request) -> FaultDecision:
    decision = request.scope.get("state", {}).get("fault")
    return decision if isinstance(decision, FaultDecision) else FaultDecision()


@dataclass
class V3Call:
    request: Request
    state: SimState
    company: Company
    client: OAuthClient


Handler = Callable[[V3Call], Awaitable[Response]]


def count_and_limit(state: SimState, request: Request, company: Company, label: str) -> Response | None:
    """Apply the account's limits to one authenticated request; a 429 when refused."""
    verdict = state.admit(company, burst=fault_of(request).kind == "429")
    if not verdict.allowed:
        state.counters[company.id].record(label, 429)
        return errors.too_many_requests(verdict.period, verdict.limit)
    return None


def v3_endpoint(
    state: SimState, scope: BlingScope | None, label: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        header = request.headers.get("authorization")
        if header is None:
            return errors.invalid_token(expired=False)
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return errors.malformed_auth_header()
        resolved = state.resolve_bearer(token.strip())
        if resolved == "invalid":
            return errors.invalid_token(expired=False)
        if resolved == "expired":
            return errors.invalid_token(expired=True)
        company, client = resolved
        if scope is not None and scope not in client.scopes:
            state.counters[company.id].record(label, 403)
            return errors.insufficient_scope()
        refused = count_and_limit(state, request, company, label)
        if refused is not None:
            return refused
        response = await handler(V3Call(request, state, company, client))
        state.counters[company.id].record(label, response.status_code)
        return response

    return endpoint


async def json_body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, or Bling's error for an empty or unreadable body."""
    raw = await request.body()
    if not raw.strip():
        return errors.v3_error(
            400, "EMPTY_REQUEST_BODY", "Não foi possível executar a operação",
            "Nenhum dado foi informado na requisição.",
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return errors.v3_error(
            400, "INVALID_REQUEST_BODY", "Não foi possível executar a operação",
            "O corpo da requisição não é um JSON válido.",
        )
    if not isinstance(body, dict):
        return errors.v3_error(
            400, "INVALID_REQUEST_BODY", "Não foi possível executar a operação",
            "O corpo da requisição deve ser um objeto JSON.",
        )
    return body
