"""The error tree and its classifiers, branch by branch, with Bling's own bodies.

Bodies are copied from shared/reference/bling-api.md (§2.5, §3.2, §3.4, §3.5, §10.2, §10.5) or
produced by the simulator's `errors` module (faithful to Bling; tests may import it, production
code never does). A classifier must never raise, whatever it is given.
"""

from __future__ import annotations

import json
import pickle
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from blingsync.bling import errors as errors_module
from blingsync.bling.errors import (
    BRASILIA,
    AccessTokenRejected,
    AccountInactive,
    ApiDiscontinued,
    BlingError,
    BlingUnavailable,
    CredentialsInvalid,
    FieldError,
    InvalidRequest,
    InvalidResponse,
    NeedsApiV3,
    NotFound,
    PermissionMissing,
    RateLimited,
    ReauthorizationNeeded,
    from_transport_error,
    from_v2_response,
    from_v3_response,
    parse_retry_after,
    v2_is_end_of_pages,
)
from blingsync.bling.secrets import Secret
from blingsync.domain import ApiGeneration
from blingsync.simulator import errors as sim

NOW = datetime(2026, 11, 20, 15, 0, 0, tzinfo=BRASILIA)  # 18:00 UTC
API_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928"
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY21lIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXZhbHVl"
REFRESH_TOKEN = "rt_5d41402abc4b2a76b9719d911017c592a1b2"
PLAIN_SECRET = "plain-secret-value-without-shape-0042"
"""A secret with no credential shape: only found when the caller names it."""


def v3(status: int, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None,
       resource: str | None = "nfe", **kw: Any) -> BlingError:
    raw = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    raw = raw.encode() if isinstance(raw, str) else raw
    return from_v3_response(status, raw, headers or {}, resource=resource, account="acme", now=NOW, **kw)


def v2(status: int, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None,
       resource: str | None = "nfe", **kw: Any) -> BlingError | None:
    raw = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    raw = raw.encode() if isinstance(raw, str) else raw
    return from_v2_response(status, raw, headers or {}, resource=resource, account="acme", now=NOW, **kw)


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
        assert secret[:12] not in text, "a prefix of the secret leaked"


# --- v3: limits ---------------------------------------------------------------------------------

V3_429_SECOND = (
    '{"error":{"type":"TOO_MANY_REQUESTS","message":"Limite de requisições atingido.",'
    '"description":"O limite de requisições por segundo foi atingido, tente novamente mais tarde.",'
    '"limit":3,"period":"second"}}'
)
V3_429_DAY = (
    '{"error":{"type":"TOO_MANY_REQUESTS","message":"Limite de requisições atingido.",'
    '"description":"O limite de requisições por dia foi atingido, tente novamente amanhã.",'
    '"limit":120000,"period":"day"}}'
)
V3_429_DAY_ERROS_COMUNS = V3_429_DAY.replace("tente novamente amanhã", "tente novamente mais tarde")


def test_v3_429_per_second() -> None:
    error = v3(429, V3_429_SECOND)
    assert isinstance(error, RateLimited)
    assert (error.period, error.retry_after, error.limit, error.resume_at) == ("second", 1.0, 3, None)
    assert error.retriable
    assert error.status == 429 and error.account == "acme" and error.api is ApiGeneration.V3
    assert error.bling_type == "TOO_MANY_REQUESTS"
    assert "por segundo" in (error.bling_message or "")


@pytest.mark.parametrize("body", [V3_429_DAY, V3_429_DAY_ERROS_COMUNS])
def test_v3_429_per_day_pauses_until_brasilia_midnight(body: str) -> None:
    error = v3(429, body)
    assert isinstance(error, RateLimited)
    assert error.period == "day" and error.limit == 120000
    assert error.resume_at == datetime(2026, 11, 21, 0, 0, tzinfo=BRASILIA)
    assert error.retry_after == pytest.approx(9 * 3600)
    assert "00:00 Brasília time" in error.user_message


def test_v3_429_day_read_from_text_when_period_is_missing() -> None:
    body = json.loads(V3_429_DAY)
    del body["error"]["period"]
    error = v3(429, body)
    assert isinstance(error, RateLimited) and error.period == "day"


def test_v3_429_daily_just_before_midnight_resumes_the_same_night() -> None:
    late = datetime(2026, 11, 20, 23, 59, 30, tzinfo=BRASILIA)
    error = from_v3_response(429, V3_429_DAY.encode(), {}, resource=None, account=None, now=late)
    assert isinstance(error, RateLimited)
    assert error.resume_at == datetime(2026, 11, 21, tzinfo=BRASILIA)
    assert error.retry_after == pytest.approx(30)


