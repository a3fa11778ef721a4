"""One documented error tree for everything Bling can answer, and the classifiers that build it.

Style of httpx and stripe-python: one base, `BlingError`, and one subclass per *thing the user
(or the client code) must do about it* — not per HTTP status, since v2 and v3 say the same thing
with different statuses and shapes. Each error carries:

* `code` — a stable identifier (`"credentials_invalid"`, …) for the UI's message catalogue;
* `user_message` — plain English saying what to do (the UI translates by `code` later);
* `retriable` — whether retrying the *same request* later can succeed (a class attribute);
* `account`, `status`, `api`, and what Bling said (`bling_type`, `bling_message`).

Every text an error holds is passed through `redact()` in the constructor, so `str()`, `repr()`
and tracebacks of these errors never show an API key, token or code, whatever Bling echoed.

The classifiers `from_v3_response` and `from_v2_response` are pure (no I/O, no clock unless
`now` is omitted): the HTTP client calls them with the status, raw body and headers of an answer
it could not use, and raises what they return. They never raise on odd input: a body that is
not JSON, is cut short or has an unknown shape becomes `InvalidResponse` (or `BlingUnavailable`
for a 5xx, whose body is often a proxy's HTML page).

Sources: shared/reference/bling-api.md §2.5 (v2 errors), §3.2 (OAuth errors), §3.4 (limits and
IP blocks), §3.5 (v3 envelope), §10.2/§10.5 (captured bodies). Where those are silent the choice
is noted where it is made.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypedDict, Unpack

from blingsync.bling.secrets import Secret, redact
from blingsync.domain import BRASILIA, ApiGeneration, next_brasilia_midnight

__all__ = [
    "BRASILIA",
    "V2_PERMISSION_LABELS",
    "V3_SCOPE_LABELS",
    "AccessTokenRejected",
    "AccountInactive",
    "ApiDiscontinued",
    "BlingError",
    "BlingUnavailable",
    "CredentialsInvalid",
    "ErrorContext",
    "FieldError",
    "InvalidRequest",
    "InvalidResponse",
    "NeedsApiV3",
    "NotFound",
    "OutcomeUnknown",
    "PermissionMissing",
    "RateLimited",
    "RatePeriod",
    "ReauthorizationNeeded",
    "from_transport_error",
    "from_v2_response",
    "from_v3_response",
    "parse_retry_after",
    "permission_label",
    "v2_is_end_of_pages",
]

RatePeriod = Literal["second", "day", "ip-block"]

V3_SCOPE_LABELS: Final[Mapping[str, str]] = MappingProxyType({
    # The names of the app scopes, per resource the importer uses. They are the simulator's
    # (docs/simulator.md); Bling's exact wording on the scope screen is not in the reference.
    "nfe": "Notas Fiscais",
    "nfce": "Notas Fiscais de Consumidor",
    "pedidos_vendas": "Pedidos de Venda",
    "situacoes": "Situações",
    "logisticas": "Logísticas",
    "empresas": "Dados básicos da empresa",
})
"""v3: resource → the app scope's name as the user sees it in Bling."""

V2_PERMISSION_LABELS: Final[Mapping[str, str]] = MappingProxyType({
    # The checkboxes under Preferências › Sistema › Usuários e usuário API › Permissões › Vendas,
    # spelt as in shared/seed/gerar-chave-integracao-bling.txt. "situacoes" means changing an
    # order's situation, which is what the importer does with it. v2 has no company-data
    # permission, so "empresas" has no label.
    "nfe": "Notas Fiscais",
    "nfce": "Nota fiscal de consumidor eletrônica (NFC-e)",
    "pedidos_vendas": "Pedidos de Venda",
    "situacoes": "Gerenciar situações dos Pedidos de Venda",
    "logisticas": "Interações Logísticas",
})
"""v2: resource → the permission checkbox's label under Permissões › Vendas."""

_V2_PERMISSIONS_PATH: Final = "Preferências › Sistema › Usuários e usuário API"

_DEFAULT_IP_BLOCK_SECONDS: Final = 600.0
"""Bling documents 10-minute IP blocks for the request and error rules (60 minutes for the token
rule, which the answer does not let us tell apart); used when the answer gives no time."""

_EXCERPT_CHARS: Final = 300
_EXCERPT_SCAN: Final = 16_384
"""How much of a body is redacted before the excerpt is cut from it: far more than any token
(JWTs run to 3 000 characters), so no secret starting in the excerpt can straddle the cut."""


