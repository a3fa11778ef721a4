"""What every command shares: the settings from the environment and the global options, the
service opened around a command, and one place that turns errors into one-line messages and
exit codes.

Exit codes (documented in the README):

* 0 — done.
* 1 — Bling or the data refused (invalid key, revoked access, malformed XML, ...): the message
  says what to do.
* 2 — the command line was wrong (a bad option value, a missing setting).
* 3 — what was named does not exist (account, order, file).
* 4 — done, but the account lacks permissions in Bling (listed above the message).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.console import Console

from blingsync.bling.errors import BlingError
from blingsync.config import ConfigError, Settings
from blingsync.domain import BRASILIA
from blingsync.service import Service, ServiceError

T = TypeVar("T")

console = Console()
err = Console(stderr=True)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PERMISSIONS = 4


@dataclass(frozen=True)
class Globals:
    """The root command's options, handed to subcommands through typer's context."""

    data_dir: Path | None = None
    database_url: str | None = None

    def settings(self) -> Settings:
        try:
            settings = Settings.from_env()
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        if self.data_dir is not None:
            settings = settings.with_data_dir(self.data_dir)
        if self.database_url is not None:
            from dataclasses import replace

            settings = replace(settings, database_url=self.database_url)
        return settings


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    err.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", highlight=False)


def parse_day(value: str | None, option: str) -> datetime | None:
    """A `YYYY-MM-DD` option as the start of that day in Brasília (Bling's calendar)."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)", EXIT_USAGE)
    return datetime(day.year, day.month, day.day, tzinfo=BRASILIA)


def with_service(ctx: typer.Context, work: Callable[[Service], Awaitable[T]]) -> T:
    """Open the store and the service, run `work`, close them; errors become one line and an
    exit code (the traceback goes to the log at debug level only)."""
    from blingsync.nfe.parse import NfeError
    from blingsync.store import NotFoundError, StoreError

    settings = globals_of(ctx).settings()

    async def main() -> T:
        async with Service.open(settings, warn=warn) as service:
            return await work(service)

    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except (ServiceError, ConfigError) as exc:
        fail(str(exc), EXIT_USAGE)
    except BlingError as exc:
        logging.getLogger("blingsync").debug("Bling error", exc_info=True)
        fail(f"{exc.user_message} [{exc.code}]")
    except (StoreError, NfeError) as exc:
        fail(str(exc))
