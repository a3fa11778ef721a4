"""XSS and CSRF across the whole dashboard, data-driven: nothing here names a page other than
the sign-in, so pages added later are covered without touching this file.

* **CSRF**: every state-changing route of the dashboard is found in `app.routes`; each must
  depend on `csrf_protect`, and each is sent, by a signed-in operator, without a token, with a
  wrong one, with another session's, and with the right one from another site's Origin: all
  403, and the database (every table but the sessions) is byte-for-byte what it was.
* **XSS**: a crawler signs in, follows every link, `hx-get` and GET form of the dashboard from
  `/`, and fills every text field of every form it finds (search boxes, the wizard, settings...)
  with each payload of `tests.ui_support.XSS_PAYLOADS`, submitting POST forms with the page's
  CSRF token; every answer, and every page crawled again afterwards (where stored payloads
  show up), is parsed: no raw payload, no inline script, no `on…=` handler, no `javascript:` URL.
  No answer may be a 500.
* **CSP in a browser**: Chromium loads every crawled page under the real Content-Security-Policy
  and reports no violation (no inline style or script anywhere), and HTMX works under it.

World: the simulated Bling (over ASGI), two brands imported (one OAuth, one API key whose brand
is named like an attack), a delivery marked dead; SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select, text

from blingsync.store.tables import metadata, ui_sessions
from blingsync.web import ui
from blingsync.web.app import create_app
from blingsync.web.ui.auth import csrf_protect
from blingsync.web.ui.render import CONTENT_SECURITY_POLICY, is_ui_path
from tests.conftest import make_sim
from tests.integration.test_import import World, open_world
from tests.ui_support import (
    BASE_URL,
    OPERATOR_PASSWORD,
    XSS_PAYLOADS,
    assert_escaped,
    csrf_of,
    serving,
    signed_in_client,
)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SKIP_ACTIONS = ("/sair",)  # signing out ends the crawl's session
HOSTILE_NAME = '<script>alert(1)</script> Loja "><img src=x onerror=alert(1)>'
PAGES_PER_PATTERN = 3
MAX_PAGES = 200


# --- the world -----------------------------------------------------------------------------------


@dataclass
class Site:
    world: World
    app: FastAPI
    ids: dict[str, int]  # a real id per first path segment: /contas → an account, ...


def dashboard_app(world: World) -> FastAPI:
    """The app as `blingsync serve` builds it (the dashboard's error pages installed even if
    `create_app` does not yet)."""
    return ui.install(create_app(world.service))


@pytest.fixture
async def site(tmp_path: Path, db_url: str) -> AsyncIterator[Site]:
    sim = make_sim(accounts=2, invoices=30)
    async with open_world(sim, httpx.ASGITransport(app=sim.app), tmp_path, db_url) as world:
        oauth = await world.add_v3(0)
        # a brand named like an attack: every page listing brands must show it as text
        await world.add_v2(1, name=HOSTILE_NAME)
        await world.service.sync()
        store = world.service.store
        ids = await real_ids(world)
        events = await store.outbox(account_id=oauth.id)
        assert events, "the import must have written outbox events"
        await store.mark_dead(events[0].id, "HTTP 503")
        ids["/entregas"] = events[0].id
        yield Site(world, dashboard_app(world), ids)


async def real_ids(world: World) -> dict[str, int]:
    """One existing row per area, to fill `{id}` in the routes' paths."""
    async with world.service.store._read() as conn:
        account = await conn.scalar(text("SELECT min(id) FROM accounts"))
        order = await conn.scalar(text("SELECT min(id) FROM orders"))
    assert account is not None and order is not None
    return {"/contas": int(account), "/pedidos": int(order)}


async def fingerprint(world: World) -> dict[str, str]:
    """A hash of every row of every table but the sessions (whose `flash` and `last_seen_at`
    may change on any request)."""
    found: dict[str, str] = {}
    async with world.service.store._read() as conn:
        for table in metadata.sorted_tables:
            if table is ui_sessions:
                continue
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            found[table.name] = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    return found


