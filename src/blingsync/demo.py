"""`blingsync demo`: the embedded default. Starts the Bling simulator in-process, connects to
each demo brand the way a real brand connects (OAuth2 authorization code), and pages through
every NF-e in Emitida DANFE. Without `--once` the simulated brands keep selling, and new
Emitida DANFE notes are shown as they appear.

This is the one production module allowed to import the simulator: the demo runs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, TokenManager
from blingsync.bling.client import BlingClient, connect_v3
from blingsync.bling.limits import LimiterRegistry
from blingsync.bling.models import NoteSummary
from blingsync.bling.retry import DEFAULT_TIMEOUT
from blingsync.bling.secrets import Secret
from blingsync.domain import BRASILIA as BRT
from blingsync.domain import InvoiceStatus


class DemoError(Exception):
    """The demo could not run; the message says why in plain words."""


@dataclass
class Connection:
    brand: str
    client: BlingClient
    tokens: TokenManager


async def connect(
    http: httpx.AsyncClient, api: httpx.AsyncClient, registry: LimiterRegistry,
    brand: str, creds: dict[str, Any],
) -> Connection:
    """The OAuth2 authorization-code flow: the brand's browser approves the app (the
    simulator approves at once), then our server exchanges the code through the client."""
    state = f"demo-{creds['client_id'][:8]}"
    authorize = await http.get("/Api/v3/oauth/authorize", params={
        "response_type": "code", "client_id": creds["client_id"], "state": state,
    })
    if authorize.status_code != 302:
        raise DemoError(f"{brand}: authorisation failed ({authorize.status_code})")
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    if query.get("state") != [state] or "code" not in query:
        raise DemoError(f"{brand}: authorisation was refused: {query.get('error', ['?'])[0]}")
    app = OAuthApp(creds["client_id"], Secret(creds["client_secret"]), str(api.base_url))
    tokens = TokenManager(brand, app, MemoryTokenStore(), api, budget=registry.ip_guard)
    await tokens.exchange_code(query["code"][0])
    return Connection(brand, connect_v3(brand, tokens, api, registry), tokens)


def danfe_notes(conn: Connection, since: datetime, until: datetime) -> AsyncIterator[NoteSummary]:
    return conn.client.iter_notes(InvoiceStatus.DANFE_PRINTED, issued_from=since,
                                  issued_to=until)


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
    *, host: str, port: int, seed: int, invoices: int, once: bool, console: Console
) -> None:
    from blingsync.simulator.app import build

    anchor = datetime.now(BRT).replace(hour=0, minute=0, second=0, microsecond=0)
    sim = build(seed=seed, accounts=3, invoices=invoices, anchor=anchor,
                evolve_every=None if once else 2.0)
    async with serving(sim.app, host, port) as base, httpx.AsyncClient(
        base_url=base, timeout=DEFAULT_TIMEOUT
    ) as http, httpx.AsyncClient(base_url=f"{base}/Api/v3", timeout=DEFAULT_TIMEOUT) as api:
        console.print(f"[bold]Bling simulator[/] running at [cyan]{base}[/] "
                      f"(v3 {base}/Api/v3, v2 {base}/Api/v2, admin {base}/_sim/accounts)")
        accounts = (await http.get("/_sim/accounts")).json()["accounts"]
        registry = LimiterRegistry()
        connections = []
        for account in accounts:
            conn = await connect(http, api, registry, account["fantasia"], account["clients"][0])
            connections.append(conn)
            token = await conn.tokens.access_token()
            console.print(f"  connected [bold]{conn.brand}[/] through OAuth2 (JWT access token, "
                          f"{len(token.reveal())} characters)")
        seen: set[int] = set()
        table = Table(title="NF-e in Emitida DANFE (ready to ship)")
        for col in ("brand", "número", "emissão", "destinatário", "UF", "chave"):
            table.add_column(col)
        started = time.monotonic()
        history = anchor - timedelta(days=364)  # the generated history is 90 days long
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("paging /nfe?situacao=6", total=None)
            for conn in connections:
                async for note in danfe_notes(conn, history, datetime.now(BRT)):
                    seen.add(note.bling_id)
                    progress.advance(task)
                    if len(table.rows) < 15:
                        table.add_row(*_row(conn.brand, note))
        console.print(table)
        elapsed = time.monotonic() - started
        console.print(f"[green]{len(seen)} notes in Emitida DANFE[/] across {len(connections)} "
                      f"brands, listed in {elapsed:.1f} s at ≤ 3 requests/s per brand.")
        if once:
            return
        console.print("The brands keep selling: new notes print below as their DANFE is "
                      "emitted. Ctrl-C to stop.")
        while True:
            await asyncio.sleep(5)
            for conn in connections:
                async for note in danfe_notes(conn, anchor, datetime.now(BRT)):
                    if note.bling_id not in seen:
                        seen.add(note.bling_id)
                        brand, numero, _, name, _, chave = _row(conn.brand, note)
                        console.print(f"  [green]new[/] {brand} NF-e {numero} for {name} ({chave})")


def _row(brand: str, note: NoteSummary) -> tuple[str, str, str, str, str, str]:
    recipient = note.recipient
    address = recipient.address if recipient else None
    return (
        brand, f"{note.numero:06d}", note.issued_at.strftime("%Y-%m-%d %H:%M:%S"),
        (recipient.name if recipient else None) or "", (address.uf if address else None) or "",
        note.chave or "",
    )
