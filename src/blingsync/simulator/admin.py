"""The simulator's own admin API under /_sim (JSON; not part of Bling): credentials, notes and
their situations, faults, limits, webhooks, counters and time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blingsync.simulator import lifecycle
from blingsync.simulator.clock import ManualClock, SystemClock
from blingsync.simulator.faults import FaultSpec, FaultSpecError
from blingsync.simulator.model import (
    SCOPE_LABELS,
    V2_PERMISSION_LABELS,
    V2_SITUACAO,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    OAuthClient,
    Scope,
    V2Permission,
)
from blingsync.simulator.state import SimState
from blingsync.simulator.webhooks import WebhookHub, WebhookKnobs, webhook_url

MAX_ADVANCE = 10 * 366 * 86400.0  # ten years; NaN and infinities are refused too

AdminEndpoint = Callable[[Request], Awaitable[Any]]


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _client_json(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "scopes": sorted(s.value for s in client.scopes),
        "scope_labels": [SCOPE_LABELS[s] for s in sorted(client.scopes)],
        "redirect_uri": client.redirect_uri,
        "webhook_url": client.webhook_url,
        "webhooks_enabled": client.webhooks_enabled,
        "active": client.active,
    }


def _note_json(company: Company, note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "account": company.id,
        "modelo": int(note.modelo),
        "tipo": note.tipo,
        "numero": note.numero,
        "serie": note.serie,
        "situacao": int(note.situacao),
        "situacao_nome": note.situacao.name,
        "situacao_v2": V2_SITUACAO[note.situacao][1],
        "chave": note.chave,
        "emitted_at": note.emitted_at.isoformat(),
        "order_id": note.order_id,
        "valor_nota": str(note.valor_nota),
    }


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise AdminError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise AdminError(400, "the body must be a JSON object")
    return body


def _url(value: object) -> str | None:
    try:
        return webhook_url(value)
    except ValueError as exc:
        raise AdminError(400, str(exc)) from None


def _whole(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    """An integer field of an admin request, within bounds (JSON true is not 1 here)."""
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AdminError(400, f"{key} must be an integer from {low} to {high}")
    return value


def _company(state: SimState, request: Request) -> Company:
    try:
        company_id = int(request.path_params["account"])
    except ValueError:
        raise AdminError(404, "account ids are integers") from None
    company = state.company(company_id)
    if company is None:
        raise AdminError(404, f"no account {company_id}")
    return company


def _note(state: SimState, request: Request) -> tuple[Company, Note]:
    try:
        note_id = int(request.path_params["note"])
    except ValueError:
        raise AdminError(404, "note ids are integers") from None
    for company in state.world.companies:
        if note_id in company.notes:
            return company, company.notes[note_id]
    raise AdminError(404, f"no note {note_id}")


def _enum_list(values: Any, kind: type[Scope] | type[V2Permission], what: str) -> frozenset[Any]:
    if not isinstance(values, list):
        raise AdminError(400, f"{what} must be a list")
    try:
        return frozenset(kind(v) for v in values)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise AdminError(400, f"unknown {what} in {values!r}; known: {known}") from None


ACTION_TARGETS = {
    "authorise": NfeSituacao.AUTORIZADA,
    "print-danfe": NfeSituacao.EMITIDA_DANFE,
    "cancel": NfeSituacao.CANCELADA,
    "reject": NfeSituacao.REJEITADA,
    "deny": NfeSituacao.DENEGADA,
}


def routes(state: SimState, hub: WebhookHub) -> list[Route]:
    def route(path: str, methods: list[str]) -> Callable[[AdminEndpoint], Route]:
        def wrap(fn: AdminEndpoint) -> Route:
            async def endpoint(request: Request) -> Response:
                try:
                    result = await fn(request)
                except AdminError as exc:
                    return JSONResponse({"error": exc.message}, status_code=exc.status)
                if isinstance(result, Response):
                    return result
                return JSONResponse(result)

            return Route(path, endpoint, methods=methods)

        return wrap

    @route("/", ["GET"])
    async def index(request: Request) -> Any:
        return {
            "seed": state.world.seed,
            "anchor": state.world.anchor.isoformat(),
            "accounts": len(state.world.companies),
            "notes": sum(len(c.notes) for c in state.world.companies),
            "orders": sum(len(c.orders) for c in state.world.companies),
            "faults": state.faults.spec.describe(),
            "rate_limit": state.limits.enabled,
            "v2_discontinued": state.v2_discontinued,
        }

    @route("/accounts", ["GET"])
    async def accounts(request: Request) -> Any:
        out = []
        for c in state.world.companies:
            by_situacao: dict[str, int] = {}
            for n in c.notes.values():
                key = f"{n.modelo.name.lower()}:{'saida' if n.tipo else 'entrada'}:{n.situacao.name}"
                by_situacao[key] = by_situacao.get(key, 0) + 1
            out.append({
                "id": c.id,
                "company_id": c.company_id,
                "nome": c.nome,
                "fantasia": c.fantasia,
                "cnpj": c.cnpj,
                "uf": c.endereco.uf,
                "clients": [
                    {
                        **_client_json(cl),
                        # Fresh credentials on every listing, as if the brand had just
                        # authorised the app: a code (valid 60 s, single use) and a grant's
                        # refresh token.
                        "authorization_code": state.issue_code(c, cl),
                        "refresh_token": state.refresh_token_for(c, cl),
                    }
                    for cl in c.clients
                ],
                "api_keys": [
                    {
                        "name": u.name,
                        "apikey": u.apikey,
                        "permissions": sorted(p.value for p in u.permissions),
                        "permission_labels": [
                            V2_PERMISSION_LABELS[p] for p in sorted(u.permissions)
                        ],
                    }
                    for u in c.api_users
                ],
                "notes": dict(sorted(by_situacao.items())),
                "orders": len(c.orders),
                "requests_today": state.limiter.used_today(c.id),
            })
        return {"accounts": out}

    def _pick_client(company: Company, body: dict[str, Any]) -> OAuthClient:
        wanted = body.get("client_id")
        for client in company.clients:
            if wanted in (None, client.client_id):
                return client
        raise AdminError(404, f"account {company.id} has no client {wanted}")

    @route("/accounts/{account}/code", ["POST"])
    async def code(request: Request) -> Any:
        company = _company(state, request)
        client = _pick_client(company, await _body(request))
        return {
            "code": state.issue_code(company, client),
            "client_id": client.client_id,
            "expires_in": state.auth.code_ttl,
        }

    @route("/accounts/{account}/refresh-token", ["POST"])
    async def refresh_token(request: Request) -> Any:
        company = _company(state, request)
        client = _pick_client(company, await _body(request))
        return {
            "refresh_token": state.refresh_token_for(company, client),
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        }

    @route("/accounts/{account}/clients", ["POST"])
    async def new_client(request: Request) -> Any:
        company = _company(state, request)
        body = await _body(request)
        scopes = _enum_list(body.get("scopes", [s.value for s in Scope]), Scope, "scopes")
        url = _url(body.get("webhook_url"))
        client = state.add_client(company, scopes, body.get("redirect_uri"))
        client.webhook_url = url
        return _client_json(client)

    @route("/clients/{client_id}", ["PATCH"])
    async def patch_client(request: Request) -> Any:
        found = state.client(request.path_params["client_id"])
        if found is None:
            raise AdminError(404, "no such client")
        client = found[1]
        body = await _body(request)
        for key in ("active", "webhooks_enabled"):
            if key in body:
                setattr(client, key, bool(body[key]))
        if "webhook_url" in body:
            client.webhook_url = _url(body["webhook_url"])
        if "redirect_uri" in body:
            client.redirect_uri = str(body["redirect_uri"])
        if "scopes" in body:
            client.scopes = _enum_list(body["scopes"], Scope, "scopes")
        return _client_json(client)

    @route("/accounts/{account}/apikeys", ["POST"])
    async def new_apikey(request: Request) -> Any:
        company = _company(state, request)
        body = await _body(request)
        default = [p.value for p in V2Permission if p != V2Permission.PROPOSTAS_COMERCIAIS]
        permissions = _enum_list(body.get("permissions", default), V2Permission, "permissions")
        user = state.add_api_user(company, permissions, str(body.get("name", "Integração")))
        return {"apikey": user.apikey, "permissions": sorted(p.value for p in user.permissions)}

    @route("/accounts/{account}/counters", ["GET"])
    async def counters(request: Request) -> Any:
        company = _company(state, request)
        return {**state.counters[company.id].as_json(),
                "requests_today": state.limiter.used_today(company.id)}

    @route("/accounts/{account}/notes", ["POST"])
    async def create_notes(request: Request) -> Any:
        company = _company(state, request)
        body = await _body(request)
        count = _whole(body, "count", 1, 1, 10_000)
        modelo = {"nfe": Modelo.NFE, "nfce": Modelo.NFCE}.get(str(body.get("modelo", "nfe")))
        if modelo is None:
            raise AdminError(400, "modelo must be nfe or nfce")
        tipo = _whole(body, "tipo", 1, 0, 1)
        situacao = NfeSituacao(_whole(body, "situacao", NfeSituacao.PENDENTE, 1, 12))
        created = []
        for _ in range(count):
            try:
                note = state.create_note(company, modelo=modelo, tipo=tipo, situacao=situacao)
            except lifecycle.InvalidTransition as exc:
                raise AdminError(409, str(exc)) from None
            created.append(_note_json(company, note))
        return {"notes": created}

    @route("/notes/{note}", ["GET"])
    async def get_note(request: Request) -> Any:
        company, note = _note(state, request)
        return _note_json(company, note)

    @route("/notes/{note}/situacao", ["POST"])
    async def move(request: Request) -> Any:
        company, note = _note(state, request)
        body = await _body(request)
        if "action" in body:
            action = str(body["action"])
            if action not in ACTION_TARGETS:
                raise AdminError(400, f"action must be one of {', '.join(ACTION_TARGETS)}")
            target = ACTION_TARGETS[action]
        else:
            try:
                target = NfeSituacao(_whole(body, "situacao", 0, 1, 12))
            except AdminError:
                raise AdminError(
                    400, "give situacao (a v3 code, 1-12) or action "
                    f"({', '.join(ACTION_TARGETS)})"
                ) from None
        try:
            state.move_note(company, note, target)
        except lifecycle.InvalidTransition as exc:
            raise AdminError(409, str(exc)) from None
        return _note_json(company, note)

    @route("/faults", ["GET", "PUT"])
    async def faults(request: Request) -> Any:
        if request.method == "PUT":
            body = await _body(request)
            try:
                state.faults.configure(FaultSpec.parse(str(body.get("spec", ""))))
            except FaultSpecError as exc:
                raise AdminError(400, str(exc)) from None
        return {"spec": state.faults.spec.describe(), "injected": state.faults.injected}

    @route("/settings", ["GET", "PUT"])
    async def settings(request: Request) -> Any:
        limits = state.limits
        if request.method == "PUT":
            body = await _body(request)
            known = {f.name for f in fields(limits)} | {"v2_discontinued", "authorize"}
            unknown = set(body) - known
            if unknown:
                raise AdminError(400, f"unknown settings {sorted(unknown)}; known: {sorted(known)}")
            for f in fields(limits):
                if f.name in body:
                    value = body[f.name]
                    expected = type(getattr(limits, f.name))
                    if expected is float and isinstance(value, int):
                        value = float(value)
                    if type(value) is not expected:
                        raise AdminError(400, f"{f.name} must be a {expected.__name__}")
                    if expected in (int, float) and not (0 < value < 1e12):
                        raise AdminError(400, f"{f.name} must be a number above 0")
                    setattr(limits, f.name, value)
            if "v2_discontinued" in body:
                state.v2_discontinued = bool(body["v2_discontinued"])
            if "authorize" in body:
                if body["authorize"] not in ("approve", "deny"):
                    raise AdminError(400, "authorize must be approve or deny")
                state.authorize_decision = body["authorize"]
        return {**asdict(limits), "v2_discontinued": state.v2_discontinued,
                "authorize": state.authorize_decision}

    @route("/limits/reset", ["POST"])
    async def reset_limits(request: Request) -> Any:
        state.limiter.reset()
        state.ip_guard.reset()
        return {"reset": True}

    @route("/webhooks", ["GET", "PUT"])
    async def webhooks(request: Request) -> Any:
        if request.method == "PUT":
            body = await _body(request)
            knobs = body.get("knobs")
            if knobs is not None:
                names = {f.name for f in fields(WebhookKnobs)}
                if not isinstance(knobs, dict) or set(knobs) - names:
                    raise AdminError(400, f"knobs must be an object with keys among {sorted(names)}")
                try:
                    hub.configure(WebhookKnobs(**{**asdict(hub.knobs), **knobs}))
                except ValueError as exc:
                    raise AdminError(400, f"knobs: {exc}") from None
            if "url" in body:
                url = _url(body["url"])
                targets = state.world.companies
                if body.get("account") is not None:
                    targets = [c for c in targets if c.id == body["account"]]
                    if not targets:
                        raise AdminError(404, f"no account {body['account']}")
                for company in targets:
                    company.clients[0].webhook_url = url
                    company.clients[0].webhooks_enabled = True
        return {"knobs": asdict(hub.knobs), "stats": hub.stats()}

    @route("/webhooks/deliveries", ["GET"])
    async def deliveries(request: Request) -> Any:
        return {"deliveries": [d.as_json() for d in list(hub.deliveries)[-500:]]}

    @route("/evolve", ["POST"])
    async def evolve(request: Request) -> Any:
        body = await _body(request)
        steps = _whole(body, "steps", 1, 1, 1000)
        changes: list[str] = []
        for _ in range(steps):
            changes.extend(state.evolve())
        return {"changes": changes}

    @route("/clock/advance", ["POST"])
    async def advance(request: Request) -> Any:
        body = await _body(request)
        seconds = body.get("seconds")
        if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                or not 0 <= seconds <= MAX_ADVANCE):
            raise AdminError(400, f"seconds must be a number from 0 to {MAX_ADVANCE:.0f}")
        clock = state.clock
        if not isinstance(clock, SystemClock | ManualClock):
            raise AdminError(409, "this clock cannot be moved")
        clock.advance(float(seconds))
        return {"now": state.now().isoformat()}

    return [index, accounts, code, refresh_token, new_client, patch_client, new_apikey, counters,
            create_notes, get_note, move, faults, settings, reset_limits, webhooks, deliveries,
            evolve, advance]
