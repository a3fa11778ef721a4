"""Delivery downstream (DESIGN.md, architecture; docs/delivery.md): the outbox relay and the
sinks it delivers through. Imports the store; the store never imports it."""

from blingsync.delivery.relay import Backoff, Relay, RelayStats, SinkResolver
from blingsync.delivery.signing import WebhookVerificationError, new_secret, sign, verify, verify_headers
from blingsync.delivery.sinks import (
    DeliveryResult,
    NoneSink,
    Outcome,
    Sink,
    StoreSinks,
    WebhookSink,
    build_sink,
    webhook_sink_config,
)

__all__ = [
    "Backoff",
    "DeliveryResult",
    "NoneSink",
    "Outcome",
    "Relay",
    "RelayStats",
    "Sink",
    "SinkResolver",
    "StoreSinks",
    "WebhookSink",
    "WebhookVerificationError",
    "build_sink",
    "new_secret",
    "sign",
    "verify",
    "verify_headers",
    "webhook_sink_config",
]
