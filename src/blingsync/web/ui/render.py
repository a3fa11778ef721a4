"""Rendering the dashboard's pages: one Jinja2 environment, the layout's context (operator, CSRF
token, nav, one-shot messages), the security headers, and the pt-BR error pages.

Why it is shaped this way:

* **Autoescape everywhere**, for every template whatever its extension, and `StrictUndefined`
  under tests (a variable a template uses but the page does not pass is a bug, caught by the
  test that renders the page); in production an undefined variable renders empty and is logged,
  so one slip does not take a page down.
* **`flash` only records**; the message is kept with the session (`ui_sessions.flash`) when the
  request ends (`auth.session_scope`) and shown by the next page that renders the layout. A
  message is never put in a URL or a client-side cookie, so nobody can make the dashboard show a
  text of their choosing.
* **Security headers are set here on every page** (and by `SecurityHeaders` on every response
  under the dashboard's paths once `install` is called by the app factory): a strict CSP without
  inline scripts or styles, so an injected `<script>` or `style=` does nothing even if escaping
  were ever missed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any, Final, Literal

import jinja2
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blingsync import __version__
from blingsync.store.users import Flash, UiSession
from blingsync.web.ui import TEMPLATES_DIR, i18n

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY: Final = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                  "script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                                  "base-uri 'none'; object-src 'none'")
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
PAGE_HEADERS: Final[Mapping[str, str]] = {
    **SECURITY_HEADERS,
    # Pages show operational data to a signed-in operator: no shared cache keeps them, and the
    # back button after "Sair" does not show them again from the browser's cache.
    "Cache-Control": "no-store",
}

FlashKind = Literal["ok", "error", "warn"]
_FLASH_KINDS: Final = frozenset({"ok", "error", "warn"})

NAV: Final = (
    # (id, catalogue key, href); the page is "current" when its path is under href
    ("accounts", "nav.accounts", "/contas"),
    ("orders", "nav.orders", "/pedidos"),
    ("deliveries", "nav.deliveries", "/entregas"),
    ("connect", "nav.connect", "/contas/nova"),
)


def strict_templates() -> bool:
    """Under pytest (which sets PYTEST_CURRENT_TEST) or with BLINGSYNC_UI_STRICT=1, an undefined
    template variable raises."""
    return os.environ.get("BLINGSYNC_UI_STRICT") == "1" or "PYTEST_CURRENT_TEST" in os.environ


def _asset(path: str) -> str:
    """A static file's URL with the version as a cache-buster (`/static/app.css?v=1.2.0`)."""
    return f"/static/{path}?v={__version__}"


@cache
def environment(strict: bool = False) -> jinja2.Environment:
    undefined: type[jinja2.Undefined] = (
        jinja2.StrictUndefined if strict else jinja2.make_logging_undefined(log, jinja2.Undefined))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name ends with
        undefined=undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(t=i18n.t, asset=_asset, nav=NAV, version=__version__,
                       current_csrf_token=_current_csrf_token)
    env.filters.update(money=i18n.money, datetime_br=i18n.datetime_br, date_br=i18n.date_br,
                       datetime_short_br=i18n.datetime_short_br, number_br=i18n.number_br, phone=i18n.phone)
    return env


def templates() -> jinja2.Environment:
    return environment(strict_templates())


# --- request state (set by `auth`) -------------------------------------------------------------


def ui_session(request: Request) -> UiSession | None:
    """The signed-in session of this request, once `auth.session_scope` looked it up."""
    found: UiSession | None = getattr(request.state, "ui_session", None)
    return found


def flash(request: Request, message_key: str, kind: FlashKind | str = "ok", **params: object) -> None:
    """A one-shot message (a catalogue key and its parameters) for the next page this browser
    renders: typically set before a redirect after a POST. Parameters are shown escaped."""
    pending: list[Flash] = getattr(request.state, "flash_pending", None) or []
    pending.append(Flash(key=message_key, kind=kind if kind in _FLASH_KINDS else "ok",
                         params=tuple((name, str(value)) for name, value in params.items())))
    request.state.flash_pending = pending


def pending_flashes(request: Request) -> list[Flash]:
    found: list[Flash] = getattr(request.state, "flash_pending", None) or []
    return found


def flashes_shown(request: Request) -> bool:
    return bool(getattr(request.state, "flash_shown", False))


@dataclass(frozen=True)
class ShownFlash:
    kind: str
    text: str


def _take_flashes(request: Request) -> Callable[[], list[ShownFlash]]:
    """For the layout: the waiting messages, marked as shown (so they are not shown again).
    Only a template that calls it consumes them: an HTMX fragment leaves them for the next page."""

    def take() -> list[ShownFlash]:
        session = ui_session(request)
        waiting: Iterable[Flash] = [*(session.flashes if session else ()), *pending_flashes(request)]
        request.state.flash_shown = True
        return [ShownFlash(kind=f.kind, text=i18n.t(f.key, **dict(f.params))) for f in waiting]

    return take


def nav_current(path: str) -> str | None:
    """Which nav entry the page belongs to: the longest href the path is under."""
    best: tuple[int, str] | None = None
    for entry, _, href in NAV:
        if (path == href or path.startswith(href + "/")) and (best is None or len(href) > best[0]):
            best = (len(href), entry)
    return None if best is None else best[1]


def apply_headers(response: Response, headers: Mapping[str, str] = PAGE_HEADERS) -> Response:
    for name, value in headers.items():
        response.headers.setdefault(name, value)
    return response


