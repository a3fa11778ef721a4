"""Reads for the dashboard: the order search (also by SKU; the REST API's order list runs on it
too), an order's delivery history, the deliveries queue, bounded counts, and orders imported per
day and brand.

`Store` inherits `DashboardStore`, so these are ordinary store methods.

Every read here has to stay fast with 100,000 orders and 1,000 brands (a page is drawn from a
handful of them in under 300 ms), which shapes each one:

* **Keyset pages, never OFFSET.** Orders are listed newest *issued* first (what an operator
  looks for: the note's date, not when blingsync happened to import it) and page on the key
  (issued_at, id): `(issued_at, id) < (…)` of the boundary row, along the indexes
  `orders (issued_at, id)` and `(account_id, issued_at, id)`; the id breaks ties between notes
  issued in the same second, so the order is total. Other lists page on the row id. `LIMIT
  n + 1` tells whether there is more. A boundary is a fixed point of the order, so rows arriving
  while someone pages never make them see a row twice or miss one that was there.
* **Search matches each kind of key on its own column.** A chave, a note number, a CPF/CNPJ and
  a SKU are equality lookups on indexed columns (`orders.access_key`, `number`,
  `recipient_document`, `order_items.sku`); only a recipient's name is a substring match (case-
  and accent-insensitive), and only for a text with a letter (digits and punctuation alone are
  a number, a document or a SKU). On PostgreSQL with pg_trgm (migration 0007) a text with 3
  letters or digits in a row reads a trigram index; otherwise the newest orders are read first
  and the scan stops at one page.
* **Counts are bounded** (`COUNT` over a `LIMIT`ed subquery): "10.000+" is as useful to an
  operator as the exact figure and costs a fixed amount however large the queue grows.
* **The chart is grouped in the database**: orders of the last 30 days by (Brasília day,
  brand), over the `created_at` range only, the top brands named and the rest summed as one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import (
    JSON,
    Date,
    Row,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from blingsync.domain import BRASILIA, OrderStatus
from blingsync.store.browse import SUMMARY_COLUMNS, OrderSummary, order_summary_of
from blingsync.store.codec import like_escape
from blingsync.store.outbox import CHANNEL_SINK, EVENT_DEAD, EVENT_PENDING, EVENT_UNDELIVERED
from blingsync.store.part import StorePart
from blingsync.store.records import EventType
from blingsync.store.tables import TRIGRAM_INDEX, accounts, order_items, orders, outbox

COUNT_CAP: Final = 10_000
"""Counts stop here: the page says "10.000+" instead of counting a huge queue row by row."""

MAX_PAGE: Final = 200
MAX_EVENTS_PER_ORDER: Final = 200

T = TypeVar("T")

_CHAVE: Final = re.compile(r"[0-9A-Z]{44}")
_DIGITS_AND_PUNCTUATION: Final = re.compile(r"[0-9\s./-]+")

# Accented letters of Portuguese (and a few neighbours) and their plain forms: a name search
# ignores them (see `_name_condition`), so "jose" finds "JOSÉ" on both backends without an
# extension (unaccent, ICU) that a plain installation lacks.
_ACCENTED: Final = "ÁÀÂÃÄÅáàâãäåÉÈÊËéèêëÍÌÎÏíìîïÓÒÔÕÖóòôõöÚÙÛÜúùûüÇçÑñÝýÿ"
_PLAIN: Final = "AAAAAAaaaaaaEEEEeeeeIIIIiiiiOOOOOoooooUUUUuuuuCcNnYyy"
_FOLD_TABLE: Final = str.maketrans(_ACCENTED, _PLAIN)  # raises at import if the lengths differ

_SINK_UNDELIVERED: Final = and_(outbox.c.channel == CHANNEL_SINK, EVENT_UNDELIVERED)


class DeliveryFilter(StrEnum):
    """Where an order's deliveries to the warehouse (its `sink` events) stand."""

    PENDING = "pending"  # some event not delivered yet and not given up on
    DEAD = "dead"  # some event given up on: waits for an operator's replay
    DELIVERED = "delivered"  # every event delivered


