"""Bling's official OpenAPI document turned into a contract checker for the simulator's answers.

Why this exists: blingsync is developed and tested against the simulator, so any shape the
simulator invents that Bling does not send (or any field it sends in the wrong type) would be a
bug shipped to production unseen. The official document is the only primary source for shapes;
this module judges each answer by it and reports every deviation with the operation, the status
and the JSON pointer of the offending value, so whoever owns the simulator can fix it exactly.

The document has known mistakes (shared/reference/bling-api.md §14). They are patched here, one
function per patch, each saying why, so that the checker judges types and shapes and not typos.
The document sets `additionalProperties` nowhere, so schema validation alone would accept any
invented field: `undeclared()` walks each body with its resolved schema and reports every key the
schema does not declare.
"""

from __future__ import annotations

import copy
import json
import re
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from jsonschema import FormatChecker, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPEC_FILE = Path(__file__).resolve().parents[1] / "data" / "bling-openapi-v3.json"
DOC_URI = "urn:bling:openapi-v3"
API_PREFIX = "/Api/v3"

GENERIC_ERROR_STATUSES = frozenset({400, 401, 403, 404, 429, 500})
"""Statuses Bling can answer on any v3 operation with its error envelope (bling-api.md §0.6,
§3.5), whether or not the operation lists them: the document lists 401 and 429 nowhere and 403
on four product operations only. Such an answer is checked against `ErrorResponse`."""

OAUTH_ERROR_TYPES = (
    # bling-api.md §3.2 [V S3]: the OAuth layer reuses the v3 envelope with these types,
    # which the `Error.type` enum of the document does not list.
    "invalid_token",
    "insufficient_scope",
    "invalid_client",
    "invalid_grant",
    "invalid_request",
    "UNAUTHORIZED_ERROR",
)