def permission_label(resource: str | None, api: ApiGeneration | None) -> str | None:
    """The name the user sees in Bling for `resource`'s permission, or None when unknown."""
    if resource is None:
        return None
    table = V2_PERMISSION_LABELS if api is ApiGeneration.V2 else V3_SCOPE_LABELS
    return table.get(resource)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of Bling's validation detail: v3 `error.fields[]` (with its nested
    `collection`) or one v2 `erro` (`cod` → `code`, `msg`)."""

    msg: str
    code: int | None = None
    element: str | None = None
    namespace: str | None = None
    index: int | None = None
    collection: tuple[FieldError, ...] = ()

    def describe(self) -> str:
        """`element: msg`, with nested entries, for logs and `str()`."""
        head = f"{self.element}: {self.msg}" if self.element else self.msg
        if self.collection:
            head += " [" + "; ".join(item.describe() for item in self.collection) + "]"
        return head


class ErrorContext(TypedDict, total=False):
    """The keyword arguments every error of the tree accepts (see `BlingError.__init__`)."""

    user_message: str | None
    account: str | None
    status: int | None
    api: ApiGeneration | None
    bling_type: str | None
    bling_message: str | None
    detail: str | None
    secrets: Iterable[str | Secret]


def _rebuild(cls: type[BlingError], args: tuple[Any, ...], state: dict[str, Any]) -> BlingError:
    """Unpickle a `BlingError` (their constructors take keyword arguments only)."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class BlingError(Exception):
    """Base of every error the Bling client raises; catch it to handle them all.

    Raised directly only as a last resort, when an answer fits no subclass. The user should do
    what `user_message` says; a program should branch on the subclass (or `code`) and on
    `retriable`.
    """

    code: ClassVar[str] = "bling_error"
    """Stable identifier for the UI's message catalogue; never changes once released."""
    retriable: ClassVar[bool] = False
    """Whether the same request may succeed if retried later (subject to `retry_after`)."""

    user_message: str
    account: str | None
    status: int | None
    api: ApiGeneration | None
    bling_type: str | None
    bling_message: str | None
    detail: str | None

    def __init__(
        self,
        *,
        user_message: str | None = None,
        account: str | None = None,
        status: int | None = None,
        api: ApiGeneration | None = None,
        bling_type: str | None = None,
        bling_message: str | None = None,
        detail: str | None = None,
        secrets: Iterable[str | Secret] = (),
    ) -> None:
        """`user_message` overrides the class's wording; `bling_type`/`bling_message` are what
        Bling said; `detail` is what *we* observed ("the token endpoint sent no refresh token"),
        for the log; `secrets` are values to mask besides the credential patterns.

        Every text argument is redacted (`redact()` with `secrets` and credential patterns)
        before it is stored, so nothing kept here can leak a secret. Subclasses set their own
        attributes through `_clean()` and then call this, which composes the message."""
        self._secrets = tuple(secrets)
        self.account = self._clean(account)
        self.status = status
        self.api = api
        self.bling_type = self._clean(bling_type)
        self.bling_message = self._clean(bling_message)
        self.detail = self._clean(detail)
        self.user_message = self._clean(user_message or self._default_user_message()) or ""
        del self._secrets  # known secret values are not kept on the error
        super().__init__(self._summary())

    def _clean(self, text: str | None) -> str | None:
        if text is None:
            return None
        return redact(text, *getattr(self, "_secrets", ()))

    def _default_user_message(self) -> str:
        return (
            "Bling answered in a way blingsync does not understand. blingsync will try again "
            "later; if this keeps happening, report it (the details are in the log)."
        )

    def _details(self) -> dict[str, object]:
        """Subclass-specific attributes shown in `str()` and `repr()`."""
        return {}

    def _summary(self) -> str:
        context = []
        if self.account is not None:
            context.append(f"account {self.account}")
        if self.api is not None:
            context.append(f"API {self.api.value}")
        if self.status is not None:
            context.append(f"HTTP {self.status}")
        context += [f"{k} {v}" for k, v in self._details().items() if v not in (None, "", ())]
        if self.detail:
            context.append(self.detail)
        said = ": ".join(p for p in (self.bling_type, self.bling_message) if p)
        if said:
            context.append(f"Bling said {said!r}")
        return f"{self.user_message} [{self.code}" + ("; " + "; ".join(context) if context else "") + "]"

    def __repr__(self) -> str:
        fields: dict[str, object] = {
            "code": self.code,
            "account": self.account,
            "status": self.status,
            "api": self.api.value if self.api else None,
            "bling_type": self.bling_type,
            "bling_message": self.bling_message,
            "detail": self.detail,
            **self._details(),
        }
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class CredentialsInvalid(BlingError):
    """Bling rejected the credentials themselves: v2 `cod 3` "API Key invalida" (HTTP 401), v3
    `invalid_client` (bad client ID/secret at the token endpoint) or `INVALID_APIKEY_ERROR`.

    Not retriable: the same credentials will fail again. The user must enter valid ones: for v2
    copy the API user's key again from Bling; for v3 check the app's client ID and secret.
    """

    code = "credentials_invalid"

    def _default_user_message(self) -> str:
        if self.api is ApiGeneration.V2:
            return (
                "Bling rejected the API key. In Bling, open "
                f"{_V2_PERMISSIONS_PATH}, open the API user, copy its API key again and "
                "paste it into blingsync."
            )
        return (
            "Bling rejected the app's client ID or client secret. Check both in the app's "
            "settings in Bling's developer area and enter them again in blingsync."
        )


