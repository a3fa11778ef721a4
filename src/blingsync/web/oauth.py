"""Connecting a brand's Bling account through Bling's own login (OAuth2 authorization code), in the
brand's browser, with the warehouse's one Bling app (`BLINGSYNC_OAUTH_CLIENT_ID`/`_SECRET`).

1. An operator asks for a connect link (`connect_link`: the CLI's `accounts connect`, the API's
   "start OAuth"): `{public_url}/oauth/bling/start?ticket=…`, one-time, valid for a day, for one
   account name (new, or an existing one to reconnect).
2. The brand opens it: `GET /oauth/bling/start` spends the ticket, binds the attempt to this
   browser (a random session value in an HttpOnly cookie) and to a fresh `state`, and sends the
   browser to Bling's authorize page. The brand signs in to Bling and clicks "Autorizar".
3. Bling sends the browser back to the app's one registered redirect URI,
   `{public_url}/oauth/bling/callback?code=…&state=…`. The state must be one we issued, unspent,
   unexpired and come back from the browser it was bound to; then the code is exchanged, the tokens
   stored encrypted, the permissions probed and the company read (`Service.add_account` /
   `Service.reconnect`), and the brand reads the outcome in Portuguese words.

Why each binding: the ticket keeps a leaked or guessed URL from connecting anything twice; the
state bound to the session keeps someone else's Bling answer (a "login CSRF": an attacker's code
sent to the brand's browser) from landing in the brand's account, and a replayed callback from
doing anything; the state's short life bounds how long a half-finished attempt stays usable.
Every page is plain HTML without scripts; every value shown is escaped; no page carries a
secret, a code or a stack trace."""

from __future__ import annotations

import contextlib
import html
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from blingsync.bling.errors import (
    BlingError,
    CredentialsInvalid,
    RateLimited,
    ReauthorizationNeeded,
)
from blingsync.bling.models import CompanyInfo, PermissionCheck
from blingsync.config import DEFAULT_BLING_URL
from blingsync.service import Added, CodeNotExchanged, Service, ServiceError
from blingsync.store import AccountExists, AccountNotFound, CredentialsUnreadable
from blingsync.store.oauth import OAuthAttempt, OAuthRefusal
from blingsync.store.records import Account, AccountSettings, Credentials, V3Credentials
from blingsync.web import deps

log = logging.getLogger(__name__)

PREFIX: Final = "/oauth/bling"
CALLBACK_PATH: Final = f"{PREFIX}/callback"
TICKET_TTL: Final = timedelta(hours=24)
"""How long a connect link stays usable: a brand may open it the next morning."""
STATE_TTL: Final = timedelta(minutes=10)
"""From opening the link to coming back from Bling: signing in to Bling and clicking a button."""
COOKIE_PREFIX: Final = "blingsync_oauth_"
"""One cookie per attempt (name + the attempt's id), so two connections started side by side in
one browser do not overwrite each other's session."""
BLING_AUTHORIZE_URL: Final = "https://www.bling.com.br/Api/v3/oauth/authorize"
"""Bling's login page lives on www.bling.com.br, not on the API host (reference/bling-api.md §3.1)."""

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ServiceDep = Annotated[Service, Depends(deps.service)]
WakeupsDep = Annotated[deps.Wakeups, Depends(deps.wakeups)]


class ConnectUnavailable(ServiceError):
    """No Bling app is configured for brands to connect through."""

    def __init__(self) -> None:
        super().__init__(
            "connecting through Bling's login needs the warehouse's Bling app: set "
            "BLINGSYNC_OAUTH_CLIENT_ID and BLINGSYNC_OAUTH_CLIENT_SECRET (the app's client id and "
            f"secret; its redirect URI in Bling must be BLINGSYNC_PUBLIC_URL + {CALLBACK_PATH})")


@dataclass(frozen=True)
class ConnectLink:
    """A one-time link for the brand's browser."""

    url: str
    expires_at: datetime


