"""Who is signed in to the dashboard, and whether a state-changing request really comes from our
own page: the FastAPI dependencies `require_operator` and `csrf_protect`, the session cookie, the
sign-in throttle and the `next` check.

Why it is shaped this way:

* **The cookie holds a random token; the database only its SHA-256** (`store/users.py`). The
  cookie is HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), Secure
  when `BLINGSYNC_PUBLIC_URL` is https, and a browser-session cookie: the 12-hour sliding expiry
  is enforced by the server, which is the only clock that counts.
* **A new token at every sign-in** (session fixation): whatever token a browser had before is
  deleted, never promoted.
* **CSRF: a synchroniser token per session**, sent back in the form (`csrf_token`) or, for HTMX,
  in the `X-CSRF-Token` header (set once on `<body hx-headers>`), compared in constant time.
  When the browser says where the request comes from (`Origin`, else `Referer`), that must be
  this site too: a second, independent line.
* **The sign-in form has its own CSRF token** (a cookie and the same value in the form, before
  any session exists), so another site cannot sign a browser in as the attacker's operator.
* **The throttle is in memory** (per username and client address: 5 failures within 15 minutes
  lock that pair for the rest of the window). It holds for one process, which is what
  `blingsync serve` runs; several processes behind a balancer each count their own failures
  (documented in docs/dashboard.md). Memory is bounded: old entries are swept.
* **`next` only leads to a local path** (`/contas?x=1`): never `//host`, a scheme, or a
  backslash (browsers read `/\\host` as `//host`).
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Final
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from blingsync.service import Service
from blingsync.store.users import SESSION_TTL, Flash, UiSession
from blingsync.web.deps import service as service_of
from blingsync.web.ui.render import UiError, flashes_shown, pending_flashes, ui_session

SESSION_COOKIE: Final = "blingsync_session"
SIGNIN_COOKIE: Final = "blingsync_entrar"
"""The sign-in form's own CSRF token (before any session exists)."""
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SIGNIN_PATH: Final = "/entrar"
HOME: Final = "/contas"

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

THROTTLE_FAILURES: Final = 5
THROTTLE_WINDOW: Final = timedelta(minutes=15)
THROTTLE_MAX_KEYS: Final = 10_000


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


async def current_session(request: Request) -> UiSession | None:
    """The live session of the request's cookie (looked up once per request), its expiry slid
    forward; sets `request.state.ui_session` and `request.state.operator`."""
    if hasattr(request.state, "ui_session"):
        return ui_session(request)
    service = service_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = await service.store.ui_session(token) if token else None
    if session is not None:
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
    `/entrar?next=<path>` (303); a POST or an HTMX request gets 401 (HTMX is told, through
    `HX-Redirect`, to load the sign-in page)."""
    if session is None:
        if request.method in ("GET", "HEAD") and not is_htmx(request):
            raise UiError(303, "auth.signin.required", headers={"Location": _signin_url(request)})
        referer_path = _local_referer(request)
        target = f"{SIGNIN_PATH}?next={quote(referer_path, safe='/')}" if referer_path else SIGNIN_PATH
        raise UiError(401, "auth.signin.expired", headers={"HX-Redirect": target})
    return Operator(session.user_id, session.username)


def _local_referer(request: Request) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if not same_origin(request, referer):
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path, default="") or None


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


@dataclass
class SigninThrottle:
    """Failed sign-ins per (username, client address) within `window`; `limit` failures lock
    the pair until the oldest of them leaves the window."""

    clock: Callable[[], datetime]
    limit: int = THROTTLE_FAILURES
    window: timedelta = THROTTLE_WINDOW
    max_keys: int = THROTTLE_MAX_KEYS
    _failures: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def wait(self, username: str, address: str) -> timedelta | None:
        """How long this pair must wait before trying again, or None."""
        now = self.clock()
        times = self._recent((username.casefold(), address), now)
        if len(times) < self.limit:
            return None
        return times[-self.limit] + self.window - now

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        key = (username.casefold(), address)
        if key not in self._failures and len(self._failures) >= self.max_keys:
            self._sweep(now)
        self._recent(key, now)
        self._failures.setdefault(key, deque(maxlen=self.limit * 2)).append(now)

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop((username.casefold(), address), None)

    def _sweep(self, now: datetime) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) >= self.max_keys:  # all recent: forget the oldest entries
            del self._failures[next(iter(self._failures))]


def signin_throttle(request: Request) -> SigninThrottle:
    """The app's one throttle (in `app.state`, so each app, each test, has its own)."""
    state = request.app.state
    throttle: SigninThrottle | None = getattr(state, "ui_signin_throttle", None)
    if throttle is None:
        throttle = SigninThrottle(clock=service_of(request).now)
        state.ui_signin_throttle = throttle
    return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
