"""`blingsync users`: operators of the dashboard. Passwords are typed twice with hidden input
(or read from standard input with `--password-stdin`, for scripts), never taken as an option:
an option would end up in the shell history and in `ps`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from blingsync.commands.accounts import local
from blingsync.commands.common import EXIT_USAGE, console, fail, with_service
from blingsync.service import Service
from blingsync.store.users import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    User,
    UserExists,
    WeakPassword,
    check_password,
    check_username,
)

app = typer.Typer(help="Dashboard operators: create, list, disable, enable, set a password.",
                  no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="The operator's username.")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input (for scripts).")]


def t(key: str, **params: object) -> str:
    """The dashboard's pt-BR text (imported here only: the dashboard package loads FastAPI and
    Jinja2, which no other command needs at start)."""
    from blingsync.web.ui.i18n import t as text

    return text(key, **params)


def _weak(exc: WeakPassword) -> str:
    """The pt-BR words of the dashboard, then the English of the CLI."""
    if exc.reason == "short":
        return f"{t('auth.password.too_short', min=MIN_PASSWORD_LENGTH)} ({exc})"
    return f"{t('auth.password.too_long', max=MAX_PASSWORD_LENGTH)} ({exc})"


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
        check = typer.prompt("Password again", hide_input=True)
        if password != check:
            fail(f"{t('auth.password.mismatch')} (the passwords differ)", EXIT_USAGE)
    try:
        check_password(password)
    except WeakPassword as exc:
        fail(_weak(exc), EXIT_USAGE)
    return password


@app.command()
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Option("--username", help="The operator's sign-in name (unique).")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an operator who can sign in to the dashboard (`/entrar`)."""
    try:
        username = check_username(username)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    password = read_password(password_stdin)

    async def work(service: Service) -> User:
        try:
            return await service.store.create_user(username, password)
        except UserExists as exc:
            fail(str(exc), EXIT_USAGE)

    user = with_service(ctx, work)
    console.print(f"created operator [bold]{user.username}[/]: sign in at {_signin_url(ctx)}",
                  highlight=False)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every operator, active and disabled (passwords cannot be shown: only their hashes exist)."""

    async def work(service: Service) -> list[User]:
        return await service.store.users()

    users = with_service(ctx, work)
    table = Table(title="Dashboard operators")
    for column in ("username", "created", "last sign-in", "state"):
        table.add_column(column, overflow="fold")
    for user in users:
        state = ("[green]active[/]" if user.disabled_at is None
                 else f"[red]disabled[/] {local(user.disabled_at)}")
        table.add_row(user.username, local(user.created_at),
                      local(user.last_login_at) if user.last_login_at else "never", state)
    console.print(table)


@app.command()
def disable(ctx: typer.Context, username: Username) -> None:
    """Stop an operator from signing in; their open sessions end at once."""

    async def work(service: Service) -> User:
        return await service.store.disable_user(username)

    user = with_service(ctx, work)
    console.print(f"operator [bold]{user.username}[/] disabled (signed out everywhere)", highlight=False)


@app.command()
def enable(ctx: typer.Context, username: Username) -> None:
    """Let a disabled operator sign in again (with their old password)."""

    async def work(service: Service) -> User:
        return await service.store.enable_user(username)

    user = with_service(ctx, work)
    console.print(f"operator [bold]{user.username}[/] enabled", highlight=False)


@app.command()
def password(
    ctx: typer.Context,
    username: Username,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password; the operator's open sessions end (sign in again with the new one)."""
    new = read_password(password_stdin)

    async def work(service: Service) -> User:
        return await service.store.set_user_password(username, new)

    user = with_service(ctx, work)
    console.print(f"password of [bold]{user.username}[/] changed (signed out everywhere)", highlight=False)


def _signin_url(ctx: typer.Context) -> str:
    from blingsync.commands.common import globals_of

    try:
        return globals_of(ctx).settings().public_url.rstrip("/") + "/entrar"
    except Exception:  # a setting that does not parse: the sign-in path is still worth saying
        return "/entrar"