def callback_url(service: Service) -> str:
    """The redirect URI to register on the Bling app."""
    return service.settings.public_url.rstrip("/") + CALLBACK_PATH


def authorize_url(bling_url: str) -> str:
    """Bling's authorize page for an API base: Bling's own login host for the real Bling, the
    base's `/oauth/authorize` for anything else (the simulator, a compatible server)."""
    base = bling_url.rstrip("/")
    return BLING_AUTHORIZE_URL if base == DEFAULT_BLING_URL else f"{base}/oauth/authorize"


def _app(service: Service) -> tuple[str, str]:
    client_id, client_secret = service.settings.oauth_client_id, service.settings.oauth_client_secret
    if not client_id or not client_secret:
        raise ConnectUnavailable()
    return client_id, client_secret


async def connect_link(service: Service, account_name: str, *, reconnect: bool = False,
                       settings: AccountSettings | None = None) -> ConnectLink:
    """A connect link for a new account named `account_name` (the name must be free: else
    `AccountExists`), or with `reconnect` for an existing one (else `AccountNotFound`), whose
    orders, cursors and settings stay. `settings` are the new account's import settings.

    Raises `ConnectUnavailable` when no Bling app is configured."""
    _app(service)
    name = account_name.strip()
    if not name:
        raise ServiceError("an account needs a name")
    if reconnect:
        await service.store.account(name)  # AccountNotFound when there is none
    else:
        with contextlib.suppress(AccountNotFound):
            await service.store.account(name)
            raise AccountExists(name)
    return await _mint(service, name, reconnect=reconnect, settings=None if reconnect else settings)


async def _mint(service: Service, name: str, *, reconnect: bool,
                settings: AccountSettings | None) -> ConnectLink:
    ticket = secrets.token_urlsafe(32)
    attempt = await service.store.create_oauth_ticket(name, ticket, ttl=TICKET_TTL, reconnect=reconnect,
                                                      settings=settings)
    url = f"{service.settings.public_url.rstrip('/')}{PREFIX}/start?{urlencode({'ticket': ticket})}"
    return ConnectLink(url=url, expires_at=attempt.expires_at)


# --- the brand's side -----------------------------------------------------------------------------


@router.get("/start")
async def confirm(request: Request, service: ServiceDep) -> Response:
    """The link's page: who is being connected, and a button that goes on to Bling. Opening the
    link spends nothing: chat apps and mail scanners open links to preview them, and a GET that
    spent the ticket would leave the brand with "link already used" before it ever clicked."""
    ticket = request.query_params.get("ticket", "")
    if not ticket:
        return _page(Outcome.INVALID_LINK)
    try:
        _app(service)
    except ConnectUnavailable:
        return _page(Outcome.UNAVAILABLE)
    found = await service.store.oauth_ticket(ticket)
    if isinstance(found, OAuthRefusal):
        return _page(_TICKET_REFUSALS[found])
    bling = urlsplit(authorize_url(service.settings.bling_url))
    return _confirm_page(found.account_name, ticket, f"{bling.scheme}://{bling.netloc}")


@router.post("/start")
async def start(request: Request, service: ServiceDep) -> Response:
    """The brand clicked "Continuar no Bling": spend the ticket, bind this browser, go to Bling."""
    form = await request.form()
    ticket = form.get("ticket")
    if not isinstance(ticket, str) or not ticket:
        return _page(Outcome.INVALID_LINK)
    try:
        client_id, _ = _app(service)
    except ConnectUnavailable:
        return _page(Outcome.UNAVAILABLE)
    state, session = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    found = await service.store.start_oauth_attempt(ticket, state=state, session=session, ttl=STATE_TTL)
    if isinstance(found, OAuthRefusal):
        return _page(_TICKET_REFUSALS[found])
    query = urlencode({"response_type": "code", "client_id": client_id, "state": state})
    response = RedirectResponse(f"{authorize_url(service.settings.bling_url)}?{query}", status_code=303)
    _no_store(response)
    response.set_cookie(
        f"{COOKIE_PREFIX}{found.id}", session, max_age=int(STATE_TTL.total_seconds()), path=PREFIX,
        secure=urlsplit(service.settings.public_url).scheme == "https", httponly=True, samesite="lax")
    return response


