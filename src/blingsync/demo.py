"""`blingsync demo`: the embedded default. Starts the Bling simulator in-process, connects each
demo brand the way a real brand connects (OAuth2 authorization code, through `accounts add`'s
own path), imports every Emitida DANFE note into a SQLite database in the demo's data directory,
and prints what was imported beside the simulator's own counts. Without `--once` the simulated
brands keep selling (new notes, DANFEs printed, cancellations) and the demo keeps importing.

This is the one production module allowed to import the simulator: the demo runs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
from rich.console import Console
from rich.table import Table

from blingsync.bling.retry import DEFAULT_TIMEOUT
from blingsync.commands.sync import progress_bars
from blingsync.config import Settings
from blingsync.domain import BRASILIA as BRT
from blingsync.domain import OrderStatus
from blingsync.service import Service, SyncOutcome
from blingsync.store.records import Account, AccountSettings

if TYPE_CHECKING:
    from blingsync.simulator.state import SimState

DEMO_LOOKBACK_DAYS = 120
"""The simulator's history is 90 days long; the demo's first import reaches all of it."""


class DemoError(Exception):
    """The demo could not run; the message says why in plain words."""


@dataclass(frozen=True)
class Truth:
    """What the simulator itself says one brand has: the figures the import must match."""

    danfe: int  # NF-e, saída, Emitida DANFE, inside the import window
    canceled: int
    authorized: int
    entrada: int


def simulator_truth(state: SimState, company_id: int, since: datetime) -> Truth:
    from blingsync.simulator.model import Modelo, NfeSituacao

    company = next(c for c in state.world.companies if c.id == company_id)
    notes = [n for n in company.notes.values() if n.modelo == Modelo.NFE and n.emitted_at >= since]
    saida = [n for n in notes if n.tipo == 1]
    return Truth(
        danfe=sum(1 for n in saida if n.situacao == NfeSituacao.EMITIDA_DANFE),
        canceled=sum(1 for n in saida if n.situacao == NfeSituacao.CANCELADA),
        authorized=sum(1 for n in saida if n.situacao == NfeSituacao.AUTORIZADA),
        entrada=len(notes) - len(saida),
    )


async def authorization_code(http: httpx.AsyncClient, brand: str, client_id: str) -> str:
    """The brand's browser approving the app (the simulator approves at once)."""
    state = f"demo-{client_id[:8]}"
    authorize = await http.get("/Api/v3/oauth/authorize", params={
        "response_type": "code", "client_id": client_id, "state": state,
    })
    if authorize.status_code != 302:
        raise DemoError(f"{brand}: authorisation failed ({authorize.status_code})")
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    if query.get("state") != [state] or "code" not in query:
        raise DemoError(f"{brand}: authorisation was refused: {query.get('error', ['?'])[0]}")
    return query["code"][0]


@contextlib.asynccontextmanager
async def serving(app: Any, host: str, port: int) -> AsyncIterator[str]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                raise DemoError(f"the simulator could not start on {host}:{port}")
            await asyncio.sleep(0.025)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


async def run(
    *, host: str, port: int, seed: int, invoices: int, once: bool, console: Console,
    data_dir: Path, warn: Callable[[str], None], web_port: int = 0,
) -> list[SyncOutcome]:
    from blingsync.simulator.app import build

    anchor = datetime.now(BRT).replace(hour=0, minute=0, second=0, microsecond=0)
    # The brands start selling only after the first import: its table compares the import
    # with the simulator's counts of the same moment.
    sim = build(seed=seed, accounts=3, invoices=invoices, anchor=anchor, evolve_every=None)
    # The demo's database belongs to this run's simulator only.
    await asyncio.to_thread(shutil.rmtree, data_dir, ignore_errors=True)
    settings = replace(Settings.from_env({}), secret_key=None).with_data_dir(data_dir)
    async with serving(sim.app, host, port) as base, httpx.AsyncClient(
        base_url=base, timeout=DEFAULT_TIMEOUT
    ) as http, Service.open(replace(settings, bling_url=f"{base}/Api/v3",
                                    bling_v2_url=f"{base}/Api/v2"), warn=warn) as service:
        console.print(f"[bold]Bling simulator[/] running at [cyan]{base}[/] "
                      f"(v3 {base}/Api/v3, v2 {base}/Api/v2, admin {base}/_sim/accounts)")
        console.print(f"database: [cyan]{data_dir / 'blingsync.db'}[/] — browse it after the demo "
                      f"with `blingsync --data-dir {data_dir} orders list`")
        accounts = (await http.get("/_sim/accounts")).json()["accounts"]
        brands: list[tuple[Account, int]] = []
        for sim_account in accounts:
            brand, creds = sim_account["fantasia"], sim_account["clients"][0]
            code = await authorization_code(http, brand, creds["client_id"])
            added = await service.add_account(
                brand, client_id=creds["client_id"], client_secret=creds["client_secret"], code=code,
                settings=AccountSettings(initial_lookback_days=DEMO_LOOKBACK_DAYS))
            brands.append((added.account, int(sim_account["id"])))
            granted = sum(1 for c in added.permissions if c.granted)
            console.print(f"  connected [bold]{brand}[/] through OAuth2 (API v3, "
                          f"{granted}/{len(added.permissions)} permissions granted)")
        started = time.monotonic()
        since = datetime.now(BRT) - timedelta(days=DEMO_LOOKBACK_DAYS)
        truths = {company_id: simulator_truth(sim.state, company_id, since) for _, company_id in brands}
        outcomes = await _import(service, console, trigger="demo")
        elapsed = time.monotonic() - started
        await _final_table(service, truths, brands, outcomes, console)
        imported = sum(o.report.counters.created for o in outcomes if o.report)
        requests = sum(o.report.requests for o in outcomes if o.report)
        console.print(f"[green]{imported} expedition orders imported[/] from {len(brands)} brands in "
                      f"{elapsed:.1f} s ({requests} requests to Bling, each brand at ≤ 3 requests/s).")
        if once:
            return outcomes
        async with _dashboard(service, host, web_port, console):
            console.print("The brands keep selling: new orders and cancellations print below as "
                          "they are imported. Ctrl-C to stop.")
            await _keep_selling(service, http, console)
    return outcomes


