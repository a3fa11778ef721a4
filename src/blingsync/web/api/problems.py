"""How the REST API says no: one JSON body, `{"detail": "words a user understands"}`, for every
4xx and 5xx it answers itself, and for request validation too (`ApiRoute`), plus `errors`, the
offending fields one by one.

FastAPI's own validation answer puts a *list* in `detail`; `ApiRoute` turns it into one
sentence naming each wrong parameter, so a client shows `detail` whatever went wrong. Every
router of the API must be built with `route_class=ApiRoute` (an included router keeps its own
route class), or its validation errors would not match the documented `Problem`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from blingsync.store.errors import NotFoundError


class FieldIssue(BaseModel):
    """One wrong field of a request."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description="Where: `query`, `path`, `header` or `body`, then the field.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="A stable code of the kind of error (pydantic's).")


class Problem(BaseModel):
    """What every error answer of the API carries."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"detail": "no order with id 42"},
        {"detail": "query parameter limit: Input should be less than or equal to 500",
         "errors": [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 500",
                     "type": "less_than_equal"}]},
    ]})

    detail: str = Field(description="What went wrong and what to do, in words.")
    errors: list[FieldIssue] | None = Field(
        default=None, description="Request validation errors: each wrong field with its message.")


_UNREADABLE_BODY: Final = "There was an error parsing the body"
"""FastAPI's words (`fastapi.routing`) for a request body it could not decode."""


def _described(status: int, description: str, **extra: Any) -> dict[str, Any]:
    return {"model": Problem, "description": description, **extra}


UNAUTHORIZED: Final = _described(
    401, "No bearer token, or one that is unknown or revoked.",
    headers={"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}})
FORBIDDEN: Final = _described(403, "The token's scope does not allow this (a read token on an admin route).")
NOT_FOUND: Final = _described(404, "What the path names does not exist.")
CONFLICT: Final = _described(409, "The request conflicts with the current state (the message says which).")
INVALID: Final = _described(422, "The request is not valid: `detail` names each wrong parameter.")
BAD_GATEWAY: Final = _described(502, "Bling did not answer as it should; nothing was changed here.")
UNAVAILABLE: Final = _described(503, "This server is not set up for that (the message names the setting).")

COMMON_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {401: UNAUTHORIZED, 403: FORBIDDEN, 422: INVALID}


def _where(loc: Sequence[Any]) -> str:
    if not loc:
        return "request"
    place, *rest = loc
    name = ".".join(str(part) for part in rest)
    if place in ("query", "path", "header", "cookie"):
        return f"{place} parameter {name}" if name else f"{place} parameters"
    if place == "body":
        if len(rest) == 1 and isinstance(rest[0], int):  # a JSON decode error's position
            return f"request body (at character {rest[0]})"
        return f"body field {name}" if name else "request body"
    return ".".join(str(part) for part in loc)


def validation_problem(errors: Sequence[Any]) -> dict[str, Any]:
    """FastAPI's validation errors as a `Problem`. The rejected *values* are left out: an
    API key that failed a pattern must not come back in an answer (or a proxy's log)."""
    issues = [
        {"loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
         "msg": str(error.get("msg", "invalid")), "type": str(error.get("type", "value_error"))}
        for error in errors
    ]
    detail = "; ".join(f"{_where(issue['loc'])}: {issue['msg']}" for issue in issues) or "invalid request"
    return {"detail": detail, "errors": issues}


class ApiRoute(APIRoute):
    """Every route of the API: validation errors answered as a `Problem`, and the store's
    "not found" as a 404 with its message, so routes need not repeat either."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                return JSONResponse(status_code=422, content=validation_problem(exc.errors()))
            except StarletteHTTPException as exc:  # FastAPI raises Starlette's for bodies
                if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
                    # FastAPI's answer to a body it cannot even decode (not UTF-8, say): one more
                    # invalid request, answered like every other.
                    problem = {"detail": "request body: not valid JSON text (it must be UTF-8 JSON)",
                               "errors": [{"loc": ["body"], "msg": "not valid JSON text",
                                           "type": "json_invalid"}]}
                    return JSONResponse(status_code=422, content=problem)
                raise
            except NotFoundError as exc:
                raise HTTPException(404, detail=str(exc)) from None

        return route