class ReauthorizationNeeded(BlingError):
    """The brand's authorization is gone and only the brand can give it again: v3
    `invalid_grant` (refresh token revoked, expired, or already rotated away; authorization code
    expired or invalid), a reused authorization code (`VALIDATION_ERROR` "Invalid authorization
    code", which also makes Bling revoke the access), or a 401 that persists after a refresh.

    Not retriable: stop the account (no retry loop) and ask the brand to connect Bling again
    through Bling's login page.
    """

    code = "reauthorization_needed"

    def _default_user_message(self) -> str:
        return (
            "Bling no longer accepts this account's connection (it was revoked or has expired). "
            "Connect the account to Bling again: sign in to Bling through blingsync and approve "
            "access."
        )


class AccessTokenRejected(ReauthorizationNeeded):
    """v3 HTTP 401 on an API call (`invalid_token`: the access token is expired or invalid, or
    another 401 type). `expired` says which, when Bling said.

    For the client this means: refresh the token and replay the request once. It subclasses
    `ReauthorizationNeeded` because that is the truth when it persists after a refresh, so if it
    escapes, the user is told the right thing: connect Bling again.
    """

    code = "access_token_rejected"

    def __init__(self, *, expired: bool = False, **kwargs: Unpack[ErrorContext]) -> None:
        self.expired = expired
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {"expired": self.expired}


class AccountInactive(ReauthorizationNeeded):
    """v3 `UNAUTHORIZED_ERROR` "Empresa inativa": the Bling company behind the token is inactive
    (typically its Bling subscription lapsed).

    Not retriable. A `ReauthorizationNeeded` (the account must be stopped and reconnected), but
    reconnecting alone will not help: the brand must first reactivate its Bling account.
    """

    code = "account_inactive"

    def _default_user_message(self) -> str:
        return (
            "Bling says the company linked to this account is inactive. Reactivate the company "
            "in Bling (check its Bling subscription), then connect the account to Bling again."
        )


class PermissionMissing(BlingError):
    """Bling refused one resource for lack of permission: v3 HTTP 403 `insufficient_scope` (the
    app lacks the scope) or `FORBIDDEN`; v2 HTTP 403 or a message about "permissão" (the API
    user lacks a checkbox under Permissões › Vendas).

    `resource` is ours ("nfe", "nfce", "pedidos_vendas", "logisticas", "empresas",
    "situacoes"); `label` is the name the user sees in Bling (v3: the scope; v2: the checkbox,
    taken from Bling's message after ":" when it names it). Not retriable: the user must grant
    the permission where the message says (for v3, then connect again, since Bling revokes
    authorizations when an app's scopes change).
    """

    code = "permission_missing"

    def __init__(
        self, *, resource: str | None = None, label: str | None = None, **kwargs: Unpack[ErrorContext]
    ) -> None:
        self._secrets = tuple(kwargs.get("secrets", ()))
        self.resource = resource
        self.label = self._clean(label if label is not None else permission_label(resource,
                                                                                   kwargs.get("api")))
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {"resource": self.resource, "label": self.label}

    def _default_user_message(self) -> str:
        what = f"“{self.label}”" if self.label else "the permission this operation needs"
        if self.api is ApiGeneration.V2:
            return (
                f"The Bling API user lacks the permission {what}. In Bling, open "
                f"{_V2_PERMISSIONS_PATH}, edit the API user, tick {what} under Permissões › "
                "Vendas, and save."
            )
        return (
            f"The Bling app is not allowed to use {what}. Add that scope to the app in Bling's "
            "developer area, then connect the account to Bling again."
        )


class NotFound(BlingError):
    """The requested record does not exist in Bling (v3 404 `RESOURCE_NOT_FOUND`; v2 HTTP 404).

    Not retriable. Usually the record was deleted in Bling; the user need only check that it
    still exists. (v2's cod 14 is *not* raised as this: for listings it means "no more pages";
    see `v2_is_end_of_pages`.)
    """

    code = "not_found"

    def __init__(self, *, resource: str | None = None, **kwargs: Unpack[ErrorContext]) -> None:
        self.resource = resource
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {"resource": self.resource}

    def _default_user_message(self) -> str:
        return "Bling could not find this record. It may have been deleted in Bling."


