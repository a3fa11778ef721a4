"""The pull-only sink: nothing is pushed, the warehouse reads the events feed
(`GET /api/v1/events?after=`). Its events stay pending forever and never go dead: for a pull
consumer "pending" only means "in the feed", and no retry horizon applies to a read."""

from __future__ import annotations

from blingsync.delivery.sinks.base import DeliveryResult
from blingsync.store.records import OutboxEvent, SinkKind


class NoneSink:
    """Keeps every event pending. The store never hands a `none` account's events to a relay
    in the first place; this is the answer should one get here anyway."""

    @property
    def kind(self) -> SinkKind:
        return SinkKind.NONE

    async def deliver(self, event: OutboxEvent) -> DeliveryResult:
        return DeliveryResult.keep()

    def __repr__(self) -> str:
        return "NoneSink()"
