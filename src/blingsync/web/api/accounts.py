"""`/api/v1/accounts`: connect a brand (API key, or the start of Bling's OAuth flow), look at
each account's health, check its permissions, pause and resume it, import it now, remove it."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Response
from fastapi.responses import JSONResponse

from blingsync.bling.errors import ApiDiscontinued, BlingError, CredentialsInvalid, ReauthorizationNeeded
from blingsync.service import Service, ServiceError
from blingsync.store import AccountExists, CredentialsUnreadable
from blingsync.store.records import Account, AccountSettings, AccountState
from blingsync.web import deps
from blingsync.web.api.auth import require_admin, require_read
from blingsync.web.api.models import (
    MAX_ID,
    AccountCreate,
    AccountCreated,
    AccountList,
    AccountOut,
    ApiKeyConnect,
    CheckOut,
    ConnectLinkOut,
    OAuthConnect,
    PermissionOut,
    SyncStarted,
)
from blingsync.web.api.problems import BAD_GATEWAY, CONFLICT, NOT_FOUND, UNAVAILABLE, ApiRoute
from blingsync.web.oauth import ConnectUnavailable, connect_link

log = logging.getLogger(__name__)

router = APIRouter(prefix="/accounts", tags=["accounts"], route_class=ApiRoute)

AccountId = Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id.", examples=[1])]
ServiceDep = Annotated[Service, Depends(deps.service)]

REFUSED = (CredentialsInvalid, ReauthorizationNeeded, ApiDiscontinued)
"""Bling's answers that mean the credentials given cannot be used (nothing is stored then)."""


async def _out(service: Service, account: Account) -> AccountOut:
    health = await service.store.account_health([account.id])
    return AccountOut.of(account, health.get(account.id))


@router.get("", response_model=AccountList, dependencies=[Depends(require_read)])
async def list_accounts(service: ServiceDep) -> AccountList:
    """Every account with its health: state and reason, last import, orders, deliveries
    pending and dead, quarantined notes."""
    accounts = await service.store.accounts()
    health = await service.store.account_health()
    return AccountList(data=[AccountOut.of(account, health.get(account.id)) for account in accounts])


@router.post(
    "", status_code=201, response_model=AccountCreated, dependencies=[Depends(require_admin)],
    responses={202: {"model": ConnectLinkOut, "description": "OAuth: the link to hand to the brand."},
               409: CONFLICT, 502: BAD_GATEWAY, 503: UNAVAILABLE},
)
async def create_account(
    body: AccountCreate, service: ServiceDep, wakeups: Annotated[deps.Wakeups, Depends(deps.wakeups)],
) -> AccountCreated | JSONResponse:
    """Connect a brand. With `"method": "api_key"` the key is checked with Bling at once
    (credentials Bling refuses store nothing: 422 with Bling's reason) and the account is
    stored: 201 with each permission found. With `"method": "oauth"` the answer is a one-time
    link to Bling's consent screen (202); the account appears once the brand authorised."""
    if isinstance(body, OAuthConnect):
        link = await _connect_link(service, body.name, reconnect=False, settings=body.settings())
        return JSONResponse(status_code=202, content=link.model_dump(mode="json"))
    created = await _add_with_key(service, body)
    if wakeups.schedules_syncs:  # the first import now, not at the scheduler's next look
        wakeups.sync(created.account.id)
    return created


async def _add_with_key(service: Service, body: ApiKeyConnect) -> AccountCreated:
    try:
        added = await service.add_account(body.name, api_key=body.api_key, settings=body.settings())
    except AccountExists as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except REFUSED as exc:
        raise HTTPException(422, detail=f"Bling refused the API key: {exc.user_message}") from None
    except ServiceError as exc:
        # Stored, but the check did not finish (Bling unavailable, rate-limited): say how to finish.
        stored = await service.store.account(body.name)
        cause = exc.__cause__
        why = cause.user_message if isinstance(cause, BlingError) else str(exc)
        raise HTTPException(502, detail=f"account {stored.name!r} is stored (id {stored.id}), but Bling did "
                                        f"not finish its check: {why} Check it again with POST "
                                        f"/api/v1/accounts/{stored.id}/check") from None
    return AccountCreated(account=await _out(service, added.account),
                          permissions=[PermissionOut.of(check) for check in added.permissions],
                          missing=[check.label for check in added.missing])


async def _connect_link(service: Service, name: str, *, reconnect: bool,
                        settings: AccountSettings | None = None) -> ConnectLinkOut:
    try:
        link = await connect_link(service, name, reconnect=reconnect, settings=settings)
    except AccountExists as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except ConnectUnavailable as exc:  # the server lacks its OAuth app: not the caller's conflict
        raise HTTPException(503, detail=str(exc)) from None
    return ConnectLinkOut(account=name, url=link.url, expires_at=link.expires_at)