@router.get("/callback")
async def callback(request: Request, service: ServiceDep, wakeups: WakeupsDep) -> Response:
    query = request.query_params
    state = query.get("state", "")
    if not state:
        return _page(Outcome.INVALID_LINK)
    attempt = await service.store.oauth_attempt_by_state(state)
    if attempt is None:
        return _page(Outcome.INVALID_LINK)
    cookie = f"{COOKIE_PREFIX}{attempt.id}"
    spent = await service.store.use_oauth_state(state, session=request.cookies.get(cookie))
    if isinstance(spent, OAuthRefusal):
        if spent is OAuthRefusal.USED and (attempt.outcome or "").startswith(Outcome.CONNECTED.value):
            # The same browser (USED is said only to it) reloading its result page: say again
            # what happened.
            return _forget(_page(Outcome.ALREADY_CONNECTED, name=attempt.account_name), cookie)
        return _page(_STATE_REFUSALS[spent])
    result = await _finish(service, spent, code=query.get("code"), error=query.get("error"),
                           error_description=query.get("error_description"))
    await service.store.finish_oauth_attempt(spent.id, result.record())
    if result.account is not None:
        wakeups.sync(result.account.id)  # the first import starts now, not at the next poll
    retry = None
    if result.outcome in _RETRIABLE:
        # A fresh link for the same account and options, on a page whose browser proved it held
        # the first one (its session): trying again needs nobody else.
        retry = (await _mint(service, spent.account_name, reconnect=spent.reconnect,
                             settings=spent.settings)).url
    return _forget(_page(result.outcome, name=spent.account_name, added=result.added,
                         detail=result.detail, retry_url=retry), cookie)


# --- the exchange ---------------------------------------------------------------------------------


class Outcome(StrEnum):
    """How an attempt ended; the value is what `oauth_states.outcome` starts with."""

    CONNECTED = "connected"
    CHECK_PENDING = "connected, permissions not checked"
    ALREADY_CONNECTED = "already connected"
    DENIED = "denied by the user"
    BLING_REFUSED = "refused by Bling"
    APP_REFUSED = "the Bling app was refused"
    BLING_UNREACHABLE = "Bling unreachable"
    NAME_TAKEN = "name taken"
    ACCOUNT_GONE = "account gone"
    COMPANY_TAKEN = "company already connected"
    OTHER_COMPANY = "another company authorised"
    INVALID_LINK = "invalid link"
    LINK_USED = "link used"
    LINK_EXPIRED = "link expired"
    STATE_USED = "authorisation used"
    STATE_EXPIRED = "authorisation expired"
    OTHER_BROWSER = "other browser"
    UNAVAILABLE = "connect unavailable"
    FAILED = "failed"


_TICKET_REFUSALS: Final = {
    OAuthRefusal.UNKNOWN: Outcome.INVALID_LINK, OAuthRefusal.USED: Outcome.LINK_USED,
    OAuthRefusal.EXPIRED: Outcome.LINK_EXPIRED, OAuthRefusal.OTHER_SESSION: Outcome.OTHER_BROWSER,
}
_STATE_REFUSALS: Final = {
    OAuthRefusal.UNKNOWN: Outcome.INVALID_LINK, OAuthRefusal.USED: Outcome.STATE_USED,
    OAuthRefusal.EXPIRED: Outcome.STATE_EXPIRED, OAuthRefusal.OTHER_SESSION: Outcome.OTHER_BROWSER,
}
_RETRIABLE: Final = frozenset({Outcome.DENIED, Outcome.BLING_REFUSED, Outcome.BLING_UNREACHABLE,
                               Outcome.OTHER_COMPANY})