def test_v3_429_from_the_simulator() -> None:
    for period, limit in (("second", 3), ("day", 120000)):
        error = v3(429, sim.too_many_requests(period, limit).body)
        assert isinstance(error, RateLimited) and error.period == period and error.limit == limit


def test_v3_retry_after_seconds_is_honoured() -> None:
    error = v3(429, V3_429_SECOND, {"Retry-After": "7"})
    assert isinstance(error, RateLimited) and error.retry_after == 7.0


def test_v3_retry_after_http_date_is_honoured_and_header_name_is_case_insensitive() -> None:
    date = format_datetime((NOW + timedelta(seconds=30)).astimezone(UTC), usegmt=True)
    error = v3(429, V3_429_SECOND, {"retry-after": date})
    assert isinstance(error, RateLimited) and error.retry_after == pytest.approx(30)
    httpx_headers = httpx.Headers({"RETRY-AFTER": "12"})
    error = from_v3_response(429, V3_429_SECOND.encode(), httpx_headers, resource=None, account=None)
    assert isinstance(error, RateLimited) and error.retry_after == 12.0


def test_v3_retry_after_on_a_daily_limit_sets_resume_at() -> None:
    error = v3(429, V3_429_DAY, {"Retry-After": "3600"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3600 and error.resume_at == NOW + timedelta(hours=1)


def test_v3_429_without_json_is_still_a_rate_limit() -> None:
    error = v3(429, "<html><body>Too Many Requests</body></html>", {"Retry-After": "2"})
    assert isinstance(error, RateLimited) and error.period == "second" and error.retry_after == 2.0


def test_v3_ip_block_from_the_simulator() -> None:
    error = v3(403, sim.ip_blocked(120).body)
    assert isinstance(error, RateLimited)
    assert error.period == "ip-block" and error.retry_after == 120.0
    assert error.bling_type == "FORBIDDEN" and "IP bloqueado" in (error.bling_message or "")
    assert "2 minutes" in error.user_message


def test_v3_ip_block_without_a_time_waits_ten_minutes_or_retry_after() -> None:
    body = {"error": {"type": "FORBIDDEN", "message": "IP bloqueado", "description": "IP bloqueado."}}
    error = v3(403, body)
    assert isinstance(error, RateLimited) and error.period == "ip-block" and error.retry_after == 600.0
    error = v3(403, body, {"Retry-After": "3600"})
    assert isinstance(error, RateLimited) and error.retry_after == 3600.0


def test_ip_block_answered_as_429_is_still_an_ip_block() -> None:
    body = json.loads(sim.ip_blocked(30).body)
    error = v3(429, body)
    assert isinstance(error, RateLimited) and error.period == "ip-block" and error.retry_after == 30.0


def test_v2_request_meeting_the_ip_guard_reads_its_v3_envelope() -> None:
    """The IP guard sits in front of both APIs and answers in the v3 envelope."""
    error = v2(403, sim.ip_blocked(300).body)
    assert isinstance(error, RateLimited) and error.period == "ip-block" and error.retry_after == 300.0
    assert error.api is ApiGeneration.V2


def test_v2_ip_block_in_erros() -> None:
    body = {"retorno": {"erros": [{"erro": {"cod": 20, "msg": "IP bloqueado por 10 minutos"}}]}}
    error = v2(403, body)
    assert isinstance(error, RateLimited) and error.period == "ip-block" and error.retry_after == 600.0


# --- v3: OAuth and authorization -------------------------------------------------------------------


def oauth(type_: str, description: str, message: str | None = None) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message or type_, "description": description}}


@pytest.mark.parametrize("status", [400, 401])
def test_v3_invalid_client_is_credentials_invalid(status: int) -> None:
    error = v3(status, oauth("invalid_client", "The client credentials are invalid"), resource=None)
    assert type(error) is CredentialsInvalid
    assert not error.retriable
    assert "client ID" in error.user_message
    assert error.bling_message == "The client credentials are invalid"


@pytest.mark.parametrize("description", [
    "The authorization code has expired",
    "The authorization code is invalid",
    "Invalid refresh token",
    "Refresh token has been revoked",
    "Refresh token has expired",
])
def test_v3_invalid_grant_needs_reauthorization(description: str) -> None:
    error = v3(400, oauth("invalid_grant", description), resource=None)
    assert type(error) is ReauthorizationNeeded
    assert not error.retriable
    assert "Connect the account to Bling again" in error.user_message


