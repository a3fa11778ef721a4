"""`blingsync tokens`: bearer tokens of the REST API (`/api/v1`). A token is printed once, when
it is created; blingsync keeps only its SHA-256 and its first characters."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from blingsync.commands.accounts import local
from blingsync.commands.common import EXIT_USAGE, console, fail, warn, with_service
from blingsync.service import Service
from blingsync.store.tokens import ApiToken, TokenExists, TokenScope

app = typer.Typer(help="REST API tokens: create (shown once), list, revoke.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="What the token is for (unique), e.g. 'wms'.")],
    scope: Annotated[TokenScope, typer.Option(
        help="read: every GET of the API; admin: everything (accounts, replays, shipments).",
    )] = TokenScope.READ,
) -> None:
    """Create a token and print it, once: blingsync cannot show it again."""
    name = name.strip()
    if not name:
        fail("--name must not be empty", EXIT_USAGE)

    async def work(service: Service) -> tuple[ApiToken, str]:
        try:
            return await service.store.create_api_token(name, scope)
        except TokenExists as exc:
            fail(str(exc), EXIT_USAGE)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)

    token, secret = with_service(ctx, work)
    # The token first, as plain text (no markup, no wrapping: the line must copy whole), so that
    # nothing printed around it can stand between the user and its only copy.
    print(f"created API token {token.name} ({token.scope.value}):")
    print(secret)
    warn("this token is shown only now: store it where the client keeps secrets; "
         f"`blingsync tokens revoke {escape(token.name)}` stops it")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every token, active and revoked (the tokens themselves cannot be shown)."""

    async def work(service: Service) -> list[ApiToken]:
        return await service.store.api_tokens()

    tokens = with_service(ctx, work)
    table = Table(title="API tokens")
    for column in ("name", "scope", "starts with", "created", "last used", "state"):
        table.add_column(column, overflow="fold")
    for token in tokens:
        revoked = token.revoked_at
        state = "[green]active[/]" if revoked is None else f"[red]revoked[/] {local(revoked)}"
        table.add_row(escape(token.name), token.scope.value, f"{token.prefix}…", local(token.created_at),
                      local(token.last_used_at) if token.last_used_at else "never", state)
    console.print(table)


@app.command()
def revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Stop a token at once (its name stays taken, and listed as revoked)."""

    async def work(service: Service) -> ApiToken:
        return await service.store.revoke_api_token(name)

    token = with_service(ctx, work)
    console.print(f"API token [bold]{escape(token.name)}[/] revoked"
                  + (f" (since {local(token.revoked_at)})" if token.revoked_at else ""))