class RateLimited(BlingError):
    """Bling refused the request for going over a limit (v3 429 `TOO_MANY_REQUESTS`, v2 cod 18,
    or a 403 "IP bloqueado"). `period` says which:

    * `"second"` — over 3 requests/s for the account: wait `retry_after` (about a second) and go
      on. Nothing for the user to do.
    * `"day"` — the account's daily quota (120 000, shared by every app using the account) is
      spent: stop the account until `resume_at` (00:00 Brasília time). The user should check
      which other integrations use the account if it recurs.
    * `"ip-block"` — Bling blocked this server's IP for too many requests or errors: stop every
      account on this IP for `retry_after` seconds (10 minutes unless Bling says otherwise).

    Retriable, but only after `retry_after` seconds.
    """

    code = "rate_limited"
    retriable = True

    def __init__(
        self,
        *,
        period: RatePeriod,
        retry_after: float | None = None,
        resume_at: datetime | None = None,
        limit: int | None = None,
        **kwargs: Unpack[ErrorContext],
    ) -> None:
        self.period: RatePeriod = period
        self.retry_after = retry_after
        self.resume_at = resume_at
        self.limit = limit
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {
            "period": self.period,
            "retry_after": None if self.retry_after is None else round(self.retry_after, 1),
            "resume_at": self.resume_at.isoformat() if self.resume_at else None,
            "limit": self.limit,
        }

    def _default_user_message(self) -> str:
        if self.period == "day":
            when = "00:00 Brasília time"
            if self.resume_at is not None:
                local = self.resume_at.astimezone(BRASILIA)
                when = f"{local:%H:%M} Brasília time on {local:%Y-%m-%d}"
            return (
                "This Bling account has used up its daily allowance of API requests, which it "
                f"shares with every other app connected to it. The account is paused until {when} "
                "and resumes on its own. If this happens often, check which other integrations use "
                "this Bling account."
            )
        if self.period == "ip-block":
            minutes = max(1, round((self.retry_after or _DEFAULT_IP_BLOCK_SECONDS) / 60))
            return (
                "Bling has temporarily blocked this server for sending too many requests. "
                f"blingsync pauses for about {minutes} minutes and resumes on its own."
            )
        return (
            "Bling asked blingsync to slow down for a moment (too many requests per second). "
            "blingsync waits and continues on its own; nothing to do."
        )


class BlingUnavailable(BlingError):
    """Bling did not answer usefully: HTTP 5xx (Bling's `SERVER_ERROR` JSON or a proxy's HTML
    502/503/504 page), 408, a timeout or a connection error.

    Retriable with backoff (`retry_after` when Bling sent `Retry-After`). The user need do
    nothing unless it lasts; then check whether Bling itself is working.
    """

    code = "bling_unavailable"
    retriable = True

    def __init__(self, *, retry_after: float | None = None, **kwargs: Unpack[ErrorContext]) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {"retry_after": self.retry_after}

    def _default_user_message(self) -> str:
        return (
            "Bling is not answering right now (it is down, overloaded or unreachable). blingsync "
            "retries on its own; if this lasts more than an hour, check whether Bling itself is "
            "working."
        )


class OutcomeUnknown(BlingUnavailable):
    """A request that creates something (a POST) went out and no usable answer came back (a
    timeout after sending, a dropped connection, a 5xx, a garbled body): Bling may or may not
    have carried it out.

    Not retriable as is: sending it again could create a duplicate. The caller must first look
    whether the thing exists (e.g. read the order's logistics objects) and create it only if
    not. The user need do nothing.
    """

    code = "outcome_unknown"
    retriable = False

    def _default_user_message(self) -> str:
        return (
            "Bling did not confirm a change blingsync sent, and may or may not have made it. "
            "blingsync checks before trying again, so nothing is duplicated; nothing to do."
        )


class ApiDiscontinued(BlingError):
    """Bling answered that API v2 is discontinued ("A API v2 foi descontinuada"), whatever the
    code or status (the simulator sends HTTP 410, cod 99; Bling's real code is unknown).

    Not retriable. The user must connect the account through Bling's login (OAuth, API v3)
    instead of an API key.
    """

    code = "api_discontinued"

    def _default_user_message(self) -> str:
        return (
            "Bling has switched off API v2, which connections made with an API key use. Connect "
            "this account again through Bling's login (the “Connect with Bling” option) instead "
            "of an API key."
        )


class NeedsApiV3(BlingError):
    """What was asked exists only in API v3, and the account is connected with a v2 API key:
    logistics objects (tracking write-back) and the company's basic data. Raised by the client
    without a request.

    Not retriable. The user must connect the account through Bling's login (OAuth, API v3) to
    use the feature; imports keep working with the key meanwhile.
    """

    code = "needs_oauth"

    def __init__(self, *, feature: str, **kwargs: Unpack[ErrorContext]) -> None:
        self.feature = feature
        kwargs.setdefault("api", ApiGeneration.V2)
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {"feature": self.feature}

    def _default_user_message(self) -> str:
        return (
            f"{self.feature} needs Bling's API v3, and this account is connected with an API key "
            "(API v2). Connect it again through Bling's login (the “Connect with Bling” option) "
            "to use it; importing orders keeps working with the key meanwhile."
        )


class InvalidResponse(BlingError):
    """Bling's answer could not be read: not JSON where JSON was due, JSON cut short, or a shape
    we do not know (no `data`/`error`/`retorno` where expected). `excerpt` is the start of the
    body, redacted, for the log.

    Retriable (boundedly): the usual cause is a body truncated in transit, which a retry fixes;
    a persistent unknown shape exhausts the attempts and surfaces. The user need do nothing
    unless it persists; then report it.
    """

    code = "invalid_response"
    retriable = True

    def __init__(self, *, excerpt: str = "", **kwargs: Unpack[ErrorContext]) -> None:
        self._secrets = tuple(kwargs.get("secrets", ()))
        self.excerpt = self._clean(excerpt) or ""
        super().__init__(**kwargs)

    def _details(self) -> dict[str, object]:
        return {"excerpt": self.excerpt}