"""Endings after which the same browser may simply try again (a new link is on the page)."""


@dataclass(frozen=True)
class _Result:
    outcome: Outcome
    added: Added | None = None
    detail: str | None = None  # words for the page (Bling's description, the other company's name)
    note: str | None = None  # words for the record only (English, for operators)

    @property
    def account(self) -> Account | None:
        return self.added.account if self.added is not None else None

    def record(self) -> str:
        text = self.outcome.value
        if self.added is not None and self.added.missing:
            text += "; missing permissions: " + ", ".join(check.label for check in self.added.missing)
        if self.note:
            text += f": {self.note}"
        return text


async def _finish(service: Service, attempt: OAuthAttempt, *, code: str | None, error: str | None,
                  error_description: str | None) -> _Result:
    """Bling's answer to a spent state, carried out: nothing is stored unless Bling gave a code
    and accepted it."""
    if error:
        said = (error_description or "").strip()[:300] or None
        if error == "access_denied":
            return _Result(Outcome.DENIED, note=said)
        return _Result(Outcome.APP_REFUSED if error == "app_inativo" else Outcome.BLING_REFUSED,
                       detail=said, note=f"{error[:60]} {said or ''}".strip())
    if not code:
        return _Result(Outcome.BLING_REFUSED, note="Bling's answer carried neither a code nor an error")
    try:
        client_id, client_secret = _app(service)
        if attempt.reconnect:
            return await _reconnect(service, attempt.account_name, client_id, client_secret, code)
        return await _add(service, attempt, client_id, client_secret, code)
    except ConnectUnavailable:
        return _Result(Outcome.UNAVAILABLE)
    except AccountExists:
        return _Result(Outcome.NAME_TAKEN)
    except AccountNotFound:
        return _Result(Outcome.ACCOUNT_GONE)
    except CredentialsInvalid as exc:
        log.error("OAuth connect of %s: Bling refused the app's credentials: %s", attempt.account_name, exc)
        return _Result(Outcome.APP_REFUSED, note=exc.user_message)
    except ReauthorizationNeeded as exc:
        return _Result(Outcome.BLING_REFUSED, note=exc.user_message)
    except RateLimited as exc:
        return _Result(Outcome.BLING_UNREACHABLE, note=exc.user_message)
    except BlingError as exc:
        return _Result(Outcome.BLING_REFUSED if not exc.retriable else Outcome.BLING_UNREACHABLE,
                       note=exc.user_message)
    except _NoTokens as exc:
        return _Result(Outcome.BLING_UNREACHABLE, note=str(exc.__cause__ or exc))
    except Exception:
        log.exception("OAuth connect of %s failed", attempt.account_name)
        return _Result(Outcome.FAILED, note="unexpected error (see the log)")


class _NoTokens(Exception):
    """The code exchange did not complete (Bling unreachable): nothing usable was stored."""


async def _add(service: Service, attempt: OAuthAttempt, client_id: str, client_secret: str,
               code: str) -> _Result:
    try:
        added = await service.add_account(attempt.account_name, client_id=client_id,
                                          client_secret=client_secret, code=code, settings=attempt.settings)
    except CodeNotExchanged as exc:  # the service removed the account again
        raise _NoTokens() from exc
    except ServiceError as exc:
        # Stored with tokens, but the check did not finish: the account works, the check can be
        # repeated.
        account = await service.store.account(attempt.account_name)
        return _Result(Outcome.CHECK_PENDING, added=Added(account, [], None), note=str(exc))
    if added.company is not None:
        twins = [other for other in await service.store.accounts_by_company(added.company.id)
                 if other.id != added.account.id]
        if twins:
            # One Bling company under two accounts would send each of its orders to the
            # warehouse twice, under different keys.
            await service.store.remove_account(added.account.name)
            return _Result(Outcome.COMPANY_TAKEN, detail=twins[0].name,
                           note=f"company {added.company.id} is account {twins[0].name!r}")
    return _Result(Outcome.CONNECTED, added=added)


