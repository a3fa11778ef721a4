"""What the v2 and v3 clients share: their transport, its identity and statistics, turning a
payload that cannot be read into `InvalidResponse`, and cutting windows into periods."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from blingsync.bling.errors import InvalidResponse
from blingsync.bling.models import ShapeError
from blingsync.bling.transport import CallStats, Transport
from blingsync.domain import ApiGeneration

T = TypeVar("T")

PAGE_SIZE = 100
"""Records per page: v3's maximum `limite`, v2's fixed page size."""


LISTING_SPAN = timedelta(days=31)
"""Listings read a window a month at a time, each month whole before any of it is handed out.

Bling pages by page number. A record that leaves the filter while a listing runs (cancelled,
moved to another situation — by the caller itself, say, changing each order it is handed)
shifts every later record one place up, and one of them slips past the page already read.
Reading a period to its end before yielding anything makes the caller's own changes harmless,
and short periods keep the time in which Bling-side changes can do it short (the importer's
next pass, with its lookback, sees what slipped). A month of notes fits in memory easily; the
cost is one empty page per month of window."""


def periods(start: datetime, end: datetime, *,
            span: timedelta | None = None) -> list[tuple[datetime, datetime]]:
    """`[start, end]` cut into consecutive periods Bling accepts (at most one year each: v3
    refuses longer `…Inicial/…Final` spans with 400; v2 gets the same cut, which costs nothing
    and keeps both generations' queries alike), or at most `span` when shorter."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("the window's datetimes must be timezone-aware")
    if end < start:
        raise ValueError("the window ends before it starts")
    if span is not None and span < timedelta(hours=1):
        raise ValueError("a listing period must span at least an hour")
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while True:
        try:
            limit = cursor.replace(year=cursor.year + 1)
        except ValueError:  # 29 February
            limit = cursor.replace(year=cursor.year + 1, day=28)
        if span is not None:
            limit = min(limit, cursor + span)
        stop = min(end, limit - timedelta(seconds=1))
        out.append((cursor, stop))
        if stop >= end:
            return out
        cursor = stop + timedelta(seconds=1)


class AccountClient:
    """Base of `V3Client` and `V2Client`."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.transport.account!r})"

    @property
    def account(self) -> str:
        return self.transport.account

    @property
    def generation(self) -> ApiGeneration:
        return self.transport.generation

    @property
    def stats(self) -> CallStats:
        return self.transport.stats

    def _parse(self, what: str, parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except ShapeError as exc:
            raise InvalidResponse(account=self.account, api=self.generation,
                                  detail=f"{what}: {exc}") from None

    async def _paged(self, what: str, fetch: Callable[[int], Awaitable[Any]],
                     is_end: Callable[[Any], bool], ignored: str) -> AsyncIterator[Any]:
        """Each page's body (`fetch(page)`, from 1) until `is_end` says the pages are over. A
        page answered exactly like the one before means the server ignored the page number
        (`ignored` names it): `InvalidResponse`, not an endless loop."""
        page = 1
        previous: Any = None
        while True:
            body = await fetch(page)
            if is_end(body):
                return
            if body == previous:
                raise InvalidResponse(account=self.account, api=self.generation,
                                      detail=f"GET {what} answered page {page} like page "
                                             f"{page - 1}: Bling ignored {ignored}")
            yield body
            previous = body
            page += 1
