"""`blingsync writeback set|show`: whether an account's shipments go back to Bling, and which
sales-order situation they move the order to (docs/writeback.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from blingsync.commands.common import EXIT_FAILED, EXIT_USAGE, console, fail, with_service
from blingsync.domain import ApiGeneration
from blingsync.service import Service
from blingsync.store.outbox import CHANNEL_BLING
from blingsync.store.records import Account

app = typer.Typer(help="Write the warehouse's shipments back to Bling, per account.", no_args_is_help=True)

V2_REFUSAL = (
    "account {name} uses an API key (Bling API v2), which has no logistics objects to write tracking "
    "to: connect it through Bling's login first (`blingsync accounts connect {name} --reconnect`)"
)


def _situation_words(account: Account) -> str:
    name = account.settings.write_back_situation
    return (f"sales orders move to “{name}”" if name
            else "sales orders keep their situation (choose one with --situation NAME)")


async def _pending(service: Service, account: Account) -> tuple[int, int]:
    pending = await service.store.pending_count(account.id, channel=CHANNEL_BLING)
    dead = len(await service.store.dead_events(account.id, channel=CHANNEL_BLING))
    return pending, dead


@app.command("set")
def set_writeback(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account name.")],
    on: Annotated[bool, typer.Option("--on", help="Write reported shipments back to Bling.")] = False,
    off: Annotated[bool, typer.Option("--off", help="Stop writing back (queued write-backs wait).")] = False,
    situation: Annotated[str | None, typer.Option(
        help="With --on: move the sales order to this situation of Bling's sales module, by name "
             "(`writeback show` lists them; '' to leave orders as they are). Default: unchanged.")] = None,
) -> None:
    """Switch an account's write-back to Bling on (optionally choosing the sales-order situation
    a shipment moves its order to) or off."""
    if on == off:
        fail("give --on or --off", EXIT_USAGE)
    if off and situation is not None:
        fail("--situation goes with --on", EXIT_USAGE)
    from blingsync.delivery.writeback import find_situation

    async def work(service: Service) -> None:
        found = await service.store.account(account)
        settings = found.settings
        if off:
            await service.store.update_account_settings(found.id, replace(settings, write_back=False))
            pending, _ = await _pending(service, found)
            console.print(f"account [bold]{escape(found.name)}[/]: write-back [yellow]off[/]; "
                          f"shipments are still stored, nothing goes to Bling ({pending} queued "
                          "write-backs wait until it is on)")
            return
        if found.generation is ApiGeneration.V2:
            fail(V2_REFUSAL.format(name=found.name), EXIT_FAILED)
        name = settings.write_back_situation
        if situation is not None and not situation.strip():
            name = None
        elif situation is not None:
            situations = await (await service.client(found)).order_situations()
            chosen = find_situation(situations, situation.strip())
            if chosen is None:
                known = ", ".join(f"“{s.nome}”" for s in situations) or "none"
                fail(f"Bling has no sales-order situation named “{situation.strip()}” in account "
                     f"{escape(found.name)}; its situations are: {known}", EXIT_FAILED)
            name = chosen.nome  # as Bling spells it
        await service.store.update_account_settings(
            found.id, replace(settings, write_back=True, write_back_situation=name))
        updated = await service.store.account_by_id(found.id)
        console.print(f"account [bold]{escape(found.name)}[/]: write-back [green]on[/]: each reported "
                      "shipment writes its tracking to the note's logistics objects in Bling; "
                      f"{_situation_words(updated)}")

    with_service(ctx, work)


@app.command("show")
def show_writeback(ctx: typer.Context, account: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """The account's write-back setting, its queue, and the sales-order situations Bling offers
    (the chosen one marked)."""
    from blingsync.delivery.writeback import find_situation

    async def work(service: Service) -> None:
        found = await service.store.account(account)
        settings = found.settings
        pending, dead = await _pending(service, found)
        state = "[green]on[/]" if settings.write_back else "[yellow]off[/]"
        console.print(f"{escape(found.name)}: write-back {state}; {_situation_words(found)}; "
                      f"{pending} pending, {dead} dead write-backs")
        if found.generation is ApiGeneration.V2:
            console.print(V2_REFUSAL.format(name=found.name))
            return
        situations = await (await service.client(found)).order_situations()
        chosen = (find_situation(situations, settings.write_back_situation)
                  if settings.write_back_situation else None)
        table = Table(title="Sales-order situations in Bling")
        for column in ("id", "name", ""):
            table.add_column(column)
        for one in situations:
            marker = "← chosen" if chosen is not None and one.id == chosen.id else ""
            table.add_row(str(one.id), escape(one.nome), marker)
        console.print(table)
        if settings.write_back_situation and chosen is None:
            console.print(f"[red]the chosen situation “{escape(settings.write_back_situation)}” is not "
                          "among them[/]: write-backs fail until it is fixed with "
                          f"`blingsync writeback set {escape(found.name)} --on --situation NAME`")

    with_service(ctx, work)
