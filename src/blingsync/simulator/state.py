"""The simulator's mutable state: the world, OAuth grants and tokens, limits, faults, counters.

Everything runs on one event loop and no method awaits, so no lock is needed: each call is
atomic with respect to the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from blingsync.simulator import lifecycle
from blingsync.simulator.clock import Clock, SystemClock, now_brt
from blingsync.simulator.data import new_note
from blingsync.simulator.faults import FaultInjector, FaultSpec
from blingsync.simulator.limits import IpGuard, LimitSettings, RateLimiter, Verdict
from blingsync.simulator.model import (
    SCOPE_IDS,
    ApiUser,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    OAuthClient,
    SalesOrder,
    Scope,
    V2Permission,
    World,
)
from blingsync.simulator.nfexml import build_nfeproc

JWT_MIN, JWT_MAX = 1500, 3000


@dataclass
class AuthSettings:
    code_ttl: float = 60.0
    access_ttl: int = 21600
    refresh_ttl: float = 30 * 86400.0


@dataclass
class Grant:
    """One authorisation of an app by a company (what a code turns into)."""

    id: int
    company: Company
    client: OAuthClient
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    company: Company
    client: OAuthClient
    issued_at: float
    used_by: Grant | None = None


@dataclass
class IssuedToken:
    token: str
    grant: Grant
    expires_at: float
    kind: Literal["access", "refresh"]
    jwt: bool = False
    rotated: bool = False  # refresh tokens: replaced by a newer one


@dataclass
class Counters:
    """Per-company request accounting, readable through the admin API."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0

    def record(self, endpoint: str, status: int) -> None:
        self.requests[endpoint] += 1
        self.statuses[str(status)] += 1
        if status == 429:
            self.rate_limited += 1
        if status >= 400:
            self.errors[f"{endpoint} {status}"] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": sum(self.requests.values()),
            "by_endpoint": dict(sorted(self.requests.items())),
            "by_status": dict(sorted(self.statuses.items())),
            "errors": dict(sorted(self.errors.items())),
            "rate_limited": self.rate_limited,
        }


class OAuthFailure(Exception):
    """A token-endpoint refusal: carries Bling's status, type and description."""

    def __init__(self, status: int, type_: str, description: str, message: str | None = None):
        super().__init__(description)
        self.status = status
        self.type = type_
        self.description = description
        self.message = message or type_


EventListener = Callable[[Company, str, dict[str, Any]], None]


