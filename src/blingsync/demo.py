"""`blingsync demo`: the embedded default. Starts the Bling simulator in-process, connects to
each demo brand the way a real brand connects (OAuth2 authorization code), and pages through
every NF-e in Emitida DANFE. Without `--once` the simulated brands keep selling, and new
Emitida DANFE notes are shown as they appear.

This is the one production module allowed to import the simulator: the demo runs on it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

EMITIDA_DANFE = 6  # v3 /nfe situacao
MIN_INTERVAL = 1 / 3 + 0.01  # Bling allows 3 requests/s per account


class DemoError(Exception):
    """The demo could not run; the message says why in plain words."""


@dataclass
class Connection:
    brand: str
    client_id: str
    access_token: str
    last_call: float = 0.0


async def _paced_get(
    http: httpx.AsyncClient, conn: Connection, path: str, params: dict[str, Any]
) -> Any:
    wait = conn.last_call + MIN_INTERVAL - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)
    conn.last_call = time.monotonic()
    response = await http.get(
        path, params=params, headers={"authorization": f"Bearer {conn.access_token}"}
    )
    if response.status_code != 200:
        raise DemoError(f"{path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


async def connect(http: httpx.AsyncClient, brand: str, client: dict[str, Any]) -> Connection:
    """The OAuth2 authorization-code flow, as a brand's browser and our server would do it."""
    state = f"demo-{client['client_id'][:8]}"
    authorize = await http.get("/Api/v3/oauth/authorize", params={
        "response_type": "code", "client_id": client["client_id"], "state": state,
    })
    if authorize.status_code != 302:
        raise DemoError(f"{brand}: authorisation failed ({authorize.status_code})")
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    if query.get("state") != [state] or "code" not in query:
        raise DemoError(f"{brand}: authorisation was refused: {query.get('error', ['?'])[0]}")
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    token = await http.post(
        "/Api/v3/oauth/token",
        data={"grant_type": "authorization_code", "code": query["code"][0]},
        headers={"authorization": f"Basic {basic}", "enable-jwt": "1", "accept": "1.0"},
    )
    if token.status_code != 200:
        raise DemoError(f"{brand}: token exchange failed: {token.text[:200]}")
    return Connection(brand, client["client_id"], token.json()["access_token"])


async def danfe_notes(
    http: httpx.AsyncClient, conn: Connection, since: datetime | None = None
) -> AsyncIterator[dict[str, Any]]:
    params: dict[str, Any] = {"situacao": EMITIDA_DANFE, "tipo": "1", "limite": 100}
    if since is not None:
        params["dataEmissaoInicial"] = since.strftime("%Y-%m-%d %H:%M:%S")
    page = 1
    while True:
        body = await _paced_get(http, conn, "/Api/v3/nfe", {**params, "pagina": page})
        if not body["data"]:
            return
        for note in body["data"]:
            yield note
        page += 1


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
    from blingsync.simulator.model import BRT

    anchor = datetime.now(BRT).replace(hour=0, minute=0, second=0, microsecond=0)
    sim = build(seed=seed, accounts=3, invoices=invoices, anchor=anchor,
                evolve_every=None if once else 2.0)
    async with serving(sim.app, host, port) as base, httpx.AsyncClient(
        base_url=base, timeout=10.0
    ) as http:
        console.print(f"[bold]Bling simulator[/] running at [cyan]{base}[/] "
                      f"(v3 {base}/Api/v3, v2 {base}/Api/v2, admin {base}/_sim/accounts)")
        accounts = (await http.get("/_sim/accounts")).json()["accounts"]
        connections = []
        for account in accounts:
            conn = await connect(http, account["fantasia"], account["clients"][0])
            connections.append(conn)
            console.print(f"  connected [bold]{conn.brand}[/] through OAuth2 (JWT access token, "
                          f"{len(conn.access_token)} characters)")
        seen: set[int] = set()
        table = Table(title="NF-e in Emitida DANFE (ready to ship)")
        for col in ("brand", "número", "emissão", "destinatário", "UF", "chave"):
            table.add_column(col)
        started = time.monotonic()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("paging /nfe?situacao=6", total=None)
            for conn in connections:
                async for note in danfe_notes(http, conn):
                    seen.add(note["id"])
                    progress.advance(task)
                    if len(table.rows) < 15:
                        table.add_row(
                            conn.brand, note["numero"], note["dataEmissao"],
                            note["contato"]["nome"], note["contato"]["endereco"]["uf"],
                            note["chaveAcesso"],
                        )
        console.print(table)
        elapsed = time.monotonic() - started
        console.print(f"[green]{len(seen)} notes in Emitida DANFE[/] across {len(connections)} "
                      f"brands, listed in {elapsed:.1f} s at ≤ 3 requests/s per brand.")
        if once:
            return
        console.print("The brands keep selling: new notes print below as their DANFE is "
                      "emitted. Ctrl-C to stop.")
        since = anchor
        while True:
            await asyncio.sleep(5)
            for conn in connections:
                async for note in danfe_notes(http, conn, since=since):
                    if note["id"] not in seen:
                        seen.add(note["id"])
                        console.print(f"  [green]new[/] {conn.brand} NF-e {note['numero']} "
                                      f"for {note['contato']['nome']} ({note['chaveAcesso']})")
