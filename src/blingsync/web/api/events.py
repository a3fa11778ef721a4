"""`/api/v1/events`: the pull feed of order changes, for a warehouse that reads instead of
receiving webhooks (or beside them).

The contract (docs/api.md): events come in id order; each carries the order JSON at its version
and an idempotency key; a consumer stores the last id it *applied* and asks for `after` it. The
feed is at-least-once: a consumer that crashes between applying and storing its position reads
some events again, and must skip keys it applied (a unique key in its own database does it).
Whether a relay delivered an event elsewhere does not matter here: the feed shows every event of
the account's sink channel, never write-backs to Bling.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from blingsync.service import Service
from blingsync.web import deps
from blingsync.web.api.auth import require_read
from blingsync.web.api.models import MAX_ID, EventOut, EventPage
from blingsync.web.api.problems import ApiRoute

router = APIRouter(prefix="/events", tags=["events"], dependencies=[Depends(require_read)],
                   route_class=ApiRoute)


@router.get("", response_model=EventPage)
async def events_feed(
    service: Annotated[Service, Depends(deps.service)],
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="The last event id already read (0: from "
                                                            "the beginning).")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Events per page.")] = 100,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                            description="Only this account's events.")] = None,
) -> EventPage:
    """Order events after `after`, in id order. Read until `has_more` is false, store `next_after`,
    poll again later from it."""
    events = await service.store.feed_events(after_id=after, limit=limit, account_id=account_id)
    return EventPage(data=[EventOut.of(event) for event in events],
                     next_after=events[-1].id if events else after, has_more=len(events) == limit)
