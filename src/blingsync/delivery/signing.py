"""Webhook signatures per the Standard Webhooks convention (https://www.standardwebhooks.com),
so a receiver can verify blingsync's deliveries with any of that convention's libraries, or with
a few lines of its own (docs/delivery.md):

* the secret is `whsec_` + base64 of random bytes; the HMAC key is the decoded bytes;
* the signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`;
* `webhook-signature` is `v1,` + base64 of its HMAC-SHA256, possibly several space-separated
  entries (during a secret rotation), any one of which may match;
* the receiver compares in constant time and refuses timestamps outside a tolerance window, so a
  captured request cannot be replayed days later.

Signing happens over the exact bytes sent: the body is serialised once and those bytes are both
signed and posted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Final

from blingsync.bling.secrets import Secret

SECRET_PREFIX: Final = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SIGNATURE_VERSION: Final = "v1"
DEFAULT_TOLERANCE: Final = timedelta(minutes=5)
SECRET_BYTES: Final = 32
MIN_SECRET_BYTES: Final = 24
MAX_SECRET_BYTES: Final = 64
"""The convention's bounds for a secret's key (it recommends 24 to 64 random bytes)."""

ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"


class WebhookVerificationError(Exception):
    """A delivery that must not be trusted; the message says which check failed (never the
    secret nor the expected signature)."""


class SecretFormatError(ValueError):
    """A webhook secret that is not `whsec_` + base64 of 24 to 64 bytes. The message never
    repeats the text given."""


def secret_key(secret: str | Secret) -> bytes:
    """The HMAC key of a `whsec_…` secret (the prefix is optional, as the convention's own
    libraries accept it bare)."""
    text = (secret.reveal() if isinstance(secret, Secret) else secret).strip()
    text = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SecretFormatError("a webhook secret is 'whsec_' followed by standard base64") from None
    if not key:
        raise SecretFormatError("a webhook secret must not be empty")
    return key


def check_secret(secret: str | Secret) -> Secret:
    """A configured secret, validated (24 to 64 bytes of key), as a `Secret`."""
    key = secret_key(secret)
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SecretFormatError(f"a webhook secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} "
                                f"bytes of key, this one holds {len(key)}")
    return Secret(secret)


def new_secret() -> Secret:
    """A fresh random secret (32 bytes of key) in the `whsec_` form, to hand to the receiver."""
    return Secret(SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode())


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign(secret: str | Secret, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) of one delivery."""
    if not msg_id:
        raise ValueError("a webhook id must not be empty")
    return f"{SIGNATURE_VERSION},{_digest(secret_key(secret), msg_id, int(timestamp), body)}"


def signature_headers(secret: str | Secret, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery."""
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(int(timestamp)),
            SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body)}


def verify(secret: str | Secret, msg_id: str, timestamp: str | int, body: bytes, signature: str, *,
           now: float | None = None, tolerance: timedelta = DEFAULT_TOLERANCE) -> None:
    """Raise `WebhookVerificationError` unless one `v1` entry of `signature` is the HMAC of
    this id, timestamp and raw body under `secret`, and the timestamp is within `tolerance` of
    `now` (Unix seconds; the current time by default). Comparisons are constant time."""
    stamp = str(timestamp).strip()
    if not stamp.isascii() or not stamp.isdigit():
        raise WebhookVerificationError("the webhook-timestamp is not Unix seconds")
    moment = int(stamp)
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance.total_seconds():
        raise WebhookVerificationError("the webhook-timestamp is outside the tolerance window")
    if not msg_id:
        raise WebhookVerificationError("the webhook-id is missing")
    expected = _digest(secret_key(secret), msg_id, moment, body).encode()
    matched = False
    for entry in signature.split():
        version, _, value = entry.partition(",")
        # Every entry is compared (no early exit), so timing does not tell which one matched.
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.encode(), expected):
            matched = True
    if not matched:
        raise WebhookVerificationError("no webhook-signature entry matches")


def verify_headers(secret: str | Secret, headers: Mapping[str, str], body: bytes, *,
                   now: float | None = None, tolerance: timedelta = DEFAULT_TOLERANCE) -> str:
    """`verify` with the values taken from request headers (any mapping with lower-case names,
    or a case-insensitive one such as Starlette's or httpx's); returns the webhook id, the key
    to deduplicate by."""
    try:
        msg_id, stamp, signature = (headers[ID_HEADER], headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    except KeyError as missing:
        raise WebhookVerificationError(f"the {missing.args[0]} header is missing") from None
    verify(secret, msg_id, stamp, body, signature, now=now, tolerance=tolerance)
    return msg_id