class InvalidRequest(BlingError):
    """Bling refused our request as wrong: v3 400 `VALIDATION_ERROR`, `BAD_REQUEST`,
    `MISSING_REQUIRED_FIELD_ERROR`, `invalid_request`, 405, …; v2 validation codes (e.g. cod 94,
    or the simulator's cod 10). `fields` carries Bling's per-field detail.

    A bug on blingsync's side, not the user's: not retriable (the same request fails again).
    The user should report it; the details are in the log.
    """

    code = "invalid_request"

    def __init__(self, *, fields: Sequence[FieldError] = (), **kwargs: Unpack[ErrorContext]) -> None:
        self._secrets = tuple(kwargs.get("secrets", ()))
        self.fields: tuple[FieldError, ...] = tuple(self._clean_field(f) for f in fields)
        super().__init__(**kwargs)

    def _clean_field(self, field: FieldError) -> FieldError:
        return FieldError(
            msg=self._clean(field.msg) or "",
            code=field.code,
            element=field.element,
            namespace=field.namespace,
            index=field.index,
            collection=tuple(self._clean_field(f) for f in field.collection),
        )

    def _details(self) -> dict[str, object]:
        return {"fields": "; ".join(f.describe() for f in self.fields)}

    def _default_user_message(self) -> str:
        return (
            "Bling refused a request from blingsync as invalid. This is a bug in blingsync, not "
            "something you did; please report it (the details are in the log)."
        )


# --- helpers shared by the classifiers --------------------------------------------------------


class _NotJson:
    """Marker for a body that is not JSON (distinct from a JSON `null`)."""


_NOT_JSON: Final = _NotJson()


def _parse_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header, whether `headers` is case-insensitive (httpx) or a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, found in headers.items():
        if key.lower() == name:
            return found
    return None


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110).
    None when absent or unreadable; never negative. Bling documents no `Retry-After` (reference
    Q6), but a proxy in front of it may send one, and it is honoured when present."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - _aware(now)).total_seconds())


def _next_brasilia_midnight(now: datetime) -> datetime:
    return next_brasilia_midnight(now.timestamp())


def _fold(text: str) -> str:
    """Lower-case without accents, for matching Bling's Portuguese ("permissão" ~ "permissao")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _excerpt(body: bytes | str, secrets: Iterable[str | Secret]) -> str:
    """The start of a body for a log line: redacted *before* cutting (a secret cut in half would
    escape the patterns), whitespace collapsed, at most `_EXCERPT_CHARS` characters."""
    head = body[:_EXCERPT_SCAN]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    text = " ".join(redact(text, *secrets).split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _unreadable_message(body: bytes | str) -> str | None:
    """What a non-JSON error page says: its HTML `<title>` ("502 Bad Gateway"), else None."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    found = _TITLE.search(text)
    return " ".join(found.group(1).split()) if found else None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _is_server_side(status: int) -> bool:
    # A 408 comes from a proxy timing out: Bling unavailable, worth trying later. Whether the
    # client retries at once is retry.should_retry's decision alone (it does not, for 408).
    return status >= 500 or status == 408


# --- v3 ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _V3Error:
    type: str
    message: str | None
    description: str | None
    fields: tuple[FieldError, ...]
    limit: int | None
    period: str | None

    @property
    def said(self) -> str | None:
        """Bling's words, without repeating the OAuth types that it also puts in `message`."""
        parts = [p for p in (self.message, self.description) if p and p != self.type]
        return " - ".join(dict.fromkeys(parts)) or None

    @property
    def folded(self) -> str:
        return _fold(" ".join(p for p in (self.message, self.description) if p))