class SimState:
    def __init__(
        self,
        world: World,
        *,
        clock: Clock | None = None,
        limits: LimitSettings | None = None,
        faults: FaultSpec | None = None,
        auth: AuthSettings | None = None,
        v2_discontinued: bool = False,
    ) -> None:
        self.world = world
        self.clock: Clock = clock or SystemClock()
        self.limits = limits or LimitSettings()
        self.limiter = RateLimiter(self.clock, self.limits)
        self.ip_guard = IpGuard(self.clock, self.limits)
        self.faults = FaultInjector(faults or FaultSpec())
        self.auth = auth or AuthSettings()
        self.v2_discontinued = v2_discontinued
        self.authorize_decision = "approve"  # or "deny": the user refuses the app
        self.counters: dict[int, Counters] = {c.id: Counters() for c in world.companies}
        self.listeners: list[EventListener] = []
        # Runtime randomness (evolution, new notes) is seeded too, apart from the history's.
        self.rng = random.Random(f"runtime:{world.seed}")
        self._url_key = hashlib.sha256(f"blingsync-sim-url:{world.seed}".encode()).digest()
        self._jwt_key = secrets.token_bytes(32)
        self._codes: dict[str, AuthCode] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._grants: list[Grant] = []
        self._xml_cache: dict[int, bytes] = {}
        self._note_index: dict[str, dict[str, tuple[Company, Note]]] = {}
        self._clients: dict[str, tuple[Company, OAuthClient]] = {}
        self._apikeys: dict[str, tuple[Company, ApiUser]] = {}
        for company in world.companies:
            self._index(company)

    # --- lookups ---------------------------------------------------------------------------

    def _index(self, company: Company) -> None:
        for client in company.clients:
            self._clients[client.client_id] = (company, client)
        for user in company.api_users:
            self._apikeys[user.apikey] = (company, user)

    def company(self, company_id: int) -> Company | None:
        return next((c for c in self.world.companies if c.id == company_id), None)

    def client(self, client_id: str) -> tuple[Company, OAuthClient] | None:
        return self._clients.get(client_id)

    def api_user(self, apikey: str) -> tuple[Company, ApiUser] | None:
        return self._apikeys.get(apikey)

    def add_client(
        self, company: Company, scopes: frozenset[Scope], redirect_uri: str | None = None
    ) -> OAuthClient:
        client = OAuthClient(
            client_id=secrets.token_hex(20),
            client_secret=secrets.token_hex(30),
            scopes=scopes,
            redirect_uri=redirect_uri or company.clients[0].redirect_uri,
        )
        company.clients.append(client)
        self._index(company)
        return client

    def add_api_user(
        self, company: Company, permissions: frozenset[V2Permission], name: str = "Integração"
    ) -> ApiUser:
        user = ApiUser(
            name=name,
            email=f"api+{len(company.api_users)}@{company.fantasia.lower().replace(' ', '')}.com.br",
            apikey=secrets.token_hex(36),
            permissions=permissions,
        )
        company.api_users.append(user)
        self._index(company)
        return user

    def now(self) -> datetime:
        return now_brt(self.clock)

    def admit(self, company: Company, *, burst: bool) -> Verdict:
        """One API request of `company` against its limits (v2 and v3 share them); `burst`
        starts an injected burst of 429s first (the `429` fault)."""
        if burst:
            self.limiter.inject_burst(company.id, self.faults.spec.burst_length)
        return self.limiter.check(company.id)

    # --- OAuth -----------------------------------------------------------------------------

    def issue_code(self, company: Company, client: OAuthClient) -> str:
        code = secrets.token_hex(20)
        self._codes[code] = AuthCode(code, company, client, self.clock.time())
        return code

    def exchange_code(self, client: OAuthClient, code: str, jwt: bool) -> dict[str, Any]:
        entry = self._codes.get(code)
        if entry is None or entry.client is not client:
            raise OAuthFailure(400, "invalid_grant", "The authorization code is invalid")
        if entry.used_by is not None:
            # Bling: reusing a code revokes what it granted, for the user's safety.
            self._revoke_grant(entry.used_by)
            raise OAuthFailure(
                400,
                "VALIDATION_ERROR",
                "This authorization code has already been used, for security reasons the user "
                "has had access revoked.",
                message="Invalid authorization code",
            )
        if self.clock.time() - entry.issued_at > self.auth.code_ttl:
            raise OAuthFailure(400, "invalid_grant", "The authorization code has expired")
        grant = Grant(len(self._grants) + 1, entry.company, client)
        self._grants.append(grant)
        entry.used_by = grant
        return self._token_response(grant, jwt)

    def refresh(self, client: OAuthClient, refresh_token: str, jwt: bool) -> dict[str, Any]:
        entry = self._tokens.get(refresh_token)
        if entry is None or entry.kind != "refresh" or entry.grant.client is not client:
            raise OAuthFailure(400, "invalid_grant", "Invalid refresh token")
        if entry.grant.revoked or entry.rotated:
            raise OAuthFailure(400, "invalid_grant", "Refresh token has been revoked")
        if self.clock.time() >= entry.expires_at:
            raise OAuthFailure(400, "invalid_grant", "Refresh token has expired")
        entry.rotated = True
        return self._token_response(entry.grant, jwt)

    def revoke(self, client: OAuthClient, token: str) -> None:
        entry = self._tokens.get(token)
        if entry is not None and entry.grant.client is client:
            self._revoke_grant(entry.grant)

    def _revoke_grant(self, grant: Grant) -> None:
        grant.revoked = True

    def refresh_token_for(self, company: Company, client: OAuthClient) -> str:
        """A fresh grant's refresh token, for the admin API (as if the user had just connected)."""
        grant = Grant(len(self._grants) + 1, company, client)
        self._grants.append(grant)
        return str(self._token_response(grant, jwt=False)["refresh_token"])

    def _token_response(self, grant: Grant, jwt: bool) -> dict[str, Any]:
        now = self.clock.time()
        access = self._jwt(grant, now) if jwt else secrets.token_hex(20)
        refresh = secrets.token_hex(20)
        self._tokens[access] = IssuedToken(
            access, grant, now + self.auth.access_ttl, "access", jwt=jwt
        )
        self._tokens[refresh] = IssuedToken(refresh, grant, now + self.auth.refresh_ttl, "refresh")
        return {
            "access_token": access,
            "expires_in": self.auth.access_ttl,
            "token_type": "Bearer",
            "scope": " ".join(str(SCOPE_IDS[s]) for s in sorted(grant.client.scopes)),
            "refresh_token": refresh,
        }

    def _jwt(self, grant: Grant, now: float) -> str:
        """A JWT-shaped access token of Bling's size (1,500-3,000 characters)."""

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "iss": "https://www.bling.com.br",
            "sub": grant.company.company_id,
            "aud": grant.client.client_id,
            "iat": int(now),
            "exp": int(now) + self.auth.access_ttl,
            "jti": secrets.token_hex(16),
            "scope": sorted(SCOPE_IDS[s] for s in grant.client.scopes),
            "permissions": [
                f"{s.value}.{action}"
                for s in sorted(grant.client.scopes)
                for action in ("ObterMultiplos", "Obter", "Criar", "Alterar", "Excluir",
                               "AlterarSituacao", "Lancar", "Estornar", "Enviar", "Gerar")
            ],
        }

        def sign(claims: dict[str, Any]) -> str:
            body = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            signature = hmac.new(self._jwt_key, body.encode(), hashlib.sha256).digest()
            return f"{body}.{b64(signature)}"

        # Bling's JWTs are 1,500-3,000 characters whatever the app's scopes: pad the claims to a
        # length drawn in that range, so storage sized on a narrow app still fits a wide one.
        target = JWT_MIN + secrets.randbelow(JWT_MAX - JWT_MIN - 200)
        token = sign(claims)
        chars = max(0, (target - len(token)) * 3 // 4)  # base64 makes 4 characters of 3
        claims["ext"] = secrets.token_urlsafe(chars)[:chars]
        return sign(claims)

    def resolve_bearer(self, token: str) -> tuple[Company, OAuthClient] | Literal["invalid", "expired"]:
        entry = self._tokens.get(token)
        if entry is None or entry.kind != "access" or entry.grant.revoked:
            return "invalid"
        if not entry.grant.client.active:
            return "invalid"
        if self.clock.time() >= entry.expires_at:
            return "expired"
        return entry.grant.company, entry.grant.client

    # --- documents -------------------------------------------------------------------------

    def note_xml(self, company: Company, note: Note) -> bytes:
        """The authorised nfeProc. It never changes once authorised, so it is built once."""
        cached = self._xml_cache.get(note.id)
        if cached is None:
            cached = build_nfeproc(company, note)
            self._xml_cache[note.id] = cached
        return cached

    def xml_signature(self, chave: str) -> str:
        return hmac.new(self._url_key, chave.encode(), hashlib.sha256).hexdigest()[:40]

    def find_note_by_chave(self, chave: str) -> tuple[Company, Note] | None:
        return self._find_note("chave", chave)

    def find_note_by_danfe(self, danfe_hash: str) -> tuple[Company, Note] | None:
        return self._find_note("danfe_hash", danfe_hash)

    def _find_note(self, attr: str, value: str) -> tuple[Company, Note] | None:
        """Look a note up by an attribute that is set during its life (chave, danfe_hash).

        The index is rebuilt on a miss, so notes that gained the attribute since are found;
        a hit is checked against the note, so a stale entry is never returned."""
        if not value:
            return None
        index = self._note_index.setdefault(attr, {})
        hit = index.get(value)
        if hit is None or getattr(hit[1], attr) != value:
            index.clear()
            for company in self.world.companies:
                for note in company.notes.values():
                    key = getattr(note, attr)
                    if key:
                        index[key] = (company, note)
            hit = index.get(value)
        return hit

    # --- changes and events ----------------------------------------------------------------

    def emit(self, company: Company, event: str, data: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(company, event, data)

    def note_event(self, company: Company, note: Note, action: str) -> None:
        resource = "invoice" if note.modelo == Modelo.NFE else "consumer_invoice"
        if action == "deleted":
            self.emit(company, f"{resource}.deleted", {"id": note.id})
            return
        self.emit(company, f"{resource}.{action}", {
            "id": note.id,
            "tipo": note.tipo,
            "situacao": int(note.situacao),
            "numero": f"{note.numero:06d}",
            "dataEmissao": note.emitted_at.strftime("%Y-%m-%d %H:%M:%S"),
            "dataOperacao": note.operation_at.strftime("%Y-%m-%d %H:%M:%S"),
            "contato": {"id": note.recipient.id},
            "naturezaOperacao": {"id": note.natureza_operacao_id},
            "loja": {"id": note.store.id if note.store else 0},
        })

    def order_event(self, company: Company, order: SalesOrder, action: str) -> None:
        situation = next(s for s in company.order_situations if s.id == order.situacao_id)
        self.emit(company, f"order.{action}", {
            "id": order.id,
            "data": order.data.isoformat(),
            "numero": order.numero,
            "numeroLoja": order.numero_loja,
            "total": float(order.total),
            "contato": {"id": order.contato.id},
            "vendedor": {"id": order.vendedor_id},
            "loja": {"id": order.store.id if order.store else 0},
            "situacao": {"id": situation.id, "valor": situation.valor},
        })

    def _order_snapshot(
        self, company: Company, order_id: int | None
    ) -> tuple[int, datetime] | None:
        order = company.orders.get(order_id) if order_id is not None else None
        return (order.situacao_id, order.altered_at) if order else None

    def move_note(self, company: Company, note: Note, situacao: NfeSituacao) -> None:
        """Move a note (admin API, demo evolution) and announce what changed."""
        before = self._order_snapshot(company, note.order_id)
        lifecycle.move_to(company, note, situacao, self.rng, self.now())
        self.note_event(company, note, "updated")
        self._announce_order_change(company, note.order_id, before)

    def _announce_order_change(
        self, company: Company, order_id: int | None, before: tuple[int, datetime] | None
    ) -> None:
        after = self._order_snapshot(company, order_id)
        if order_id is not None and after is not None and after != before:
            self.order_event(company, company.orders[order_id], "updated")

    def create_note(
        self, company: Company, *, modelo: Modelo = Modelo.NFE, tipo: int = 1,
        situacao: NfeSituacao = NfeSituacao.PENDENTE,
    ) -> Note:
        note = new_note(company, self.rng, self.now(), modelo=modelo, tipo=tipo)
        self.note_event(company, note, "created")
        if note.order_id is not None:
            self.order_event(company, company.orders[note.order_id], "created")
        if situacao != NfeSituacao.PENDENTE:
            self.move_note(company, note, situacao)
        return note

    def evolve(self) -> list[str]:
        """One step of life in every company: new sales, authorisations, DANFEs printed, a few
        cancellations. Returns a line per change, for logs."""
        changes: list[str] = []
        rng = self.rng
        now = self.now()
        for company in self.world.companies:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                modelo = Modelo.NFCE if rng.random() < 0.15 else Modelo.NFE
                note = self.create_note(company, modelo=modelo)
                changes.append(f"{company.fantasia}: nota {note.numero} criada (Pendente)")
            # Only notes born since the generated history move on their own: the history keeps
            # its shape (e.g. the old Autorizada notes whose DANFE was never printed).
            live = [n for n in company.notes.values() if n.emitted_at >= self.world.anchor]
            for note in sorted(live, key=lambda n: n.id):
                roll = rng.random()
                target: NfeSituacao | None = None
                if note.situacao == NfeSituacao.PENDENTE and roll < 0.6:
                    target = NfeSituacao.AUTORIZADA
                elif note.situacao == NfeSituacao.AUTORIZADA and roll < 0.5:
                    target = NfeSituacao.EMITIDA_DANFE
                elif (note.situacao == NfeSituacao.EMITIDA_DANFE and roll < 0.02
                      and now - note.emitted_at < timedelta(hours=24)):  # SEFAZ's window
                    target = NfeSituacao.CANCELADA
                if target is not None:
                    self.move_note(company, note, target)
                    changes.append(f"{company.fantasia}: nota {note.numero} → {target.name}")
        return changes
