"""What every command shares: the settings from the environment and the global options, the
service opened around a command, and one place that turns errors into one-line messages and
exit codes.

Exit codes (documented in the README):

* 0 — done.
* 1 — Bling or the data refused (invalid key, revoked access, malformed XML, ...): the message
  says what to do.
* 2 — the command line was wrong (a bad option value, a missing setting).
* 3 — what was named does not exist (account, order, file).
* 4 — done, but the account lacks permissions in Bling (listed above the message), or (`sync`)
  an account was left out because only the user can fix it (reconnect, new key).
* 130 — interrupted (Ctrl-C); what was committed stays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn, TypeVar

import sqlalchemy.engine
import sqlalchemy.exc
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

    log = logging.getLogger("blingsync")
    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        fail("interrupted (what was committed stays; the next run carries on)", 130)
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except ServiceError as exc:
        fail(str(exc))
    except BlingError as exc:
        log.debug("Bling error", exc_info=True)
        fail(f"{exc.user_message} [{exc.code}]")
    except (StoreError, NfeError) as exc:
        fail(str(exc))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        log.debug("database error", exc_info=True)
        fail(f"the database at {safe_url(settings.database_url)} failed: {_first_line(exc)}")
    except OSError as exc:
        log.debug("system error", exc_info=True)
        fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    except Exception as exc:
        log.error("unexpected error", exc_info=True)
        fail(f"unexpected {type(exc).__name__}: {_first_line(exc)} (details in the log with "
             "BLINGSYNC_LOG=debug)")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