class OrderDelivery(StrEnum):
    """An order's delivery state as a badge shows it (worst first: dead, pending, delivered)."""

    DEAD = "dead"
    PENDING = "pending"
    DELIVERED = "delivered"
    NONE = "none"  # no sink event at all (cannot happen for an imported order; shown honestly)


class OrderSort(StrEnum):
    """Which order an order list follows (newest or oldest first: `newest_first`)."""

    ISSUED = "issued"  # by (issued_at, id): the note's issue date (the dashboard; the API's default)
    IMPORTED = "imported"  # by id: the order in which blingsync imported the notes


@dataclass(frozen=True)
class OrderKey:
    """A position in an order list: the sort values of the row a page ended at. By `ISSUED`
    both count, by `IMPORTED` only the id."""

    issued_at: datetime
    id: int


class EventState(StrEnum):
    DELIVERED = "delivered"
    PENDING = "pending"
    DEAD = "dead"


@dataclass(frozen=True)
class OrderSearch:
    """The order search's filters; every one given must hold. `issued_from` is inclusive,
    `issued_before` exclusive (aware datetimes). `q` is one text box: a chave (spaces allowed),
    a note number, a CPF/CNPJ (any punctuation), a SKU, or part of the recipient's name (see
    `DashboardStore._text_condition`)."""

    q: str | None = None
    account_id: int | None = None
    status: OrderStatus | None = None
    issued_from: datetime | None = None
    issued_before: datetime | None = None
    delivery: DeliveryFilter | None = None


@dataclass(frozen=True)
class OrderRow:
    """One line of the order search: the summary, where it goes, and its delivery badge."""

    summary: OrderSummary
    city: str | None
    state: str | None
    delivery: OrderDelivery


@dataclass(frozen=True)
class Page(Generic[T]):
    """A keyset page, newest first. `older`/`newer` are the ids of the rows to continue from
    (None: no page that way)."""

    rows: list[T]
    older: int | None
    newer: int | None


@dataclass(frozen=True)
class EventRow:
    """An outbox event as the dashboard shows it: its delivery state without its payload."""

    id: int
    account_id: int
    order_id: int
    type: EventType
    channel: str
    order_version: int
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    dead_at: datetime | None
    replayed_at: datetime | None
    last_attempt_ms: int | None

    @property
    def state(self) -> EventState:
        if self.delivered_at is not None:
            return EventState.DELIVERED
        return EventState.DEAD if self.dead_at is not None else EventState.PENDING


@dataclass(frozen=True)
class DeliveryRow:
    """A line of the deliveries queue: the event, and the order and brand it belongs to."""

    event: EventRow
    account: str
    order_number: int
    order_series: int
    recipient_name: str | None


@dataclass(frozen=True)
class BoundedCount:
    """A count that stopped at `cap`: `capped` means "at least `value`"."""

    value: int
    capped: bool


@dataclass(frozen=True)
class DeliveryCounts:
    pending: BoundedCount
    dead: BoundedCount
    imported_today: BoundedCount


@dataclass(frozen=True)
class BrandSeries:
    account_id: int | None  # None: every brand outside the top ones, summed
    name: str | None
    counts: tuple[int, ...]  # one per day of `OrdersPerDay.days`

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class OrdersPerDay:
    """Orders imported per Brasília day (oldest first) and brand: the top brands of the window
    by count, then the others summed (omitted when there are none)."""

    days: tuple[date, ...]
    series: tuple[BrandSeries, ...]

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(column) for column in zip(*(s.counts for s in self.series), strict=True)) \
            if self.series else tuple(0 for _ in self.days)


def brasilia_day_start(day: date) -> datetime:
    """The instant a Brasília calendar day starts, in UTC."""
    return datetime.combine(day, time(), BRASILIA).astimezone(UTC)


