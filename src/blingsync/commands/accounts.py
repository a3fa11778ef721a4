"""`blingsync accounts …`: connect brands' Bling accounts, look at them, pause, resume, remove."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.table import Table

from blingsync.bling.models import PermissionCheck
from blingsync.commands.common import (
    EXIT_PERMISSIONS,
    EXIT_USAGE,
    console,
    fail,
    globals_of,
    warn,
    with_service,
)
from blingsync.config import ConfigError, check_url
from blingsync.domain import BRASILIA
from blingsync.service import Service
from blingsync.store.records import Account, AccountSettings, AccountState

app = typer.Typer(help="Connect and manage brands' Bling accounts.", no_args_is_help=True)


def local(moment: datetime, *, seconds: bool = False) -> str:
    """A stored (UTC) time as Brasília time, which is what Bling's screens show."""
    return moment.astimezone(BRASILIA).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " BRT"

STATE_WORDS = {
    AccountState.ACTIVE: "[green]ok[/]",
    AccountState.PAUSED: "[yellow]paused[/]",
    AccountState.NEEDS_REAUTH: "[red]reconnect Bling[/]",
    AccountState.INVALID_CREDENTIALS: "[red]invalid key[/]",
    AccountState.MISSING_PERMISSIONS: "[red]missing permission[/]",
    AccountState.API_DISCONTINUED: "[red]API v2 discontinued[/]",
    AccountState.DAILY_LIMIT: "[yellow]daily limit[/]",
}


# The credential options `add` and `reconnect` share. Secrets may come from the environment,
# which keeps them out of the shell history and `ps`.
ApiKeyOption = Annotated[str | None, typer.Option(
    envvar="BLINGSYNC_API_KEY", show_envvar=True, help="API v2 key of a Bling API user.")]
ClientIdOption = Annotated[str | None, typer.Option(help="OAuth app client id (API v3).")]
ClientSecretOption = Annotated[str | None, typer.Option(
    envvar="BLINGSYNC_CLIENT_SECRET", show_envvar=True, help="OAuth app client secret.")]
RefreshTokenOption = Annotated[str | None, typer.Option(
    envvar="BLINGSYNC_REFRESH_TOKEN", show_envvar=True, help="A refresh token of the app.")]
CodeOption = Annotated[str | None, typer.Option(help="An authorization code (valid 60 s).")]


def check_credential_options(api_key: str | None, client_id: str | None, client_secret: str | None,
                             refresh_token: str | None, code: str | None) -> None:
    """One API generation's credentials, complete, or a usage error saying what is wrong."""
    if api_key is not None and any((client_id, client_secret, refresh_token, code)):
        fail("give --api-key (API v2) or the OAuth options (API v3), not both", EXIT_USAGE)
    if api_key is None and not (client_id and client_secret and (refresh_token or code)):
        fail("give --api-key KEY, or --client-id, --client-secret and --refresh-token or --code",
             EXIT_USAGE)
    if refresh_token and code:
        fail("give --refresh-token or --code, not both", EXIT_USAGE)


def print_permissions(checks: list[PermissionCheck]) -> None:
    table = Table(title="Permissions", show_header=True)
    table.add_column("resource")
    table.add_column("in Bling")
    table.add_column("status")
    for check in checks:
        table.add_row(check.resource, check.label, "[green]ok[/]" if check.granted else "[red]missing[/]")
    console.print(table)


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="The brand's name in blingsync.")],
    api_key: ApiKeyOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    refresh_token: RefreshTokenOption = None,
    code: CodeOption = None,
    bling_url: Annotated[str | None, typer.Option(
        help="Bling API v3 base URL (env BLINGSYNC_BLING_URL).")] = None,
    bling_v2_url: Annotated[str | None, typer.Option(
        help="Bling API v2 base URL (default: next to --bling-url).")] = None,
    nfce: Annotated[bool, typer.Option("--nfce/--no-nfce", help="Also import NFC-e.")] = False,
    authorized: Annotated[bool, typer.Option(
        "--import-authorized", help="Also import notes at Autorizada (DANFE not printed).")] = False,
    lookback_days: Annotated[int, typer.Option(
        min=1, max=3650, help="How far back the first import reaches.")] = 30,
) -> None:
    """Validate the credentials with Bling, check every permission the import needs, and store
    the account (credentials encrypted)."""
    name = name.strip()
    if not name:
        fail("--name must not be empty", EXIT_USAGE)
    check_credential_options(api_key, client_id, client_secret, refresh_token, code)
    try:
        url = check_url(bling_url, "--bling-url") if bling_url else None
        v2_url = check_url(bling_v2_url, "--bling-v2-url") if bling_v2_url else None
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

    async def work(service: Service) -> Account:
        added = await service.add_account(
            name, api_key=api_key, client_id=client_id, client_secret=client_secret,
            refresh_token=refresh_token, code=code, bling_url=url, bling_v2_url=v2_url,
            settings=AccountSettings(import_nfce=nfce, import_authorized=authorized,
                                     initial_lookback_days=lookback_days))
        print_permissions(added.permissions)
        account = added.account
        company = f" ({added.company.nome}, CNPJ {added.company.cnpj})" if added.company else ""
        console.print(f"stored account [bold]{account.name}[/]{company}: API {account.generation.value}")
        if added.missing:
            console.print("[red]Missing permissions:[/] grant them in Bling, then run "
                          f"`blingsync accounts check {account.name}`.")
            raise typer.Exit(EXIT_PERMISSIONS)
        return account

    with_service(ctx, work)


