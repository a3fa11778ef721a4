"""Helpers for the dashboard's tests: a client signed in through the real `/entrar` form, the
CSRF token of a page, and the XSS payloads every form and search field is tried with.

    http = await signed_in_client(app, store)       # an operator created, signed in
    page = await http.get("/contas")
    r = await http.post("/contas/1/pausar", data={"csrf_token": csrf_of(page.text)})
    await http.aclose()

or, closing by itself: `async with signed_in(app, store) as http: ...`."""

from __future__ import annotations

import asyncio
import contextlib
import html as html_lib
import itertools
import re
import socket
from collections.abc import AsyncIterator, Iterable
from html.parser import HTMLParser

import httpx
from fastapi import FastAPI

from blingsync.store import Store

BASE_URL = "http://blingsync.test"
OPERATOR_PASSWORD = "senha-de-teste-123"

XSS_PAYLOADS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(2)</script>",
    "{{7*7}}{% raw %}",
)
"""What tests type into every field. The first three must never come back unescaped."""

DANGEROUS_MARKUP: tuple[str, ...] = (
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>",
    "<script>alert(2)</script>",
)
"""Raw markup that, found in a page, means an injection got through."""

_counter = itertools.count(1)
_CSRF_INPUT = re.compile(r'<input[^>]*\bname="csrf_token"[^>]*\bvalue="([^"]*)"', re.S)
_CSRF_INPUT_REVERSED = re.compile(r'<input[^>]*\bvalue="([^"]*)"[^>]*\bname="csrf_token"', re.S)
_HX_HEADERS = re.compile(r"hx-headers='([^']*)'")


def csrf_of(html: str) -> str:
    """The CSRF token a page carries: a form's hidden `csrf_token`, else the `X-CSRF-Token` of
    `<body hx-headers>`. Fails the test when the page has none."""
    found = _CSRF_INPUT.search(html) or _CSRF_INPUT_REVERSED.search(html)
    if found:
        return html_lib.unescape(found.group(1))
    headers = _HX_HEADERS.search(html)
    if headers:
        token = re.search(r'"X-CSRF-Token":\s*"([^"]+)"', html_lib.unescape(headers.group(1)))
        if token:
            return token.group(1)
    raise AssertionError("the page carries no CSRF token")


async def sign_in(http: httpx.AsyncClient, username: str, password: str, *,
                  next_path: str = "") -> httpx.Response:
    """Through the real form: GET /entrar (its token), POST it. Returns the POST's answer."""
    form = await http.get("/entrar")
    assert form.status_code == 200, form.text
    return await http.post("/entrar", data={"username": username, "password": password,
                                            "csrf_token": csrf_of(form.text), "next": next_path})


async def signed_in_client(app: FastAPI, store: Store, *, username: str | None = None,
                           password: str = OPERATOR_PASSWORD) -> httpx.AsyncClient:
    """A client of `app` (over ASGI, base URL http://blingsync.test) signed in as a new operator
    (created through `store`, signed in through the real `/entrar` form). Close it with
    `await client.aclose()`."""
    username = username or f"operador{next(_counter)}"
    await store.create_user(username, password)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    r = await sign_in(http, username, password)
    assert r.status_code == 303, f"sign-in failed: {r.status_code} {r.text[:500]}"
    assert "blingsync_session" in http.cookies, "sign-in set no session cookie"
    return http


@contextlib.asynccontextmanager
async def signed_in(app: FastAPI, store: Store, **kw: str) -> AsyncIterator[httpx.AsyncClient]:
    http = await signed_in_client(app, store, **kw)
    try:
        yield http
    finally:
        await http.aclose()


class _Tags(HTMLParser):
    """Every start tag of a page, with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def injected_tags(html: str) -> list[str]:
    """What in the page could run script: an inline `<script>`, an `on…=` handler, a
    `javascript:` URL, an `<img>`/`<svg>`/`<iframe>` brought by a payload."""
    parser = _Tags()
    parser.feed(html)
    found: list[str] = []
    for tag, attrs in parser.tags:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and not names.get("src", "").startswith("/static/"):
            found.append(f"<script {names}>")
        if tag in ("iframe", "object", "embed") or (tag == "img" and names.get("src") == "x"):
            found.append(f"<{tag} {names}>")
        found += [f"<{tag} {name}=…>" for name in names if name.startswith("on")]
        found += [f"<{tag} {name}={value!r}>" for name, value in names.items()
                  if name in ("href", "src", "action", "formaction")
                  and value.strip().lower().startswith("javascript:")]
    return found


def assert_escaped(html: str, payloads: Iterable[str] = DANGEROUS_MARKUP) -> None:
    """No payload appears raw in the page (escaped copies are fine), and nothing in the page as
    parsed could run script."""
    for payload in payloads:
        assert payload not in html, f"unescaped markup in the page: {payload!r}"
    injected = injected_tags(html)
    assert not injected, f"script-capable markup in the page: {injected}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """`app` on a real uvicorn at 127.0.0.1 (`port`, else a free one), for a browser; its base
    URL. Stopped, and waited for, on the way out."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the web app could not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
