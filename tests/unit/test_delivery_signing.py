"""Webhook signatures: the Standard Webhooks specification's published test vector (so any of
that specification's libraries verifies our deliveries), an independent HMAC computation, and the
receiver-side checks (tolerance, tampering, rotation, missing headers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest

from blingsync.bling.secrets import Secret
from blingsync.delivery.signing import (
    SecretFormatError,
    WebhookVerificationError,
    check_secret,
    new_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
    verify_headers,
)

# The specification's example (standard-webhooks spec and its libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_reproduces_the_specifications_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert sign(Secret(SPEC_SECRET), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    # The convention's libraries accept the secret without its prefix too.
    assert sign(SPEC_SECRET.removeprefix("whsec_"), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_specifications_vector() -> None:
    verify(SPEC_SECRET, SPEC_ID, str(SPEC_TIMESTAMP), SPEC_BODY, SPEC_SIGNATURE, now=SPEC_TIMESTAMP + 10)


def test_sign_agrees_with_an_independent_hmac() -> None:
    secret = new_secret()
    key = base64.b64decode(secret.reveal().removeprefix("whsec_"))
    body = '{"id":"x-v1-order.created","data":{"name":"São Paulo"}}'.encode()
    expected = base64.b64encode(hmac.new(key, b"evt-1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert sign(secret, "evt-1", 1700000000, body) == f"v1,{expected}"


def test_headers_carry_id_timestamp_and_signature() -> None:
    headers = signature_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers == {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP),
                       "webhook-signature": SPEC_SIGNATURE}
    assert verify_headers(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP) == SPEC_ID


@pytest.mark.parametrize(("change", "match"), [
    ({"body": b'{"test": 2432232315}'}, "no webhook-signature entry matches"),
    ({"msg_id": "msg_other"}, "no webhook-signature entry matches"),
    ({"secret": "whsec_" + base64.b64encode(b"another-key-of-24-bytes!").decode()}, "no webhook-signature"),
    ({"signature": "v2," + SPEC_SIGNATURE[3:]}, "no webhook-signature entry matches"),
    ({"signature": "v1,"}, "no webhook-signature entry matches"),
    ({"timestamp": str(SPEC_TIMESTAMP + 1)}, "no webhook-signature entry matches"),
    ({"timestamp": "1614265330.0"}, "not Unix seconds"),
    ({"now": SPEC_TIMESTAMP + 301}, "outside the tolerance window"),
    ({"now": SPEC_TIMESTAMP - 301}, "outside the tolerance window"),
])
def test_verify_refuses(change: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"secret": SPEC_SECRET, "msg_id": SPEC_ID, "timestamp": str(SPEC_TIMESTAMP),
                               "body": SPEC_BODY, "signature": SPEC_SIGNATURE, "now": SPEC_TIMESTAMP}
    args.update(change)
    with pytest.raises(WebhookVerificationError, match=match) as caught:
        verify(args["secret"], args["msg_id"], args["timestamp"], args["body"],  # type: ignore[arg-type]
               args["signature"], now=args["now"])  # type: ignore[arg-type]
    assert "g0hM9SsE" not in str(caught.value) and "MfKQ9r8" not in str(caught.value)


def test_any_of_several_signatures_may_match_during_a_rotation() -> None:
    old = sign(new_secret(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    verify(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, f"{old} {SPEC_SIGNATURE}", now=SPEC_TIMESTAMP)
    with pytest.raises(WebhookVerificationError):
        verify(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, old, now=SPEC_TIMESTAMP)


def test_tolerance_is_configurable() -> None:
    verify(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, SPEC_SIGNATURE, now=SPEC_TIMESTAMP + 3000,
           tolerance=timedelta(hours=1))


def test_missing_headers_are_named() -> None:
    with pytest.raises(WebhookVerificationError, match="webhook-signature header is missing"):
        verify_headers(SPEC_SECRET, {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)},
                       SPEC_BODY, now=SPEC_TIMESTAMP)


def test_secrets_are_generated_and_checked_without_echoing_them() -> None:
    fresh = new_secret()
    assert fresh.reveal().startswith("whsec_") and len(secret_key(fresh)) == 32
    assert fresh != new_secret()
    assert check_secret(SPEC_SECRET) == Secret(SPEC_SECRET)  # 24 bytes: the lower bound
    for bad in ("whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode(), "whsec_",
                "whsec_" + base64.b64encode(bytes(65)).decode()):
        with pytest.raises(SecretFormatError) as caught:
            check_secret(bad)
        assert bad.removeprefix("whsec_") not in str(caught.value) or bad == "whsec_"
    assert "whsec" not in repr(fresh) and fresh.reveal() not in f"{fresh}"
