"""Who is signed in to the dashboard, and whether a state-changing request really comes from our
own page: the FastAPI dependencies `require_operator` and `csrf_protect`, the session cookie, the
sign-in throttle and the `next` check.

Why it is shaped this way:

* **The cookie holds a random token; the database only its SHA-256** (`store/users.py`). The
  cookie is HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), Secure
  when `BLINGSYNC_PUBLIC_URL` is https, and a browser-session cookie: the expiry (12 hours
  after the last use, and 7 days after sign-in whatever the use) is enforced by the server,
  which is the only clock that counts.
* **A background poll is not a use.** The live regions that refresh every 10 s send
  `X-Blingsync-Poll: 1` (`hx-headers` on the polling element): their requests never slide the
  session (nor write to the database), so a tab left open on a shared computer still signs out
  after 12 idle hours. The header can only make a session end sooner, never later, so a client
  that forges or drops it gains nothing. A poll that finds no session gets 401 with
  `HX-Redirect: /entrar?next=<the page>`: HTMX acts on `HX-Redirect` before looking at the
  status, so the browser leaves the page (which ends the polling) for the sign-in form, and
  comes back to the page after it.
* **A new token at every sign-in** (session fixation): whatever token a browser had before is
  deleted, never promoted.
* **CSRF: a synchroniser token per session**, sent back in the form (`csrf_token`) or, for HTMX,
  in the `X-CSRF-Token` header (set once on `<body hx-headers>`), compared in constant time.
  When the browser says where the request comes from (`Origin`, else `Referer`), that must be
  this site too: a second, independent line.
* **The sign-in form has its own CSRF token** (a cookie and the same value in the form, before
  any session exists), so another site cannot sign a browser in as the attacker's operator.
* **The throttle is in the database** (`UserStore.begin_signin`): 5 failures for one username
  from one client address within 15 minutes lock that pair, 100 from one address (any
  usernames) lock the address, for the rest of the window; every process on the database
  counts the same failures, and a restart forgets none. The address is the client's IP, an
  IPv6 one taken as its /64 (one machine usually holds a whole /64).
* **`next` only leads to a local path** (`/contas?x=1`): never `//host`, a scheme, or a
  backslash (browsers read `/\\host` as `//host`).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from blingsync.service import Service
from blingsync.store.users import SESSION_TTL, Flash, SigninLimits, UiSession
from blingsync.web.deps import service as service_of
from blingsync.web.ui.render import UiError, flashes_shown, pending_flashes, ui_session

SESSION_COOKIE: Final = "blingsync_session"
SIGNIN_COOKIE: Final = "blingsync_entrar"
"""The sign-in form's own CSRF token (before any session exists)."""
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
POLL_HEADER: Final = "X-Blingsync-Poll"
"""Sent (value "1") by the live regions' background refreshes: such a request is not a use of
the session (see the module docstring)."""
SIGNIN_PATH: Final = "/entrar"
HOME: Final = "/contas"

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

SIGNIN_LIMITS: Final = SigninLimits(per_pair=5, per_address=100)


@dataclass(frozen=True)
class Operator:
    """The signed-in operator of a request."""

    id: int
    username: str


# --- the session ---------------------------------------------------------------------------------


def secure_cookies(service: Service) -> bool:
    return urlsplit(service.settings.public_url).scheme == "https"


def set_session_cookie(response: Response, service: Service, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="lax",
                        secure=secure_cookies(service))


def clear_session_cookie(response: Response, service: Service) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=secure_cookies(service))


def is_poll(request: Request) -> bool:
    """A live region's background refresh (`X-Blingsync-Poll: 1`), not the operator's doing."""
    return request.headers.get(POLL_HEADER) == "1"


async def current_session(request: Request) -> UiSession | None:
    """The live session of the request's cookie (looked up once per request), its expiry slid
    forward unless the request is a background poll; sets `request.state.ui_session` and
    `request.state.operator`."""
    if hasattr(request.state, "ui_session"):
        return ui_session(request)
    service = service_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = await service.store.ui_session(token) if token else None
    if session is not None and not is_poll(request):
        await service.store.touch_ui_session(session, ttl=SESSION_TTL)
    request.state.ui_session = session
    request.state.operator = None if session is None else Operator(session.user_id, session.username)
    return session


async def session_scope(request: Request) -> AsyncIterator[UiSession | None]:
    """The session for the route, and, when the route is done, its one-shot messages saved:
    those `flash` added, minus those the page showed."""
    session = await current_session(request)
    try:
        yield session
    finally:
        if session is not None:
            await _keep_flashes(request, session)