# --- routes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsafeRoute:
    path: str
    method: str
    route: Any


def unsafe_routes(app: FastAPI) -> list[UnsafeRoute]:
    """Every state-changing route of the dashboard, as the app routes them now."""
    found: dict[tuple[str, str], UnsafeRoute] = {}
    for context in iter_route_contexts(app.routes):
        path = str(context.path)
        if not is_ui_path(path):
            continue
        for method in sorted(set(context.methods or ()) & UNSAFE):
            found.setdefault((method, path), UnsafeRoute(path, method, context.route))
    return list(found.values())


def depends_on(dependant: Any, call: Any) -> bool:
    return any(d.call is call or depends_on(d, call) for d in getattr(dependant, "dependencies", ()))


def concrete(path: str, ids: dict[str, int]) -> str:
    first = "/" + path.lstrip("/").split("/", 1)[0]
    return re.sub(r"\{[^}]+\}", str(ids.get(first, 1)), path)


async def test_every_state_changing_route_refuses_a_missing_wrong_or_foreign_token(site: Site) -> None:
    routes = unsafe_routes(site.app)
    paths = {r.path for r in routes}
    assert {"/entrar", "/sair"} <= paths, paths
    unprotected = [r.path for r in routes if r.path != "/entrar"
                   and not depends_on(getattr(r.route, "dependant", None), csrf_protect)]
    assert not unprotected, f"state-changing routes without csrf_protect: {unprotected}"

    store = site.world.service.store
    mine = await signed_in_client(site.app, store)
    other = await signed_in_client(site.app, store)
    try:
        token = csrf_of((await mine.get("/entrar", follow_redirects=True)).text)
        foreign = csrf_of((await other.get("/entrar", follow_redirects=True)).text)
        before = await fingerprint(site.world)
        tried: Counter[str] = Counter()
        for route in routes:
            if route.path == "/entrar":
                continue
            url = concrete(route.path, site.ids)
            attempts = {
                "no token": {"data": {"x": "1"}},
                "wrong token": {"data": {"csrf_token": token[:-3] + "abc"}},
                "another session's token": {"data": {"csrf_token": foreign}},
                "another session's token (header)": {"headers": {"x-csrf-token": foreign,
                                                                     "hx-request": "true"}},
                "another site": {"data": {"csrf_token": token}, "headers": {"origin": "https://evil.example"}},
            }
            for why, kw in attempts.items():
                r = await mine.request(route.method, url, **kw)  # type: ignore[arg-type]
                assert r.status_code == 403, (route.method, url, why, r.status_code, r.text[:300])
                assert "Nada foi alterado." in r.text, (url, why)
                tried[why] += 1
        assert await fingerprint(site.world) == before, "a refused request changed the database"
        assert set(tried.values()) == {len(routes) - 1}
        # and the sign-in form refuses a post without its own token
        anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url=BASE_URL)
        async with anonymous:
            r = await anonymous.post("/entrar", data={"username": "x", "password": OPERATOR_PASSWORD})
            assert r.status_code == 403
    finally:
        await mine.aclose()
        await other.aclose()


# --- the crawler ---------------------------------------------------------------------------------


@dataclass
class Field:
    tag: str
    type: str
    name: str
    value: str
    checked: bool = False
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    action: str
    method: str
    fields: list[Field]
    submitters: list[tuple[str, str]]

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return self.method, pattern(self.action), tuple(sorted({f.name for f in self.fields}))

    def data(self, payload: str) -> list[tuple[str, str]]:
        """Every text-like field set to `payload`, the rest as the page set them."""
        out: list[tuple[str, str]] = []
        for f in self.fields:
            if f.type in ("hidden",):
                out.append((f.name, f.value))
            elif f.type in ("checkbox", "radio"):
                if f.checked:
                    out.append((f.name, f.value or "on"))
            elif f.tag == "select":
                out.append((f.name, f.value or (f.options[0] if f.options else "")))
            elif f.type in ("number", "range"):
                out.append((f.name, f.value or "1"))
            elif f.type in ("submit", "button", "reset", "image", "file"):
                continue
            else:  # text, search, email, url, tel, password, textarea, date...
                out.append((f.name, payload))
        if self.submitters:
            out.append(self.submitters[0])
        return out