def _v3_fields(raw: Any) -> tuple[FieldError, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append(FieldError(
                msg=_str(item.get("msg")) or "",
                code=_int(item.get("code")),
                element=_str(item.get("element")),
                namespace=_str(item.get("namespace")),
                index=_int(item.get("index")),
                collection=_v3_fields(item.get("collection")),
            ))
        elif isinstance(item, str):
            out.append(FieldError(msg=item))
    return tuple(out)


def _v3_error(data: Any) -> _V3Error | None:
    """Bling's `{"error":{type,message,description,fields?,limit?,period?}}`, or the plain OAuth
    form `{"error":"invalid_grant","error_description":…}` (RFC 6749; not seen from Bling, but
    cheap to accept). None for any other shape."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return _V3Error(
            type=_str(error.get("type")) or "",
            message=_str(error.get("message")),
            description=_str(error.get("description")),
            fields=_v3_fields(error.get("fields")),
            limit=_int(error.get("limit")),
            period=_str(error.get("period")),
        )
    if isinstance(error, str):
        return _V3Error(error, error, _str(data.get("error_description")), (), None, None)
    return None


_IP_WORD = re.compile(r"\bip\b")
_SECONDS_IN_TEXT = re.compile(r"(\d+)\s*(segundo|minuto|second|minute)", re.IGNORECASE)


def _seconds_in(text: str) -> float | None:
    found = _SECONDS_IN_TEXT.search(text)
    if found is None:
        return None
    unit = 60.0 if found.group(2).lower().startswith("min") else 1.0
    return float(found.group(1)) * unit


@dataclass(frozen=True, slots=True)
class _Answer:
    """What both classifiers know about an answer before reading Bling's words."""

    status: int
    body: bytes
    resource: str | None
    now: datetime
    header_wait: float | None
    secrets: tuple[str | Secret, ...]
    api: ApiGeneration

    def context(self, account: str | None) -> ErrorContext:
        return ErrorContext(account=account, status=self.status, api=self.api, secrets=self.secrets)

    def excerpt(self) -> str:
        return _excerpt(self.body, self.secrets)


def _answer(
    status: int, body: bytes, headers: Mapping[str, str], resource: str | None,
    secrets: Iterable[str | Secret], now: datetime | None, api: ApiGeneration,
) -> _Answer:
    moment = _aware(now)
    wait = parse_retry_after(_header(headers, "retry-after"), now=moment)
    return _Answer(status, body, resource, moment, wait, tuple(secrets), api)


def _rate_limited(
    period: RatePeriod,
    answer: _Answer,
    context: ErrorContext,
    *,
    text_wait: float | None = None,
    limit: int | None = None,
) -> RateLimited:
    """The three limits with their waits. Decisions where Bling is silent: the per-second wait
    is 1 s (the window); the daily one lasts until Brasília midnight; an IP block lasts what
    Bling's text says, else `Retry-After`, else 10 minutes. `Retry-After` wins for the others."""
    now, header_wait = answer.now, answer.header_wait
    resume_at = None
    if period == "day":
        resume_at = (now + timedelta(seconds=header_wait) if header_wait is not None
                     else _next_brasilia_midnight(now))
        wait: float = (resume_at - now).total_seconds()
    elif period == "ip-block":
        wait = text_wait if text_wait is not None else (
            header_wait if header_wait is not None else _DEFAULT_IP_BLOCK_SECONDS)
    else:
        wait = header_wait if header_wait is not None else 1.0
    return RateLimited(period=period, retry_after=wait, resume_at=resume_at, limit=limit, **context)


def _is_ip_block(folded: str) -> bool:
    """Bling's IP-block answer is undocumented (reference Q5); the simulator says "IP bloqueado"."""
    return "bloquead" in folded and _IP_WORD.search(folded) is not None


def _without_body(answer: _Answer, context: ErrorContext, detail: str) -> BlingError:
    """An answer whose body says nothing we can read: only a 5xx/408 or 429 status speaks."""
    if _is_server_side(answer.status):
        return BlingUnavailable(retry_after=answer.header_wait, **context)
    if answer.status == 429:
        return _rate_limited("second", answer, context)
    context["detail"] = detail
    return InvalidResponse(excerpt=answer.excerpt(), **context)


def _from_v3_error(error: _V3Error, answer: _Answer, context: ErrorContext) -> BlingError:
    """Bling's v3 envelope, decided in this order: IP blocks and limits first (they stop
    traffic), then credentials, authorization, permission, not found, server side, and finally
    "our request was wrong"."""
    status = answer.status
    context["bling_type"] = error.type or None
    context["bling_message"] = error.said
    kind, lower, text = error.type.upper(), error.type.lower(), error.folded

    if _is_ip_block(text) and status in (403, 429):
        return _rate_limited("ip-block", answer, context, text_wait=_seconds_in(text))
    if kind == "TOO_MANY_REQUESTS" or status == 429:
        daily = error.period == "day" or (error.period is None and "por dia" in text)
        return _rate_limited("day" if daily else "second", answer, context, limit=error.limit)
    if lower == "invalid_client" or kind == "INVALID_APIKEY_ERROR":
        return CredentialsInvalid(**context)
    if lower == "invalid_grant" or (
        kind == "VALIDATION_ERROR" and ("authorization code" in text or "already been used" in text)
    ):
        return ReauthorizationNeeded(**context)
    if kind == "UNAUTHORIZED_ERROR" and "inativ" in text:
        return AccountInactive(**context)
    if lower == "invalid_token" or status == 401:
        return AccessTokenRejected(expired="expired" in text, **context)
    if lower == "insufficient_scope" or kind == "FORBIDDEN" or status == 403:
        return PermissionMissing(resource=answer.resource, **context)
    if kind == "RESOURCE_NOT_FOUND" or status == 404:
        return NotFound(resource=answer.resource, **context)
    if _is_server_side(status):
        return BlingUnavailable(retry_after=answer.header_wait, **context)
    if 400 <= status < 500:
        return InvalidRequest(fields=error.fields, **context)
    context["detail"] = f"error envelope on HTTP {status}"
    return InvalidResponse(excerpt=answer.excerpt(), **context)


def from_v3_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    resource: str | None,
    account: str | None,
    secrets: Iterable[str | Secret] = (),
    now: datetime | None = None,
) -> BlingError:
    """The error for a v3 answer the client cannot use (any status; usually ≥ 400).

    `resource` names what was asked for (see `PermissionMissing`); `secrets` are values to mask
    besides the credential patterns; `now` (aware; default: the clock) dates `Retry-After`
    HTTP-dates and the daily-limit resumption. A body that is not JSON or has no `error`
    envelope gives `BlingUnavailable` on 5xx/408, `RateLimited` on 429, else `InvalidResponse`.
    Never raises.
    """
    answer = _answer(status, body, headers, resource, secrets, now, ApiGeneration.V3)
    context = answer.context(account)
    data = _parse_json(body)
    if isinstance(data, _NotJson):
        if _is_server_side(status):
            context["bling_message"] = _unreadable_message(body)
        return _without_body(answer, context, "not JSON")
    error = _v3_error(data)
    if error is None:
        return _without_body(answer, context, "unexpected shape")
    return _from_v3_error(error, answer, context)


