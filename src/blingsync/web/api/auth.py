"""Bearer tokens for the REST API: `Authorization: Bearer bsk_…`, created with
`blingsync tokens create` (`blingsync.store.tokens`).

Two scopes: `read` may call every GET; `admin` may call everything. Routes declare what they
need with `Depends(require_read)` or `Depends(require_admin)`; both give the caller's
`ApiToken`. A missing, unknown or revoked token is a 401 with `WWW-Authenticate: Bearer`; a
token whose scope is too low is a 403. The token is looked up once per request (FastAPI caches
the shared dependency), before any parameter is validated: without a token nothing about the
request is answered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from blingsync.domain import BRASILIA
from blingsync.service import Service
from blingsync.store.tokens import ApiToken, TokenScope
from blingsync.web import deps

_bearer = HTTPBearer(
    scheme_name="ApiToken", auto_error=False, bearerFormat="bsk_…",
    description="An API token from `blingsync tokens create --name NAME [--scope read|admin]`.")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _refuse(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers=_CHALLENGE)


async def authenticated(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    service: Annotated[Service, Depends(deps.service)],
) -> ApiToken:
    """The caller's token, or a 401 saying what is wrong with what was sent."""
    if credentials is None:
        raise _refuse("this API needs a bearer token: send `Authorization: Bearer <token>` "
                      "(create one with `blingsync tokens create --name NAME`)")
    token = await service.store.api_token_by_secret(credentials.credentials)
    if token is None:
        raise _refuse("unknown API token: check it was copied whole, or create one with "
                      "`blingsync tokens create`")
    if token.revoked_at is not None:
        when = token.revoked_at.astimezone(BRASILIA).strftime("%Y-%m-%d %H:%M BRT")
        raise _refuse(f"the API token {token.name!r} was revoked on {when}; use another one")
    await service.store.touch_api_token(token)
    return token


async def require_read(token: Annotated[ApiToken, Depends(authenticated)]) -> ApiToken:
    """Any valid token: read and admin tokens may both read."""
    return token


async def require_admin(token: Annotated[ApiToken, Depends(authenticated)]) -> ApiToken:
    """An admin token; a read token gets a 403 that says so."""
    if not token.allows(TokenScope.ADMIN):
        raise HTTPException(403, detail=f"the API token {token.name!r} has the read scope; this needs an "
                                        "admin token (`blingsync tokens create --scope admin`)")
    return token
