"""The SmartGo WMS sink: each order event becomes a call to SmartGo's API gateway.

What is known of the gateway, and how sure we are, is in docs/delivery.md ("The SmartGo
sink"). The request bodies come from `smartgo_payload` alone (the create contract is low
confidence and must be swappable); this module speaks HTTP and classifies answers.

* `order.created` / `order.updated` → `POST /expedicao/produto`. SmartGo has no known update
  call, so an update re-sends the create; the expedição already existing counts as delivered.
* `order.canceled` → `PATCH /expedicao/pedido/cancelar`; "already cancelled" counts as delivered.
* Headers: `api_key` (the sink's secret), `doc_depositante` (option, a CNPJ formatted
  `00.000.000/0001-00` by default, or digits with option `doc_depositante_format=digits`).
* Answers are read as the envelope `{model, code, errors, success}`:

| answer | outcome |
|---|---|
| 2xx and `success: true` | delivered |
| duplicate codigoExterno on create (409, or an error naming codigoExterno as existing) | delivered |
| 401 / 403 | sink disabled, reason in words (its events wait) |
| 429 | retry, honouring `Retry-After` |
| 5xx, timeout, network error | retry |
| other 4xx, 2xx with `success: false`, no envelope | retry, the gateway's `errors` as the error |

A refused payload is retried rather than dropped: it stays visible (last error, then dead after
the horizon, replayable once the product mapping or the data is fixed).

Error texts are built from the status and the gateway's `errors` entries, redacted with the
api_key and capped; the response body is read up to 64 KiB only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from blingsync.bling.secrets import Secret, redact
from blingsync.delivery.sinks import smartgo_payload as payload
from blingsync.delivery.sinks.base import DeliveryResult
from blingsync.delivery.sinks.webhook import DEFAULT_TIMEOUT, _retry_after, utc_now
from blingsync.store.records import EventType, OutboxEvent, SinkConfig, SinkKind

DEFAULT_BASE_URL: Final = "https://apigateway.smartgo.com.br"
USER_AGENT: Final = "blingsync-smartgo/1"
MAX_BODY: Final = 64 * 1024
"""An error page can be large; the envelope of a create or cancel is small."""
MAX_ERROR: Final = 400

_DUPLICATE: Final = re.compile(
    r"j[aá]\s+(existe|cadastrad|utilizad|foi)|duplicad|already\s+exists?|existente", re.IGNORECASE)
_ALREADY_CANCELED: Final = re.compile(r"j[aá]\s+(est[aá]\s+|foi\s+)?cancelad|already\s+cancel",
                                      re.IGNORECASE)


class ConfigError(ValueError):
    """A SmartGo sink option that cannot work (shown as the sink's disabled reason)."""


def format_document(value: str, style: str = "formatted") -> str:
    """`doc_depositante` as the header carries it. The reference's one claim [C] is the
    punctuated CNPJ `00.000.000/0001-00`; `digits` sends it bare, should SmartGo want that.
    A CPF (11 digits) is accepted for a depositante that is a person."""
    digits = re.sub(r"[.\-/\s]", "", value)
    if style not in ("formatted", "digits"):
        raise ConfigError(f"doc_depositante_format must be 'formatted' or 'digits', not {style!r}")
    # CNPJs may carry letters in positions 1-12 from 2026 (NT 2025.001): allow A-Z there.
    if re.fullmatch(r"[0-9A-Z]{12}[0-9]{2}", digits.upper()):
        d = digits.upper()
        return d if style == "digits" else f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
    if re.fullmatch(r"[0-9]{11}", digits):
        return digits if style == "digits" else f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"
    raise ConfigError("doc_depositante must be a CNPJ (14 characters) or a CPF (11 digits)")


def smartgo_sink_config(api_key: str | Secret, *, doc_depositante: str | None = None,
                        base_url: str = DEFAULT_BASE_URL, variant: str = payload.DEFAULT_VARIANT,
                        doc_format: str = "formatted", enabled: bool = True) -> SinkConfig:
    """A SmartGo sink's configuration, checked (the document's shape, the variant)."""
    options: dict[str, str] = {}
    if doc_depositante:
        format_document(doc_depositante, doc_format)
        options["doc_depositante"] = doc_depositante
        options["doc_depositante_format"] = doc_format
    if variant not in payload.VARIANTS:
        raise ConfigError(f"unknown payload_variant {variant!r}")
    options["payload_variant"] = variant
    secret = api_key if isinstance(api_key, Secret) else Secret(api_key)
    return SinkConfig(kind=SinkKind.SMARTGO, url=base_url.rstrip("/"), secret=secret, options=options,
                      enabled=enabled)


def _error_texts(envelope: Mapping[str, Any] | None) -> list[str]:
    """The envelope's `errors` as words. Their shape is unknown ([C]: `{key, value}`), so
    strings and other objects are accepted too."""
    if envelope is None:
        return []
    raw = envelope.get("errors")
    entries = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    texts: list[str] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            key = entry.get("key") or entry.get("Key") or entry.get("field")
            value = entry.get("value") or entry.get("Value") or entry.get("message")
            if value is None and key is None:
                texts.append(json.dumps(entry, ensure_ascii=False)[:200])
            else:
                texts.append(f"{key}: {value}" if key else str(value))
        else:
            texts.append(str(entry))
    return texts


def is_duplicate(status: int, texts: list[str], codigo: str) -> bool:
    """Does the refusal of a create say "this codigoExterno exists already"? SmartGo's wording
    is unknown, so: HTTP 409, or an error that names codigoExterno (or our code) and says it
    exists (`já existe`, `já cadastrado`, `duplicado`, `already exists`)."""
    if status == 409:
        return True
    return any(("codigoexterno" in t.lower() or codigo in t) and _DUPLICATE.search(t) for t in texts)


def is_already_canceled(texts: list[str]) -> bool:
    """A cancel refused because it is cancelled already (`já cancelado`): the goal is met."""
    return any(_ALREADY_CANCELED.search(t) for t in texts)


class SmartGoSink:
    """Delivers one account's events to SmartGo. Stateless: built per relay batch from the
    stored `SinkConfig`, so it cannot remember SmartGo's ids; the access key is the link."""

    def __init__(self, config: SinkConfig, http: httpx.AsyncClient, *,
                 clock: Callable[[], datetime] = utc_now, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self._base = (config.url or DEFAULT_BASE_URL).rstrip("/")
        self._secret = config.secret or Secret("")
        self._http = http
        self._clock = clock
        self._timeout = timeout
        self._variant = config.options.get("payload_variant", payload.DEFAULT_VARIANT)
        self._config_error: str | None = None
        self._doc: str | None = None
        try:
            doc = config.options.get("doc_depositante")
            if doc:
                self._doc = format_document(doc, config.options.get("doc_depositante_format", "formatted"))
            if self._variant not in payload.VARIANTS:
                raise ConfigError(f"unknown payload_variant {self._variant!r}")
            if not self._secret.reveal():
                raise ConfigError("no api_key")
        except ConfigError as exc:
            self._config_error = f"SmartGo sink misconfigured: {exc}"

    @property
    def kind(self) -> SinkKind:
        return SinkKind.SMARTGO

    def __repr__(self) -> str:
        return f"SmartGoSink(base={self._base!r}, doc_depositante={self._doc!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"api_key": self._secret.reveal(), "content-type": "application/json",
                   "accept": "application/json", "user-agent": USER_AGENT}
        if self._doc:
            headers["doc_depositante"] = self._doc
        return headers

    async def deliver(self, event: OutboxEvent) -> DeliveryResult:
        if self._config_error:
            return DeliveryResult.disable(self._config_error)
        try:
            if event.type is EventType.CANCELED:
                method, path = "PATCH", payload.CANCEL_PATH
                body = payload.cancel_body(event.payload)
            else:
                method, path = "POST", payload.CREATE_PATH
                body = payload.create_body(event.payload, variant=self._variant)
            codigo = payload.codigo_externo(event.payload)
        except payload.PayloadError as exc:
            return DeliveryResult.retry(f"order not sendable to SmartGo: {exc}")
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        now = self._clock()
        try:
            async with self._http.stream(method, self._base + path, content=content, headers=self._headers(),
                                         timeout=self._timeout, follow_redirects=False) as response:
                status = response.status_code
                reason = response.reason_phrase
                retry_after = response.headers.get("retry-after")
                raw = await _read_capped(response)
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(f"SmartGo timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            detail = redact(str(exc), self._secret)[:160]
            return DeliveryResult.retry(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        envelope = _envelope(raw)
        return self._classify(event.type, method, path, status, reason, envelope,
                              _retry_after(retry_after, now), codigo, now)

    def _classify(self, kind: EventType, method: str, path: str, status: int, reason: str,
                  envelope: Mapping[str, Any] | None, retry_after: timedelta | None, codigo: str,
                  now: datetime) -> DeliveryResult:
        texts = _error_texts(envelope)
        success = envelope is not None and envelope.get("success") is True
        if 200 <= status < 300 and success:
            return DeliveryResult.delivered(status)
        if status in (401, 403):
            return DeliveryResult.disable(
                f"SmartGo refused the api_key (HTTP {status}) on {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC: "
                "check the key and doc_depositante, then enable the sink again; its events wait",
                status=status)
        if kind is EventType.CANCELED and is_already_canceled(texts):
            return DeliveryResult.delivered(status)
        if kind is not EventType.CANCELED and is_duplicate(status, texts, codigo):
            return DeliveryResult.delivered(status)
        words = f"SmartGo {method} {path}: HTTP {status} {reason}".strip()
        if 200 <= status < 300:
            words += (" but success=false" if envelope is not None
                      else " but no {model, code, errors, success} envelope")
        elif status == 404:
            words += " (route not found: the gateway's contract differs from ours, see docs/delivery.md)"
        if texts:
            words += ": " + "; ".join(texts)
        words = redact(words, self._secret)
        if len(words) > MAX_ERROR:
            words = words[: MAX_ERROR - 1] + "…"
        honoured = retry_after if status == 429 or status >= 500 else None
        return DeliveryResult.retry(words, retry_after=honoured, status=status)


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
    return b"".join(chunks)[:MAX_BODY]


def _envelope(raw: bytes) -> Mapping[str, Any] | None:
    """The gateway's envelope, or None when the body is not one (an HTML error page, empty)."""
    try:
        found = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(found, dict) and ("success" in found or "errors" in found):
        return found
    return None