ALLOWED_UNDECLARED: dict[tuple[int, str], str] = {
    # (status, JSON pointer) -> why a key the schema does not declare is accepted there.
    (429, "/error/limit"): "Bling's limits page documents it in the 429 body (bling-api.md §3.4, "
    "[V S3,S5]); the document's Error schema does not declare it",
    (429, "/error/period"): "Bling's limits page documents it in the 429 body (bling-api.md §3.4, "
    "[V S3,S5]); the document's Error schema does not declare it",
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_INT64 = (-(2**63), 2**63 - 1)


# --- formats -------------------------------------------------------------------------------


def _is_date(value: object) -> bool:
    """`YYYY-MM-DD`, a real calendar date."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return not isinstance(value, str)
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_bling_datetime(value: object) -> bool:
    """Bling's `YYYY-MM-DD HH:MM:SS` (Brasília time, no offset; bling-api.md §3.3). The
    document says `datetime` (not a JSON Schema format) on NF-e fields and `date-time` on
    `rastreamento.ultimaAlteracao`, but its examples and Bling's answers use this form for
    both, never RFC 3339; so both names are checked against it."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return not isinstance(value, str)
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or _INT64[0] <= value <= _INT64[1]


FORMATS = FormatChecker(formats=())
FORMATS.checks("date")(_is_date)
FORMATS.checks("datetime")(_is_bling_datetime)
FORMATS.checks("date-time")(_is_bling_datetime)
FORMATS.checks("int64")(_is_int64)
# `float` (245 uses) only says how the number is stored; any JSON number passes.


# --- the validator -------------------------------------------------------------------------


def _response_required(
    validator: Any, required: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """`required` as it applies to a response: a writeOnly property need not be sent (OpenAPI
    3.0: "SHALL NOT be sent as part of the response"), but a readOnly one must."""
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    for name in required:
        if name not in instance and not properties.get(name, {}).get("writeOnly", False):
            yield ValidationError(f"{name!r} is a required property")


def _request_required(
    validator: Any, required: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """`required` as it applies to a request body: a readOnly property is never sent."""
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    for name in required:
        if name not in instance and not properties.get(name, {}).get("readOnly", False):
            yield ValidationError(f"{name!r} is a required property")


ResponseValidator: type[Validator] = extend(OAS30Validator, validators={"required": _response_required})
"""OAS 3.0 validation for answers. readOnly/writeOnly stay annotations (OAS30Validator does not
enforce them): responses legitimately carry readOnly fields, and Bling sends some writeOnly ones
too (`contato.tipoPessoa`, `contato.contribuinte` in NF-e answers), so neither is rejected."""

RequestValidator: type[Validator] = extend(OAS30Validator, validators={"required": _request_required})
"""OAS 3.0 validation for the test's own request bodies."""


# --- violations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One way an answer breaks the contract."""

    operation: str  # "GET /nfe/{idNotaFiscal}"
    status: int
    pointer: str  # JSON pointer into the body; "" is the body itself
    keyword: str  # "type", "format", "enum", "required", "undeclared", "status", ...
    message: str
    request: str  # the concrete request, e.g. "GET /Api/v3/nfe/123"

    def __str__(self) -> str:
        return (
            f"{self.operation} -> {self.status} at {self.pointer or '/'} [{self.keyword}]: "
            f"{self.message}  (request: {self.request})"
        )


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(path: Iterable[object]) -> str:
    return "".join(f"/{_escape(p)}" for p in path)


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(violations: Iterable[Violation]) -> list[str]:
    """One line per distinct violation: array indices folded into `*`, with a count and the
    first example. Lists repeat the same mistake on every item; the owner needs it once."""
    groups: dict[tuple[str, int, str, str], list[Violation]] = {}
    for v in violations:
        key = (v.operation, v.status, re.sub(r"/\d+(?=/|$)", "/*", v.pointer), v.keyword)
        groups.setdefault(key, []).append(v)
    lines = []
    for (operation, status, pointer, keyword), found in sorted(groups.items()):
        first = found[0]
        lines.append(
            f"{operation} -> {status} at {pointer or '/'} [{keyword}] x{len(found)}: "
            f"{first.message}  (e.g. {first.request}, {first.pointer or '/'})"
        )
    return lines


# --- the document's errata -----------------------------------------------------------------


class Document:
    """A JSON document with `$ref` resolution by JSON pointer."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.content = content

    def at(self, pointer: str) -> Any:
        node: Any = self.content
        for raw in pointer.lstrip("#").split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node

    def resolve(self, schema: Any) -> Any:
        seen: set[str] = set()
        while isinstance(schema, dict) and "$ref" in schema:
            ref = str(schema["$ref"])
            if ref in seen:
                raise ValueError(f"$ref cycle at {ref}")
            seen.add(ref)
            schema = self.at(ref.removeprefix(DOC_URI))
        return schema

    def own_properties(self, schema: Any) -> set[str]:
        """The properties a schema declares itself or through its allOf members."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return set()
        names = set(schema.get("properties", {}))
        for member in schema.get("allOf", []):
            names |= self.own_properties(member)
        return names


def strip_phantom_required(doc: Document) -> dict[str, list[str]]:
    """Errata §14: many `required` lists name properties their schema does not have
    (copy-paste slips such as `data`/`valor` on NotasFiscaisDadosGetDTO). No real answer can
    honour them, so they are removed; the names removed are returned by schema location."""
    stripped: dict[str, list[str]] = {}

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            required = node.get("required")
            if isinstance(required, list):
                own = doc.own_properties(node)
                phantom = [name for name in required if name not in own]
                if phantom:
                    node["required"] = [name for name in required if name in own]
                    stripped["#" + pointer] = phantom
            for key, value in node.items():
                walk(value, f"{pointer}/{_escape(key)}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")

    walk(doc.content, "")
    return stripped


def _patch_error_response(doc: Document) -> str:
    schema = doc.at("#/components/schemas/ErrorResponse")
    schema["required"] = ["error"]
    return (
        "ErrorResponse.required ['error.type', 'message', 'description'] names no property of "
        "ErrorResponse (they belong to Error, which requires them itself); read as its evident "
        "intent, required ['error']"
    )


def _patch_error_types(doc: Document) -> str:
    enum = doc.at("#/components/schemas/Error/properties/type/enum")
    enum.extend(t for t in OAUTH_ERROR_TYPES if t not in enum)
    return f"Error.type enum extended with the OAuth-layer types of bling-api.md §3.2: {OAUTH_ERROR_TYPES}"


def _operations(doc: Document) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, item in doc.content["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield template, method, operation


def _patch_chave_query(doc: Document) -> str:
    patched = []
    for template, method, operation in _operations(doc):
        for parameter in operation.get("parameters", []):
            if (
                parameter.get("name") == "chaveAcesso"
                and parameter.get("in") == "query"
                and parameter.get("schema", {}).get("type") == "integer"
            ):
                parameter["schema"] = {"type": "string", "pattern": r"^\d{44}$"}
                patched.append(f"{method.upper()} {template}")
    return (
        f"query parameter chaveAcesso of {patched} typed integer: a 44-digit key fits no integer "
        "type (§14); checked as a string of 44 digits, like the path parameter of /nfe/documento"
    )


def _patch_nfe_emission_dates(doc: Document) -> str:
    for parameter in doc.content["paths"]["/nfe"]["get"]["parameters"]:
        if parameter.get("name") in {"dataEmissaoInicial", "dataEmissaoFinal"}:
            parameter["schema"]["format"] = "datetime"
    return (
        "GET /nfe dataEmissaoInicial/Final typed format date while their examples (and /nfce's "
        "same parameters) are datetimes 'YYYY-MM-DD HH:MM:SS' (§14, §4.2): checked as datetimes"
    )


PATCHES: tuple[Callable[[Document], str], ...] = (
    _patch_error_response,
    _patch_error_types,
    _patch_chave_query,
    _patch_nfe_emission_dates,
)


# --- the contract --------------------------------------------------------------------------


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    body = "".join(
        f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
    )
    return re.compile(body)


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    path_params: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.template}"


class Contract:
    """The patched document plus the checks: answers (schema + undeclared keys) and requests
    (the test's own calls must use documented parameters, so the suite proves the simulator
    serves the documented interface and not an imagined one)."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.doc = Document(copy.deepcopy(content))
        self.stripped_required = strip_phantom_required(self.doc)
        self.patches = [patch(self.doc) for patch in PATCHES]
        self._registry: Registry[Any] = Registry().with_resource(
            DOC_URI, DRAFT4.create_resource(self.doc.content)
        )
        self._templates = [(t, _template_regex(t)) for t in self.doc.content["paths"]]
        self._validators: dict[str, Validator] = {}
        self.fallbacks: set[tuple[str, int]] = set()
        self.checked: set[tuple[str, int]] = set()

    @classmethod
    def load(cls, path: Path = SPEC_FILE) -> Contract:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    # lookups

    def operation(self, method: str, path: str) -> Operation | None:
        """The documented operation a concrete path hits: among the templates that match and
        have the method, the one with the most literal text (`/situacoes/modulos` beats
        `/situacoes/{idSituacao}`)."""
        method = method.lower()
        best: tuple[int, Operation] | None = None
        for template, regex in self._templates:
            match = regex.fullmatch(path)
            item = self.doc.content["paths"][template]
            if match is None or method not in item:
                continue
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            if best is None or literal > best[0]:
                best = (literal, Operation(template, method, item[method], match.groupdict()))
        return best[1] if best else None

    def validator(self, pointer: str) -> Validator:
        if pointer not in self._validators:
            self._validators[pointer] = ResponseValidator(
                {"$ref": f"{DOC_URI}#{pointer.lstrip('#')}"},
                registry=self._registry,
                format_checker=FORMATS,
            )
        return self._validators[pointer]

    # answers

    def check_response(self, response: httpx.Response) -> list[Violation]:
        request = response.request
        shown = f"{request.method} {request.url.raw_path.decode()}"
        path = request.url.path.removeprefix(API_PREFIX)
        op = self.operation(request.method, path)
        status = response.status_code
        if op is None:
            return [Violation(f"{request.method} {path}", status, "", "operation",
                              "no operation of the document matches this request", shown)]
        self.checked.add((op.label, status))

        def violation(pointer: str, keyword: str, message: str) -> Violation:
            return Violation(op.label, status, pointer, keyword, message, shown)

        documented = op.spec.get("responses", {})
        answer = documented.get(str(status))
        if answer is None and status not in GENERIC_ERROR_STATUSES:
            return [violation("", "status", f"status {status} is not documented for this "
                              f"operation (documented: {sorted(documented)})")]
        if answer is not None:
            answer = self.doc.resolve(answer)
            content = answer.get("content")
            if not content:  # documented without a body, e.g. 204
                return [] if not response.content else [
                    violation("", "body", f"documented without a body, got {response.content[:80]!r}")
                ]
            schema_pointer = (
                f"#/paths/{_escape(op.template)}/{op.method}/responses/{status}/content/"
                "application~1json/schema"
            )
            if "application/json" not in content:
                return [violation("", "content", f"no application/json body documented: {sorted(content)}")]
        else:
            self.fallbacks.add((op.label, status))
            schema_pointer = "#/components/schemas/ErrorResponse"
        media = response.headers.get("content-type", "")
        if not media.startswith("application/json"):
            return [violation("", "content-type", f"expected application/json, got {media!r}")]
        try:
            body = response.json()
        except ValueError as exc:
            return [violation("", "json", f"body is not JSON: {exc}")]
        return self.check_body(body, schema_pointer, operation=op.label, status=status, request=shown)

    def check_body(
        self, body: Any, schema_pointer: str, *, operation: str, status: int, request: str
    ) -> list[Violation]:
        """Schema validation plus the undeclared-key walk of one body."""
        found = [
            Violation(operation, status, pointer_of(error.absolute_path), str(error.validator),
                      _short(error.message), request)
            for error in self.validator(schema_pointer).iter_errors(body)
        ]
        schema = self.doc.at(schema_pointer)
        found += [
            Violation(operation, status, pointer, "undeclared",
                      "property not declared by the schema", request)
            for pointer in self.undeclared([schema], body, "")
            if (status, pointer) not in ALLOWED_UNDECLARED
        ]
        return found

    def _expand(self, schema: Any) -> list[dict[str, Any]]:
        """A schema and everything it is made of (refs followed; allOf, anyOf and oneOf
        members flattened): the union of what they declare is what the instance may carry."""
        schema = self.doc.resolve(schema)
        if not isinstance(schema, dict):
            return []
        out = [schema]
        for keyword in ("allOf", "anyOf", "oneOf"):
            for member in schema.get(keyword, []):
                out += self._expand(member)
        return out

    def undeclared(self, schemas: list[Any], instance: Any, pointer: str) -> Iterator[str]:
        """JSON pointers of the keys in `instance` that none of `schemas` declares. A schema
        without `properties` is free-form and declares anything."""
        parts = [part for schema in schemas for part in self._expand(schema)]
        if isinstance(instance, dict):
            declared: dict[str, list[Any]] = {}
            closed = False
            for part in parts:
                if "properties" in part:
                    closed = True
                    for name, sub in part["properties"].items():
                        declared.setdefault(name, []).append(sub)
            for key, value in instance.items():
                here = f"{pointer}/{_escape(key)}"
                if key in declared:
                    yield from self.undeclared(declared[key], value, here)
                elif closed:
                    yield here
        elif isinstance(instance, list):
            items = [part["items"] for part in parts if "items" in part]
            if items:
                for index, value in enumerate(instance):
                    yield from self.undeclared(items, value, f"{pointer}/{index}")

    # requests

    def check_request(self, request: httpx.Request) -> list[Violation]:
        """Each path and query parameter of the test's request must be documented for the
        operation and fit its schema (after the errata patches)."""
        shown = f"{request.method} {request.url.raw_path.decode()}"
        path = request.url.path.removeprefix(API_PREFIX)
        op = self.operation(request.method, path)
        if op is None:
            return [Violation(f"{request.method} {path}", 0, "", "operation",
                              "no operation of the document matches this request", shown)]
        declared: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in op.spec.get("parameters", []):
            parameter = self.doc.resolve(raw)
            declared[(parameter["in"], parameter["name"])] = parameter
        found: list[Violation] = []

        def check(where: str, name: str, values: list[str]) -> None:
            parameter = declared.get((where, name))
            label = f"{where} parameter {name}"
            if parameter is None:
                found.append(Violation(op.label, 0, "", "request", f"{label} is not documented", shown))
                return
            schema = parameter.get("schema", {})
            try:
                value: Any = (
                    [_coerce(schema.get("items", {}), v) for v in values]
                    if schema.get("type") == "array"
                    else _coerce(schema, values[-1])
                )
            except ValueError as exc:
                found.append(Violation(op.label, 0, "", "request", f"{label}: {exc}", shown))
                return
            validator = ResponseValidator(schema, registry=self._registry, format_checker=FORMATS)
            found.extend(
                Violation(op.label, 0, "", "request", f"{label}: {_short(e.message)}", shown)
                for e in validator.iter_errors(value)
            )

        for name, value in op.path_params.items():
            check("path", name, [value])
        for name in dict.fromkeys(request.url.params.keys()):
            check("query", name, request.url.params.get_list(name))
        if request.content:
            found += self._check_request_body(op, request, shown)
        return found

    def _check_request_body(self, op: Operation, request: httpx.Request, shown: str) -> list[Violation]:
        body_spec = self.doc.resolve(op.spec.get("requestBody", {}))
        if "application/json" not in body_spec.get("content", {}):
            return [Violation(op.label, 0, "", "request", "no JSON request body is documented", shown)]
        pointer = (
            f"#/paths/{_escape(op.template)}/{op.method}/requestBody/content/application~1json/schema"
        )
        body = json.loads(request.content)
        validator = RequestValidator(
            {"$ref": f"{DOC_URI}{pointer}"}, registry=self._registry, format_checker=FORMATS
        )
        found = [
            Violation(op.label, 0, pointer_of(e.absolute_path), "request",
                      f"request body: {_short(e.message)}", shown)
            for e in validator.iter_errors(body)
        ]
        found += [
            Violation(op.label, 0, where, "request", "request body property not documented", shown)
            for where in self.undeclared([self.doc.at(pointer)], body, "")
        ]
        return found


def _coerce(schema: Mapping[str, Any], raw: str) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
    if kind == "number":
        return float(raw)
    if kind == "boolean":
        if raw not in {"true", "false"}:
            raise ValueError(f"{raw!r} is not a boolean")
        return raw == "true"
    return raw


# --- talking to the simulator ----------------------------------------------------------------

RECORDED: list[Violation] = []
"""Every violation met in this run, for the terminal summary (conftest.py)."""

_SHARED: list[Contract] = []


def shared_contract() -> Contract:
    """One Contract per run: loading and patching the 1 MB document is the slow part."""
    if not _SHARED:
        _SHARED.append(Contract.load())
    return _SHARED[0]


def loaded_contract() -> Contract | None:
    return _SHARED[0] if _SHARED else None


TOKEN_SCHEMA: dict[str, Any] = {
    # The token answer is not in the OpenAPI document; its shape is bling-api.md §3.2 step 4 and
    # §10.7 ([T S14,S18] for the values). Closed: a client must not come to rely on extras.
    "type": "object",
    "required": ["access_token", "expires_in", "token_type", "scope", "refresh_token"],
    "additionalProperties": False,
    "properties": {
        "access_token": {"type": "string", "minLength": 1},
        "expires_in": {"type": "integer", "enum": [21600]},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "scope": {"type": "string", "pattern": r"^[0-9]+( [0-9]+)*$"},
        "refresh_token": {"type": "string", "minLength": 1},
    },
}


def token_violations(body: Any) -> list[str]:
    validator = ResponseValidator(TOKEN_SCHEMA, format_checker=FORMATS)
    return [f"{pointer_of(e.absolute_path) or '/'}: {e.message}" for e in validator.iter_errors(body)]


def basic_auth(client_id: str, client_secret: str) -> str:
    return "Basic " + b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


async def authorization_code(http: httpx.AsyncClient, client_id: str) -> str:
    """The browser leg: authorize answers 302 to the registered redirect URI with the code and
    our state (bling-api.md §3.2 steps 1-2)."""
    state = "contract-state-42"
    answer = await http.get(
        f"{API_PREFIX}/oauth/authorize",
        params={"response_type": "code", "client_id": client_id, "state": state},
    )
    assert answer.status_code == 302, f"authorize: {answer.status_code} {answer.text[:200]}"
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query.get("state") == [state], f"authorize lost the state: {answer.headers['location']}"
    assert "code" in query, f"authorize gave no code: {answer.headers['location']}"
    return query["code"][0]


async def token_request(
    http: httpx.AsyncClient, client_id: str, client_secret: str, form: dict[str, str], *, jwt: bool = False
) -> httpx.Response:
    """The server leg: POST /oauth/token with HTTP Basic client authentication (§3.2 step 3)."""
    headers = {"Authorization": basic_auth(client_id, client_secret), "Accept": "1.0"}
    if jwt:
        headers["enable-jwt"] = "1"
    return await http.post(f"{API_PREFIX}/oauth/token", data=form, headers=headers)


async def oauth_token(
    http: httpx.AsyncClient, client_id: str, client_secret: str, *, jwt: bool = False
) -> httpx.Response:
    code = await authorization_code(http, client_id)
    return await token_request(
        http, client_id, client_secret, {"grant_type": "authorization_code", "code": code}, jwt=jwt
    )


class CheckedClient:
    """A v3 client that checks every request and answer against the contract and keeps the
    violations, so a test reports all of them at once instead of stopping at the first."""

    def __init__(self, http: httpx.AsyncClient, contract: Contract, access_token: str | None) -> None:
        self.http = http
        self.contract = contract
        self.access_token = access_token
        self.violations: list[Violation] = []
        self.answers = 0

    async def call(
        self,
        method: str,
        path: str,
        status: int,
        *,
        params: Mapping[str, str | int | list[str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        documented_request: bool = True,
    ) -> httpx.Response:
        """One request; the status must be `status` (a behaviour failure stops the test at
        once), and the contract's findings are kept. `documented_request=False` for requests
        that are invalid on purpose (to provoke a 400)."""
        sent = dict(headers or {})
        if self.access_token is not None:
            sent.setdefault("Authorization", f"Bearer {self.access_token}")
        response = await self.http.request(
            method, f"{API_PREFIX}{path}", params=params, json=json_body, headers=sent
        )
        assert response.status_code == status, (
            f"{method} {response.request.url}: expected {status}, got {response.status_code}: "
            f"{response.text[:400]}"
        )
        found = self.contract.check_response(response)
        if documented_request:
            found += self.contract.check_request(response.request)
        self.violations += found
        RECORDED.extend(found)
        self.answers += 1
        return response

    def assert_clean(self) -> None:
        assert not self.violations, (
            f"{len(self.violations)} contract violation(s) in {self.answers} answers:\n"
            + "\n".join(summarize(self.violations))
        )


async def first_client(http: httpx.AsyncClient) -> tuple[int, str, str]:
    """(account id, client_id, client_secret) of the first account's first app, read from the
    simulator's admin API as an operator would."""
    answer = await http.get("/_sim/accounts")
    assert answer.status_code == 200, answer.text
    account = answer.json()["accounts"][0]
    client = account["clients"][0]
    return int(account["id"]), str(client["client_id"]), str(client["client_secret"])


async def checked_client(
    http: httpx.AsyncClient, contract: Contract, client_id: str = "", client_secret: str = ""
) -> CheckedClient:
    """A CheckedClient holding a fresh token of the given app (default: the first account's
    first app, which has every scope)."""
    if not client_id:
        _, client_id, client_secret = await first_client(http)
    answer = await oauth_token(http, client_id, client_secret)
    assert answer.status_code == 200, answer.text
    return CheckedClient(http, contract, str(answer.json()["access_token"]))
