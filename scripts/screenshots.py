"""Screenshots of every main page of the dashboard, as a product would show it: real data,
imported for real.

    .venv/bin/python scripts/screenshots.py [--output DIR]      # default docs/screenshots/, ~1.5 min

What it sets up (all of it thrown away afterwards, nothing touches your ~/.blingsync):
- the simulated Bling in a process of its own (`blingsync simulator`, four brands, 90 days of
  notes, rate limits off), and a warehouse receiver for the webhook sinks;
- `blingsync serve`'s own `run` in this process (the app on uvicorn, the scheduler taking
  "sincronizar agora"), SQLite in a temporary directory, an operator;
- three brands connected with API keys and imported day after day for five weeks (the service's
  clock stepped a day at a time, so each day imports what was emitted that day, as polling
  does, and the chart has a history); one note's XML always arrives truncated, as a broken proxy
  would serve it, so it sits in quarantine; one brand connected through the wizard with a key
  lacking Notas Fiscais (the checklist), then paused;
- deliveries through the relay `serve` runs, each day after that day's poll: almost all
  delivered; one dead (the warehouse refuses that one order with 422, every retry for three
  days); a brand whose receiver went down today, its deliveries waiting for their retries.

Then Debian's Chromium (headless, never a downloaded browser), in pt-BR and São Paulo's time as
an operator's would be, signs in through the form and saves full-page PNGs of each page at
1280 px wide, and of Contas, a brand's page and Pedido at 360 px (the narrowest common phone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx

from blingsync.bling.limits import LimiterRegistry, LimiterSettings
from blingsync.commands.serve import ServeOptions, run
from blingsync.config import Settings
from blingsync.delivery import Relay, StoreSinks, webhook_sink_config
from blingsync.service import Service
from blingsync.simulator.chromium import CHROMIUM, CHROMIUM_ARGS, CONTEXT, INSTALL, chromium_env
from blingsync.simulator.process import simulator_process
from blingsync.store.dashboard import OrderSearch
from blingsync.store.records import AccountSettings

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT_ARGS = ("--font-render-hinting=none",)
"""On top of the tests' arguments: glyphs drawn the same on every machine."""
OPERATOR = ("operacao", "senha-das-capturas-1")
ALL_BUT_NOTAS_FISCAIS = ["interacoes_logisticas", "nfce", "pedidos_venda", "pedidos_venda_situacoes"]
BRANDS = ("Moda Aurora", "Casa Jacarandá", "Empório Sabiá")
"""Connected with good keys and imported (the first one's first XML arrives truncated)."""
HISTORY_DAYS = 35
"""Days of daily polls before today: the chart shows the last 30."""
PARTIAL_BRAND = "Studio Colibri"
"""Connected through the wizard with a key lacking Notas Fiscais."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    with simulator_process("--accounts", "4", "--invoices", "400", "--no-rate-limit", "--seed", "31") as base:
        yield base


class Receiver(http.server.BaseHTTPRequestHandler):
    """The warehouse: `/ok` takes everything; `/picky` refuses the first order it is sent, with
    422, every time (and takes the rest); `/late` works until `down` is set, then answers 503."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    refused: ClassVar[str | None] = None
    down: ClassVar[bool] = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        status = 204
        with self.lock:
            if self.path == "/picky":
                event = self.headers.get("webhook-id")
                type(self).refused = type(self).refused or event
                status = 422 if event == type(self).refused else 204
            elif self.path == "/late" and type(self).down:
                status = 503
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class TruncateOneXml(httpx.AsyncBaseTransport):
    """Bling's transport, except that one note's NF-e XML (the first one it carries) always
    arrives cut in half: the importer quarantines that note, retries it later, and keeps it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.victim: bytes | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if b"<nfeProc" in body:
            if self.victim is None:  # no await between the test and the set
                found = re.search(rb'Id="NFe(\d{44})"', body)
                self.victim = found.group(1) if found else None
            if self.victim is not None and self.victim in body:
                body = body[: len(body) // 2]
        headers = [(k, v) for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Clock:
    """The service's clock: real time, moved back by `offset` while the history is imported."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) - self.offset