_CSRF_TOKEN: ContextVar[str] = ContextVar("ui_csrf_token", default="")


def _current_csrf_token() -> str:
    """For `_csrf.html`: the token of the page being rendered, even inside a macro imported
    without context (`{% from "x.html" import form %}` sees globals only)."""
    return _CSRF_TOKEN.get()


def render_text(request: Request, template: str, context: Mapping[str, object] | None = None) -> str:
    session = ui_session(request)
    operator = getattr(request.state, "operator", None)
    base: dict[str, Any] = {
        "request": request,
        "operator": operator,
        "csrf_token": session.csrf_token if session else "",
        "current_path": request.url.path,
        "nav_current": nav_current(request.url.path),
        "flashes": _take_flashes(request),
    }
    base.update(context or {})
    reset = _CSRF_TOKEN.set(base["csrf_token"])
    try:
        return templates().get_template(template).render(base)
    finally:
        _CSRF_TOKEN.reset(reset)


def render(request: Request, template: str, context: Mapping[str, object] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    """The page `template` (under `templates/`) with the layout's context added: `operator`
    (None when nobody is signed in), `csrf_token`, `nav_current`, `current_path`, `flashes()`,
    and the globals `t`, `asset`; security headers set."""
    response = HTMLResponse(render_text(request, template, context), status_code=status_code)
    apply_headers(response)
    return response


# --- errors and installation into the app -----------------------------------------------------


class UiError(HTTPException):
    """An error a dashboard route answers with a pt-BR page (403, 404...). The `detail` is a
    catalogue key. Without `install`, FastAPI answers it as JSON with the same status."""

    def __init__(self, status_code: int, message_key: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code, detail=message_key or f"errors.{status_code}.text",
                         headers=dict(headers) if headers else None)


_ERROR_TEMPLATES: Final = {code: f"errors/{code}.html" for code in (400, 401, 403, 404, 429, 500)}
_NOT_UI: Final = ("/api/", "/webhooks", "/oauth/", "/healthz", "/readyz", "/metrics")


def ui_prefixes(app_routes: Iterable[Any]) -> frozenset[str]:
    """The first path segments of the dashboard's routes ("/contas", "/entrar", ...)."""
    prefixes: set[str] = set()
    for route in iter_route_contexts(list(app_routes)):
        path = str(route.path)
        first = "/" + path.lstrip("/").split("/", 1)[0]
        if first != "/":
            prefixes.add(first)
    return frozenset(prefixes)


@cache
def _dashboard_prefixes() -> frozenset[str]:
    from blingsync.web.ui import router  # the package's router, complete once imported

    return ui_prefixes(router.routes) | {"/static"}


def is_ui_path(path: str) -> bool:
    if path == "/":
        return True
    first = "/" + path.lstrip("/").split("/", 1)[0]
    return first in _dashboard_prefixes()


def wants_page(request: Request) -> bool:
    """Whether an error for this request should be a page (not the API's JSON)."""
    path = request.url.path
    if path.startswith(_NOT_UI) or path.startswith("/static/"):  # a missing file: a plain 404
        return False
    return is_ui_path(path) or "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status_code: int, message_key: str | None = None,
               headers: Mapping[str, str] | None = None) -> HTMLResponse:
    template = _ERROR_TEMPLATES.get(status_code, "errors/generic.html")
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = ""
    context = {"status_code": status_code, "phrase": phrase,
               "message_key": message_key if message_key and message_key in i18n.catalogue() else None}
    try:
        response = render(request, template, context, status_code=status_code)
    except Exception:  # the error page itself failed: a bare page, still escaped and in pt-BR
        log.exception("rendering the %s page failed", status_code)
        response = HTMLResponse(f"<!doctype html><title>{status_code}</title><p>{status_code}</p>",
                                status_code=status_code)
        apply_headers(response)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for it only
        raise exc
    if isinstance(exc, UiError) and exc.status_code < 400:  # a redirect (to /entrar)
        return apply_headers(Response(status_code=exc.status_code, headers=exc.headers))
    if exc.status_code < 400 or not (isinstance(exc, UiError) or wants_page(request)):
        return await http_exception_handler(request, exc)
    if ui_session(request) is None and exc.status_code == 404:
        # An unknown path has run no dependency: look the session up, so the layout shows the
        # operator's nav on the 404 page too.
        from blingsync.web.ui.auth import current_session

        await current_session(request)
    key = exc.detail if isinstance(exc, UiError) else None
    return error_page(request, exc.status_code, key, exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """A dashboard URL or form that does not parse (`/pedidos/abc`, a field too long): for a
    page, 404 (a GET: no such page) or 400 with a pt-BR page; elsewhere FastAPI's own 422."""
    if not isinstance(exc, RequestValidationError) or not is_ui_path(request.url.path):
        return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]
    if request.method in ("GET", "HEAD"):
        return error_page(request, 404)
    return error_page(request, 400, "errors.400.text")


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if not wants_page(request):
        return Response("Internal Server Error", status_code=500, media_type="text/plain")
    return error_page(request, 500)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response under the dashboard's paths
    (redirects, fragments, static files, errors), not only on what `render` builds. Other paths
    (the API, the OAuth pages, webhooks) keep their own headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
                         if name.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> FastAPI:
    """What the dashboard needs from the app beyond its router: the security-headers middleware
    and the pt-BR error pages (403, 404, 500...) for browser requests. Idempotent."""
    if getattr(app.state, "ui_installed", False):
        return app
    app.state.ui_installed = True
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(500, _server_error)
    return app
