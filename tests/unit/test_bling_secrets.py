"""Secrets never leak: `Secret`, `redact`, `redact_url` and `RedactingFilter`, checked on real
`logging` output, pydantic models and exceptions. The raw value must appear nowhere."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
import traceback
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from blingsync.bling.errors import InvalidResponse
from blingsync.bling.secrets import (
    MASK,
    RedactingFilter,
    Secret,
    mask,
    redact,
    redact_log_handlers,
    redact_url,
)

API_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928"
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY21lIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXZhbHVl"
REFRESH_TOKEN = "rt_5d41402abc4b2a76b9719d911017c592a1b2"
CLIENT_SECRET = "cs+Zm9vYmFy/YmF6cXV4==9921"
CODE = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
PLAIN = "plain-secret-value-without-shape-0042"
ALL = (API_KEY, ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET, CODE, PLAIN)

URL = (
    f"https://bling.com.br/Api/v2/notasfiscais/page=2/json/?apikey={API_KEY}"
    f"&filters=situacao[7];tipo[S]&access_token={ACCESS_TOKEN}"
)


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets or ALL:
        assert secret not in text
        assert secret[:12] not in text, "a prefix of the secret leaked"
        assert quote(secret, safe="") not in text


# --- mask and Secret -------------------------------------------------------------------------------

def test_mask_shows_the_last_four_only_of_long_values() -> None:
    assert mask("a" * 15) == MASK
    assert mask("x" * 12 + "a1b2") == "****…a1b2"
    assert mask("") == MASK
    assert mask(mask(API_KEY)) == mask(API_KEY), "idempotent"


def test_secret_text_forms_are_masked() -> None:
    secret = Secret(API_KEY)
    expected = "Secret('****…3928')"
    assert str(secret) == repr(secret) == format(secret) == f"{secret}" == expected
    assert f"{secret!r:>30}".strip() == expected
    assert "%s" % secret == expected  # noqa: UP031 - the %-operator is what is tested
    assert str([secret, {"k": secret}]) == f"[{expected}, {{'k': {expected}}}]"
    assert repr(Secret("short")) == "Secret('****')"
    assert secret.masked == "****…3928"
    assert secret.reveal() == API_KEY


def test_secret_equality_hash_and_truth() -> None:
    assert Secret(API_KEY) == Secret(API_KEY)
    assert Secret(API_KEY) != Secret(PLAIN)
    assert Secret(API_KEY) != API_KEY, "never equal to a plain string"
    assert len({Secret(API_KEY), Secret(API_KEY)}) == 1
    assert not Secret("") and Secret("x")
    assert Secret(Secret(PLAIN)).reveal() == PLAIN


def test_secret_is_immutable() -> None:
    secret = Secret(PLAIN)
    with pytest.raises(AttributeError):
        secret._value = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del secret._value
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_secret_refuses_to_be_pickled_but_copies() -> None:
    secret = Secret(PLAIN)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="reveal"):
            pickle.dumps(secret, protocol=protocol)
    assert copy.copy(secret) is secret and copy.deepcopy(secret) is secret


# --- logging a Secret --------------------------------------------------------------------------------

@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A real logger writing through a real handler (with the filter) into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter(secrets=[PLAIN, Secret(CLIENT_SECRET)]))
    logger = logging.getLogger("blingsync.test.secrets")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_logging_a_secret_with_percent_s_even_without_the_filter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("blingsync.test.nofilter")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("using key %s and token %r", Secret(API_KEY), Secret(ACCESS_TOKEN))
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "Secret('****…3928')" in out
    assert_clean(out, API_KEY, ACCESS_TOKEN)


def test_filter_redacts_message_and_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("GET %s", URL)
    logger.info("token response %s", {"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN})
    logger.info("headers: Authorization: Bearer %s", ACCESS_TOKEN)
    logger.info("basic %s", {"Authorization": f"Basic {CLIENT_SECRET}"})
    logger.info("form grant_type=authorization_code&code=%s&client_secret=%s", CODE, CLIENT_SECRET)
    logger.info("known secret %s, url-encoded %s", PLAIN, quote(CLIENT_SECRET, safe=""))
    logger.info(f"formatted eagerly {PLAIN} {URL}")  # eager formatting is caught too
    logger.info("a bad format %d", f"apikey={API_KEY}")
    out = stream.getvalue()
    assert_clean(out)
    assert out.count("\n") == 8
    assert "filters=situacao[7];tipo[S]" in out, "the rest of the URL is left as is"
    assert "apikey=****…3928" in out


def test_filter_redacts_tracebacks_and_stack(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError(f"request failed: {URL} refresh_token={REFRESH_TOKEN} {PLAIN}")
    except RuntimeError:
        logger.exception("call failed")
    logger.info("with stack %s", "x", stack_info=True)
    out = stream.getvalue()
    assert "Traceback" in out and "RuntimeError: request failed" in out
    assert_clean(out)


def test_filter_on_the_root_handler_sees_child_loggers() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    parent = logging.getLogger("blingsync.test.parent")
    parent.propagate = False
    parent.setLevel(logging.INFO)
    parent.addHandler(handler)
    try:
        logging.getLogger("blingsync.test.parent.child.grandchild").info("GET %s", URL)
    finally:
        parent.removeHandler(handler)
    assert_clean(stream.getvalue(), API_KEY, ACCESS_TOKEN)


# --- pydantic --------------------------------------------------------------------------------------

class Credentials(BaseModel):
    account: str
    api_key: Secret
    refresh_token: Secret | None = None


class Connection(BaseModel):
    credentials: Credentials
    tokens: list[Secret] = []


def test_pydantic_model_redacts_everywhere() -> None:
    creds = Credentials(account="acme", api_key=API_KEY, refresh_token=Secret(REFRESH_TOKEN))
    conn = Connection(credentials=creds, tokens=[ACCESS_TOKEN])
    texts = [
        repr(creds), str(creds), f"{creds}", repr(conn), str(conn),
        str(creds.model_dump()), repr(conn.model_dump()),
        json.dumps(creds.model_dump(mode="json")), conn.model_dump_json(),
        str(conn.model_dump(mode="json")), json.dumps(Connection.model_json_schema()),
    ]
    for text in texts:
        assert_clean(text, API_KEY, REFRESH_TOKEN, ACCESS_TOKEN)
    assert json.loads(creds.model_dump_json())["api_key"] == "****…3928"
    assert creds.api_key.reveal() == API_KEY
    assert isinstance(conn.tokens[0], Secret)


def test_pydantic_round_trip_and_validation() -> None:
    creds = Credentials(account="acme", api_key=API_KEY)
    assert Credentials(**creds.model_dump()) == creds
    loaded = Credentials.model_validate_json(json.dumps({"account": "a", "api_key": API_KEY}))
    assert loaded.api_key == Secret(API_KEY)
    with pytest.raises(ValidationError):
        Credentials(account="acme", api_key=123)  # type: ignore[arg-type]
    schema = Credentials.model_json_schema()["properties"]["api_key"]
    assert schema == {"type": "string", "format": "password", "writeOnly": True, "title": "Api Key"}


def test_pydantic_validation_error_of_another_field_does_not_show_the_secret() -> None:
    with pytest.raises(ValidationError) as caught:
        Credentials(account=42, api_key=API_KEY)  # type: ignore[arg-type]
    assert_clean(str(caught.value), API_KEY)


def test_deep_copy_of_a_model_keeps_the_secret() -> None:
    creds = Credentials(account="acme", api_key=API_KEY)
    assert creds.model_copy(deep=True).api_key.reveal() == API_KEY


# --- redact and redact_url ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["apikey", "access_token", "refresh_token", "code", "client_secret",
                                  "signature", "APIKEY", "accessKey"])
def test_redact_url_masks_each_credential_parameter(name: str) -> None:
    url = f"https://www.bling.com.br/x.php?s&{name}={CODE}&id=9ab1671b"
    redacted = redact_url(url)
    assert CODE not in redacted
    assert redacted == f"https://www.bling.com.br/x.php?s&{name}=****…bbd3&id=9ab1671b"


def test_redact_url_keeps_the_rest_byte_identical_and_takes_httpx_urls() -> None:
    assert redact_url("https://api.bling.com.br/Api/v3/nfe?pagina=2&situacao=6") == \
        "https://api.bling.com.br/Api/v3/nfe?pagina=2&situacao=6"
    redacted = redact_url(httpx.URL(URL))
    assert_clean(redacted, API_KEY, ACCESS_TOKEN)
    assert "/page=2/json/" in redacted
    assert_clean(redact_url(f"https://user:{PLAIN}@example.com/x"), PLAIN)


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {ACCESS_TOKEN}",
    f"authorization: bearer {REFRESH_TOKEN}",
    f"{{'authorization': 'Basic {CLIENT_SECRET}'}}",
    f'"Authorization":"Bearer {ACCESS_TOKEN}"',
    f"curl -H 'Authorization: {API_KEY}'",
    f"token {ACCESS_TOKEN} in prose",
    f"Bearer {REFRESH_TOKEN}",
    f'{{"access_token":"{ACCESS_TOKEN}","refresh_token":"{REFRESH_TOKEN}","expires_in":21600}}',
    f"{{'refresh_token': '{REFRESH_TOKEN}'}}",
    f'{{"client_secret": "{CLIENT_SECRET}", "code": "{CODE}"}}',
    f'{{"refresh_token":"{REFRESH_TOKEN}',  # cut short: no closing quote
    f"grant_type=refresh_token&refresh_token={quote(REFRESH_TOKEN)}",
    f"client_secret={quote(CLIENT_SECRET, safe='')}",
])
def test_redact_patterns(text: str) -> None:
    assert_clean(redact(text), API_KEY, ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET, CODE)


def test_redact_known_secrets_in_any_encoding() -> None:
    text = f"a {PLAIN} b {quote(CLIENT_SECRET, safe='')} c {CLIENT_SECRET.replace('+', ' ')}"
    redacted = redact(text, PLAIN, Secret(CLIENT_SECRET))
    assert PLAIN not in redacted and quote(CLIENT_SECRET, safe="") not in redacted
    assert redact(text, "") == redact(text), "an empty secret masks nothing"


def test_redact_leaves_ordinary_text_alone() -> None:
    text = ('{"error":{"fields":[{"code":49,"msg":"basic information"}]}} code=49 '
            "error_code=ABCDEFGHIJKLMNOP grant_type=authorization_code Authorization header missing")
    assert redact(text) == text


def test_redact_is_idempotent() -> None:
    once = redact(URL + f" Authorization: Bearer {ACCESS_TOKEN}", PLAIN)
    assert redact(once, PLAIN) == once


# --- exceptions carrying URLs ---------------------------------------------------------------------------

def test_exception_with_a_url_is_redacted_in_every_form(captured: tuple[logging.Logger, io.StringIO]) -> None:
    error = InvalidResponse(excerpt=f"<a href='{URL}'>", bling_message=f"redirected to {URL}",
                            account="acme", status=302)
    try:
        raise error
    except InvalidResponse as caught:
        rendered = "".join(traceback.format_exception(caught))
    logger, stream = captured
    try:
        raise error
    except InvalidResponse:
        logger.exception("while listing: %s", error)
    for text in (str(error), repr(error), rendered, stream.getvalue()):
        assert_clean(text, API_KEY, ACCESS_TOKEN)
        assert "apikey=****…3928" in text


def test_redact_log_handlers_covers_httpx_request_lines() -> None:
    """httpx logs each request's URL at INFO; a v2 URL carries the key."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        redact_log_handlers()
        redact_log_handlers()  # idempotent: one filter per handler
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        key = "a1b2c3d4" * 9
        logging.getLogger("httpx").warning(
            'HTTP Request: GET https://bling.com.br/Api/v2/pedidos/json/?apikey=%s "200 OK"', key)
    finally:
        root.removeHandler(handler)
    assert "pedidos/json/" in stream.getvalue()
    assert key not in stream.getvalue()
