"""Webhooks as Bling sends them: `{eventId, date, version, event, companyId, data}` POSTed to
each app of the company that has a webhook URL and the scope of the resource, signed
`X-Bling-Signature-256: sha256=<hex HMAC-SHA256(raw body, client_secret)>`.

A delivery succeeds on any 2xx within the timeout (5 s at Bling); otherwise it is retried with
growing intervals for up to three days, after which the app's webhooks are disabled. Knobs make
the hub misbehave the ways Bling's does: drop, duplicate, delay and reorder events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import random
import uuid
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from blingsync.simulator.model import Company, OAuthClient, Scope
from blingsync.simulator.state import SimState

log = logging.getLogger("blingsync.simulator.webhooks")

HISTORY = 10_000  # deliveries kept for the admin API; pending ones are kept until done

RESOURCE_SCOPES = {
    "invoice": Scope.NFE,
    "consumer_invoice": Scope.NFCE,
    "order": Scope.PEDIDOS_VENDAS,
}


@dataclass
class WebhookKnobs:
    drop: float = 0.0  # probability an event is never sent
    duplicate: float = 0.0  # probability an event is sent twice
    delay_min: float = 0.0  # seconds before the first attempt
    delay_max: float = 0.0
    reorder: float = 0.0  # probability an event is held back and sent after the next one
    reorder_window: float = 2.0  # how long a held-back event waits for one to overtake it
    timeout: float = 5.0
    max_age: float = 3 * 86400.0  # retry horizon; then the app's webhooks are disabled
    retry_base: float = 1.0
    retry_cap: float = 3600.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse knobs that would break delivery later, with a message naming the knob."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "seed":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("seed must be an integer")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{f.name} must be a number")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{f.name} must be a finite number >= 0")
            if f.name in ("drop", "duplicate", "reorder") and value > 1:
                raise ValueError(f"{f.name} is a probability between 0 and 1")
        if self.delay_max < self.delay_min:
            raise ValueError("delay_max must not be below delay_min")
        if self.timeout <= 0 or self.retry_base <= 0:
            raise ValueError("timeout and retry_base must be above 0")


def webhook_url(value: object) -> str | None:
    """A webhook URL as an app's configuration holds it: http(s), or None for "no webhooks"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"a webhook URL must be an http(s) URL, not {value!r}")
    try:
        httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"a webhook URL must be an http(s) URL: {exc}") from None
    return value


@dataclass
class Delivery:
    id: int
    company_id: int
    client: OAuthClient
    event: str
    event_id: str
    body: bytes
    signature: str
    created_at: float
    next_at: float
    attempts: int = 0
    status: Literal["pending", "delivered", "dropped", "failed"] = "pending"
    last_status: int | None = None
    last_error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event,
            "eventId": self.event_id,
            "client_id": self.client.client_id,
            "url": self.client.webhook_url,
            "attempts": self.attempts,
            "status": self.status,
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookHub:
    state: SimState
    knobs: WebhookKnobs = field(default_factory=WebhookKnobs)
    transport: httpx.AsyncBaseTransport | None = None
    deliveries: deque[Delivery] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.knobs.seed)
        self._held: Delivery | None = None
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._pending: list[Delivery] = []
        self._count = 0
        self.state.listeners.append(self.on_event)

    def configure(self, knobs: WebhookKnobs) -> None:
        self.knobs = knobs
        self._rng = random.Random(knobs.seed)

    def _event_id(self, now: float) -> str:
        # UUIDv7 layout: 48 bits of milliseconds, then random bits from the hub's seeded stream.
        millis = int(now * 1000) & ((1 << 48) - 1)
        rand = self._rng.getrandbits(74)
        value = (millis << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (
            rand & ((1 << 62) - 1)
        )
        return str(uuid.UUID(int=value))

    def on_event(self, company: Company, event: str, data: dict[str, Any]) -> None:
        resource = event.split(".", 1)[0]
        scope = RESOURCE_SCOPES.get(resource)
        now = self.state.clock.time()
        for client in company.clients:
            if not (client.webhook_url and client.active and client.webhooks_enabled):
                continue
            if scope is None or scope not in client.scopes:
                continue
            envelope = {
                "eventId": self._event_id(now),
                "date": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "version": "v1",
                "event": event,
                "companyId": company.company_id,
                "data": data,
            }
            body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
            self._enqueue(company, client, event, str(envelope["eventId"]), body, now)

    def _enqueue(
        self, company: Company, client: OAuthClient, event: str, event_id: str, body: bytes,
        now: float,
    ) -> None:
        k = self.knobs
        delay = self._rng.uniform(k.delay_min, k.delay_max) if k.delay_max else 0.0
        delivery = Delivery(
            id=self._new_id(), company_id=company.id, client=client, event=event,
            event_id=event_id, body=body, signature=sign(body, client.client_secret),
            created_at=now, next_at=now + delay,
        )
        self.deliveries.append(delivery)
        if self._rng.random() < k.drop:
            delivery.status = "dropped"
            return
        self._pending.append(delivery)
        if self._rng.random() < k.duplicate:
            twin = Delivery(
                id=self._new_id(), company_id=company.id, client=client, event=event,
                event_id=event_id, body=body, signature=delivery.signature, created_at=now,
                next_at=delivery.next_at + self._rng.uniform(0.0, 0.2),
            )
            self.deliveries.append(twin)
            self._pending.append(twin)
        held, self._held = self._held, None
        if held is not None and held.status == "pending" and held.attempts == 0:
            # The held-back event goes out just after this one: out of order, as promised.
            held.next_at = delivery.next_at + 0.001
        elif self._rng.random() < k.reorder:
            delivery.next_at += k.reorder_window
            self._held = delivery
        self._wake.set()

    def _new_id(self) -> int:
        self._count += 1
        return self._count

    def due(self, now: float) -> list[Delivery]:
        self._pending = [d for d in self._pending if d.status == "pending"]
        return sorted((d for d in self._pending if d.next_at <= now),
                      key=lambda d: (d.next_at, d.id))

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        url = delivery.client.webhook_url
        now = self.state.clock.time()
        delivery.attempts += 1
        if not url or not delivery.client.webhooks_enabled:
            delivery.status = "failed"
            delivery.last_error = "webhooks disabled for this app"
            return
        try:
            response = await client.post(url, content=delivery.body, timeout=self.knobs.timeout, headers={
                "content-type": "application/json",
                "x-bling-signature-256": delivery.signature,
                "user-agent": "Bling-Webhooks/1.0 (simulator)",
            })
            delivery.last_status = response.status_code
            if 200 <= response.status_code < 300:
                delivery.status = "delivered"
                return
            delivery.last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}"
        k = self.knobs
        if now - delivery.created_at >= k.max_age:
            delivery.status = "failed"
            delivery.client.webhooks_enabled = False
            return
        delivery.next_at = now + min(k.retry_cap, k.retry_base * 2 ** (delivery.attempts - 1))

    async def flush(self) -> int:
        """Attempt every delivery due now, once; returns how many were attempted."""
        due = self.due(self.state.clock.time())
        if not due:
            return 0
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.transport, timeout=self.knobs.timeout)
        for delivery in due:
            await self._attempt(self._client, delivery)
        return len(due)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, poll: float = 0.05) -> None:
        """Deliver forever (the app's lifespan runs this in a task)."""
        while True:
            try:
                await self.flush()
            except Exception:  # one bad delivery must not stop every account's webhooks
                log.exception("webhook delivery failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.deliveries:
            out[d.status] = out.get(d.status, 0) + 1
        return out
