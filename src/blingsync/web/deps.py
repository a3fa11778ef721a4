"""What every route reaches through the request: the service, and the wake-ups of the
background loops that `blingsync serve` runs beside the web app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from blingsync.service import Service

log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


def _no_scheduler(account_id: int) -> None:
    return None


@dataclass
class Wakeups:
    """Pokes for the background loops: a route that stored work for one calls it so the work
    starts now instead of at the loop's next tick. Without `serve` (tests, a bare app) they do
    nothing and the work waits for whoever runs the loops; "sync now" is the exception (see
    `schedules_syncs`)."""

    inbox: Callable[[], None] = field(default=_nothing)  # a Bling webhook was stored
    outbox: Callable[[], None] = field(default=_nothing)  # outbox events were written
    sync: Callable[[int], None] = field(default=_no_scheduler)  # "sync now" for an account

    @property
    def schedules_syncs(self) -> bool:
        """Whether a scheduler took `sync`. Without one, nobody would ever run a "sync now", so
        the API runs the import itself, after answering (`blingsync.web.api.accounts`)."""
        return self.sync is not _no_scheduler


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


def wakeups(request: Request) -> Wakeups:
    found: Wakeups = request.app.state.wakeups
    return found


def syncs_running(request: Request) -> set[int]:
    """Accounts whose import this app runs itself right now (when no scheduler does), so a
    second "sync now" of one account waits for the first instead of importing beside it."""
    state = request.app.state
    running: set[int] | None = getattr(state, "syncs_running", None)
    if running is None:
        running = set()
        state.syncs_running = running
    return running


async def sync_in_background(service: Service, wakeups: Wakeups, running: set[int], account_id: int,
                             *, trigger: str) -> None:
    """The import a "sync now" (API or dashboard) runs itself when no scheduler does: outbox
    events it writes wake the relay; a failure is logged, never raised into the response that
    already went out; the account is free for the next "sync now" afterwards."""
    try:
        outcome = await service.sync_account(account_id, trigger=trigger)
        report = outcome.report
        if report is not None:
            counters = report.counters
            if counters.created or counters.updated or counters.canceled:
                wakeups.outbox()
            if report.error:
                log.warning("account %s: the import asked from the %s failed: %s",
                            outcome.account.name, trigger, report.error)
    except Exception:
        log.exception("account %s: the import asked from the %s failed", account_id, trigger)
    finally:
        running.discard(account_id)