def test_v3_reused_authorization_code_needs_reauthorization() -> None:
    body = (
        '{"error":{"type":"VALIDATION_ERROR","message":"Invalid authorization code","description":'
        '"This authorization code has already been used, for security reasons the user has had '
        'access revoked."}}'
    )
    assert type(v3(400, body)) is ReauthorizationNeeded


def test_v3_plain_rfc6749_oauth_error_is_understood() -> None:
    error = v3(400, {"error": "invalid_grant", "error_description": "Refresh token has expired"})
    assert type(error) is ReauthorizationNeeded
    assert error.bling_message == "Refresh token has expired"


def test_v3_inactive_company() -> None:
    body = oauth("UNAUTHORIZED_ERROR", "A empresa vinculada ao token esta inativa.", "Empresa inativa")
    error = v3(401, body)
    assert type(error) is AccountInactive
    assert isinstance(error, ReauthorizationNeeded)
    assert "inactive" in error.user_message


@pytest.mark.parametrize(("expired", "description"), [
    (False, "The access token provided is invalid"),
    (True, "The access token provided has expired"),
])
def test_v3_invalid_token_is_rejected_access_token(expired: bool, description: str) -> None:
    error = v3(401, oauth("invalid_token", description))
    assert type(error) is AccessTokenRejected
    assert error.expired is expired
    assert isinstance(error, ReauthorizationNeeded), "if it escapes after a refresh, reconnect"


@pytest.mark.parametrize("expired", [False, True])
def test_v3_invalid_token_from_the_simulator(expired: bool) -> None:
    error = v3(401, sim.invalid_token(expired).body)
    assert isinstance(error, AccessTokenRejected) and error.expired is expired


@pytest.mark.parametrize("type_", ["UNAUTHORIZED", "UNAUTHENTICATED"])
def test_v3_other_401_types_are_rejected_access_tokens(type_: str) -> None:
    assert type(v3(401, oauth(type_, "Não autorizado"))) is AccessTokenRejected


def test_v3_invalid_apikey_type_is_credentials_invalid() -> None:
    assert type(v3(401, oauth("INVALID_APIKEY_ERROR", "API key inválida"))) is CredentialsInvalid


def test_v3_malformed_auth_header_is_our_bug() -> None:
    error = v3(400, sim.malformed_auth_header().body)
    assert type(error) is InvalidRequest and error.bling_type == "invalid_request"


# --- v3: permissions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("resource", "label"), [
    ("nfe", "Notas Fiscais"),
    ("nfce", "Notas Fiscais de Consumidor"),
    ("pedidos_vendas", "Pedidos de Venda"),
    ("logisticas", "Logísticas"),
    ("empresas", "Dados básicos da empresa"),
    ("situacoes", "Situações"),
])
def test_v3_insufficient_scope_names_the_scope(resource: str, label: str) -> None:
    error = v3(403, sim.insufficient_scope().body, resource=resource)
    assert isinstance(error, PermissionMissing)
    assert (error.resource, error.label) == (resource, label)
    assert label in error.user_message and "scope" in error.user_message
    assert not error.retriable


def test_v3_insufficient_scope_without_resource_still_says_what_to_do() -> None:
    error = v3(403, sim.insufficient_scope().body, resource=None)
    assert isinstance(error, PermissionMissing) and error.label is None
    assert "scope" in error.user_message


def test_v3_plain_forbidden_is_a_missing_permission() -> None:
    body = oauth("FORBIDDEN", "Acesso negado", "Acesso negado")
    assert isinstance(v3(403, body, resource="logisticas"), PermissionMissing)


# --- v3: not found, server side, our mistakes -------------------------------------------------------

V3_404 = (
    '{"error":{"type":"RESOURCE_NOT_FOUND","message":"Recurso não encontrado","description":"O '
    'recurso requisitado não foi encontrado. Verifique se o endpoint solicitado e o ID informado '
    'estão corretos."}}'
)


def test_v3_not_found() -> None:
    error = v3(404, V3_404, resource="nfe")
    assert type(error) is NotFound and error.resource == "nfe" and not error.retriable
    assert type(v3(404, sim.not_found().body)) is NotFound