async def _reconnect(service: Service, name: str, client_id: str, client_secret: str, code: str) -> _Result:
    before = await service.store.account(name)
    try:
        old: Credentials = await service.store.credentials(before.id)
    except CredentialsUnreadable:
        # Sealed under another secret key: unusable, and exactly what a reconnect replaces. The
        # app without tokens stands in for them, so a failed attempt leaves nothing worse.
        old = V3Credentials(client_id, client_secret, None)
        await service.store.save_credentials(before.id, old)
    try:
        added = await service.reconnect(name, client_id=client_id, client_secret=client_secret, code=code)
    except CodeNotExchanged as exc:  # the service put the old credentials back
        raise _NoTokens() from exc
    except ServiceError as exc:
        return _Result(Outcome.CHECK_PENDING, added=Added(await service.store.account(name), [], None),
                       note=str(exc))
    if added.company is not None and _other_company(before, added.company):
        # The brand signed in to another Bling company: its orders must not mix with this
        # account's. Everything goes back as it was.
        await service.store.save_credentials(before.id, old)
        await service.store.set_account_document(before.id, before.document, before.company_id)
        await service.store.set_account_state(before.id, before.state, before.state_reason)
        return _Result(Outcome.OTHER_COMPANY, detail=added.company.nome,
                       note=f"company {added.company.id} (CNPJ {added.company.cnpj}) instead of "
                            f"{before.company_id or before.document}")
    return _Result(Outcome.CONNECTED, added=added)


def _other_company(account: Account, company: CompanyInfo) -> bool:
    if account.company_id:
        return account.company_id != company.id
    return bool(account.document) and account.document != company.cnpj


# --- pages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Words:
    status: int
    title: str
    text: str  # may hold {name} and {detail}; filled with escaped values