def fold(value: str) -> str:
    """Lower case without the accents of `_ACCENTED`: how a searched name is compared, on both
    sides (see `_name_condition`). What `folded_name` computes in PostgreSQL, so a letter outside
    the table ("ř" of "Dvořák") is kept on both sides and found when typed as it is written.

    Composed first (NFC): text pasted from a macOS file name or a PDF may carry "é" as "e" plus a
    combining accent, while an NF-e's names are composed. The one divergence left is the case of
    letters *outside* the table: Python lowers every script, PostgreSQL's `lower` follows the
    database's ctype (a `C`-ctype database lowers ASCII only, so "DVOŘÁK" stored in capitals is
    found by "DVOŘ", not by "dvoř"). Every Portuguese letter is in the table, so Brazilian names
    fold the same on every database."""
    return unicodedata.normalize("NFC", value).translate(_FOLD_TABLE).lower()


_LETTER_FORMS: Final = {plain: plain + "".join(
    accented for accented, base in zip(_ACCENTED, _PLAIN, strict=True) if base.lower() == plain)
    + plain.upper() for plain in sorted(set(_PLAIN.lower()))}
"""Each plain letter and every form of it in either case: "a" → "aáàâãäåAÁÀÂÃÄÅ"."""


def name_pattern(q: str) -> str:
    """A PostgreSQL regular expression (for `~*`) matching `q` anywhere, ignoring accents:
    "José_1" → `j[oó…]s[eé…]\\_1`. Letters and digits are themselves, every other character is
    escaped, so nothing the user types is a regex operator or a LIKE wildcard."""
    out: list[str] = []
    for ch in fold(q):
        forms = _LETTER_FORMS.get(ch)
        if forms is not None:
            out.append(f"[{forms}]")
        elif ch.isalnum():
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)


def _fold_or_none(value: object) -> str | None:
    return None if value is None else fold(str(value))


_SQLITE_FOLD: Final = "blingsync_fold"

_TRIGRAM_RUN: Final = re.compile(r"[^\W_]{3}")
"""A run of 3 letters or digits: what a trigram index can look up (shorter terms give it no
trigram to search for, and it would read every entry)."""


