"""The webhook sink: one signed POST per event (docs/delivery.md is the receiver's contract).

* The body is the event envelope `{"id", "type", "created_at", "data"}`, serialised once; those
  exact bytes are signed and sent.
* `webhook-id` is the event's idempotency key, the same on every retry of the event, so the
  receiver deduplicates by it; `webhook-timestamp` is the attempt's time (a retry is signed
  afresh, so it passes the receiver's tolerance window however late it comes).
* 2xx = delivered; 410 Gone = the receiver wants no more: the sink is switched off and the
  events wait, pending; anything else (3xx included: redirects are not followed, a moved
  endpoint is a configuration change), a timeout or a network error = retry later.
* Timeouts are always set. The response body is never read: a receiver's error page could be
  large, and nothing in it changes the decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from blingsync.bling.secrets import Secret, redact, redact_url
from blingsync.delivery.signing import check_secret, new_secret, signature_headers
from blingsync.delivery.sinks.base import DeliveryResult
from blingsync.store.records import OutboxEvent, SinkConfig, SinkKind

DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
"""Per attempt. A receiver slower than this is retried: it must answer fast and work later."""

USER_AGENT: Final = "blingsync-webhooks/1"


def utc_now() -> datetime:
    return datetime.now(UTC)


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The JSON object posted for `event` (docs/delivery.md, "The envelope")."""
    return {
        "id": event.idempotency_key,
        "type": event.type.value,
        "created_at": event.created_at.astimezone(UTC).isoformat(),
        "data": event.payload,
    }


def envelope_bytes(event: OutboxEvent) -> bytes:
    return json.dumps(envelope(event), ensure_ascii=False, separators=(",", ":")).encode()


def webhook_sink_config(url: str, secret: str | Secret | None = None, *, enabled: bool = True) -> SinkConfig:
    """A webhook sink's configuration, checked (an http(s) URL; a `whsec_` secret of 24 to 64
    bytes, or a fresh one when none is given: read it back from the result to hand it over)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("a webhook URL must be an absolute http:// or https:// URL")
    checked = new_secret() if secret is None else check_secret(secret)
    return SinkConfig(kind=SinkKind.WEBHOOK, url=url.strip(), secret=checked, enabled=enabled)


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment - now, timedelta(0))


class WebhookSink:
    """Posts events to one URL, signed with one secret. `http` is shared (kept-alive
    connections); `clock` stamps `webhook-timestamp` (the relay's clock, so tests can move it)."""

    def __init__(self, url: str, secret: Secret, http: httpx.AsyncClient, *,
                 clock: Callable[[], datetime] = utc_now, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self._url = url
        self._secret = secret
        self._http = http
        self._clock = clock
        self._timeout = timeout

    @property
    def kind(self) -> SinkKind:
        return SinkKind.WEBHOOK

    def __repr__(self) -> str:
        return f"WebhookSink(url={redact_url(self._url)!r})"

    async def deliver(self, event: OutboxEvent) -> DeliveryResult:
        body = envelope_bytes(event)
        now = self._clock()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signature_headers(self._secret, event.idempotency_key, int(now.timestamp()), body),
        }
        try:
            async with self._http.stream("POST", self._url, content=body, headers=headers,
                                         timeout=self._timeout, follow_redirects=False) as response:
                status = response.status_code
                reason = response.reason_phrase
                retry_after = response.headers.get("retry-after")
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            # httpx's messages name the failure ("All connection attempts failed"), not the
            # request; redacted anyway in case a URL with a token shows up in one.
            detail = redact(str(exc), self._secret)[:160]
            return DeliveryResult.retry(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        if 200 <= status < 300:
            return DeliveryResult.delivered(status)
        if status == 410:
            return DeliveryResult.disable(
                f"the receiver answered 410 Gone on {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC: it wants no "
                "more events at this URL; its events wait until the sink is configured again",
                status=status)
        words = f"HTTP {status} {reason}".strip()
        if 300 <= status < 400:
            words += " (redirects are not followed: configure the new URL)"
        return DeliveryResult.retry(words, retry_after=_retry_after(retry_after, now), status=status)
