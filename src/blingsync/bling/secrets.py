"""Secrets never leak: a redacting `Secret` type, text/URL redaction and a logging filter.

A brand's Bling credentials (v2 API key, v3 client secret, access and refresh tokens, one-minute
authorization codes) reach logs, exception messages and reprs in many ways: a URL with
`?apikey=` in an httpx error, a token response echoed into an "invalid response" excerpt, a
pydantic model printed while debugging. Two defences, both needed:

* values we *know* are secret travel as `Secret`, whose every text form is masked and whose value
  comes out only through an explicit `.reveal()`;
* text we did not write (Bling's messages, bodies, URLs, log records) goes through `redact()`,
  which masks known secret values *and* anything shaped like a credential (`apikey=…`,
  `"access_token":"…"`, `Authorization: Bearer …`, JWTs) even when nobody told it the value.

The mask shows at most the last four characters, and only of values of 16 characters or more,
so two tokens can be told apart in a log without the mask helping anyone guess one.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterable
from typing import Any, Final, NoReturn
from urllib.parse import quote, quote_plus

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = [
    "MASK",
    "SECRET_QUERY_PARAMS",
    "RedactingFilter",
    "Secret",
    "mask",
    "redact",
    "redact_log_handlers",
    "redact_url",
]

MASK: Final = "****"
"""What replaces a secret. Recognised by `mask()` so that redacting twice changes nothing."""

_SHOW_TAIL_FROM: Final = 16
"""Shorter values are masked entirely: four characters of an eight-character code are half of it."""

SECRET_QUERY_PARAMS: Final = frozenset({
    # Named in issue 3: the v2 key, OAuth tokens and codes, the app secret, signed-URL signatures.
    "apikey", "access_token", "refresh_token", "code", "client_secret", "signature",
    # Not named in the issue; masked because they grant access just the same: the `accessKey`
    # of Bling's DANFE/PDF links, generic token/password parameters, OpenID id tokens.
    "accesskey", "token", "id_token", "password", "senha",
    # blingsync's own OAuth connect: the one-time link's ticket and the state sent to Bling.
    "ticket", "state",
})
"""Query/form parameter names (compared case-insensitively) whose values are always masked."""


def mask(value: str) -> str:
    """The masked form of a secret value: `****…a1b2` when it is at least 16 characters, else `****`.

    Idempotent: an already-masked value is returned unchanged, so text may be redacted twice
    (e.g. by an exception's constructor and again by a log filter) without losing the tail.
    """
    if value.startswith(MASK):
        return value
    if len(value) >= _SHOW_TAIL_FROM:
        return f"{MASK}…{value[-4:]}"
    return MASK


class Secret:
    """A secret string whose text forms are masked; the value comes out only via `reveal()`.

    * `str()`, `repr()` and `format()` all give `Secret('****…a1b2')`, so an f-string, a `%s` log
      argument or a debugger never shows the value.
    * Equality compares values in constant time (`hmac.compare_digest`) and only with another
      `Secret`: `Secret("x") == "x"` is False, so a comparison cannot reveal anything by accident.
    * Immutable and hashable (usable as a dict key); copying returns the same object.
    * **Not picklable.** Pickles end up in caches, task queues and files, unencrypted; a secret
      that must be stored should be revealed deliberately and encrypted by the store. Pickling
      raises `TypeError` saying so. (Exceptions of the error tree never hold a `Secret`, so they
      stay picklable.)
    * A pydantic field type: validates from `str` or `Secret`; `model_dump()` keeps the `Secret`
      object (it prints masked, and a dump fed back to the model round-trips), while
      `model_dump(mode="json")` / `model_dump_json()` write the masked text. The JSON schema is
      a write-only password string.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value._value
        if not isinstance(value, str):
            # Refuse bytes/ints early: str(bytes) would silently become "b'...'".
            raise TypeError(f"Secret takes a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret value. Call it only where the value is sent to Bling or encrypted."""
        return self._value

    @property
    def masked(self) -> str:
        """The masked value alone (`****…a1b2`), for places that add their own wording."""
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret('{self.masked}')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "Secret refuses to be pickled: pickles land in caches and queues unencrypted. "
            "Call .reveal() and encrypt the value where it is stored."
        )

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self.__reduce__()

    # --- pydantic -----------------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_str = core_schema.no_info_after_validator_function(cls, core_schema.str_schema())
        return core_schema.json_or_python_schema(
            json_schema=from_str,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_str]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls._serialize, info_arg=True
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "password", "writeOnly": True}

    @staticmethod
    def _serialize(value: Secret, info: core_schema.SerializationInfo) -> Secret | str:
        return value.masked if info.mode_is_json() else value


# --- redaction of free text -------------------------------------------------------------------