@router.get("/{account_id}", response_model=AccountOut, dependencies=[Depends(require_read)],
            responses={404: NOT_FOUND})
async def show_account(account_id: AccountId, service: ServiceDep) -> AccountOut:
    """One account with its health."""
    return await _out(service, await service.store.account_by_id(account_id))


@router.post("/{account_id}/check", response_model=CheckOut, dependencies=[Depends(require_admin)],
             responses={404: NOT_FOUND, 409: CONFLICT, 502: BAD_GATEWAY})
async def check_account(account_id: AccountId, service: ServiceDep) -> CheckOut:
    """Probe every permission the import needs, with Bling, now; the account's state follows
    what was found (a refused key or authorization too, reported in `error`)."""
    try:
        check = await service.check_account(account_id)
    except BlingError as exc:
        raise HTTPException(502, detail=f"Bling did not answer the check: {exc.user_message}") from None
    except (CredentialsUnreadable, ServiceError) as exc:  # the stored credentials cannot be used
        raise HTTPException(409, detail=str(exc)) from None
    return CheckOut(ok=check.ok, error=check.error,
                    permissions=[PermissionOut.of(one) for one in check.permissions],
                    missing=[one.label for one in check.missing],
                    account=await _out(service, check.account))


@router.post("/{account_id}/connect", status_code=202, response_model=ConnectLinkOut,
             dependencies=[Depends(require_admin)], responses={404: NOT_FOUND, 409: CONFLICT,
                                                               503: UNAVAILABLE})
async def reconnect_account(account_id: AccountId, service: ServiceDep) -> ConnectLinkOut:
    """A one-time link to connect this account again through Bling's OAuth (after a revoked
    authorization, or to move an API v2 account to v3); its orders and settings stay."""
    account = await service.store.account_by_id(account_id)
    return await _connect_link(service, account.name, reconnect=True)


@router.post("/{account_id}/pause", response_model=AccountOut, dependencies=[Depends(require_admin)],
             responses={404: NOT_FOUND})
async def pause_account(account_id: AccountId, service: ServiceDep) -> AccountOut:
    """Stop importing the account until it is resumed (deliveries of what was imported go on)."""
    return await _out(service, await service.pause(account_id))


@router.post("/{account_id}/resume", response_model=AccountOut, dependencies=[Depends(require_admin)],
             responses={404: NOT_FOUND})
async def resume_account(account_id: AccountId, service: ServiceDep,
                         wakeups: Annotated[deps.Wakeups, Depends(deps.wakeups)]) -> AccountOut:
    """Import the account again; an error state is cleared and the next import checks again."""
    resumed = await service.resume(account_id)
    if wakeups.schedules_syncs:
        wakeups.sync(resumed.id)
    return await _out(service, resumed)


@router.post("/{account_id}/sync", status_code=202, response_model=SyncStarted,
             dependencies=[Depends(require_admin)], responses={404: NOT_FOUND, 409: CONFLICT})
async def sync_account(
    account_id: AccountId, service: ServiceDep, background: BackgroundTasks,
    wakeups: Annotated[deps.Wakeups, Depends(deps.wakeups)],
    running: Annotated[set[int], Depends(deps.syncs_running)],
) -> SyncStarted:
    """Import the account now instead of at its next poll. The answer comes at once; the
    import's outcome shows in the account's `health.last_run`."""
    account = await service.store.account_by_id(account_id)
    if account.state is AccountState.PAUSED:
        raise HTTPException(409, detail=f"account {account.name!r} is paused: resume it first")
    if wakeups.schedules_syncs:
        wakeups.sync(account.id)
        return SyncStarted(account_id=account.id, mode="scheduler",
                           message="the scheduler imports the account now")
    if account.id in running:
        return SyncStarted(account_id=account.id, mode="already_running",
                           message="an import of this account is already running")
    running.add(account.id)
    background.add_task(deps.sync_in_background, service, wakeups, running, account.id,
                            trigger="api")
    return SyncStarted(account_id=account.id, mode="background", message="importing the account now")


@router.delete("/{account_id}", status_code=204, response_class=Response,
               dependencies=[Depends(require_admin)], responses={404: NOT_FOUND})
async def delete_account(account_id: AccountId, service: ServiceDep) -> Response:
    """Remove the account with its credentials, orders, events and history. Orders that come
    back after connecting it again keep their idempotency keys."""
    await service.remove(account_id)
    return Response(status_code=204)
