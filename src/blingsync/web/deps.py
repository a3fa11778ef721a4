"""What every route reaches through the request: the service, and the wake-ups of the
background loops that `blingsync serve` runs beside the web app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from blingsync.service import Service


def _nothing() -> None:
    return None


@dataclass
class Wakeups:
    """Pokes for the background loops: a route that stored work for one calls it so the work
    starts now instead of at the loop's next tick. Without `serve` (tests, a bare app) they do
    nothing and the work waits for whoever runs the loops."""

    inbox: Callable[[], None] = field(default=_nothing)  # a Bling webhook was stored
    outbox: Callable[[], None] = field(default=_nothing)  # outbox events were written
    sync: Callable[[int], None] = field(default=lambda account_id: None)  # "sync now" for an account


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


def wakeups(request: Request) -> Wakeups:
    found: Wakeups = request.app.state.wakeups
    return found