# --- v2 ---------------------------------------------------------------------------------------


class _BadShape(Exception):
    """`erros` is present but in no shape Bling is known to use."""


@dataclass(frozen=True, slots=True)
class _V2Erro:
    cod: int | None
    msg: str

    @property
    def folded(self) -> str:
        return _fold(self.msg)


_V2_NOT_FOUND_COD: Final = 14
_V2_NOT_FOUND_TEXT: Final = "a informacao desejada nao foi encontrada"


def _v2_one(item: Any) -> list[_V2Erro]:
    """One element of `erros`: `{"erro":{cod,msg}}`, `{cod,msg}`, `{"94":"msg"}` or `"msg"`."""
    if isinstance(item, str):
        return [_V2Erro(None, item)]
    if not isinstance(item, dict):
        raise _BadShape
    if "erro" in item:
        inner = item["erro"]
        if isinstance(inner, list):
            return [e for sub in inner for e in _v2_one({"erro": sub} if isinstance(sub, dict) else sub)]
        if isinstance(inner, str):
            return [_V2Erro(None, inner)]
        if not isinstance(inner, dict):
            raise _BadShape
        return [_V2Erro(_int(inner.get("cod")), _str(inner.get("msg")) or "")]
    if "cod" in item or "msg" in item:
        return [_V2Erro(_int(item.get("cod")), _str(item.get("msg")) or "")]
    out = []
    for key, value in item.items():  # the "shortened" map form {"94": "msg"}
        if isinstance(value, dict | list):
            raise _BadShape
        out.append(_V2Erro(_int(key), _str(value) or ""))
    return out


def _v2_errors(data: Any) -> list[_V2Erro] | None:
    """Every error of a v2 body in one list, whichever of the observed shapes `erros` takes
    (array of `{"erro":…}`, one `{"erro":…}` object, a `{"cod": "msg"}` map, a list of strings).
    None when the body has no `erros`; `_BadShape` when it has one we cannot read."""
    if not isinstance(data, dict):
        raise _BadShape
    retorno = data.get("retorno", data)
    if not isinstance(retorno, dict):
        raise _BadShape
    if "erros" not in retorno:
        return None
    erros = retorno["erros"]
    if erros is None or erros == "":
        return []
    if isinstance(erros, list):
        return [e for item in erros for e in _v2_one(item)]
    return _v2_one(erros)


def _is_v2_not_found(erro: _V2Erro) -> bool:
    return erro.cod == _V2_NOT_FOUND_COD or (erro.cod is None and _V2_NOT_FOUND_TEXT in erro.folded)


def v2_is_end_of_pages(body: bytes | str | Mapping[str, Any]) -> bool:
    """Whether a v2 body is Bling's cod 14 "A informacao desejada nao foi encontrada" (and
    nothing else), in any of the `erros` shapes: for a listing, the end of the pages; for a
    single record, "not found". Never raises; False for anything else."""
    data = body if isinstance(body, Mapping) else _parse_json(body)
    try:
        errors = _v2_errors(dict(data) if isinstance(data, Mapping) else data)
    except _BadShape:
        return False
    return bool(errors) and all(_is_v2_not_found(e) for e in errors or ())


_V2_REFUSAL_PHRASES: Final = ("permiss", "nao autorizad", "sem autorizac", "acesso negado",
                               "sem acesso")
"""Words of a v2 refusal for lack of permission (folded: no accents, lower case). Bling's real
wording is not captured; these cover the ways Portuguese says it."""


def _v2_label(erro: _V2Erro) -> str | None:
    """The permission Bling's message names after ":" ("…sem permissão…: Notas Fiscais")."""
    _, colon, after = erro.msg.partition(":")
    label = after.strip().rstrip(".").strip()
    return label if colon and label else None


