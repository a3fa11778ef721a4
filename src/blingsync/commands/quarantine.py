"""`blingsync quarantine …`: the notes that could not be imported, and retrying them now."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from blingsync.commands.accounts import local
from blingsync.commands.common import EXIT_NOT_FOUND, EXIT_USAGE, console, fail, with_service
from blingsync.service import Service

app = typer.Typer(help="Notes that could not be imported (and why).", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
) -> None:
    """Every quarantined note: account, note, why, attempts and when it is tried again."""

    async def work(service: Service) -> None:
        accounts = {a.id: a.name for a in await service.store.accounts()}
        account_id = (await service.store.account(account)).id if account else None
        entries = await service.store.quarantined(account_id)
        table = Table(title=f"Quarantined notes ({len(entries)})")
        for column in ("account", "kind", "note", "Bling id", "attempts", "next try", "reason"):
            table.add_column(column, overflow="fold")
        for e in entries:
            table.add_row(accounts.get(e.account_id, str(e.account_id)), e.kind.upper(),
                          str(e.number or ""), str(e.bling_id), str(e.attempts), local(e.next_attempt_at),
                          e.reason)
        console.print(table)

    with_service(ctx, work)


@app.command()
def retry(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="The account.")],
    bling_id: Annotated[list[int] | None, typer.Argument(help="Bling ids of the notes (see list).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every quarantined note of the account.")] = False,
) -> None:
    """Make quarantined notes due now: the next `blingsync sync` tries them again."""
    if bool(bling_id) == all_:
        fail("name the notes' Bling ids, or give --all", EXIT_USAGE)

    async def work(service: Service) -> None:
        found = await service.store.account(account)
        ids = bling_id or [e.bling_id for e in await service.store.quarantined(found.id)]
        released = [i for i in ids if await service.store.release(found.id, i)]
        unknown = sorted(set(ids) - set(released))
        console.print(f"{len(released)} notes due again; run `blingsync sync --account {found.name}`.")
        if unknown:
            fail(f"not quarantined in {found.name}: {', '.join(map(str, unknown))}", EXIT_NOT_FOUND)

    with_service(ctx, work)