def test_v3_server_error_json() -> None:
    error = v3(500, sim.server_error().body)
    assert type(error) is BlingUnavailable and error.retriable
    assert error.bling_type == "SERVER_ERROR" and error.bling_message is not None


PROXY_PAGES = {  # as the simulator's proxy (and nginx) sends them
    502: b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>",
    503: b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
    b"<h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body>"
    b"</html>",
    504: b"<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway "
    b"Time-out</h1></center><hr><center>nginx</center></body></html>",
}


@pytest.mark.parametrize("status", sorted(PROXY_PAGES))
@pytest.mark.parametrize("classify", ["v2", "v3"])
def test_html_proxy_pages_are_bling_unavailable(status: int, classify: str) -> None:
    error = (v3 if classify == "v3" else v2)(status, PROXY_PAGES[status])
    assert type(error) is BlingUnavailable and error.retriable
    assert error.bling_message is not None and error.bling_message.startswith(str(status))


def test_503_with_retry_after() -> None:
    error = v3(503, PROXY_PAGES[503], {"Retry-After": "30"})
    assert isinstance(error, BlingUnavailable) and error.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 520, 408])
def test_non_json_server_side_answers_never_crash(status: int) -> None:
    for body in (b"", b"\xff\xfe\x00garbage", b"Internal Server Error", b'{"data":'):
        assert isinstance(v3(status, body), BlingUnavailable)
        assert isinstance(v2(status, body), BlingUnavailable)


V3_VALIDATION = (
    '{"error":{"type":"VALIDATION_ERROR","message":"Não foi possível salvar a venda",'
    '"description":"A venda não pode ser salva, pois ocorreram problemas em sua validação.",'
    '"fields":[{"code":49,"msg":"Uma ou mais parcelas da venda possuem erros de validação",'
    '"element":"parcelas","namespace":"VENDAS","collection":[{"index":1,"code":12,'
    '"msg":"Id da forma de pagamento inválido.","element":"formaPagamento","namespace":"VENDAS"}]}]}}'
)


def test_v3_validation_error_carries_fields() -> None:
    error = v3(400, V3_VALIDATION, resource="pedidos_vendas")
    assert type(error) is InvalidRequest and not error.retriable
    assert error.fields == (FieldError(
        msg="Uma ou mais parcelas da venda possuem erros de validação", code=49, element="parcelas",
        namespace="VENDAS", collection=(FieldError(
            msg="Id da forma de pagamento inválido.", code=12, element="formaPagamento",
            namespace="VENDAS", index=1),),
    ),)
    assert "formaPagamento: Id da forma de pagamento inválido." in str(error)
    assert "bug in blingsync" in error.user_message


@pytest.mark.parametrize(("type_", "description"), [
    ("VALIDATION_ERROR", "Ocorreu um erro ao validar os dados recebidos."),
    ("MISSING_REQUIRED_FIELD_ERROR", "Nenhum dado foi informado na requisição."),
    ("UNKNOWN_ERROR", "Ocorreu um erro inesperado."),
    ("BAD_REQUEST", "Requisição inválida."),
])
def test_v3_documented_400s_are_invalid_requests(type_: str, description: str) -> None:
    body = oauth(type_, description, "Não foi possível executar a operação")
    assert type(v3(400, body)) is InvalidRequest


def test_v3_simulator_validation_and_method_not_allowed() -> None:
    error = v3(400, sim.validation_error([sim.field_error("situacao", "Situação inválida.")]).body)
    assert isinstance(error, InvalidRequest)
    assert error.fields[0].element == "situacao" and error.fields[0].code == 1
    body = oauth("METHOD_NOT_ALLOWED", "Método não permitido", "Método não permitido")
    assert type(v3(405, body)) is InvalidRequest


# --- v3: unreadable answers ----------------------------------------------------------------------------

def test_v3_truncated_json_on_200_is_invalid_response() -> None:
    truncated = b'{"data":[{"id":17891234567,"tipo":1,"situacao":6,"numero":"0045'
    error = v3(200, truncated)
    assert type(error) is InvalidResponse and error.retriable
    assert error.detail == "not JSON"
    assert error.excerpt.startswith('{"data":[{"id":17891234567')