def from_v2_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    resource: str | None,
    account: str | None,
    secrets: Iterable[str | Secret] = (),
    now: datetime | None = None,
) -> BlingError | None:
    """The error in a v2 answer, or None when there is none to raise: a 2xx `retorno` without
    `erros`, or cod 14 (end of pages / not found — the caller decides which; see
    `v2_is_end_of_pages`).

    v2 puts errors in the body whatever the status (often 200), so the body decides first:
    "descontinuada" → `ApiDiscontinued` (any cod or status), cod 3 → `CredentialsInvalid`,
    cod 18 → `RateLimited` (per day when the text says "por dia"), "IP bloqueado" →
    `RateLimited("ip-block")`, HTTP 403 or a message about "permissão" → `PermissionMissing`;
    other codes → `InvalidRequest` (or by status: 5xx, 404, 401, 429). A v3 `error` envelope
    (what sits in front of both APIs, e.g. the IP guard, answers in it) is read as v3 would.
    Bodies that are not JSON or not a `retorno` → `BlingUnavailable` on 5xx, `RateLimited` on
    429, else `InvalidResponse`. Never raises.
    """
    answer = _answer(status, body, headers, resource, secrets, now, ApiGeneration.V2)
    context = answer.context(account)
    data = _parse_json(body)
    if isinstance(data, _NotJson):
        if _is_server_side(status):
            context["bling_message"] = _unreadable_message(body)
        return _without_body(answer, context, "not JSON")
    envelope = _v3_error(data)
    if envelope is not None and not (isinstance(data, dict) and "retorno" in data):
        return _from_v3_error(envelope, answer, context)
    try:
        errors = _v2_errors(data)
    except _BadShape:
        return _without_body(answer, context, "unexpected shape")
    if not errors:
        if 200 <= status < 300:
            if isinstance(data, dict) and isinstance(data.get("retorno"), dict):
                return None
            context["detail"] = "a 2xx answer without retorno"
            return InvalidResponse(excerpt=answer.excerpt(), **context)
        return _v2_by_status(answer, context)
    return _from_v2_errors(errors, answer, context)


def _said(context: ErrorContext, *errors: _V2Erro) -> ErrorContext:
    """`context` with Bling's words: the first error's cod as `bling_type`, all messages."""
    said = context.copy()
    said["bling_type"] = None if errors[0].cod is None else f"cod {errors[0].cod}"
    said["bling_message"] = " | ".join(e.msg for e in errors if e.msg) or None
    return said


def _from_v2_errors(errors: list[_V2Erro], answer: _Answer, context: ErrorContext) -> BlingError | None:
    """Most specific first: one discontinued/credentials/limit/permission error among several
    decides, whatever its position; cod 14 alone is no error."""
    status = answer.status
    for erro in errors:
        if "descontinuad" in erro.folded:
            return ApiDiscontinued(**_said(context, erro))
    for erro in errors:
        if erro.cod == 3 or "api key invalida" in erro.folded:
            return CredentialsInvalid(**_said(context, erro))
    for erro in errors:
        if _is_ip_block(erro.folded):
            return _rate_limited("ip-block", answer, _said(context, erro),
                                 text_wait=_seconds_in(erro.folded))
    for erro in errors:
        if erro.cod == 18 or "limite de requisic" in erro.folded:
            period: RatePeriod = "day" if "por dia" in erro.folded else "second"
            return _rate_limited(period, answer, _said(context, erro))
    for erro in errors:
        if any(phrase in erro.folded for phrase in _V2_REFUSAL_PHRASES):
            return PermissionMissing(resource=answer.resource, label=_v2_label(erro),
                                     **_said(context, erro))
    said = _said(context, *errors)
    if status == 403:
        return PermissionMissing(resource=answer.resource, **said)
    if all(_is_v2_not_found(e) for e in errors):
        return None
    if status in (401, 404, 429) or _is_server_side(status):
        return _v2_by_status(answer, said)
    return InvalidRequest(fields=[FieldError(msg=e.msg, code=e.cod) for e in errors], **said)


def _v2_by_status(answer: _Answer, context: ErrorContext) -> BlingError:
    """A non-2xx v2 answer whose body names no known error: go by the status alone."""
    if answer.status == 401:
        return CredentialsInvalid(**context)
    if answer.status == 403:
        return PermissionMissing(resource=answer.resource, **context)
    if answer.status == 404:
        return NotFound(resource=answer.resource, **context)
    return _without_body(answer, context, f"HTTP {answer.status} without erros")


# --- transport --------------------------------------------------------------------------------


def from_transport_error(
    exc: BaseException,
    *,
    account: str | None,
    api: ApiGeneration | None = None,
    secrets: Iterable[str | Secret] = (),
) -> BlingUnavailable:
    """`BlingUnavailable` for a request that got no answer (httpx timeout, connection error, …).

    Only the exception's class name and redacted text are kept. Raise the result `from None`:
    a chained httpx exception could print the request URL, with its `apikey`, in a traceback.
    """
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return BlingUnavailable(account=account, api=api, detail=message, secrets=secrets)
