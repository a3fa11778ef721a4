"""`/api/v1/deliveries`: events that did not reach their destination yet (pending) or that the
relay gave up on (dead), and replaying one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from blingsync.service import Service
from blingsync.store.browse import DeliveryState
from blingsync.store.outbox import NotReplayable
from blingsync.web import deps
from blingsync.web.api.auth import require_admin, require_read
from blingsync.web.api.models import MAX_ID, DeliveryOut, DeliveryPage
from blingsync.web.api.problems import CONFLICT, NOT_FOUND, ApiRoute

router = APIRouter(prefix="/deliveries", tags=["deliveries"], route_class=ApiRoute)

ServiceDep = Annotated[Service, Depends(deps.service)]


@router.get("", response_model=DeliveryPage, dependencies=[Depends(require_read)])
async def list_deliveries(
    service: ServiceDep,
    state: Annotated[DeliveryState | None, Query(description="pending or dead (default: both).")] = None,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this account's.")] = None,
    channel: Annotated[
        Literal["sink", "bling"] | None, Query(
        description="sink: events for the account's sink; bling: write-backs to Bling (default: both)."),
    ] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="The last id of the previous page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    """Undelivered events by id. A dead event holds back the later events of its order until it
    is replayed (a cancel never overtakes its create)."""
    found = await service.store.deliveries(state=state, account_id=account_id, channel=channel,
                                           after_id=after, limit=limit)
    return DeliveryPage(data=[DeliveryOut.of(one) for one in found],
                        next_after=found[-1].event.id if found else after, has_more=len(found) == limit)


@router.post("/{event_id}/replay", response_model=DeliveryOut, dependencies=[Depends(require_admin)],
             responses={404: NOT_FOUND, 409: CONFLICT})
async def replay_delivery(
    event_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The event's id.", examples=[1])],
    service: ServiceDep, wakeups: Annotated[deps.Wakeups, Depends(deps.wakeups)],
) -> DeliveryOut:
    """Make a dead (or pending) event due now, with a fresh retry horizon; the events of its
    order waiting behind it follow. A delivered event cannot be replayed (409)."""
    try:
        await service.store.replay(event_id)
    except NotReplayable as exc:
        raise HTTPException(409, detail=str(exc)) from None
    wakeups.outbox()
    delivery = await service.store.delivery(event_id)
    if delivery is None:  # removed with its account between the two calls
        raise HTTPException(404, detail=f"no outbox event with id {event_id}")
    return DeliveryOut.of(delivery)
