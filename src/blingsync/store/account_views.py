"""Reads for the dashboard's accounts pages (`/contas`): one page of accounts with the count per
state, the figures of a page of accounts, one account's order totals, and the first of its
quarantined and not-imported notes.

`Store` inherits `AccountViewStore`, so these are ordinary store methods, and the pages need no
SQL of their own.

They are shaped for 1,000 brands and 100,000 orders on PostgreSQL (measured with
`bench/ui_pages.py`): every figure of a page of accounts comes from a fixed number of grouped
queries over that page's ids, each answered from an index (the latest run by a backward probe of
`sync_runs(account_id, id)` per account, not by grouping every run ever made; `account_health`
in `browse.py` groups them all, which suits the REST API's one-shot report but not a list polled
every 10 s), so a page costs the same with 10 brands or 1,000, and with 1,000 orders or 100,000.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from blingsync.domain import InvoiceStatus, OrderStatus
from blingsync.store.codec import like_escape
from blingsync.store.outbox import CHANNEL_BLING, CHANNEL_SINK, EVENT_DEAD, EVENT_PENDING
from blingsync.store.part import StorePart
from blingsync.store.records import Account, AccountState, SyncRun, UnimportedNote
from blingsync.store.rows import ACCOUNT_COLUMNS, account_from_row, run_from_row
from blingsync.store.tables import accounts, orders, outbox, quarantine, sync_runs, unimported_notes


@dataclass(frozen=True)
class AccountsPage:
    """One page of accounts, how many match the filters, and every account's count by state."""

    accounts: list[Account]
    total: int  # accounts matching the filters
    by_state: dict[AccountState, int]  # every account, by state (the summary)


@dataclass(frozen=True)
class AccountFigures:
    """One account's numbers on the accounts list and the account page."""

    orders_today: int = 0
    pending: int = 0
    dead: int = 0
    writebacks_pending: int = 0
    writebacks_dead: int = 0
    quarantined: int = 0
    last_run: SyncRun | None = None


@dataclass(frozen=True)
class OrderTotals:
    """An account's orders: ready for the warehouse, and canceled."""

    ready: int = 0
    canceled: int = 0


@dataclass(frozen=True)
class HeldNote:
    """A quarantined note as the account page shows it (without its payload)."""

    kind: str
    bling_id: int
    number: int | None
    access_key: str | None
    reason: str
    attempts: int
    first_seen: datetime
    next_attempt_at: datetime
    reason_code: str | None = None  # sync.reasons.QuarantineCode; None: stored before the codes