_PARAM_NAMES = "|".join(sorted((re.escape(n) for n in SECRET_QUERY_PARAMS), key=len, reverse=True))

_QUERY_VALUE = re.compile(
    # `apikey=…` in a URL query, a form body or prose; not `errorcode=` / `error_code=`.
    rf"(?<![A-Za-z0-9_\-])((?:{_PARAM_NAMES})=)([^&\s\"'<>#;,)]+)",
    re.IGNORECASE,
)
_JSON_VALUE = re.compile(
    # `"access_token": "…"` (and Python-repr `'access_token': '…'`); the closing quote may be
    # missing when a body was cut short.
    rf"""((["'])(?:{_PARAM_NAMES})\2\s*:\s*(["']))([^"']*)""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    # `Authorization: Bearer …`, `'authorization': 'Basic …'`, `"Authorization":"…"`.
    r"""((?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token)\s+)?)([^"'\s,;}]+)""",
    re.IGNORECASE,
)
_SCHEME_TOKEN = re.compile(
    # A bare `Bearer …` / `Basic …` credential outside a header line. Case-sensitive and 16+
    # characters, so English prose ("basic information") is left alone.
    r"(\b(?:Bearer|Basic|bearer)\s+)([A-Za-z0-9\-._~+/]{16,}=*)",
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)([^@\s/]+)(@)", re.IGNORECASE)


def _mask_group(match: re.Match[str], prefix: int, value: int, suffix: int | None = None) -> str:
    tail = match.group(suffix) if suffix is not None else ""
    return match.group(prefix) + mask(match.group(value)) + tail


def _mask_param(match: re.Match[str]) -> str:
    value = match.group(2)
    if value.isdigit() and len(value) < 8:
        # `code=49` in a repr or an error text is Bling's error code, not an OAuth code (40 hex).
        return match.group(0)
    return match.group(1) + mask(value)


def redact_url(url: object) -> str:
    """A URL (a `str`, or anything whose `str()` is a URL, such as `httpx.URL`) with credential
    query values (`apikey`, `access_token`, `refresh_token`, `code`, `client_secret`,
    `signature`, … see `SECRET_QUERY_PARAMS`) and any `user:password@` masked.

    Works on the text rather than re-encoding a parsed URL, so the rest stays byte-identical
    (v2's `filters=situacao[7];tipo[S]` keeps its brackets) and a malformed URL cannot raise.
    """
    text = str(url)
    text = _USERINFO.sub(lambda m: _mask_group(m, 1, 2, 3), text)
    return _QUERY_VALUE.sub(_mask_param, text)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes in text we did not write: as is, and URL-encoded either way."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def redact(text: str, *secrets: str | Secret) -> str:
    """`text` with every given secret value masked, and with anything shaped like a credential
    masked even when its value was not given: credential query/form values and URL passwords
    (as `redact_url`), the same names as JSON or repr keys, `Authorization` header values,
    bare `Bearer`/`Basic` credentials and JWTs.

    Known values are replaced longest first, so a secret containing another is not half-masked.
    Safe to apply twice.
    """
    values: set[str] = set()
    for secret in secrets:
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        if raw:
            values |= _variants(raw)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, mask(value))
    text = _JSON_VALUE.sub(lambda m: _mask_group(m, 1, 4), text)
    text = _AUTH_HEADER.sub(lambda m: _mask_group(m, 1, 2), text)
    text = _SCHEME_TOKEN.sub(lambda m: _mask_group(m, 1, 2), text)
    text = _JWT.sub(lambda m: mask(m.group(0)), text)
    return redact_url(text)


class RedactingFilter(logging.Filter):
    """A logging filter that runs `redact()` over a record's final message, exception text and
    stack text, with optional known secret values.

    The message is merged with its arguments first (`record.getMessage()`), so a secret passed
    as a `%s` argument is caught; the record then carries the redacted text and no arguments.
    An exception's traceback is formatted and redacted here and cached in `record.exc_text`,
    which `logging.Formatter` uses instead of formatting it again.

    Attach it to **handlers**: a filter on a logger does not see records propagated from its
    child loggers (standard `logging` behaviour). Extra attributes given with `extra=` are not
    touched; do not put secrets there.
    """

    def __init__(self, secrets: Iterable[str | Secret] = (), name: str = "") -> None:
        super().__init__(name)
        self._secrets: tuple[str | Secret, ...] = tuple(secrets)
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not let the raw args through
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message, *self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, *self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, *self._secrets)
        return True


def redact_log_handlers(logger: logging.Logger | None = None) -> None:
    """Attach a `RedactingFilter` to every handler of `logger` (the root logger by default)
    that has none. Call it right after configuring logging: httpx logs every request's URL at
    INFO, and a v2 request's URL carries the API key."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