@contextlib.asynccontextmanager
async def _dashboard(service: Service, host: str, port: int, console: Console) -> AsyncIterator[None]:
    """The dashboard on the demo's database, with a demo operator whose password is new each run
    (printed once: the demo's database is recreated each run, so it never outlives the demo)."""
    from blingsync.web.app import create_app

    password = secrets.token_urlsafe(12)
    await service.store.create_user("demo", password)
    async with serving(create_app(service), host, port) as base:
        console.print(f"[bold]dashboard[/] at [cyan]{base}/[/]: sign in as [bold]demo[/] with the "
                      f"password [bold]{password}[/]")
        yield


async def _keep_selling(service: Service, http: httpx.AsyncClient, console: Console) -> None:
    """A simulated business step every ~2 s, and a poll of every brand after three of them."""
    while True:
        for _ in range(3):  # a simulated business step every ~2 s
            await asyncio.sleep(2)
            (await http.post("/_sim/evolve", json={"steps": 1})).raise_for_status()
        for outcome in await service.sync(trigger="poll"):
            report = outcome.report
            if report is None:
                continue
            counters = report.counters
            if counters.created or counters.canceled or counters.updated:
                console.print(f"  {datetime.now(BRT):%H:%M:%S} [bold]{outcome.account.name}[/]: "
                              f"[green]{counters.created} new[/], {counters.updated} updated, "
                              f"[red]{counters.canceled} canceled[/]")
            if report.error:
                console.print(f"  [red]{outcome.account.name}: {report.error}[/]")


async def _import(service: Service, console: Console, *, trigger: str) -> list[SyncOutcome]:
    with progress_bars(console) as progress:
        return await service.sync(trigger=trigger, progress=progress)


async def _final_table(service: Service, truths: dict[int, Truth], brands: list[tuple[Account, int]],
                       outcomes: list[SyncOutcome], console: Console) -> None:
    table = Table(title="Imported vs the simulator's own counts (NF-e)")
    for column in ("brand", "Emitida DANFE (saída)", "imported", "match",
                   "not imported: Autorizada", "Cancelada", "entrada", "requests"):
        table.add_column(column)
    by_name = {o.account.name: o for o in outcomes}
    for account, company_id in brands:
        truth = truths[company_id]
        ready = await service.store.count_orders(account_id=account.id, status=OrderStatus.READY)
        report = by_name[account.name].report
        table.add_row(account.name, str(truth.danfe), str(ready),
                      "[green]yes[/]" if ready == truth.danfe else "[red]NO[/]",
                      str(truth.authorized), str(truth.canceled), str(truth.entrada),
                      str(report.requests if report else 0))
    console.print(table)
    sample = await service.store.orders(limit=8)
    orders = Table(title="Some of the orders (blingsync orders list shows more)")
    for column in ("brand", "NF-e", "recipient", "city/UF", "items", "volumes", "total"):
        orders.add_column(column)
    for stored in sample:
        o = stored.order
        place = o.delivery_address
        orders.add_row(stored.account, f"{o.number}/{o.series}", o.recipient.name or "",
                       f"{place.city}/{place.state}" if place else "", str(len(o.items)),
                       str(sum(v.quantity or 0 for v in o.volumes)), str(o.total_value))
    console.print(orders)