@pytest.mark.parametrize(("status", "body"), [
    (200, b'{"data":[]}'),  # JSON, but the caller could not use it
    (200, b"[]"),
    (400, b'{"erro":"x"}'),
    (401, b"<html><body>Unauthorized</body></html>"),
    (404, b"Not Found"),
    (400, b"null"),
    (400, b'{"error":null}'),
    (400, b'"just a string"'),
    (302, b'{"error":{"type":"X","message":"m","description":"d"}}'),
])
def test_v3_unknown_shapes_are_invalid_responses(status: int, body: bytes) -> None:
    assert type(v3(status, body)) is InvalidResponse


@pytest.mark.parametrize("body", [
    b'{"error":{"type":5,"message":["a"],"description":{"x":1},"fields":"oops","limit":"x"}}',
    b'{"error":{}}',
    b'{"error":{"fields":[1,null,{"collection":{"a":1}}]}}',
    b"[" * 100_000 + b"]" * 100_000,
    b"\x00\x01\x02",
    "{\"error\":{\"type\":\"VALIDATION_ERROR\",\"message\":\"\u00e7\"}}".encode("latin-1"),
])
@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 429, 500])
def test_classifiers_never_raise(body: bytes, status: int) -> None:
    assert isinstance(v3(status, body), BlingError)
    result = v2(status, body)
    assert result is None or isinstance(result, BlingError)


# --- v2 ------------------------------------------------------------------------------------------------

V2_14_ARRAY = '{"retorno":{"erros":[{"erro":{"cod":14,"msg":"A informacao desejada nao foi encontrada"}}]}}'
V2_14_OBJECT = '{"retorno":{"erros":{"erro":{"cod":14,"msg":"A informacao desejada nao foi encontrada"}}}}'
V2_14_MAP = '{"retorno":{"erros":{"14":"A informacao desejada nao foi encontrada"}}}'
V2_14_STRINGS = '{"retorno":{"erros":["A informacao desejada nao foi encontrada"]}}'
V2_94_MAP = (
    '{"retorno":{"erros":{"94":"Já existe uma categoria de mesmo nível e pai com a descrição informada"}}}'
)
V2_3 = '{"retorno":{"erros":[{"erro":{"cod":3,"msg":"API Key invalida"}}]}}'
V2_18 = ('{"retorno":{"erros":{"erro":{"cod":18,"msg":"O limite de requisições por segundo foi '
         'atingido, tente novamente mais tarde."}}}}')


@pytest.mark.parametrize("body", [V2_14_ARRAY, V2_14_OBJECT, V2_14_MAP, V2_14_STRINGS])
def test_v2_cod_14_is_end_of_pages_in_every_shape(body: str) -> None:
    assert v2(200, body) is None
    assert v2(404, body) is None, "reference Q3: the status of cod 14 is unknown"
    assert v2_is_end_of_pages(body)
    assert v2_is_end_of_pages(body.encode())
    assert v2_is_end_of_pages(json.loads(body))


@pytest.mark.parametrize("shape", ["array", "object", "map"])
def test_v2_cod_14_from_the_simulator(shape: str) -> None:
    body = sim.v2_error(200, *sim.V2_NOT_FOUND, shape=shape).body
    assert v2(200, body) is None and v2_is_end_of_pages(body)


@pytest.mark.parametrize("body", [
    '{"retorno":{"notasfiscais":[{"notafiscal":{"numero":"000132"}}]}}',
    V2_3, V2_94_MAP, "not json", b"\xff", '{"retorno":{"erros":[]}}', "[]", "{}",
    '{"retorno":{"erros":42}}',
])
def test_v2_other_bodies_are_not_end_of_pages(body: str | bytes) -> None:
    assert not v2_is_end_of_pages(body)


def test_v2_success_bodies_are_not_errors() -> None:
    assert v2(200, '{"retorno":{"notasfiscais":[{"notafiscal":{"numero":"000132"}}]}}') is None
    assert v2(200, '{"retorno":{"erros":[]}}') is None
    assert v2(201, '{"retorno":{"pedidos":[]}}') is None


@pytest.mark.parametrize("body", [V2_3, V2_3.replace('"cod":3', '"cod":"3"')])
def test_v2_invalid_api_key(body: str) -> None:
    error = v2(401, body)
    assert type(error) is CredentialsInvalid and error.api is ApiGeneration.V2
    assert error.bling_type == "cod 3" and error.bling_message == "API Key invalida"
    assert "API key" in error.user_message and "Usuários e usuário API" in error.user_message


@pytest.mark.parametrize("shape", ["array", "object", "map"])
def test_v2_invalid_api_key_from_the_simulator(shape: str) -> None:
    assert type(v2(401, sim.v2_error(401, *sim.V2_INVALID_KEY, shape=shape).body)) is CredentialsInvalid