_WORDS: Final[dict[Outcome, _Words]] = {
    Outcome.CONNECTED: _Words(200, "Conta conectada ao Bling",
                              "A conta {name} está conectada. As notas com DANFE emitida passam a "
                              "chegar ao armazém automaticamente."),
    Outcome.CHECK_PENDING: _Words(200, "Conta conectada ao Bling",
                                  "A conta {name} está conectada, mas o Bling não respondeu à "
                                  "verificação das permissões. A equipe do armazém pode repetir a "
                                  "verificação; nada mais é preciso da sua parte agora."),
    Outcome.ALREADY_CONNECTED: _Words(200, "Conta conectada ao Bling",
                                      "Esta autorização já foi concluída: a conta {name} está "
                                      "conectada. Pode fechar esta página."),
    Outcome.DENIED: _Words(200, "Autorização cancelada",
                           "Você não autorizou o acesso no Bling, então nada foi conectado. "
                           "Para conectar a conta {name}, tente de novo e clique em "
                           "“Autorizar” no Bling."),
    Outcome.BLING_REFUSED: _Words(502, "O Bling recusou a autorização",
                                  "O Bling não aceitou a autorização da conta {name}{detail} e nada "
                                  "foi conectado. Isso costuma acontecer quando a autorização "
                                  "demora demais; tente de novo."),
    Outcome.APP_REFUSED: _Words(502, "O aplicativo do armazém não foi aceito pelo Bling",
                                "O Bling recusou o aplicativo do armazém{detail}, então nada foi "
                                "conectado. Avise a equipe do armazém: o problema está na "
                                "configuração do aplicativo, não na sua conta."),
    Outcome.BLING_UNREACHABLE: _Words(502, "O Bling não respondeu",
                                      "Não conseguimos falar com o Bling agora e nada foi "
                                      "conectado. Tente de novo em alguns minutos."),
    Outcome.NAME_TAKEN: _Words(409, "Já existe uma conta com este nome",
                               "Já existe uma conta chamada {name} no armazém, então nada foi "
                               "conectado. Peça um novo link à equipe do armazém."),
    Outcome.ACCOUNT_GONE: _Words(404, "Conta não encontrada",
                                 "A conta {name} não existe mais no armazém, então nada foi "
                                 "conectado. Peça um novo link à equipe do armazém."),
    Outcome.COMPANY_TAKEN: _Words(409, "Esta empresa já está conectada",
                                  "A empresa que você autorizou no Bling já está conectada ao "
                                  "armazém como a conta “{detail}”, então a conta {name} não foi "
                                  "criada. Para renovar o acesso, peça um link de reconexão à "
                                  "equipe do armazém."),
    Outcome.OTHER_COMPANY: _Words(409, "Outra empresa foi autorizada",
                                  "A conta {name} é de outra empresa, mas a autorização veio da "
                                  "empresa {detail}. Nada mudou. Entre no Bling com a empresa "
                                  "certa e tente de novo."),
    Outcome.INVALID_LINK: _Words(400, "Link inválido",
                                 "Este link de conexão não é válido (pode estar incompleto). Peça "
                                 "um novo link à equipe do armazém."),
    Outcome.LINK_USED: _Words(400, "Este link já foi usado",
                              "Cada link de conexão vale uma única vez. Peça um novo link à "
                              "equipe do armazém."),
    Outcome.LINK_EXPIRED: _Words(400, "Este link expirou",
                                 "Links de conexão valem 24 horas. Peça um novo link à equipe do "
                                 "armazém."),
    Outcome.STATE_USED: _Words(400, "Esta autorização já foi usada",
                               "O retorno do Bling já foi processado uma vez. Para conectar de "
                               "novo, peça um novo link à equipe do armazém."),
    Outcome.STATE_EXPIRED: _Words(400, "A autorização expirou",
                                  "A autorização no Bling precisa ser concluída em até 10 minutos "
                                  "depois de abrir o link. Peça um novo link à equipe do armazém."),
    Outcome.OTHER_BROWSER: _Words(400, "Abra o link no mesmo navegador",
                                  "Esta autorização foi iniciada em outro navegador (ou os cookies "
                                  "estão bloqueados). Abra o link de conexão neste navegador e "
                                  "conclua a autorização nele."),
    Outcome.UNAVAILABLE: _Words(503, "Conexão pelo Bling indisponível",
                                "O armazém ainda não configurou o aplicativo do Bling. Avise a "
                                "equipe do armazém."),
    Outcome.FAILED: _Words(500, "Algo deu errado do nosso lado",
                           "Não foi possível concluir a conexão da conta {name}. Avise a equipe "
                           "do armazém."),
}

_STYLE: Final = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f4f5f7;"
    "color:#1f2933;margin:0;padding:2rem 1rem}"
    "main{max-width:34rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.12)}"
    "h1{font-size:1.35rem;margin:0 0 1rem}.ok h1{color:#1a7f37}.bad h1{color:#b42318}"
    "h2{font-size:1.05rem;margin:1.25rem 0 .25rem}"
    "ul{list-style:none;padding:0}li{padding:.25rem 0}.yes::before{content:'✓ ';color:#1a7f37}"
    ".no::before{content:'✗ ';color:#b42318}.no{font-weight:600}"
    "a.button,button.button{display:inline-block;background:#2455c3;color:#fff;padding:.5rem 1rem;"
    "border:0;font:inherit;cursor:pointer;"
    "border-radius:6px;text-decoration:none}small{color:#52606d}"
)


