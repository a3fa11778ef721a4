"""What a sink is to the relay: something that takes one outbox event and says what became of
it. The relay owns retries, ordering, horizons and the store; a sink only speaks its protocol
and classifies the answer, so a new sink (SmartGo) cannot get the delivery rules wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from blingsync.store.records import OutboxEvent, SinkKind


class Outcome(StrEnum):
    DELIVERED = "delivered"  # the receiver has it: never sent again
    RETRY = "retry"  # not accepted this time: try again later (dead past the horizon)
    DISABLE = "disable"  # the receiver asked us to stop (410 Gone): sink off, events kept pending
    KEEP = "keep"  # nothing to push (a pull-only sink): leave the event pending, no attempt counted


@dataclass(frozen=True)
class DeliveryResult:
    """One attempt's outcome. `error` is shown to operators and stored: it must never hold a
    secret (sinks build it from status codes and exception names, not from what they sent)."""

    outcome: Outcome
    error: str | None = None
    retry_after: timedelta | None = None  # the receiver's Retry-After, when it gave one
    status: int | None = None  # the HTTP status, when there was one

    @classmethod
    def delivered(cls, status: int | None = None) -> DeliveryResult:
        return cls(Outcome.DELIVERED, status=status)

    @classmethod
    def retry(cls, error: str, *, retry_after: timedelta | None = None,
              status: int | None = None) -> DeliveryResult:
        return cls(Outcome.RETRY, error=error, retry_after=retry_after, status=status)

    @classmethod
    def disable(cls, reason: str, *, status: int | None = None) -> DeliveryResult:
        return cls(Outcome.DISABLE, error=reason, status=status)

    @classmethod
    def keep(cls) -> DeliveryResult:
        return cls(Outcome.KEEP)


class Sink(Protocol):
    """Delivers one event. Must not raise for the receiver's failures (classify them as RETRY
    or DISABLE); an exception anyway is treated as RETRY with the exception's type name."""

    @property
    def kind(self) -> SinkKind: ...

    async def deliver(self, event: OutboxEvent) -> DeliveryResult: ...