def test_v2_cod_18_per_second() -> None:
    error = v2(429, V2_18)
    assert isinstance(error, RateLimited) and error.period == "second" and error.retry_after == 1.0


def test_v2_cod_18_per_day_from_the_simulator() -> None:
    error = v2(429, sim.v2_error(429, *sim.V2_DAILY_LIMIT, shape="object").body, {"Retry-After": "60"})
    assert isinstance(error, RateLimited) and error.period == "day"
    assert error.retry_after == 60.0 and error.resume_at == NOW + timedelta(seconds=60)
    error = v2(429, sim.v2_error(429, *sim.V2_DAILY_LIMIT).body)
    assert isinstance(error, RateLimited) and error.resume_at == datetime(2026, 11, 21, tzinfo=BRASILIA)


@pytest.mark.parametrize(("status", "cod", "shape"), [
    (410, 99, "array"), (200, 99, "object"), (401, 3, "array"), (400, 1, "map"), (500, 99, "array"),
])
def test_v2_discontinued_whatever_the_code_or_status(status: int, cod: int, shape: str) -> None:
    body = sim.v2_error(status, cod, sim.V2_DISCONTINUED[1], shape=shape).body
    error = v2(status, body)
    assert type(error) is ApiDiscontinued and not error.retriable
    assert "login" in error.user_message and "API key" in error.user_message


def test_v2_discontinued_wins_over_an_invalid_key_in_the_same_body() -> None:
    body = {"retorno": {"erros": [{"erro": {"cod": 3, "msg": "API Key invalida"}},
                                  {"erro": {"cod": 99, "msg": "A API v2 foi descontinuada"}}]}}
    assert type(v2(401, body)) is ApiDiscontinued


def test_v2_missing_permission_takes_the_label_from_the_message() -> None:
    body = sim.v2_error(403, sim.V2_NO_PERMISSION[0], f"{sim.V2_NO_PERMISSION[1]}: Notas Fiscais").body
    error = v2(403, body, resource="nfe")
    assert isinstance(error, PermissionMissing)
    assert (error.resource, error.label) == ("nfe", "Notas Fiscais")
    assert "Permissões › Vendas" in error.user_message and "“Notas Fiscais”" in error.user_message


@pytest.mark.parametrize(("resource", "label"), [
    ("nfe", "Notas Fiscais"),
    ("nfce", "Nota fiscal de consumidor eletrônica (NFC-e)"),
    ("pedidos_vendas", "Pedidos de Venda"),
    ("logisticas", "Interações Logísticas"),
    ("situacoes", "Gerenciar situações dos Pedidos de Venda"),
])
def test_v2_missing_permission_without_a_label_uses_the_resource(resource: str, label: str) -> None:
    body = {"retorno": {"erros": [{"erro": {"cod": 9, "msg": "Usuário sem permissão"}}]}}
    error = v2(200, body, resource=resource)
    assert isinstance(error, PermissionMissing) and error.label == label


def test_v2_403_with_another_message_is_a_missing_permission() -> None:
    error = v2(403, {"retorno": {"erros": {"erro": {"cod": 7, "msg": "Acesso negado"}}}}, resource="empresas")
    assert isinstance(error, PermissionMissing) and error.label is None
    assert "Usuários e usuário API" in error.user_message


def test_v2_validation_codes_are_invalid_requests() -> None:
    error = v2(200, V2_94_MAP)
    assert isinstance(error, InvalidRequest)
    assert error.fields == (FieldError(
        msg="Já existe uma categoria de mesmo nível e pai com a descrição informada", code=94),)
    error = v2(400, sim.v2_error(400, 10, "Filtro desconhecido: foo").body)
    assert isinstance(error, InvalidRequest) and error.fields[0].code == 10


def test_v2_unknown_resource_is_not_found() -> None:
    error = v2(404, sim.v2_error(404, 1, "Recurso não encontrado: GET /Api/v2/foo/json/").body)
    assert type(error) is NotFound


def test_v2_cod_14_mixed_with_another_error_is_that_error() -> None:
    body = {"retorno": {"erros": [{"erro": {"cod": 14, "msg": "A informacao desejada nao foi encontrada"}},
                                  {"erro": {"cod": 3, "msg": "API Key invalida"}}]}}
    assert type(v2(200, body)) is CredentialsInvalid
    assert not v2_is_end_of_pages(json.dumps(body))