def folded_name(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """PostgreSQL: `lower(translate(recipient_name, accented, plain))`, the folded name in SQL,
    character for character the expression of `TRIGRAM_INDEX` (migration 0007 freezes its own
    copy). The alphabets are literals, not parameters: a parameter would not match the index
    expression in a prepared statement's generic plan."""
    return func.lower(func.translate(column, literal_column(f"'{_ACCENTED}'"),
                                     literal_column(f"'{_PLAIN}'")))


def _order_by(sort: OrderSort, newest_first: bool) -> list[ColumnElement[Any]]:
    columns = [orders.c.id] if sort is OrderSort.IMPORTED else [orders.c.issued_at, orders.c.id]
    return [column.desc() for column in columns] if newest_first else list(columns)


def _past(key: OrderKey, sort: OrderSort, newest_first: bool) -> ColumnElement[bool]:
    """The rows after `key` in the list's order (a row value comparison: one index range)."""
    if sort is OrderSort.IMPORTED:
        return orders.c.id < key.id if newest_first else orders.c.id > key.id
    row, boundary = tuple_(orders.c.issued_at, orders.c.id), (key.issued_at, key.id)
    return row < boundary if newest_first else row > boundary


class DashboardStore(StorePart):
    """The methods of `Store` for this part (mixed in; see the module docstring)."""

    # --- order search -------------------------------------------------------------------------

    async def search_orders(self, search: OrderSearch = OrderSearch(), *, before_id: int | None = None,
                            after_id: int | None = None, limit: int = 50) -> Page[OrderRow]:
        """A page of orders matching `search`, newest issued first: the newest ones, or those
        just past the order `before_id`, or those just before the order `after_id` (the
        previous page). The boundary is that order's (issued_at, id); a boundary order that no
        longer exists (its account was removed) gives an empty page."""
        limit = max(1, min(limit, MAX_PAGE))
        ascending = after_id is not None and before_id is None
        boundary = after_id if ascending else before_id
        extra = (self._content_text("city").label("city"), self._content_text("state").label("uf"))
        async with self._read() as conn:
            past = None
            if boundary is not None:
                issued_at = await conn.scalar(select(orders.c.issued_at).where(orders.c.id == boundary))
                if issued_at is None:
                    return Page([], older=None, newer=None)
                past = OrderKey(issued_at, boundary)
            found = await self._find_orders(conn, search, sort=OrderSort.ISSUED, newest_first=not ascending,
                                            past=past, limit=limit + 1, extra=extra)
            more = len(found) > limit
            found = found[:limit]
            if ascending:
                found.reverse()
            states = await self._delivery_states(conn, [row.id for row in found])
        rows = [OrderRow(order_summary_of(row), row.city, row.uf, states.get(row.id, OrderDelivery.NONE))
                for row in found]
        if not rows:
            # Past either end: offer the way back (the newest page, or the oldest reached).
            return Page(rows, older=after_id if ascending else None,
                        newer=before_id if before_id is not None else None)
        if ascending:
            return Page(rows, older=rows[-1].summary.id, newer=rows[0].summary.id if more else None)
        return Page(rows, older=rows[-1].summary.id if more else None,
                    newer=rows[0].summary.id if before_id is not None else None)

    async def find_orders(self, search: OrderSearch = OrderSearch(), *, sort: OrderSort = OrderSort.ISSUED,
                          newest_first: bool = True, past: OrderKey | None = None,
                          limit: int = 100) -> list[OrderSummary]:
        """Up to `limit` orders matching `search`, in `sort` order (newest or oldest first),
        starting just past `past` in that direction: pass the key of a page's last row to get
        the next page. The same query as `search_orders` (the REST API's order list)."""
        if limit <= 0:
            return []
        async with self._read() as conn:
            rows = await self._find_orders(conn, search, sort=sort, newest_first=newest_first, past=past,
                                           limit=limit)
        return [order_summary_of(row) for row in rows]

    async def _find_orders(self, conn: AsyncConnection, search: OrderSearch, *, sort: OrderSort,
                           newest_first: bool, past: OrderKey | None, limit: int,
                           extra: Sequence[ColumnElement[Any]] = ()) -> list[Row[Any, *tuple[Any, ...]]]:
        conditions = await self._search_conditions(conn, search)
        if past is not None:
            conditions.append(_past(past, sort, newest_first))
        statement = (select(*SUMMARY_COLUMNS, *extra).join(accounts, accounts.c.id == orders.c.account_id)
                     .where(*conditions).order_by(*_order_by(sort, newest_first)).limit(limit))
        return list((await conn.execute(statement)).all())

    def _content_text(self, field: str) -> ColumnElement[Any]:
        """`content.delivery_address.<field>` read in the database (only for the page's rows),
        so a list does not carry every order's whole content to Python."""
        if self._postgres:
            return func.json_extract_path_text(cast(orders.c.content, JSON), "delivery_address", field)
        return func.json_extract(orders.c.content, f"$.delivery_address.{field}")

    async def _search_conditions(self, conn: AsyncConnection,
                                 search: OrderSearch) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if search.account_id is not None:
            conditions.append(orders.c.account_id == search.account_id)
        if search.status is not None:
            conditions.append(orders.c.status == OrderStatus(search.status).value)
        if search.issued_from is not None:
            conditions.append(orders.c.issued_at >= search.issued_from)
        if search.issued_before is not None:
            conditions.append(orders.c.issued_at < search.issued_before)
        if search.delivery is not None:
            conditions.append(_delivery_condition(search.delivery))
        if search.q is not None and search.q.strip():
            conditions.append(await self._text_condition(conn, search.q.strip()))
        return conditions

    async def _text_condition(self, conn: AsyncConnection, q: str) -> ColumnElement[bool]:
        """What the one search box matches, by the shape of the text:

        * a chave (44 characters once the spaces a DANFE prints are removed): only that chave;
        * digits and punctuation: a note number (up to 9 digits), a CPF/CNPJ (11 or 14 digits)
          or a SKU (as typed or in upper case);
        * anything with a letter: part of a recipient's name (case- and accent-insensitive;
          a company may be "Loja 25 de Março"), or a SKU ("CAMISETA", "CAM-001").

        The shapes are chosen for the planner. Exact keys become one `id IN (… UNION ALL …)` of
        index lookups (an `OR` across columns would make PostgreSQL walk every order instead).
        A name is a substring match (see `_name_condition`); the SKU alternative is added only
        when some item has that SKU (one index probe), so a name search does not pay for it."""
        compact = "".join(q.split()).upper()
        if _CHAVE.fullmatch(compact):
            return orders.c.access_key == compact
        skus = sorted({q, q.upper()})
        by_sku = select(order_items.c.order_id).where(order_items.c.sku.in_(skus))
        if _DIGITS_AND_PUNCTUATION.fullmatch(q):
            digits = re.sub(r"[^0-9]", "", q)
            other = orders.alias("matching")
            keys: list[Select[Any]] = [by_sku]
            if digits and len(digits) <= 9:
                keys.append(select(other.c.id).where(other.c.number == int(digits)))
            if len(digits) in (11, 14):
                keys.append(select(other.c.id).where(other.c.recipient_document == digits))
            return orders.c.id.in_(union_all(*keys))
        by_name, indexed = await self._name_condition(conn, q, orders.c.recipient_name)
        sku_known = await conn.scalar(select(order_items.c.id).where(order_items.c.sku.in_(skus)).limit(1))
        if sku_known is None:
            return by_name
        if indexed:  # each alternative through its own index
            other = orders.alias("matching")
            named, _ = await self._name_condition(conn, q, other.c.recipient_name)
            return orders.c.id.in_(union_all(select(other.c.id).where(named), by_sku))
        return or_(by_name, orders.c.id.in_(by_sku))

    async def _name_condition(self, conn: AsyncConnection, q: str,
                              column: ColumnElement[Any]) -> tuple[ColumnElement[bool], bool]:
        """The recipient's name (`column`) contains `q`, ignoring case and accents; and whether
        an index serves the condition.

        PostgreSQL with `TRIGRAM_INDEX` and a `q` with 3 letters or digits in a row: `folded_name LIKE
        '%…%'` with `fold(q)`, wildcards escaped, which the trigram index answers (about 10 ms
        instead of a scan of every order). Otherwise, a regular expression (`~*`) where each
        foldable letter of the folded query is a class of its accented forms, every other
        character escaped (so `%`, `_`, `.` and `\\` are literal): read newest first, it stops
        at one page; on the orders' short names it costs about what `ILIKE` does, while the
        folded expression costs several times more per row scanned. SQLite: `fold` itself,
        registered on the connection (SQLite has no regular expressions, its `lower` folds ASCII
        only, and nested `replace` calls overflow its parser), with `LIKE` and the wildcards
        escaped."""
        if self._postgres:
            folded = fold(q)
            if _TRIGRAM_RUN.search(folded) and await self._trigram_index(conn):
                return folded_name(column).like(f"%{like_escape(folded)}%", escape="\\"), True
            return column.op("~*", is_comparison=True)(name_pattern(q)), False
        raw = await conn.get_raw_connection()
        await raw.driver_connection.create_function(  # type: ignore[union-attr]
            _SQLITE_FOLD, 1, _fold_or_none, deterministic=True)
        folded_column: ColumnElement[Any] = getattr(func, _SQLITE_FOLD)(column)
        return folded_column.like(f"%{like_escape(fold(q))}%", escape="\\"), False

    _has_trigram_index: bool | None = None

    async def _trigram_index(self, conn: AsyncConnection) -> bool:
        """Whether `TRIGRAM_INDEX` exists, looked up once per store (a DBA who adds it later
        restarts blingsync)."""
        if self._has_trigram_index is None:
            found = await conn.scalar(text(f"SELECT to_regclass('{TRIGRAM_INDEX}') IS NOT NULL"))
            self._has_trigram_index = bool(found)
        return self._has_trigram_index

    @staticmethod
    async def _delivery_states(conn: Any, order_ids: Sequence[int]) -> dict[int, OrderDelivery]:
        """The delivery badge of each given order, in one grouped query over their events."""
        if not order_ids:
            return {}
        dead = func.sum(case((EVENT_DEAD, 1), else_=0))
        pending = func.sum(case((EVENT_PENDING, 1), else_=0))
        rows = await conn.execute(
            select(outbox.c.order_id, dead, pending, func.count())
            .where(outbox.c.order_id.in_(list(order_ids)), outbox.c.channel == CHANNEL_SINK)
            .group_by(outbox.c.order_id))
        states: dict[int, OrderDelivery] = {}
        for order_id, dead_n, pending_n, total in rows:
            if dead_n:
                states[int(order_id)] = OrderDelivery.DEAD
            elif pending_n:
                states[int(order_id)] = OrderDelivery.PENDING
            elif total:
                states[int(order_id)] = OrderDelivery.DELIVERED
        return states

    # --- one order ----------------------------------------------------------------------------

    async def order_events(self, order_id: int, *, limit: int = MAX_EVENTS_PER_ORDER) -> list[EventRow]:
        """The order's outbox events of every channel, oldest first, without payloads: its
        delivery attempts and the source of its timeline."""
        async with self._read() as conn:
            rows = (await conn.execute(select(*_EVENT_COLUMNS).where(outbox.c.order_id == order_id)
                                       .order_by(outbox.c.id).limit(limit))).all()
        return [_event(row) for row in rows]

    # --- deliveries ---------------------------------------------------------------------------

    async def delivery_queue(self, *, state: EventState | None = None, account_id: int | None = None,
                             after_id: int | None = None, limit: int = 50) -> Page[DeliveryRow]:
        """Undelivered events (pending and dead, or only `state`), oldest first (the order a
        relay works in), after `after_id`. `Page.older` here is the next page's `after_id`."""
        limit = max(1, min(limit, MAX_PAGE))
        which = {None: EVENT_UNDELIVERED, EventState.PENDING: EVENT_PENDING,
                 EventState.DEAD: EVENT_DEAD, EventState.DELIVERED: false()}[state]
        statement = (select(*_EVENT_COLUMNS, accounts.c.name.label("account_name"),
                            orders.c.number, orders.c.series, orders.c.recipient_name)
                     .join(orders, orders.c.id == outbox.c.order_id)
                     .join(accounts, accounts.c.id == outbox.c.account_id)
                     .where(which))
        if account_id is not None:
            statement = statement.where(outbox.c.account_id == account_id)
        if after_id is not None:
            statement = statement.where(outbox.c.id > after_id)
        async with self._read() as conn:
            found = list((await conn.execute(statement.order_by(outbox.c.id).limit(limit + 1))).all())
        more = len(found) > limit
        rows = [DeliveryRow(_event(row), row.account_name, row.number, row.series, row.recipient_name)
                for row in found[:limit]]
        return Page(rows, older=rows[-1].event.id if more and rows else None, newer=None)

    async def delivery_counts(self, *, account_id: int | None = None, now: datetime | None = None,
                              cap: int = COUNT_CAP) -> DeliveryCounts:
        """Pending and dead events (every channel) and orders imported since the start of
        today in Brasília, each counted up to `cap` only."""
        today = (now or self._now()).astimezone(BRASILIA).date()

        def only(column: Any) -> list[ColumnElement[bool]]:
            return [] if account_id is None else [column == account_id]

        async with self._read() as conn:
            mine = only(outbox.c.account_id)
            pending = await _bounded(conn, select(outbox.c.id).where(EVENT_PENDING, *mine), cap)
            dead = await _bounded(conn, select(outbox.c.id).where(EVENT_DEAD, *mine), cap)
            imported = await _bounded(conn, select(orders.c.id).where(
                orders.c.created_at >= brasilia_day_start(today), *only(orders.c.account_id)), cap)
        return DeliveryCounts(pending=pending, dead=dead, imported_today=imported)

    # --- the chart ----------------------------------------------------------------------------

    async def orders_per_day(self, *, days: int = 30, top: int = 5, now: datetime | None = None,
                             account_id: int | None = None) -> OrdersPerDay:
        """Orders imported (`created_at`) per Brasília day over the last `days` days, today
        included, for the `top` brands with most orders in the window and the rest summed.
        Two grouped queries over the window's `created_at` range; at most `days × (top + 1)`
        rows come back whatever the number of brands."""
        last = (now or self._now()).astimezone(BRASILIA).date()
        day_list = tuple(last - timedelta(days=n) for n in range(days - 1, -1, -1))
        since = brasilia_day_start(day_list[0])
        window: list[ColumnElement[bool]] = [orders.c.created_at >= since]
        if account_id is not None:
            window.append(orders.c.account_id == account_id)
        count = func.count().label("n")
        async with self._read() as conn:
            leaders = (await conn.execute(
                select(orders.c.account_id, count).where(*window).group_by(orders.c.account_id)
                .order_by(count.desc(), orders.c.account_id).limit(top))).all()
            top_ids = [int(row.account_id) for row in leaders]
            names: dict[int, str] = {}
            if top_ids:
                names = {int(i): str(n) for i, n in (await conn.execute(
                    select(accounts.c.id, accounts.c.name).where(accounts.c.id.in_(top_ids)))).all()}
            day = self._brasilia_day(orders.c.created_at).label("day")
            brand = (case((orders.c.account_id.in_(top_ids), orders.c.account_id), else_=literal(0))
                     if top_ids else literal(0)).label("brand")
            grouped = (await conn.execute(
                select(day, brand, func.count()).where(*window).group_by(day, brand))).all()
        index = {d: i for i, d in enumerate(day_list)}
        counts: dict[int, list[int]] = {brand_id: [0] * len(day_list) for brand_id in [*top_ids, 0]}
        for day_value, brand_id, n in grouped:
            position = index.get(_as_date(day_value))
            if position is not None:  # a clock running behind the rows: not in the window
                counts[int(brand_id)][position] += int(n)
        series = [BrandSeries(i, names.get(i, f"#{i}"), tuple(counts[i])) for i in top_ids]
        if any(counts[0]):
            series.append(BrandSeries(None, None, tuple(counts[0])))
        return OrdersPerDay(day_list, tuple(series))

    def _brasilia_day(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The Brasília calendar day of a stored UTC instant (fixed UTC-3: see `BRASILIA`)."""
        if self._postgres:
            return cast(func.timezone("UTC", column) - text("interval '3 hours'"), Date)
        return func.date(column, "-3 hours")

    # --- brands -------------------------------------------------------------------------------

    async def brand_choices(self) -> list[tuple[int, str]]:
        """(id, name) of every account by name: the brand filter's options (two columns only)."""
        async with self._read() as conn:
            rows = (await conn.execute(select(accounts.c.id, accounts.c.name)
                                       .order_by(accounts.c.name))).all()
        return [(int(i), str(n)) for i, n in rows]


_EVENT_COLUMNS: Final = (
    outbox.c.id, outbox.c.account_id, outbox.c.order_id, outbox.c.type, outbox.c.channel,
    outbox.c.order_version, outbox.c.created_at, outbox.c.attempts, outbox.c.next_attempt_at,
    outbox.c.last_error, outbox.c.delivered_at, outbox.c.dead_at, outbox.c.replayed_at,
    outbox.c.last_attempt_ms,
)


def _delivery_condition(which: DeliveryFilter) -> ColumnElement[bool]:
    sink = outbox.c.channel == CHANNEL_SINK
    if which is DeliveryFilter.PENDING:
        return orders.c.id.in_(select(outbox.c.order_id).where(sink, EVENT_PENDING))
    if which is DeliveryFilter.DEAD:
        return orders.c.id.in_(select(outbox.c.order_id).where(sink, EVENT_DEAD))
    return and_(orders.c.id.not_in(select(outbox.c.order_id).where(_SINK_UNDELIVERED)),
                orders.c.id.in_(select(outbox.c.order_id).where(sink)))


async def _bounded(conn: Any, ids: Any, cap: int) -> BoundedCount:
    value = int(await conn.scalar(select(func.count()).select_from(ids.limit(cap + 1).subquery())) or 0)
    return BoundedCount(min(value, cap), value > cap)


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _event(row: Row[Any, *tuple[Any, ...]]) -> EventRow:
    return EventRow(
        id=row.id, account_id=row.account_id, order_id=row.order_id, type=EventType(row.type),
        channel=row.channel, order_version=row.order_version, created_at=row.created_at,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, last_error=row.last_error,
        delivered_at=row.delivered_at, dead_at=row.dead_at, replayed_at=row.replayed_at,
        last_attempt_ms=row.last_attempt_ms)