@app.command()
def reconnect(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Account name.")],
    api_key: ApiKeyOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    refresh_token: RefreshTokenOption = None,
    code: CodeOption = None,
) -> None:
    """Give an account new credentials (after a revoked access, a new key, or to move from an
    API v2 key to Bling's login), keeping its orders and settings."""
    check_credential_options(api_key, client_id, client_secret, refresh_token, code)

    async def work(service: Service) -> None:
        added = await service.reconnect(name, api_key=api_key, client_id=client_id,
                                        client_secret=client_secret, refresh_token=refresh_token, code=code)
        print_permissions(added.permissions)
        console.print(f"account [bold]{added.account.name}[/] reconnected: API "
                      f"{added.account.generation.value}, {STATE_WORDS[added.account.state]}")
        if added.missing:
            raise typer.Exit(EXIT_PERMISSIONS)

    with_service(ctx, work)


@app.command()
def connect(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Account name (new, or existing with --reconnect).")],
    reconnect: Annotated[bool, typer.Option(
        "--reconnect", help="Renew the Bling connection of an existing account (orders and settings stay).")
    ] = False,
    nfce: Annotated[bool, typer.Option("--nfce/--no-nfce", help="Also import NFC-e (new accounts).")] = False,
    authorized: Annotated[bool, typer.Option(
        "--import-authorized",
        help="Also import notes at Autorizada, DANFE not printed (new accounts).")] = False,
    lookback_days: Annotated[int, typer.Option(
        min=1, max=3650, help="How far back the first import reaches (new accounts).")] = 30,
) -> None:
    """Print a one-time link (valid 24 h) for the brand to open in a browser: it signs in to Bling,
    clicks "Autorizar", and the account is stored with its tokens encrypted. Needs
    BLINGSYNC_OAUTH_CLIENT_ID/SECRET (the warehouse's Bling app) and `blingsync serve` reachable
    at BLINGSYNC_PUBLIC_URL."""
    from blingsync.web.oauth import ConnectUnavailable, callback_url, connect_link

    name = name.strip()
    if not name:
        fail("the account name must not be empty", EXIT_USAGE)
    if reconnect and (nfce or authorized or lookback_days != 30):
        fail("--nfce, --import-authorized and --lookback-days are for new accounts; a reconnected "
             "account keeps its settings", EXIT_USAGE)
    configured = globals_of(ctx).settings()
    if not (configured.oauth_client_id and configured.oauth_client_secret):
        fail(str(ConnectUnavailable()), EXIT_USAGE)  # before a database is created for nothing

    async def work(service: Service) -> None:
        settings = None if reconnect else AccountSettings(
            import_nfce=nfce, import_authorized=authorized, initial_lookback_days=lookback_days)
        try:
            link = await connect_link(service, name, reconnect=reconnect, settings=settings)
        except ConnectUnavailable as exc:
            fail(str(exc), EXIT_USAGE)
        host = urlsplit(link.url).hostname or ""
        if host in ("localhost", "::1") or host.startswith("127."):
            warn(f"BLINGSYNC_PUBLIC_URL is {service.settings.public_url}: only a browser on this "
                 "machine can open the link")
        what = "reconnect" if reconnect else "connect"
        console.print(f"Send this link to the brand to {what} [bold]{name}[/] (one use, valid until "
                      f"{local(link.expires_at)}):", highlight=False)
        console.print(link.url, soft_wrap=True, highlight=False, markup=False)
        console.print(f"[dim]The Bling app's redirect URI must be {callback_url(service)}[/]",
                      highlight=False)

    with_service(ctx, work)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every account with its state, orders and last import."""

    async def work(service: Service) -> None:
        table = Table(title="Accounts")
        for column in ("name", "API", "state", "orders", "canceled", "last import", "reason"):
            table.add_column(column, overflow="fold")
        from blingsync.domain import OrderStatus

        for account in await service.store.accounts():
            runs = await service.store.runs(account.id, limit=1)
            last = runs[0] if runs else None
            table.add_row(
                account.name, account.generation.value, STATE_WORDS[account.state],
                str(await service.store.count_orders(account_id=account.id, status=OrderStatus.READY)),
                str(await service.store.count_orders(account_id=account.id, status=OrderStatus.CANCELED)),
                f"{local(last.started_at)} {last.outcome.value}" if last else "never",
                account.state_reason or "",
            )
        console.print(table)

    with_service(ctx, work)


@app.command()
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """One account: settings, recent imports, quarantined notes and notes waiting in Bling."""

    async def work(service: Service) -> None:
        account = await service.store.account(name)
        s = account.settings
        console.print(f"[bold]{account.name}[/]  API {account.generation.value}  "
                      f"state {STATE_WORDS[account.state]}  {account.state_reason or ''}")
        console.print(f"  Bling {account.bling_url}" + (
            f"  (v2 {account.bling_v2_url})" if account.generation.value == "v2" else ""))
        console.print(f"  CNPJ {account.document or 'unknown'}  NFC-e {'on' if s.import_nfce else 'off'}  "
                      f"Autorizada trigger {'on' if s.import_authorized else 'off'}  "
                      f"first import {s.initial_lookback_days} days back  "
                      f"sweeps " + ", ".join(f"{t.name} {t.lookback.days}d" for t in s.tiers))
        runs = await service.store.runs(account.id, limit=10)
        table = Table(title="Recent imports")
        for column in ("started", "tier", "window", "outcome", "listed", "new", "updated",
                       "skipped", "canceled", "quarantined", "requests", "error"):
            table.add_column(column, overflow="fold")
        for run in runs:
            c = run.counters
            table.add_row(local(run.started_at, seconds=True), run.tier or "",
                          f"{local(run.window_from)} → {local(run.window_to)}", run.outcome.value,
                          str(c.listed), str(c.created), str(c.updated), str(c.skipped),
                          str(c.canceled), str(c.quarantined), str(run.requests), run.error or "")
        console.print(table)
        quarantined = await service.store.quarantined(account.id)
        if quarantined:
            q = Table(title="Quarantined notes (not imported: they could not be read)")
            for column in ("note", "chave", "attempts", "next try", "reason"):
                q.add_column(column, overflow="fold")
            for entry in quarantined:
                q.add_row(str(entry.number or entry.bling_id), entry.access_key or "", str(entry.attempts),
                          local(entry.next_attempt_at), entry.reason)
            console.print(q)
        waiting = await service.store.unimported(account.id)
        if waiting:
            w = Table(title="Notes in Bling not imported yet, and why")
            for column in ("note", "issued", "situation", "why"):
                w.add_column(column, overflow="fold")
            for note in waiting:
                w.add_row(str(note.number), local(note.issued_at), note.situation.label, note.reason)
            console.print(w)

    with_service(ctx, work)


@app.command()
def check(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Probe every permission the import needs, again."""

    async def work(service: Service) -> None:
        account = await service.store.account(name)
        checks = await service.check(account)
        print_permissions(checks)
        if not all(c.granted for c in checks):
            raise typer.Exit(EXIT_PERMISSIONS)

    with_service(ctx, work)


def _set_state(ctx: typer.Context, name: str, state: AccountState, words: str) -> None:
    async def work(service: Service) -> None:
        account = await service.store.account(name)
        await service.store.set_account_state(account.id, state, None)
        console.print(f"account [bold]{account.name}[/] {words}")

    with_service(ctx, work)


@app.command()
def pause(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Stop importing this account until it is resumed."""
    _set_state(ctx, name, AccountState.PAUSED, "paused: it is not imported until resumed")


@app.command()
def resume(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Import this account again (also clears an error state: the next import re-checks)."""
    _set_state(ctx, name, AccountState.ACTIVE, "resumed")


@app.command()
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Account name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the account, its credentials and every order imported from it."""

    async def work(service: Service) -> None:
        account = await service.store.account(name)
        orders = await service.store.count_orders(account_id=account.id)
        if not yes and not typer.confirm(
                f"Delete account {account.name} and its {orders} orders?", default=False):
            raise typer.Exit(1)
        await service.store.remove_account(account.name)
        console.print(f"removed account [bold]{account.name}[/] and {orders} orders")

    with_service(ctx, work)