@pytest.mark.parametrize(("status", "expected"), [
    (401, CredentialsInvalid), (403, PermissionMissing), (404, NotFound), (429, RateLimited),
    (500, BlingUnavailable), (418, InvalidResponse),
])
def test_v2_status_alone_when_the_body_says_nothing(status: int, expected: type[BlingError]) -> None:
    assert type(v2(status, '{"retorno":{}}')) is expected


@pytest.mark.parametrize(("status", "body"), [
    (200, "<html>oops</html>"),
    (200, V2_14_ARRAY[:40]),
    (200, '{"data":[]}'),
    (200, "[]"),
    (200, '{"retorno":{"erros":42}}'),
    (200, '{"retorno":{"erros":[[1,2]]}}'),
    (200, '{"retorno":{"erros":{"erro":7}}}'),
    (200, '{"retorno":{"erros":{"14":{"nested":"map"}}}}'),
    (200, '{"retorno":"x"}'),
    (400, "Bad Request"),
])
def test_v2_unknown_shapes_are_invalid_responses(status: int, body: str) -> None:
    assert type(v2(status, body)) is InvalidResponse


def test_v2_unknown_shape_on_5xx_is_unavailable() -> None:
    assert type(v2(500, '{"retorno":{"erros":42}}')) is BlingUnavailable


# --- Retry-After ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("  5 ", 5.0), ("0", 0.0), ("-3", 0.0), ("1.5", 1.5), ("soon", None),
    ("Fri, 20 Nov 2026 18:01:00 GMT", 60.0),
    ("Fri, 20 Nov 2026 17:00:00 GMT", 0.0),  # in the past: no wait
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


# --- transport ----------------------------------------------------------------------------------------

def test_transport_errors_are_unavailable_and_redacted() -> None:
    url = f"https://bling.com.br/Api/v2/notasfiscais/json/?apikey={API_KEY}"
    error = from_transport_error(httpx.ConnectTimeout(f"timed out calling {url}"), account="acme",
                                 api=ApiGeneration.V2)
    assert type(error) is BlingUnavailable and error.retriable and error.status is None
    assert (error.detail or "").startswith("ConnectTimeout: timed out calling https://bling")
    assert_clean(str(error) + repr(error), API_KEY)


# --- the tree as a whole --------------------------------------------------------------------------------

