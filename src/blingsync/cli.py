"""The `blingsync` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from blingsync import __version__
from blingsync.bling.secrets import redact_log_handlers
from blingsync.commands import accounts as accounts_commands
from blingsync.commands import delivery as delivery_commands
from blingsync.commands import nfe as nfe_commands
from blingsync.commands import orders as orders_commands
from blingsync.commands import prune as prune_command
from blingsync.commands import quarantine as quarantine_commands
from blingsync.commands import serve as serve_command
from blingsync.commands import sync as sync_command
from blingsync.commands import tokens as tokens_commands
from blingsync.commands import users as users_commands
from blingsync.commands import writeback as writeback_commands
from blingsync.commands.common import Globals

if TYPE_CHECKING:
    from blingsync.simulator.state import SimState

app = typer.Typer(
    name="blingsync",
    help="Bling ERP invoices that reached Emitida DANFE, delivered to the warehouse exactly once.",
    no_args_is_help=True,
    add_completion=False,
)
from blingsync.commands.common import console, err  # noqa: E402


def _anchor(day: str | None) -> datetime:
    from blingsync.simulator.model import BRT

    if day is None:
        return datetime.now(BRT).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        err.print(f"[red]error:[/] --anchor {day!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None
    return datetime(parsed.year, parsed.month, parsed.day, tzinfo=BRT)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    data_dir: Annotated[Path | None, typer.Option(
        help="Where the database and key file live (env BLINGSYNC_DATA_DIR; default ~/.blingsync).")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL of the database (env BLINGSYNC_DATABASE_URL; default SQLite in the "
             "data dir), e.g. postgresql+psycopg://user@host/db.")] = None,
) -> None:
    if version:
        console.print(f"blingsync {__version__}")
        raise typer.Exit()
    ctx.obj = Globals(data_dir=data_dir, database_url=database_url)
    level = os.environ.get("BLINGSYNC_LOG", "warning").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_log_handlers()


app.add_typer(accounts_commands.app, name="accounts")
app.add_typer(orders_commands.app, name="orders")
app.add_typer(nfe_commands.app, name="nfe")
app.add_typer(quarantine_commands.app, name="quarantine")
app.add_typer(delivery_commands.sinks_app, name="sinks")
app.add_typer(delivery_commands.deliveries_app, name="deliveries")
app.command(name="deliver")(delivery_commands.deliver)
app.command(name="sync")(sync_command.sync)
app.add_typer(tokens_commands.app, name="tokens")
app.add_typer(users_commands.app, name="users")
app.add_typer(writeback_commands.app, name="writeback")
app.command(name="serve")(serve_command.serve)
app.command(name="prune")(prune_command.prune)


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 1,
    accounts: Annotated[int, typer.Option(min=1, max=1000, help="Bling accounts (brands).")] = 3,
    invoices: Annotated[int, typer.Option(min=0, max=100_000, help="Notes per account.")] = 200,
    anchor: Annotated[
        str | None, typer.Option(help="'Today' of the generated history (YYYY-MM-DD).")
    ] = None,
    no_rate_limit: Annotated[
        bool, typer.Option("--no-rate-limit", help="Do not enforce 3 req/s and the daily quota.")
    ] = False,
    daily_limit: Annotated[int, typer.Option(min=1, help="Requests per account per day.")] = 120_000,
    ip_block: Annotated[bool, typer.Option("--ip-block", help="Enforce Bling's IP blocks.")] = False,
    faults: Annotated[
        str, typer.Option(help="Injected faults, e.g. '5xx=0.1,timeout=0.05,hang=2s,seed=7'.")
    ] = "",
    v2_discontinued: Annotated[
        bool, typer.Option("--v2-discontinued", help="Answer every v2 call as discontinued.")
    ] = False,
    webhook_url: Annotated[
        str | None, typer.Option(help="Send every account's webhooks to this URL.")
    ] = None,
    evolve: Annotated[
        float, typer.Option(help="Seconds between simulated business steps (0 = frozen).")
    ] = 0.0,
) -> None:
    """Run the local Bling (API v3 and v2, OAuth, webhooks, faults) until interrupted."""
    import uvicorn

    from blingsync.simulator.app import build
    from blingsync.simulator.faults import FaultSpec, FaultSpecError
    from blingsync.simulator.limits import LimitSettings

    try:
        fault_spec = FaultSpec.parse(faults)
    except FaultSpecError as exc:
        err.print(f"[red]error:[/] --faults: {exc}")
        raise typer.Exit(2) from None
    limits = LimitSettings(enabled=not no_rate_limit, per_day=daily_limit, ip_block=ip_block)
    sim = build(
        seed=seed, accounts=accounts, invoices=invoices, anchor=_anchor(anchor),
        limits=limits, faults=fault_spec, evolve_every=evolve or None,
        v2_discontinued=v2_discontinued,
    )
    if webhook_url:
        for company in sim.state.world.companies:
            company.clients[0].webhook_url = webhook_url
    base = f"http://{host}:{port}"
    _print_served(sim.state, base)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    redact_log_handlers()
    config = uvicorn.Config(sim.app, host=host, port=port, log_level="warning", lifespan="on")
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


def _print_served(state: SimState, base: str) -> None:
    from blingsync.simulator.model import NfeSituacao

    world = state.world
    console.print(f"[bold]Bling simulator[/] on [cyan]{base}[/]  seed={world.seed}  "
                  f"anchor={world.anchor.date()}  faults={state.faults.spec.describe()}  "
                  f"rate limit={'on' if state.limits.enabled else 'off'}")
    console.print(f"  v3   {base}/Api/v3   (OAuth: {base}/Api/v3/oauth/authorize, /oauth/token)")
    console.print(f"  v2   {base}/Api/v2   (apikey)")
    console.print(f"  admin {base}/_sim/  — full credentials (client id and secret, a fresh "
                  f"authorization code and refresh token, v2 keys): GET {base}/_sim/accounts")
    table = Table(title="Accounts", show_lines=False)
    for col in ("id", "brand", "CNPJ", "notes", "Emitida DANFE", "client_id"):
        table.add_column(col, overflow="fold")
    for c in world.companies:
        danfe = sum(1 for n in c.notes.values() if n.situacao == NfeSituacao.EMITIDA_DANFE)
        table.add_row(
            str(c.id), c.fantasia, c.cnpj, str(len(c.notes)), str(danfe), c.clients[0].client_id,
        )
    console.print(table)


@app.command()
def demo(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Exit after the first import.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the demo data.")] = 1,
    invoices: Annotated[int, typer.Option(
        min=1, max=5000, help="Notes per brand (about 45% reach Emitida DANFE; each costs two "
                              "requests at 3 requests/s).")] = 80,
    port: Annotated[int, typer.Option(help="Port for the simulator (0 = any free port).")] = 0,
    web_port: Annotated[int, typer.Option(help="Port for the dashboard, served after the first import "
                                               "unless --once (0 = any free port).")] = 0,
) -> None:
    """The embedded demo: a local Bling with three brands, connected through OAuth, every
    Emitida DANFE note imported as an expedition order into SQLite (in DATA_DIR/demo, recreated
    each time). Without --once the brands keep selling, the demo keeps importing and the
    dashboard is served on the demo's database (its address and a sign-in are printed)."""
    from blingsync import demo as demo_module
    from blingsync.commands.common import globals_of, warn

    host = "127.0.0.1"
    chosen = port or _free_port(host)
    data_dir = globals_of(ctx).settings().data_dir / "demo"
    try:
        asyncio.run(demo_module.run(host=host, port=chosen, seed=seed, invoices=invoices,
                                    once=once, console=console, data_dir=data_dir, warn=warn,
                                    web_port=web_port or _free_port(host)))
    except KeyboardInterrupt:
        console.print("\nbye")
    except demo_module.DemoError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def main() -> None:
    with contextlib.suppress(BrokenPipeError):
        app(prog_name="blingsync")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