class PageParser(HTMLParser):
    """Links (`href`, `hx-get`) and forms of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if a.get("hx-get"):
            self.links.append(a["hx-get"])
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").upper(), [], [])
            self.forms.append(self._form)
        if self._form is None or "name" not in a:
            if tag == "button" and self._form is not None and a.get("name"):
                self._form.submitters.append((a["name"], a.get("value", "")))
            return
        if tag == "input":
            self._form.fields.append(Field("input", a.get("type", "text").lower(), a["name"],
                                           a.get("value", ""),
                                           "checked" in a))
        elif tag == "select":
            self._select = Field("select", "select", a["name"], "")
            self._form.fields.append(self._select)
        elif tag == "textarea":
            self._textarea = Field("textarea", "textarea", a["name"], "")
            self._form.fields.append(self._textarea)
        elif tag == "button" and a.get("name"):
            self._form.submitters.append((a["name"], a.get("value", "")))
        if tag == "option" and self._select is not None:
            self._select.options.append(a.get("value", ""))
            if "selected" in a:
                self._select.value = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data


def pattern(url: str) -> str:
    """`/pedidos/123?x=1` → `/pedidos/{n}`: pages of one kind are visited a few times, not all."""
    return re.sub(r"/\d+(?=/|$)", "/{n}", urlsplit(url).path)


def local(url: str, base: str) -> str | None:
    joined = urljoin(BASE_URL + base, url)
    parts = urlsplit(joined)
    if f"{parts.scheme}://{parts.netloc}" != BASE_URL or parts.path.startswith("/static/"):
        return None
    if not is_ui_path(parts.path) or parts.path.startswith(SKIP_ACTIONS):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Crawl:
    pages: dict[str, httpx.Response] = field(default_factory=dict)
    forms: dict[tuple[str, str, tuple[str, ...]], tuple[str, Form]] = field(default_factory=dict)


async def crawl(http: httpx.AsyncClient, start: Iterable[str] = ("/",)) -> Crawl:
    found = Crawl()
    queue = list(start)
    per_pattern: Counter[str] = Counter()
    while queue and len(found.pages) < MAX_PAGES:
        url = queue.pop(0)
        if url in found.pages or per_pattern[pattern(url)] >= PAGES_PER_PATTERN:
            continue
        per_pattern[pattern(url)] += 1
        r = await http.get(url)
        found.pages[url] = r
        assert r.status_code < 500, (url, r.status_code, r.text[:500])
        if r.status_code in (301, 302, 303, 307, 308):
            target = local(r.headers["location"], url)
            if target:
                queue.append(target)
            continue
        if not r.headers.get("content-type", "").startswith("text/html"):
            continue
        parser = PageParser()
        parser.feed(r.text)
        for link in parser.links:
            target = local(link, url)
            if target and target not in found.pages:
                queue.append(target)
        for form in parser.forms:
            action = local(form.action or url, url)
            if action is None:
                continue
            form.action = action
            found.forms.setdefault(form.key(), (url, form))
    return found


async def submit(http: httpx.AsyncClient, form: Form, payload: str) -> httpx.Response:
    data = form.data(payload)
    if form.method == "GET":
        return await http.get(urlsplit(form.action).path + "?" + urlencode(data))
    return await http.post(form.action, content=urlencode(data).encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})


async def test_every_form_and_search_field_neutralises_xss(site: Site) -> None:
    http = await signed_in_client(site.app, site.world.service.store)
    try:
        first = await crawl(http)
        assert len(first.pages) >= 2, list(first.pages)
        escaped_name = "&lt;script&gt;alert(1)&lt;/script&gt; Loja"
        shown = [url for url, page in first.pages.items() if escaped_name in page.text]
        assert shown, "the hostile brand name must be shown (escaped) somewhere"
        for url, page in first.pages.items():
            if page.headers.get("content-type", "").startswith("text/html"):
                assert_escaped(page.text)
                assert page.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, url
        forms = [(url, form) for url, form in first.forms.values()
                 if not form.action.startswith(SKIP_ACTIONS)]
        text_fields = sum(1 for _, form in forms for f in form.fields
                          if f.type not in ("hidden", "checkbox", "radio", "select", "number", "submit"))
        submitted: list[str] = []
        for url, form in forms:
            for payload in XSS_PAYLOADS:
                # a fresh CSRF token for POST forms (sign-in forms carry their own)
                if form.method == "POST" and any(f.name == "csrf_token" for f in form.fields):
                    fresh = csrf_of((await http.get(url)).text)
                    for f in form.fields:
                        if f.name == "csrf_token":
                            f.value = fresh
                r = await submit(http, form, payload)
                submitted.append(f"{form.method} {form.action}")
                # 503 is a designed answer (e.g. OAuth not configured); 500 is a crash
                assert r.status_code != 500, (form.method, form.action, payload, r.text[:500])
                assert r.status_code != 403 or form.action == "/entrar", (form.action, r.text[:300])
                if r.headers.get("content-type", "").startswith("text/html"):
                    assert_escaped(r.text)
                if r.status_code == 303 and (target := local(r.headers["location"], form.action)):
                    landed = await http.get(target)
                    assert landed.status_code < 500, (target, landed.status_code)
                    assert_escaped(landed.text)
        again = await crawl(http)  # stored payloads (a brand's name, settings...) show up here
        for page in again.pages.values():
            if page.headers.get("content-type", "").startswith("text/html"):
                assert_escaped(page.text)
        print(f"\ncrawled {len(first.pages)} + {len(again.pages)} pages; {len(forms)} forms "
              f"({text_fields} text fields) submitted {len(submitted)} times "
              f"with {len(XSS_PAYLOADS)} payloads")
    finally:
        await http.aclose()


# --- CSP in a real browser -----------------------------------------------------------------------


async def test_no_page_breaks_the_content_security_policy_in_chromium(site: Site) -> None:
    from blingsync.simulator.chromium import CHROMIUM, CHROMIUM_ARGS, chromium_env
    from tests.e2e.conftest import MISSING

    if MISSING is not None:
        pytest.skip(MISSING)
    from playwright.async_api import async_playwright

    await site.world.service.store.create_user("navegador", OPERATOR_PASSWORD)
    async with signed_in_client_for(site) as http:
        pages = [url for url, r in (await crawl(http)).pages.items()
                 if r.status_code == 200 and r.headers.get("content-type", "").startswith("text/html")]
    async with serving(site.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                   headless=True, env=chromium_env())
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" and (
                "Content Security Policy" in m.text or "Refused" in m.text) else None)
            page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
            await page.goto(base + "/entrar")
            await page.fill("#username", "navegador")
            await page.fill("#password", OPERATOR_PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_load_state("networkidle")
            assert "/entrar" not in page.url, page.url
            for url in pages:
                before = len(problems)
                await page.goto(base + url)
                await page.wait_for_load_state("networkidle")
                problems[before:] = [f"{url}: {p}" for p in problems[before:]]
            assert await page.evaluate("typeof htmx !== 'undefined' && htmx.config.allowEval === false")
            assert not problems, "\n".join(problems)
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def signed_in_client_for(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    http = await signed_in_client(site.app, site.world.service.store)
    try:
        yield http
    finally:
        await http.aclose()