def _confirm_page(name: str, ticket: str, bling_origin: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>Conectar ao Bling · blingsync</title><style>{_STYLE}</style></head>"
        '<body><main class="ok"><h1>Conectar ao Bling</h1>'
        f"<p>A conta “{html.escape(name)}” vai ser conectada ao blingsync pelo Bling. No Bling, entre "
        "com o usuário da empresa e autorize o acesso: o blingsync só lê as notas fiscais e os "
        "pedidos, e escreve no Bling apenas o rastreio dos envios, se isso for ligado.</p>"
        f'<form method="post" action="{PREFIX}/start">'
        f'<input type="hidden" name="ticket" value="{html.escape(ticket)}">'
        '<p><button class="button" type="submit">Continuar no Bling</button></p></form>'
        "<p><small>blingsync · conexão com o Bling</small></p></main></body></html>"
    )
    response = HTMLResponse(body)
    _no_store(response)
    response.headers["content-security-policy"] = (
        # form-action also governs where the form's redirect may lead: Bling's authorize page.
        f"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self' {bling_origin}; "
        "frame-ancestors 'none'")
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "no-referrer"  # the ticket is in this page's address
    return response


def _page(outcome: Outcome, *, name: str | None = None, added: Added | None = None,
          detail: str | None = None, retry_url: str | None = None) -> HTMLResponse:
    words = _WORDS[outcome]
    shown_name = f"“{html.escape(name)}”" if name else ""
    shown_detail = html.escape(detail) if detail else ""
    if outcome in (Outcome.BLING_REFUSED, Outcome.APP_REFUSED):
        shown_detail = f" (o Bling disse: “{shown_detail}”)" if detail else ""
    parts = [f"<p>{words.text.format(name=shown_name, detail=shown_detail)}</p>"]
    if added is not None:
        parts.extend(_company(added.company))
        parts.extend(_checklist(added.permissions))
    if retry_url is not None:
        parts.append(f'<p><a class="button" href="{html.escape(retry_url)}">Tentar de novo</a></p>')
    tone = "ok" if words.status == 200 and outcome is not Outcome.DENIED else "bad"
    body = (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(words.title)} · blingsync</title><style>{_STYLE}</style></head>"
        f'<body><main class="{tone}"><h1>{html.escape(words.title)}</h1>{"".join(parts)}'
        "<p><small>blingsync · conexão com o Bling</small></p></main></body></html>"
    )
    response = HTMLResponse(body, status_code=words.status)
    _no_store(response)
    response.headers["content-security-policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
    response.headers["x-content-type-options"] = "nosniff"
    return response


def _company(company: CompanyInfo | None) -> list[str]:
    if company is None:
        return []
    cnpj = company.cnpj
    if len(cnpj) == 14 and cnpj.isdigit():
        cnpj = f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"
    return [f"<p>Empresa no Bling: <strong>{html.escape(company.nome)}</strong> "
            f"(CNPJ {html.escape(cnpj)}).</p>"]


def _checklist(checks: Sequence[PermissionCheck]) -> list[str]:
    if not checks:
        return []
    items = "".join(
        f'<li class="{"yes" if check.granted else "no"}">{html.escape(check.label)}'
        f'{"" if check.granted else " — falta"}</li>' for check in checks)
    out = [f"<h2>Permissões</h2><ul>{items}</ul>"]
    missing = [check.label for check in checks if not check.granted]
    if missing:
        out.append(
            "<p><strong>Faltam permissões:</strong> sem elas, parte das notas não chega ao armazém. "
            "Avise a equipe do armazém, que libera esses acessos no aplicativo do Bling; depois "
            "será preciso conectar a conta de novo.</p>")
    return out


def _no_store(response: Response) -> None:
    # The pages are one person's outcome, and their URLs carry one-time values: never cached,
    # never sent onwards as a Referer.
    response.headers["cache-control"] = "no-store"
    response.headers["referrer-policy"] = "no-referrer"


def _forget(response: Response, cookie: str) -> Response:
    response.delete_cookie(cookie, path=PREFIX, httponly=True, samesite="lax")
    return response
