"""The dashboard end to end in a real browser (issue 6's bar): Debian's Chromium, driven by
Playwright, against `blingsync serve`'s own `run` (the app on uvicorn, the scheduler taking
"sincronizar agora") in this process, with the simulated Bling in a process of its own.

An operator created with `blingsync users create` signs in; connects brands with API keys
through the wizard (a wrong key: a clear message and nothing stored; a key whose API user lacks
Notas Fiscais: the checklist says "falta" on that line; a good key: connected), imports them
(sincronizar agora), finds an order by its chave on /pedidos (typed as a DANFE prints it, in
groups of four), opens it, and replays a dead delivery on /entregas. The delivery dies for real:
the brand's webhook sink (`blingsync sinks set`) points at a receiver answering 503, and the
relay (the one `serve` runs, with a retry horizon of a millisecond instead of three days) gives
up on it. After the replay the receiver answers 204 and the event is delivered.

Every page visited is checked for accessibility basics with a small DOM script (each input has
a label, no duplicate ids, one h1, `lang="pt-BR"`), and at 360×800 (the narrowest common phone)
the nav and the Contas table stay usable without the page scrolling sideways, nothing of a
brand's card (a badge, a button) sticking out of it.

Screenshots of every step land in the test's tmp_path (printed), to look at when it fails."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import httpx
import pytest

from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.commands.serve import ServeOptions, run
from blingsync.config import Settings
from blingsync.delivery import Relay, StoreSinks
from blingsync.service import Service
from blingsync.store.browse import DeliveryState
from blingsync.store.dashboard import OrderSearch, OrderSort
from tests.conftest import simulator_process
from tests.e2e.conftest import needs_chromium

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam
    from playwright.async_api import Browser, Locator, Page

pytestmark = needs_chromium

PASSWORD = "senha-da-operadora-1"
ALL_BUT_NOTAS_FISCAIS = ["interacoes_logisticas", "nfce", "pedidos_venda", "pedidos_venda_situacoes"]


# --- the world: Bling, the warehouse's receiver, blingsync serve --------------------------------


@dataclass(frozen=True)
class Bling:
    base: str
    good_key: str  # an API user with the permissions the help article lists
    partial_key: str  # an API user of another company, without Notas Fiscais


@pytest.fixture(scope="module")
def bling() -> Iterator[Bling]:
    with simulator_process("--accounts", "2", "--invoices", "40", "--no-rate-limit", "--seed", "23") as base:
        companies = httpx.get(f"{base}/_sim/accounts", timeout=10).json()["accounts"]
        good = httpx.post(f"{base}/_sim/accounts/{companies[0]['id']}/apikeys", json={"name": "Depósito"},
                          timeout=10)
        partial = httpx.post(f"{base}/_sim/accounts/{companies[1]['id']}/apikeys", timeout=10,
                             json={"name": "Depósito", "permissions": ALL_BUT_NOTAS_FISCAIS})
        good.raise_for_status()
        partial.raise_for_status()
        yield Bling(base, good.json()["apikey"], partial.json()["apikey"])


class Receiver(http.server.BaseHTTPRequestHandler):
    """The warehouse's webhook endpoint: answers `status`, remembers each webhook-id it got."""

    status: ClassVar[int] = 503
    received: ClassVar[list[tuple[int, str]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.lock:
            type(self).received.append((self.status, self.headers.get("webhook-id", "")))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.status, Receiver.received = 503, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/pedidos"
    finally:
        server.shutdown()


@dataclass
class Served:
    service: Service
    url: str
    env: dict[str, str]
    relay: Relay
    said: list[str] = field(default_factory=list)

    async def cli(self, *args: str, stdin: str = "") -> str:
        """`blingsync ARGS` on the same database, as an operator runs it beside `serve`."""
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", "from blingsync.cli import main; main()", *args],
            env=self.env, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture
async def served(bling: Bling, tmp_path: Path) -> AsyncIterator[Served]:
    """`blingsync serve --no-relay` with polling off (only "sincronizar agora" imports), on a
    free port, SQLite in tmp_path; and the sink relay `serve` would run, on a short horizon,
    for the test to run when it wants."""
    data = tmp_path / "data"
    env = {**os.environ, "BLINGSYNC_DATA_DIR": str(data), "BLINGSYNC_SECRET_KEY": "",
           "BLINGSYNC_BLING_URL": f"{bling.base}/Api/v3", "BLINGSYNC_BLING_V2_URL": f"{bling.base}/Api/v2",
           "COLUMNS": "200"}
    env.pop("BLINGSYNC_DATABASE_URL", None)
    settings = Settings.from_env(env)
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    async with Service.open(settings, warn=lambda _: None, registry=registry) as service, \
            httpx.AsyncClient() as http:
        relay = Relay(service.store, StoreSinks(service.store, http, clock=service.now), clock=service.now,
                      horizon=timedelta(milliseconds=1))
        stop = asyncio.Event()
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        said: list[str] = []
        task = asyncio.create_task(run(
            service, ServeOptions(port=0, scheduler=False, relay=False, grace_s=5),
            announce=said.append, ready=port.set_result, stop=stop))
        try:
            await asyncio.wait_for(asyncio.shield(port), 30)
            yield Served(service, f"http://127.0.0.1:{port.result()}", env, relay, said)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


# --- what every page must pass ------------------------------------------------------------------

A11Y = """() => {
  const problems = [];
  const counts = new Map();
  for (const el of document.querySelectorAll('[id]')) counts.set(el.id, (counts.get(el.id) || 0) + 1);
  for (const [id, n] of counts) if (n > 1) problems.push(`id "${id}" is used ${n} times`);
  const text = (el) => (el ? el.textContent.trim() : '');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
    const byFor = el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
    const labelledBy = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
    const named = text(byFor) || text(el.closest('label')) || (el.getAttribute('aria-label') || '').trim()
      || (labelledBy.length && labelledBy.every((id) => document.getElementById(id)));
    if (!named) problems.push(`<${el.tagName.toLowerCase()} name="${el.name}"> has no label`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    const name = text(el) || el.getAttribute('aria-label') || el.getAttribute('title')
      || (el.querySelector('img[alt], svg[aria-label]') ? 'x' : '');
    const tag = el.tagName.toLowerCase();
    if (!name) problems.push(`<${tag}> without an accessible name: ${el.outerHTML.slice(0, 80)}`);
  }
  for (const img of document.querySelectorAll('img:not([alt])')) {
    problems.push(`<img src="${img.getAttribute('src')}"> without alt`);
  }
  const lang = document.documentElement.lang;
  if (!/^pt(-BR)?$/i.test(lang)) problems.push(`<html lang="${lang}">`);
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) problems.push(`${h1} <h1> elements`);
  if (document.querySelectorAll('main').length !== 1) problems.push('not exactly one <main>');
  return problems;
}"""

UNCLIPPED = """(el) => {
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.left < 0 || box.right > window.innerWidth) return false;
  for (let up = el.parentElement; up; up = up.parentElement) {
    if (!/(auto|scroll|hidden|clip)/.test(getComputedStyle(up).overflowX)) continue;
    const frame = up.getBoundingClientRect();
    if (box.left < frame.left - 1 || box.right > frame.right + 1) return false;
  }
  return true;
}"""
"""Whether an element is on screen without scrolling sideways: inside the viewport's width and
not cut off by a scrolling (or clipping) container such as a wide table's wrapper."""

OVERFLOW = """() => ({
  page: document.documentElement.scrollWidth, viewport: window.innerWidth,
  body: document.body.scrollWidth,
})"""


@dataclass
class Visit:
    """The browser session of the test: every page visited is screenshotted and checked."""

    page: Page
    base: str
    shots: Path
    prefix: str = ""
    visited: list[str] = field(default_factory=list)

    async def check(self, name: str) -> str:
        """Screenshot, accessibility smoke check; the text of <main> and of the live regions."""
        await self.page.wait_for_load_state("domcontentloaded")
        self.visited.append(name)
        shot = self.shots / f"{self.prefix}{len(self.visited):02d}-{name}.png"
        await self.page.screenshot(path=str(shot), full_page=True)
        problems = await self.page.evaluate(A11Y)
        assert problems == [], f"{name} ({self.page.url}): {problems}"
        # The page's own content, and what the live regions announce (the flash messages).
        live = await self.page.locator("[aria-live]").all_inner_texts()
        return "\n".join([await self.page.locator("main").inner_text(), *live])

    async def go(self, path: str, name: str) -> str:
        await self.page.goto(self.base + path)
        return await self.check(name)


async def follow(page: Page, target: Locator) -> None:
    """Click what leads to another page and wait for that page (not for the one clicked on)."""
    async with page.expect_navigation():
        await target.click()


async def eventually(check: Any, what: str, *, within: float = 30.0) -> Any:
    for _ in range(int(within / 0.1)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def grouped(chave: str) -> str:
    """The chave as a DANFE prints it: eleven groups of four digits."""
    return " ".join(chave[i:i + 4] for i in range(0, 44, 4))


# --- the bar --------------------------------------------------------------------------------------


async def test_an_operator_connects_imports_finds_an_order_and_replays_a_dead_delivery(
        served: Served, bling: Bling, receiver: str, browser: Browser, tmp_path: Path) -> None:
    service = served.service
    await served.cli("users", "create", "--username", "ana", "--password-stdin", stdin=PASSWORD + "\n")
    shots = tmp_path / "shots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR")
    visit = Visit(await context.new_page(), served.url, shots)
    page = visit.page

    # Signing in: a page behind the sign-in sends there, and back after it.
    await page.goto(f"{served.url}/pedidos")
    await page.wait_for_url("**/entrar?next=**")
    text = await visit.check("entrar")
    assert "Entrar no blingsync" in text
    await page.get_by_label("Usuário").fill("ana")
    await page.get_by_label("Senha").fill("senha errada de propósito")
    await follow(page, page.get_by_role("button", name="Entrar"))
    assert "Usuário ou senha incorretos." in await visit.check("entrar-erro")
    await page.get_by_label("Usuário").fill("ana")
    await page.get_by_label("Senha").fill(PASSWORD)
    await follow(page, page.get_by_role("button", name="Entrar"))
    await page.wait_for_url("**/pedidos")
    text = await visit.go("/contas", "contas-vazia")
    assert "Nenhuma marca conectada ainda" in text

    # The wizard: the two ways, then the API key's steps, as the help article tells them.
    await page.get_by_role("navigation").get_by_role("link", name="Conectar Bling").click()
    await page.wait_for_url("**/contas/nova")
    text = await visit.check("assistente-escolha")
    assert "Conectar com Bling (recomendado)" in text and "Chave API" in text
    assert "Emitida DANFE" in text  # orders arrive only once the DANFE is printed
    await page.get_by_role("link", name=re.compile("chave API", re.I)).first.click()
    await page.wait_for_url("**/contas/nova/chave")
    text = await visit.check("assistente-chave")
    for step in ("Preferências", "Usuários e usuário API", "Incluir usuário", "USUÁRIO API",
                 "Propostas Comerciais", "Gerar", "Copiar"):
        assert step in text, step  # inner_text, as rendered: Bling's own capitals, none from CSS

    async def connect(name: str, key: str, shot: str) -> str:
        await page.goto(f"{served.url}/contas/nova/chave")
        await page.get_by_label("Nome da marca").fill(name)
        await page.get_by_label(re.compile("Chave API", re.I)).fill(key)
        await follow(page, page.get_by_role("button", name="Verificar chave e conectar"))
        return await visit.check(shot)

    # A wrong key: a clear message, nothing stored.
    text = await connect("Loja Errada", "0" * 40, "chave-errada")
    assert "O Bling não aceitou esta chave API" in text
    assert await page.get_by_role("alert").count() >= 1
    assert [a.name for a in await service.store.accounts()] == []

    # A key whose API user lacks Notas Fiscais: stored, and the checklist says what is missing.
    text = await connect("Loja Parcial", bling.partial_key, "chave-sem-notas")
    assert "faltam permissões" in text
    missing = page.locator("main li, main tr").filter(has_text=re.compile(r"\bfalta\b"))
    assert await missing.count() == 1, text  # one line of the checklist, and only one, says "falta"
    checklist_line = await missing.first.inner_text()
    assert all(word in checklist_line for word in ("Notas Fiscais", "Preferências", "Vendas"))  # where
    for granted in ("Pedidos de Venda", "Interações Logísticas"):
        assert granted in text

    # A good key: connected, then imported with "sincronizar agora".
    text = await connect("Moda Exemplo", bling.good_key, "chave-ok")
    assert "Conta conectada" in text and "falta" not in text
    account = await service.store.account("Moda Exemplo")
    await served.cli("sinks", "set", "Moda Exemplo", "--webhook", receiver)
    await follow(page, page.get_by_role("button", name="Sincronizar agora"))
    assert "Importação de Moda Exemplo iniciada" in await visit.check("sincronizar")

    async def imported() -> int:
        runs = await service.store.runs(account.id, limit=5)
        done = [r for r in runs if r.outcome.value != "running"]
        return await service.store.count_orders(account_id=account.id) if done else 0

    orders = await eventually(imported, "the import")
    text = await visit.go(f"/contas/{account.id}", "conta")
    assert "Moda Exemplo" in text and "ok" in text

    # The deliveries die: the receiver answers 503 and the horizon is a millisecond.
    stats = await served.relay.run_once()
    assert stats.dead == orders and stats.delivered == 0
    assert {status for status, _ in Receiver.received} == {503}

    # Find an order by its chave, typed as printed on the DANFE.
    [wanted] = await service.store.find_orders(OrderSearch(account_id=account.id), sort=OrderSort.IMPORTED,
                                               newest_first=False, limit=1)
    await page.get_by_role("navigation").get_by_role("link", name="Pedidos").click()
    await page.wait_for_url("**/pedidos")
    text = await visit.check("pedidos")
    assert wanted.recipient_name is not None
    search = page.get_by_role("searchbox", name="Buscar")
    await search.fill(grouped(wanted.access_key))
    async with page.expect_navigation():
        await search.press("Enter")
    await page.wait_for_url("**/pedidos?**")
    text = await visit.check("pedidos-busca")
    results = page.locator("main tbody tr")
    assert await results.count() == 1, text
    assert wanted.recipient_name in text
    await follow(page, results.first.get_by_role("link").first)
    await page.wait_for_url(f"**/pedidos/{wanted.id}")
    text = await visit.check("pedido")
    assert wanted.recipient_name in text and str(wanted.number) in text
    assert wanted.access_key in text.replace(" ", "")
    stored = await service.store.order(wanted.id)
    assert stored.order.items[0].sku in text
    city = stored.order.delivery_address.city if stored.order.delivery_address else None
    assert city is not None and city in text
    assert "Importado" in text or "importado" in text  # the timeline's first step

    # Replay its dead delivery on /entregas.
    dead = await service.store.deliveries(state=DeliveryState.DEAD, account_id=account.id, limit=1000)
    [event] = [d.event for d in dead if d.event.order_id == wanted.id]
    await page.get_by_role("navigation").get_by_role("link", name="Entregas").click()
    await page.wait_for_url("**/entregas**")
    text = await visit.check("entregas")
    assert "503" in text  # the last error, in the list
    assert await page.locator("main svg").count() >= 1  # the chart of orders per day
    row = page.locator("main tr, main li").filter(has_text=str(wanted.number)).filter(
        has=page.get_by_role("button", name=re.compile("Reenviar", re.I)))
    assert await row.count() >= 1, text
    replay = row.first.get_by_role("button", name=re.compile("Reenviar", re.I))
    assert await replay.evaluate(UNCLIPPED), "the replay button is cut off (its table scrolls sideways)"
    Receiver.status = 204
    await follow(page, replay)
    await visit.check("reenviada")
    replayed = await service.store.event(event.id)
    assert replayed.pending and replayed.dead_at is None

    stats = await served.relay.run_once()
    assert stats.delivered == 1 and stats.dead == 0
    delivered = await service.store.event(event.id)
    assert delivered.delivered_at is not None
    assert Receiver.received[-1] == (204, event.idempotency_key)  # the same webhook-id as when it died
    assert (503, event.idempotency_key) in Receiver.received
    dead_left = await service.store.deliveries(state=DeliveryState.DEAD, account_id=account.id, limit=1000)
    assert len(dead_left) == orders - 1

    # On a phone: no sideways scrolling, the nav still gets you places, Contas stays readable.
    phone = await browser.new_context(viewport={"width": 360, "height": 800}, locale="pt-BR",
                                      is_mobile=True, has_touch=True)
    await phone.add_cookies(cast("list[SetCookieParam]", await context.cookies()))  # the same session
    small = Visit(await phone.new_page(), served.url, shots, prefix="360px-")
    for path, name in (("/contas", "celular-contas"), (f"/pedidos/{wanted.id}", "celular-pedido"),
                       ("/entregas", "celular-entregas"), ("/contas/nova/chave", "celular-assistente")):
        await small.go(path, name)
        sizes = await small.page.evaluate(OVERFLOW)
        assert sizes["page"] <= sizes["viewport"] and sizes["body"] <= sizes["viewport"], (name, sizes)
    await small.go("/contas", "celular-contas")
    brand = small.page.locator("main").get_by_role("link", name="Moda Exemplo").first
    assert await brand.is_visible() and await brand.evaluate(UNCLIPPED)
    shown = small.page.locator("main table").locator(".badge, .btn")
    assert await shown.count() > 0 and "com falha" in await small.page.locator("main table").inner_text()
    for one in await shown.all():  # each brand is a card: nothing in it scrolls out of sight
        assert await one.evaluate(UNCLIPPED), await one.inner_text()
    nav = small.page.get_by_role("navigation").first
    link = nav.get_by_role("link", name="Pedidos")
    if not await link.is_visible():  # a compact nav: a menu button opens it
        await small.page.get_by_role("button", name=re.compile("Menu", re.I)).first.click()
    assert await link.evaluate(UNCLIPPED), "the nav's Pedidos link is off screen on a phone"
    await link.click()
    await small.page.wait_for_url("**/pedidos")
    await small.check("celular-pedidos")
    await phone.close()
    await context.close()
    print(json.dumps(visit.visited + small.visited))


async def test_the_page_checks_catch_what_they_look_for(browser: Browser) -> None:
    """The accessibility and overflow scripts above, on a page with every flaw they name: a
    check that finds nothing on the dashboard must be able to find something."""
    page = await browser.new_page(viewport={"width": 375, "height": 800})
    await page.set_content(
        '<html lang="en"><body><main><h1>a</h1><h1>b</h1>'
        '<label for="q">Buscar</label><input id="q" name="q"><input name="sem_rotulo">'
        '<label>Marca <select name="marca"><option>x</option></select></label>'
        '<input type="hidden" name="csrf_token"><p id="q">dup</p><button></button><img src="x.png">'
        '<div style="overflow-x:auto"><table style="width:900px"><tr><td>larga</td>'
        '<td style="padding-left:600px"><button id="cortado">Reenviar</button></td></tr></table></div>'
        '<button id="visivel">Ok</button><table style="width:900px"><tr><td>larga</td></tr></table>'
        '</main></body></html>')
    problems = await page.evaluate(A11Y)
    assert sorted(problems) == sorted([
        'id "q" is used 2 times', '<input name="sem_rotulo"> has no label',
        "<button> without an accessible name: <button></button>", '<html lang="en">', "2 <h1> elements",
        '<img src="x.png"> without alt']), problems
    sizes = await page.evaluate(OVERFLOW)
    assert sizes["page"] > sizes["viewport"] == 375
    assert not await page.locator("#cortado").evaluate(UNCLIPPED)
    assert await page.locator("#visivel").evaluate(UNCLIPPED)
