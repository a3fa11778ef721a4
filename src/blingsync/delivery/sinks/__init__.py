"""Sinks: where an account's outbox events go (`webhook`, `smartgo`, `none`), and the
resolver that builds an account's sink from its stored configuration."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

import httpx

from blingsync.delivery.sinks.base import DeliveryResult, Outcome, Sink
from blingsync.delivery.sinks.none import NoneSink
from blingsync.delivery.sinks.smartgo import SmartGoSink, smartgo_sink_config
from blingsync.delivery.sinks.webhook import DEFAULT_TIMEOUT, WebhookSink, utc_now, webhook_sink_config
from blingsync.store import Store
from blingsync.store.records import SinkConfig, SinkKind

__all__ = [
    "DeliveryResult",
    "NoneSink",
    "Outcome",
    "Sink",
    "SmartGoSink",
    "StoreSinks",
    "WebhookSink",
    "build_sink",
    "smartgo_sink_config",
    "webhook_sink_config",
]

log = logging.getLogger(__name__)

BUILT_KINDS: Final = frozenset({SinkKind.WEBHOOK, SinkKind.SMARTGO})
"""The push kinds this version can deliver to (the relay claims only their events)."""


def build_sink(config: SinkConfig, http: httpx.AsyncClient, *,
               clock: Callable[[], datetime] = utc_now,
               timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> Sink | None:
    """The sink of one stored configuration; None when it is disabled or of a kind this version
    cannot deliver to (its events then wait, pending)."""
    if not config.enabled:
        return None
    if config.kind is SinkKind.WEBHOOK and config.url is not None and config.secret is not None:
        return WebhookSink(config.url, config.secret, http, clock=clock, timeout=timeout)
    if config.kind is SinkKind.SMARTGO:
        # No secret or a bad option still builds it: its first delivery disables the sink with
        # the reason in words, which an operator sees, instead of events waiting silently.
        return SmartGoSink(config, http, clock=clock, timeout=timeout)
    if config.kind is SinkKind.NONE:
        return NoneSink()
    return None


class StoreSinks:
    """The relay's `SinkResolver` over the store: each account's sink as configured now (read
    per batch, so a changed URL or secret applies at the next batch)."""

    def __init__(self, store: Store, http: httpx.AsyncClient, *,
                 clock: Callable[[], datetime] = utc_now, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self._store = store
        self._http = http
        self._clock = clock
        self._timeout = timeout

    @property
    def kinds(self) -> frozenset[SinkKind]:
        return BUILT_KINDS

    async def resolve(self, account_id: int) -> Sink | None:
        config = await self._store.sink(account_id)
        if config is None:
            return None
        sink = build_sink(config, self._http, clock=self._clock, timeout=self._timeout)
        if sink is None and config.enabled and config.kind is not SinkKind.NONE:
            log.warning("account %s: its %s sink cannot be delivered to by this version", account_id,
                        config.kind.value)
        return sink