class AccountViewStore(StorePart):
    """The methods of `Store` for the accounts pages (mixed in; see the module docstring)."""

    async def accounts_page(self, *, name: str = "", states: Collection[AccountState] | None = None,
                            page: int, size: int) -> AccountsPage:
        """Page `page` (from 1) of `size` accounts by name, those whose name contains `name`
        (any case) and whose state is one of `states` (None: any), with the filters' total and
        the count per state of every account."""
        conditions: list[ColumnElement[bool]] = []
        if name:
            conditions.append(accounts.c.name.ilike(f"%{like_escape(name)}%", escape="\\"))
        if states is not None:
            wanted = sorted(AccountState(state).value for state in states)
            # One state is an equality, as the page always asked it; several are an IN list.
            conditions.append(accounts.c.state == wanted[0] if len(wanted) == 1
                              else accounts.c.state.in_(wanted))
        async with self._read() as conn:
            rows = (await conn.execute(select(*ACCOUNT_COLUMNS).where(*conditions)
                                       .order_by(accounts.c.name, accounts.c.id)
                                       .limit(size).offset(max(0, page - 1) * size))).all()
            total = int(await conn.scalar(select(func.count()).select_from(accounts).where(*conditions)) or 0)
            counts = (await conn.execute(select(accounts.c.state, func.count())
                                         .group_by(accounts.c.state))).all()
        by_state = {AccountState(state_value): int(count) for state_value, count in counts}
        return AccountsPage([account_from_row(row) for row in rows], total, by_state)

    async def account_figures(self, account_ids: Sequence[int], *,
                              today: datetime) -> dict[int, AccountFigures]:
        """The figures of the given accounts (one page of them) in six queries, each answered
        from an index whatever the size of the accounts (measured with `bench/ui_pages.py`);
        `today` is the instant the day began where the warehouse counts its days:

        * orders imported today: ids are handed out in import order, so today's orders are the ids
          above the last one imported before midnight (a backward walk of the primary key that
          stops at yesterday), counted on `orders(account_id, id)`; `created_at` is checked again
          on those few rows, so an id handed out just before midnight and committed after it is
          not counted;
        * pending and dead deliveries with exactly the predicates of the outbox's partial indexes
          (`ix_outbox_pending`, `ix_outbox_dead`), which hold only undelivered events, instead of
          filtering every event an account ever had;
        * the latest run by one backward probe of `sync_runs(account_id, id)` per account."""
        ids = sorted(set(account_ids))
        if not ids:
            return {}
        found: dict[int, dict[str, Any]] = {account_id: {} for account_id in ids}
        async with self._read() as conn:
            floor = int(await conn.scalar(select(func.max(orders.c.id))
                                          .where(orders.c.created_at < today)) or 0)
            today_counts = await conn.execute(
                select(orders.c.account_id, func.count())
                .where(orders.c.account_id.in_(ids), orders.c.id > floor, orders.c.created_at >= today)
                .group_by(orders.c.account_id))
            for account_id, count in today_counts:
                found[int(account_id)]["orders_today"] = int(count)
            for account_id, values in (await queue_and_runs(conn, ids)).items():
                found[account_id].update(values)
        return {account_id: AccountFigures(**values) for account_id, values in found.items()}

    async def order_totals(self, account_id: int) -> OrderTotals:
        """The account's orders, ready and canceled: all of them counted on
        `orders(account_id, id)` (an index-only scan), the few canceled on `orders(status, id)`
        with it, so a brand with tens of thousands of orders costs no read of their rows."""
        async with self._read() as conn:
            total = await conn.scalar(select(func.count()).select_from(orders)
                                      .where(orders.c.account_id == account_id))
            canceled = await conn.scalar(select(func.count()).select_from(orders).where(
                orders.c.account_id == account_id, orders.c.status == OrderStatus.CANCELED.value))
        return OrderTotals(ready=int(total or 0) - int(canceled or 0), canceled=int(canceled or 0))

    async def held_notes(self, account_id: int, *, limit: int) -> tuple[list[HeldNote], int]:
        """The account's first `limit` quarantined notes (oldest first) and how many there are,
        without reading the payloads `Store.quarantined` carries."""
        async with self._read() as conn:
            rows = (await conn.execute(
                select(quarantine.c.kind, quarantine.c.bling_id, quarantine.c.number, quarantine.c.access_key,
                       quarantine.c.reason, quarantine.c.reason_code, quarantine.c.attempts,
                       quarantine.c.first_seen, quarantine.c.next_attempt_at)
                .where(quarantine.c.account_id == account_id)
                .order_by(quarantine.c.first_seen, quarantine.c.id).limit(limit))).all()
            total = int(await conn.scalar(select(func.count()).select_from(quarantine)
                                          .where(quarantine.c.account_id == account_id)) or 0)
        return [HeldNote(kind=row.kind, bling_id=int(row.bling_id), number=row.number,
                         access_key=row.access_key, reason=row.reason, attempts=int(row.attempts),
                         first_seen=row.first_seen, next_attempt_at=row.next_attempt_at,
                         reason_code=row.reason_code)
                for row in rows], total

    async def waiting_notes(self, account_id: int, *, limit: int) -> tuple[list[UnimportedNote], int]:
        """The account's first `limit` notes seen in Bling but not imported (oldest first), and
        how many there are (`Store.unimported` lists them all)."""
        async with self._read() as conn:
            rows = (await conn.execute(select(unimported_notes)
                                       .where(unimported_notes.c.account_id == account_id)
                                       .order_by(unimported_notes.c.issued_at, unimported_notes.c.number,
                                                 unimported_notes.c.id).limit(limit))).all()
            total = int(await conn.scalar(select(func.count()).select_from(unimported_notes)
                                          .where(unimported_notes.c.account_id == account_id)) or 0)
        return [UnimportedNote(kind=row.kind, bling_id=int(row.bling_id), number=int(row.number),
                               situation=InvoiceStatus(row.situation), issued_at=row.issued_at,
                               reason=row.reason, access_key=row.access_key, reason_code=row.reason_code)
                for row in rows], total


async def queue_and_runs(conn: AsyncConnection,
                         account_ids: Sequence[int] | None) -> dict[int, dict[str, Any]]:
    """The figures the accounts list, the account page and the API's account health share, for
    the given accounts (every account when None), in four grouped queries, each answered from an
    index: pending and dead events per channel (`pending`/`dead` for the sink,
    `writebacks_pending`/`writebacks_dead` for Bling) by the outbox's partial indexes, the
    notes in quarantine, and the latest run by one backward probe of `sync_runs(account_id, id)`
    per account (a GROUP BY over sync_runs would read every run ever recorded: a poll a minute
    is 1,440 runs a day per account). Accounts with none of these are absent."""
    def only(column: Any) -> list[ColumnElement[bool]]:
        return [] if account_ids is None else [column.in_(list(account_ids))]

    found: dict[int, dict[str, Any]] = {}
    for state, condition in (("pending", EVENT_PENDING), ("dead", EVENT_DEAD)):
        counts = await conn.execute(
            select(outbox.c.account_id, outbox.c.channel, func.count())
            .where(condition, *only(outbox.c.account_id))
            .group_by(outbox.c.account_id, outbox.c.channel))
        for account_id, channel, count in counts:
            key = {CHANNEL_SINK: state, CHANNEL_BLING: f"writebacks_{state}"}.get(channel)
            if key is not None:
                found.setdefault(int(account_id), {})[key] = int(count)
    held = await conn.execute(
        select(quarantine.c.account_id, func.count())
        .where(*only(quarantine.c.account_id)).group_by(quarantine.c.account_id))
    for account_id, count in held:
        found.setdefault(int(account_id), {})["quarantined"] = int(count)
    latest = (select(func.max(sync_runs.c.id)).where(sync_runs.c.account_id == accounts.c.id)
              .correlate(accounts).scalar_subquery())
    run_ids = select(latest).select_from(accounts).where(*only(accounts.c.id))
    for row in await conn.execute(select(sync_runs).where(sync_runs.c.id.in_(run_ids))):
        found.setdefault(int(row.account_id), {})["last_run"] = run_from_row(row)
    return found