@dataclass
class World:
    service: Service
    url: str
    relay: Relay
    clock: Clock


@contextlib.asynccontextmanager
async def world(base: str, data: Path) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        companies = (await admin.get("/_sim/accounts")).json()["accounts"]
    client = companies[0]["clients"][0]
    settings = Settings(
        data_dir=data, database_url=f"sqlite+aiosqlite:///{data / 'blingsync.db'}", secret_key=None,
        bling_url=f"{base}/Api/v3", bling_v2_url=f"{base}/Api/v2", requests_per_second=1000,
        oauth_client_id=client["client_id"], oauth_client_secret=client["client_secret"])
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    transport = TruncateOneXml()
    clock = Clock()
    async with Service.open(settings, warn=lambda _: None, registry=registry, transport=transport,
                            now=clock) as service, httpx.AsyncClient() as http:
        sinks = StoreSinks(service.store, http, clock=service.now)
        relay = Relay(service.store, sinks, clock=service.now)  # what `serve` runs, 3-day horizon
        stop = asyncio.Event()
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run(service, ServeOptions(port=0, scheduler=False, relay=False, grace_s=5),
                                       announce=lambda _: None, ready=port.set_result, stop=stop))
        try:
            await asyncio.wait_for(asyncio.shield(port), 30)
            yield World(service, f"http://127.0.0.1:{port.result()}", relay, clock)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await transport.aclose()


async def seed(world: World, base: str, sink_base: str) -> None:
    """Brands connected with their keys and imported; sinks and deliveries as described above."""
    service = world.service
    settings = AccountSettings(initial_lookback_days=1)
    world.clock.offset = timedelta(days=HISTORY_DAYS)
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        companies = (await admin.get("/_sim/accounts")).json()["accounts"]
        for name, company in zip(BRANDS, companies, strict=False):
            made = await admin.post(f"/_sim/accounts/{company['id']}/apikeys", json={"name": "Depósito"})
            added = await service.add_account(name, api_key=made.json()["apikey"], settings=settings)
            if added.missing:
                raise SystemExit(f"{name}: the simulator's key lacks {added.missing}")
    for name, path in zip(BRANDS, ("/ok", "/picky", "/late"), strict=True):
        account = await service.store.account(name)
        await service.store.set_sink(account.id, webhook_sink_config(sink_base + path))
    # A poll a day, five weeks long, each followed by the deliveries; the first brand first each
    # day (the truncated XML is one of its notes). The third brand's receiver goes down today.
    for days_ago in range(HISTORY_DAYS, -1, -1):
        world.clock.offset = timedelta(days=days_ago)
        Receiver.down = days_ago == 0
        outcomes = [*await service.sync([BRANDS[0]], trigger="poll"),
                    *await service.sync(list(BRANDS[1:]), trigger="poll")]
        for outcome in outcomes:
            if outcome.report is None or outcome.report.error:
                raise SystemExit(f"the import of {outcome.account.name} failed: {outcome.report}")
        while (await world.relay.run_once()).claimed:
            pass
    world.clock.offset = timedelta(0)


