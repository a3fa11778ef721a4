"""`blingsync sinks …`, `blingsync deliver` and `blingsync deliveries …`: where each account's
order events go, the relay that takes them there, and the events that could not go."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import httpx
import typer
from rich.table import Table

from blingsync.commands.accounts import local
from blingsync.commands.common import EXIT_FAILED, EXIT_USAGE, console, fail, with_service
from blingsync.service import Service
from blingsync.store.outbox import CHANNEL_SINK
from blingsync.store.records import SinkConfig, SinkKind

sinks_app = typer.Typer(help="Where an account's order events are delivered.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Events waiting or dead, and replaying them.", no_args_is_help=True)


@sinks_app.command("set")
def set_sink(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account name.")],
    webhook: Annotated[str | None, typer.Option(help="POST every event here (Standard Webhooks).")] = None,
    secret: Annotated[str | None, typer.Option(
        envvar="BLINGSYNC_SINK_SECRET", show_envvar=True,
        help="The receiver's whsec_… signing secret (default: a new one, printed once).")] = None,
    smartgo_key: Annotated[str | None, typer.Option(
        envvar="BLINGSYNC_SMARTGO_KEY", show_envvar=True,
        help="Create expedições in the SmartGo WMS gateway with this api_key.")] = None,
    doc_depositante: Annotated[str | None, typer.Option(
        help="The depositante's CNPJ at SmartGo (default: none sent).")] = None,
    smartgo_url: Annotated[str | None, typer.Option(help="The SmartGo gateway's base URL.")] = None,
    none: Annotated[bool, typer.Option("--none", help="Pull-only: events wait in the feed.")] = False,
) -> None:
    """Send the account's events to a webhook or to SmartGo, or keep them for pulling (--none)."""
    if sum((bool(webhook), bool(smartgo_key), none)) != 1:
        fail("give one of --webhook URL, --smartgo-key KEY or --none", EXIT_USAGE)
    from blingsync.delivery.sinks.smartgo import DEFAULT_BASE_URL, smartgo_sink_config
    from blingsync.delivery.sinks.webhook import webhook_sink_config

    try:
        if webhook:
            config = webhook_sink_config(webhook, secret)
        elif smartgo_key:
            config = smartgo_sink_config(smartgo_key, doc_depositante=doc_depositante,
                                         base_url=smartgo_url or DEFAULT_BASE_URL)
        else:
            config = SinkConfig(SinkKind.NONE)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)

    async def work(service: Service) -> None:
        found = await service.store.account(account)
        await service.store.set_sink(found.id, config)
        if config.kind is SinkKind.NONE:
            console.print(f"account [bold]{found.name}[/]: pull-only, events wait in the feed")
            return
        console.print(f"account [bold]{found.name}[/]: events go to {config.kind.value} {config.url}")
        if config.kind is SinkKind.WEBHOOK and secret is None and config.secret is not None:
            console.print("signing secret (shown once; give it to the receiver): "
                          f"[bold]{config.secret.reveal()}[/]")

    with_service(ctx, work)


@sinks_app.command("show")
def show_sink(ctx: typer.Context, account: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """The account's sink, its state and its queue."""

    async def work(service: Service) -> None:
        found = await service.store.account(account)
        config = await service.store.sink(found.id)
        pending = await service.store.pending_count(found.id, channel=CHANNEL_SINK)
        dead = len(await service.store.dead_events(found.id))
        if config is None:
            console.print(f"{found.name}: no sink yet ({pending} events waiting); "
                          f"`blingsync sinks set {found.name} --webhook URL`")
            return
        state = "[green]on[/]" if config.enabled else f"[red]off[/]: {config.disabled_reason or ''}"
        console.print(f"{found.name}: {config.kind.value} {config.url or ''} {state} — "
                      f"{pending} pending, {dead} dead")

    with_service(ctx, work)


def deliver(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due, then exit.")] = False,
) -> None:
    """Run the relays: deliver every due event through its account's sink, in order per order,
    and write reported shipments back to Bling (accounts with write-back on), retrying failures
    with backoff for up to three days."""
    from blingsync.delivery.relay import Relay, RelayStats
    from blingsync.delivery.sinks import StoreSinks
    from blingsync.delivery.writeback import writeback_relay

    async def drain(relay: Relay) -> RelayStats:
        total = RelayStats()
        while True:
            stats = await relay.run_once()
            total.add(stats)
            if stats.claimed == 0 or stats.claimed == stats.released:
                return total

    async def work(service: Service) -> RelayStats:
        async with httpx.AsyncClient() as http:
            relays = (Relay(service.store, StoreSinks(service.store, http, clock=service.now),
                            clock=service.now), writeback_relay(service))
            if not once:
                stop = asyncio.Event()
                console.print("delivering; Ctrl-C to stop")
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*(relay.run_forever(stop) for relay in relays))
                return RelayStats()
            total = RelayStats()
            for stats in await asyncio.gather(*(drain(relay) for relay in relays)):
                total.add(stats)
            return total

    total = with_service(ctx, work)
    console.print(f"{total.delivered} delivered, {total.retried} to retry, {total.dead} dead, "
                  f"{total.disabled} sinks disabled")
    if total.dead or total.errors:
        raise typer.Exit(EXIT_FAILED)


@deliveries_app.command("list")
def list_deliveries(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
) -> None:
    """Dead events (they stop their order's later events until replayed) and pending counts."""

    async def work(service: Service) -> None:
        names = {a.id: a.name for a in await service.store.accounts()}
        account_id = (await service.store.account(account)).id if account else None
        dead = await service.store.dead_events(account_id)
        table = Table(title=f"Dead events ({len(dead)})")
        for column in ("event", "account", "order", "type", "attempts", "created", "last error"):
            table.add_column(column, overflow="fold")
        for event in dead:
            table.add_row(str(event.id), names.get(event.account_id, ""), str(event.order_id),
                          event.type.value, str(event.attempts), local(event.created_at),
                          event.last_error or "")
        console.print(table)
        for acc_id, count in sorted((await service.store.pending_counts(channel=CHANNEL_SINK)).items()):
            if account_id in (None, acc_id):
                console.print(f"{names.get(acc_id, acc_id)}: {count} pending")

    with_service(ctx, work)


@deliveries_app.command()
def replay(
    ctx: typer.Context,
    event_id: Annotated[list[int], typer.Argument(help="Ids of dead events (see list).")],
) -> None:
    """Send dead events again (and the events of their orders waiting behind them)."""

    async def work(service: Service) -> None:
        for one in event_id:
            event = await service.store.replay(one)
            console.print(f"event {event.id} ({event.type.value}, order {event.order_id}) is due again")

    with_service(ctx, work)
