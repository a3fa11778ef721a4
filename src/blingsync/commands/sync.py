"""`blingsync sync`: one import pass, with a progress bar, then a summary per account."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from blingsync.commands.common import EXIT_FAILED, EXIT_PERMISSIONS, console, parse_day, with_service
from blingsync.service import Service, SyncOutcome
from blingsync.store.records import AccountState
from blingsync.sync.importer import Progress as ImportProgress
from blingsync.sync.importer import ProgressSink

NEEDS_USER = frozenset({AccountState.NEEDS_REAUTH, AccountState.INVALID_CREDENTIALS,
                        AccountState.API_DISCONTINUED})


def sync(
    ctx: typer.Context,
    account: Annotated[list[str] | None, typer.Option(
        "--account", help="Only this account (repeatable). Default: every active account.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Import notes emitted since this day (YYYY-MM-DD) instead of the usual sweeps.")] = None,
) -> None:
    """Import every Emitida DANFE note not imported yet, and follow cancellations."""
    start = parse_day(since, "--since")

    async def work(service: Service) -> list[SyncOutcome]:
        with progress_bars(console) as progress:
            return await service.sync(account or (), since=start, progress=progress)

    outcomes = with_service(ctx, work)
    print_summary(outcomes)
    if any(o.report is not None and not o.report.ok for o in outcomes):
        raise typer.Exit(EXIT_FAILED)
    if any(o.report is None and o.account.state in NEEDS_USER for o in outcomes):
        raise typer.Exit(EXIT_PERMISSIONS)  # a cron job must notice an account nobody imports


@contextlib.contextmanager
def progress_bars(console: Console) -> Iterator[ProgressSink]:
    """One bar per account and stream while an import runs (gone when it ends), fed by the
    importer's progress events."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        tasks: dict[tuple[str, str], TaskID] = {}

        def progress(event: ImportProgress) -> None:
            key = (event.account, event.stream)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{event.account} {event.stream.upper()}", total=None)
            bar.update(tasks[key], total=event.listed, completed=event.done)

        yield progress


def print_summary(outcomes: list[SyncOutcome]) -> None:
    table = Table(title="Import")
    for column in ("account", "listed", "new", "updated", "skipped", "canceled", "quarantined",
                   "requests", "waiting in Bling", "result"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        report = outcome.report
        if report is None:
            table.add_row(outcome.account.name, *[""] * 8, f"[yellow]skipped:[/] {outcome.skipped_because}")
            continue
        c = report.counters
        result = "[green]ok[/]" if report.ok else f"[red]failed:[/] {report.error}"
        table.add_row(outcome.account.name, str(c.listed), str(c.created), str(c.updated), str(c.skipped),
                      str(c.canceled), str(c.quarantined), str(report.requests),
                      str(len(report.unimported)), result)
    console.print(table)
    for outcome in outcomes:
        if outcome.report is not None and outcome.report.unimported:
            waiting = outcome.report.unimported
            console.print(f"[yellow]{outcome.account.name}:[/] {len(waiting)} notes not imported yet "
                          f"— e.g. note {waiting[0].number}: {waiting[0].reason}. "
                          f"See `blingsync accounts show {outcome.account.name}`.")