def all_error_classes() -> list[type[BlingError]]:
    """The tree as `errors.py` defines it (other modules may extend it; their tests check theirs)."""
    found: list[type[BlingError]] = []
    pending: list[type[BlingError]] = [BlingError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors_module.__name__:
            found.append(cls)
        pending += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


EXTRA: dict[type[BlingError], dict[str, Any]] = {
    RateLimited: {"period": "second"},
    NeedsApiV3: {"feature": "Sending tracking codes to Bling"},
}


def build(cls: type[BlingError], **kw: Any) -> BlingError:
    return cls(**EXTRA.get(cls, {}), **kw)


def test_the_tree_is_what_the_module_exports() -> None:
    assert {c.__name__ for c in all_error_classes()} <= set(errors_module.__all__)


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_every_class_is_documented_and_speaks_plainly(cls: type[BlingError]) -> None:
    assert cls.__doc__ and len(cls.__doc__) > 80
    for api in (None, ApiGeneration.V2, ApiGeneration.V3):
        error = build(cls, api=api)
        assert error.user_message.strip()
        assert error.code in str(error)
        assert error.user_message in str(error)


def test_codes_are_stable_unique_identifiers() -> None:
    codes = [c.code for c in all_error_classes()]
    assert len(codes) == len(set(codes))
    assert all(code.replace("_", "").isalpha() and code.islower() for code in codes)


def test_retriable_flags() -> None:
    retriable = {c for c in all_error_classes() if c.retriable}
    assert retriable == {RateLimited, BlingUnavailable, InvalidResponse}


SECRET_TEXT = (
    f"falhou apikey={API_KEY}&access_token={ACCESS_TOKEN} refresh_token={REFRESH_TOKEN} "
    f"Authorization: Bearer {ACCESS_TOKEN} segredo {PLAIN_SECRET}"
)


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_no_secret_survives_str_repr_or_traceback(cls: type[BlingError]) -> None:
    kw: dict[str, Any] = {
        "account": "acme", "status": 400, "bling_type": "VALIDATION_ERROR",
        "bling_message": SECRET_TEXT, "secrets": [Secret(PLAIN_SECRET)],
    }
    if cls is InvalidResponse:
        kw["excerpt"] = SECRET_TEXT
    if cls is InvalidRequest:
        kw["fields"] = [FieldError(msg=SECRET_TEXT, element="x")]
    if cls is PermissionMissing:
        kw["label"] = f"Notas Fiscais {PLAIN_SECRET}"
    error = build(cls, **kw)
    try:
        raise error
    except BlingError as caught:
        rendered = "".join(traceback.format_exception(caught))
    every_text = [str(error), repr(error), rendered, error.user_message, repr(vars(error)),
                  repr(pickle.loads(pickle.dumps(error)))]  # noqa: S301 - our own bytes
    for text in every_text:
        assert_clean(text, API_KEY, ACCESS_TOKEN, REFRESH_TOKEN, PLAIN_SECRET)
    assert "****" in str(error)


def test_classified_errors_carry_no_secret_from_the_body() -> None:
    """Bling echoing a credential back (a token response where JSON was due, a message quoting
    the request) must not put it in the error."""
    token_body = json.dumps({"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN,
                             "expires_in": 21600, "token_type": "Bearer"})
    cases: list[BlingError | None] = [
        v3(200, token_body[:-30]),  # truncated: the closing quote of refresh_token is cut
        v3(200, token_body),
        v3(400, oauth("VALIDATION_ERROR", f"code={REFRESH_TOKEN} {PLAIN_SECRET}"),
           secrets=[PLAIN_SECRET]),
        v3(500, f"<html><title>oops {API_KEY}</title> apikey={API_KEY}</html>", secrets=[API_KEY]),
        v2(401, {"retorno": {"erros": [{"erro": {"cod": 3, "msg": f"API Key invalida: apikey={API_KEY}"}}]}}),
        v2(403, {"retorno": {"erros": [{"erro": {"cod": 9, "msg": f"Sem permissão: {PLAIN_SECRET}"}}]}},
           secrets=[Secret(PLAIN_SECRET)]),
        v2(200, f"<html>{PLAIN_SECRET}</html>", secrets=[PLAIN_SECRET]),
    ]
    for error in cases:
        assert error is not None
        assert error.user_message
        assert_clean(str(error) + repr(error) + repr(vars(error)), API_KEY, ACCESS_TOKEN,
                     REFRESH_TOKEN, PLAIN_SECRET)


def test_detail_is_ours_redacted_and_shown() -> None:
    error = InvalidResponse(account="acme", detail=f"token endpoint said access_token={ACCESS_TOKEN}")
    assert error.detail is not None and "access_token=****" in error.detail
    assert error.detail in str(error) and "detail=" in repr(error)
    assert_clean(str(error) + repr(error), ACCESS_TOKEN)


def test_excerpt_of_a_huge_body_is_short_and_clean() -> None:
    body = ('{"access_token":"' + ACCESS_TOKEN * 40 + '","pad":"' + "x" * 200_000 + '"}').encode()
    error = v3(200, body[:-10])
    assert isinstance(error, InvalidResponse) and len(error.excerpt) <= 300
    assert_clean(str(error), ACCESS_TOKEN)


def test_errors_pickle_round_trip() -> None:
    error = v3(429, V3_429_DAY)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is RateLimited and vars(copy) == vars(error) and str(copy) == str(error)
    invalid = v3(400, V3_VALIDATION)
    assert pickle.loads(pickle.dumps(invalid)).fields == invalid.fields  # noqa: S301


def test_user_messages_of_classified_errors_are_plain_and_specific() -> None:
    assert "paused until 00:00 Brasília time" in v3(429, V3_429_DAY).user_message
    assert "“Pedidos de Venda”" in v3(403, sim.insufficient_scope().body,
                                         resource="pedidos_vendas").user_message
    assert isinstance(v3(401, oauth("invalid_token", "x")), AccessTokenRejected)


@pytest.mark.parametrize("message", [
    "Usuário não autorizado a acessar este recurso",
    "Acesso negado ao recurso notasfiscais",
    "Usuário sem permissão de acesso ao recurso: Notas Fiscais",
])
def test_v2_refusals_for_lack_of_permission_in_other_words(message: str) -> None:
    error = v2(200, {"retorno": {"erros": [{"erro": {"cod": 9, "msg": message}}]}})
    assert isinstance(error, PermissionMissing)
    assert error.resource == "nfe"