async def shoot(world: World, base: str, out: Path) -> list[Path]:
    from playwright.async_api import Page, async_playwright

    service = world.service
    saved: list[Path] = []
    await service.store.create_user(*OPERATOR)
    # The brand page worth showing: the one with a note in quarantine (and a dead delivery).
    [held] = await service.store.quarantined()
    first = await service.store.account_by_id(held.account_id)
    [row] = (await service.store.search_orders(OrderSearch(account_id=first.id), limit=1)).rows
    order = row.summary
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        companies = (await admin.get("/_sim/accounts")).json()["accounts"]
        made = await admin.post(f"/_sim/accounts/{companies[3]['id']}/apikeys",
                                json={"name": "Depósito", "permissions": ALL_BUT_NOTAS_FISCAIS})
    partial_key = made.json()["apikey"]

    async def visit(page: Page, path: str, name: str) -> None:
        await page.goto(f"{world.url}{path}")
        await save(page, name)

    async def save(page: Page, name: str) -> None:
        await page.wait_for_load_state("networkidle")
        path = out / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        saved.append(path)
        print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=[*CHROMIUM_ARGS, *SCREENSHOT_ARGS], headless=True,
                                                   env=chromium_env())
        try:
            desktop = await browser.new_context(viewport={"width": 1280, "height": 800}, **CONTEXT)
            page = await desktop.new_page()
            await visit(page, "/entrar", "01-entrar")
            await page.get_by_label("Usuário").fill(OPERATOR[0])
            await page.get_by_label("Senha").fill(OPERATOR[1])
            await page.get_by_role("button", name="Entrar").click()
            await page.wait_for_url("**/contas**")

            # The wizard: the choice, each way, a refused key, the checklist of a partial key.
            await visit(page, "/contas/nova", "02-assistente-escolha")
            await visit(page, "/contas/nova/oauth", "03-assistente-oauth")
            await visit(page, "/contas/nova/chave", "04-assistente-chave")
            for name, key, shot in (("Loja Teste", "0" * 40, "05-assistente-chave-recusada"),
                                    (PARTIAL_BRAND, partial_key, "06-assistente-checklist")):
                await page.goto(f"{world.url}/contas/nova/chave")
                await page.get_by_label("Nome da marca").fill(name)
                await page.get_by_label(re.compile("Chave API", re.I)).fill(key)
                await page.get_by_role("button", name="Verificar chave e conectar").click()
                await page.wait_for_load_state("domcontentloaded")
                await save(page, shot)
            await service.pause((await service.store.account(PARTIAL_BRAND)).id)

            await visit(page, "/contas", "07-contas")
            await visit(page, f"/contas/{first.id}", "08-conta")
            await visit(page, "/pedidos", "09-pedidos")
            surname = (order.recipient_name or "Silva").split()[-1]
            await visit(page, f"/pedidos?q={surname}", "10-pedidos-busca")
            await visit(page, f"/pedidos/{order.id}", "11-pedido")
            await visit(page, "/entregas", "12-entregas")

            phone = await browser.new_context(viewport={"width": 360, "height": 800}, is_mobile=True,
                                              has_touch=True, device_scale_factor=2, **CONTEXT)
            # The same session, signed in on the desktop (a Cookie is what add_cookies takes).
            await phone.add_cookies(await desktop.cookies())  # type: ignore[arg-type]
            small = await phone.new_page()
            await visit(small, "/contas", "13-celular-contas")
            await visit(small, f"/pedidos/{order.id}", "14-celular-pedido")
            await visit(small, f"/contas/{first.id}", "15-celular-conta")
        finally:
            await browser.close()
    return saved


async def main_async(out: Path) -> None:
    with simulator() as base, receiver() as sink_base, tempfile.TemporaryDirectory() as tmp:
        async with world(base, Path(tmp)) as opened:
            started = time.perf_counter()
            await seed(opened, base, sink_base)
            store = opened.service.store
            orders = await store.count_orders()
            dead = len(await store.dead_events())
            print(f"seeded in {time.perf_counter() - started:.1f} s: {orders} orders, {dead} dead delivery, "
                  f"{await store.pending_count()} pending, {len(await store.quarantined())} quarantined note")
            print("screenshots:")
            saved = await shoot(opened, base, out)
    print(f"{len(saved)} screenshots in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "screenshots",
                        help="where the PNGs go (default: docs/screenshots/)")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"{CHROMIUM} is missing: install it with {INSTALL}")
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # a page renamed or dropped leaves no stale picture behind
        old.unlink()
    # The import and the relay log every quarantined note and failed delivery: expected here.
    logging.getLogger("blingsync").setLevel(logging.CRITICAL)
    asyncio.run(main_async(out))


if __name__ == "__main__":
    main()
