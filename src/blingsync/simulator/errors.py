"""Error bodies exactly as Bling writes them (v3 `error` envelope, v2 `retorno.erros`).

Texts are Bling's own (see shared/reference/bling-api.md §3.2, §3.4, §3.5, §2.5); where the
reference marks a detail as inferred, the choice is noted here.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class BlingJSONResponse(JSONResponse):
    """JSON with UTF-8 text left readable, as Bling sends it."""

    def render(self, content: Any) -> bytes:
        import json

        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def v3_error(
    status: int,
    type_: str,
    message: str,
    description: str,
    fields: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> BlingJSONResponse:
    error: dict[str, Any] = {"type": type_, "message": message, "description": description}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return BlingJSONResponse({"error": error}, status_code=status)


def not_found() -> BlingJSONResponse:
    return v3_error(
        404,
        "RESOURCE_NOT_FOUND",
        "Recurso não encontrado",
        "O recurso requisitado não foi encontrado. Verifique se o endpoint solicitado e o ID "
        "informado estão corretos.",
    )


def validation_error(fields: list[dict[str, Any]]) -> BlingJSONResponse:
    return v3_error(
        400,
        "VALIDATION_ERROR",
        "Não foi possível executar a operação",
        "Ocorreu um erro ao validar os dados recebidos.",
        fields=fields,
    )


def field_error(element: str, msg: str, code: int = 1, namespace: str = "API") -> dict[str, Any]:
    return {"code": code, "msg": msg, "element": element, "namespace": namespace}


def invalid_token(expired: bool) -> BlingJSONResponse:
    description = (
        "The access token provided has expired"
        if expired
        else "The access token provided is invalid"
    )
    return v3_error(401, "invalid_token", "invalid_token", description)


def malformed_auth_header() -> BlingJSONResponse:
    return v3_error(400, "invalid_request", "invalid_request", "Malformed auth header")


def insufficient_scope() -> BlingJSONResponse:
    return v3_error(
        403,
        "insufficient_scope",
        "insufficient_scope",
        "The request requires higher privileges than provided by the access token",
    )


def too_many_requests(period: str, limit: int) -> BlingJSONResponse:
    description = (
        "O limite de requisições por segundo foi atingido, tente novamente mais tarde."
        if period == "second"
        else "O limite de requisições por dia foi atingido, tente novamente amanhã."
    )
    return v3_error(
        429,
        "TOO_MANY_REQUESTS",
        "Limite de requisições atingido.",
        description,
        limit=limit,
        period=period,
    )


def ip_blocked(seconds_left: int) -> BlingJSONResponse:
    """Inferred: Bling documents the blocks but not their response. We answer 403 with a
    distinct message so a client can tell a block from a missing scope."""
    return v3_error(
        403,
        "FORBIDDEN",
        "IP bloqueado",
        "O IP foi bloqueado temporariamente por exceder os limites de uso da API. "
        f"Tente novamente em {seconds_left} segundos.",
    )


def server_error() -> BlingJSONResponse:
    return v3_error(
        500, "SERVER_ERROR", "Não foi possível executar a operação", "Um erro interno ocorreu."
    )


def oauth_error(status: int, type_: str, description: str, message: str | None = None) -> BlingJSONResponse:
    return v3_error(status, type_, message or type_, description)


# --- v2 ------------------------------------------------------------------------------------

V2_NOT_FOUND = (14, "A informacao desejada nao foi encontrada")
V2_INVALID_KEY = (3, "API Key invalida")
V2_RATE_LIMIT = (18, "O limite de requisições por segundo foi atingido, tente novamente mais tarde.")
V2_DAILY_LIMIT = (18, "O limite de requisições por dia foi atingido, tente novamente amanhã.")
V2_DISCONTINUED = (
    # Inferred code and status (410); the text is what integrators report seeing in 2026.
    99,
    "A API v2 foi descontinuada. Utilize a API v3: https://developer.bling.com.br",
)
V2_NO_PERMISSION = (
    # Inferred: the reference has no capture of this answer; Bling's v2 refused such calls with
    # an "erro" naming the missing permission. The code is the simulator's choice.
    9,
    "Usuário sem permissão de acesso ao recurso",
)


def v2_error(status: int, cod: int, msg: str, shape: str = "array") -> BlingJSONResponse:
    """A v2 error in one of the three shapes Bling is seen to use (clients must accept all)."""
    erros: Any
    if shape == "array":
        erros = [{"erro": {"cod": cod, "msg": msg}}]
    elif shape == "object":
        erros = {"erro": {"cod": cod, "msg": msg}}
    else:
        erros = {str(cod): msg}
    return BlingJSONResponse({"retorno": {"erros": erros}}, status_code=status)