async def _keep_flashes(request: Request, session: UiSession) -> None:
    waiting: list[Flash] = [] if flashes_shown(request) else [*session.flashes, *pending_flashes(request)]
    if tuple(waiting) != session.flashes:
        await service_of(request).store.set_ui_flashes(session.id, waiting)


Session = Annotated[UiSession | None, Depends(session_scope, scope="function")]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _signin_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{SIGNIN_PATH}?next={quote(here, safe='/')}"


async def require_operator(request: Request, session: Session) -> Operator:
    """The signed-in operator. Nobody signed in (or the session expired): a page GET is sent to
    `/entrar?next=<path>` (303); a POST, an HTMX request or a poll gets 401 with `HX-Redirect`
    to the sign-in page, its `next` the page the request came from, so HTMX leaves the page
    (and stops polling) for the sign-in form."""
    if session is None:
        if request.method in ("GET", "HEAD") and not is_htmx(request) and not is_poll(request):
            raise UiError(303, "auth.signin.required", headers={"Location": _signin_url(request)})
        page = _requesting_page(request)
        target = f"{SIGNIN_PATH}?next={quote(page, safe='/')}" if page else SIGNIN_PATH
        raise UiError(401, "auth.signin.expired", headers={"HX-Redirect": target})
    return Operator(session.user_id, session.username)


def _requesting_page(request: Request) -> str | None:
    """The page of this site an HTMX request was sent from, as a local path: HTMX's
    `HX-Current-URL` (the page's address), else the `Referer`."""
    for header in ("hx-current-url", "referer"):
        url = request.headers.get(header)
        if not url or not same_origin(request, url):
            continue
        parts = urlsplit(url)
        page = safe_next(parts.path + (f"?{parts.query}" if parts.query else ""), default="")
        if page:
            return page
    return None


# --- CSRF ----------------------------------------------------------------------------------------


def _allowed_hosts(request: Request) -> set[str]:
    hosts = {urlsplit(service_of(request).settings.public_url).netloc.lower()}
    host = request.headers.get("host")
    if host:
        hosts.add(host.lower())
    return hosts - {""}


def same_origin(request: Request, url: str) -> bool:
    """Whether `url` (an Origin or a Referer) is this site: the public URL's host, or the host
    the request was sent to."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc.lower() in _allowed_hosts(request)


def check_origin(request: Request) -> None:
    """Refuse (403) a state-changing request whose browser says it comes from another site.
    Neither header present (old clients, some privacy settings): the token alone decides."""
    origin = request.headers.get("origin")
    if origin is not None:
        if not same_origin(request, origin):
            raise UiError(403, "errors.csrf.origin")
        return
    referer = request.headers.get("referer")
    if referer and not same_origin(request, referer):
        raise UiError(403, "errors.csrf.origin")


async def submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # cached by Starlette: the route's own Form(...) reads it again
        value = form.get(CSRF_FIELD)
        if isinstance(value, str):
            return value
    return ""


def tokens_match(given: str, expected: str) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def csrf_protect(request: Request, session: Session) -> None:
    """For POST/PUT/PATCH/DELETE: the request must carry this session's CSRF token (form field
    `csrf_token` or header `X-CSRF-Token`) and must not come from another site; otherwise 403
    and the route does not run. Nobody signed in: as `require_operator` (401)."""
    if request.method not in UNSAFE_METHODS:
        return
    if session is None:
        await require_operator(request, session)  # raises: nobody is signed in
        return
    check_origin(request)
    if not tokens_match(await submitted_token(request), session.csrf_token):
        raise UiError(403, "errors.csrf.token")


def new_signin_token() -> str:
    return secrets.token_urlsafe(32)


# --- next ----------------------------------------------------------------------------------------


def safe_next(value: str | None, default: str = HOME) -> str:
    """`value` when it is a path of this site (`/pedidos?q=1`); `default` otherwise."""
    if not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    if parts.path in (SIGNIN_PATH, "/sair"):
        return default
    return value


# --- throttle ------------------------------------------------------------------------------------


def signin_limits(request: Request) -> SigninLimits:
    """The throttle's limits: `SIGNIN_LIMITS`, unless the app says otherwise (`app.state.
    ui_signin_limits`, which tests set to reach a limit in a few requests)."""
    limits: SigninLimits = getattr(request.app.state, "ui_signin_limits", SIGNIN_LIMITS)
    return limits


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def signin_address(request: Request) -> str:
    """Whom the throttle counts: the client's IP address, an IPv6 one as its /64 network (one
    machine usually holds a whole /64, so counting its addresses one by one would count
    nothing)."""
    host = client_address(request)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
