"""Bling webhooks received (`inbox`): stored once per eventId, claimed for their targeted re-check,
settled with an outcome in words.

`Store` inherits `InboxStore`, so these are ordinary store methods, one transaction each.

Why it is shaped this way:

* **Stored before anything else happens.** `POST /webhooks/bling` verifies the signature, calls
  `receive_webhook` and answers; every decision (which account, re-check or not) is the
  `InboxWorker`'s, so the request never waits for Bling and a crash after the answer loses
  nothing: the row is there, unprocessed.
* **Once per eventId.** Bling sends an event again when our answer was lost or slow; the unique
  `event_id` makes the second insert a no-op (`INSERT … ON CONFLICT DO NOTHING`), even when both
  copies arrive at the same instant in two processes.
* **`next_attempt_at` is the lease.** A claim moves it to `now + lease`: no other claim returns
  the row until then, and a worker that died mid-way gives it back by itself when the lease
  ends. On PostgreSQL the claim's `SELECT … FOR UPDATE SKIP LOCKED` lets workers claim side by
  side; on SQLite the claim runs inside `BEGIN IMMEDIATE`, which excludes every other writer.
* **Nothing is deleted.** A settled row keeps its outcome ("order created", "not used: …",
  "gave up after …"), so "what did blingsync do with that webhook?" always has an answer.

The records are plain dataclasses defined here, beside the only code that builds them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from blingsync.store.part import StorePart
from blingsync.store.tables import inbox

OUTCOME_LIMIT: Final = 1000
"""Characters of an outcome kept (an error's first lines are the useful part)."""


@dataclass(frozen=True)
class ReceivedWebhook:
    """A verified webhook as the endpoint hands it to the store: the raw body and the envelope
    fields the worker needs without parsing it again."""

    event_id: str
    event: str
    company_id: str
    body: bytes
    resource_id: int | None = None  # `data.id`: the note's (or sales order's) Bling id
    account_id: int | None = None  # the account it was routed to on arrival, when known


@dataclass(frozen=True)
class InboxEvent:
    """One stored webhook and what became of it."""

    id: int
    event_id: str
    event: str | None
    company_id: str | None
    resource_id: int | None
    account_id: int | None
    payload: str  # the body as received (UTF-8 JSON)
    body_sha256: str
    received_at: datetime
    processed_at: datetime | None
    attempts: int  # failed re-checks so far
    next_attempt_at: datetime | None  # due (or leased) until; None once processed
    outcome: str | None  # what the re-check did, in words; or its last error

    @property
    def processed(self) -> bool:
        return self.processed_at is not None


def _event(row: Row[Any]) -> InboxEvent:
    return InboxEvent(
        id=row.id, event_id=row.event_id, event=row.event, company_id=row.company_id,
        resource_id=row.resource_id, account_id=row.account_id, payload=row.payload,
        body_sha256=row.body_sha256, received_at=row.received_at, processed_at=row.processed_at,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, outcome=row.outcome)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= OUTCOME_LIMIT else text[: OUTCOME_LIMIT - 1] + "…"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


_UNPROCESSED: Final = inbox.c.processed_at.is_(None)


class InboxStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""

    async def receive_webhook(self, webhook: ReceivedWebhook) -> InboxEvent | None:
        """Store a verified webhook, due for its re-check at once. None when a webhook with this
        eventId is stored already (Bling sent it again): nothing is written then."""
        now = self._now()
        values = {
            "event_id": webhook.event_id, "account_id": webhook.account_id,
            "body_sha256": hashlib.sha256(webhook.body).hexdigest(), "received_at": now,
            "processed_at": None, "payload": webhook.body.decode("utf-8"), "event": webhook.event,
            "company_id": webhook.company_id, "resource_id": webhook.resource_id, "attempts": 0,
            "next_attempt_at": now, "outcome": None,
        }
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (dialect_insert(inbox).values(**values)
                     .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
                     .returning(*inbox.c))
        async with self._write() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _event(row)

    async def claim_webhooks(self, *, limit: int, lease: timedelta, now: datetime) -> list[InboxEvent]:
        """Up to `limit` unprocessed webhooks due at `now`, oldest first, leased to the caller
        until `now + lease` (see the module docstring). Each comes back with its lease as
        `next_attempt_at`."""
        if limit <= 0:
            return []
        if lease <= timedelta(0):
            raise ValueError("a claim's lease must be positive")
        now = _aware(now, "now")
        query = (select(inbox)
                 .where(_UNPROCESSED, or_(inbox.c.next_attempt_at.is_(None), inbox.c.next_attempt_at <= now))
                 .order_by(inbox.c.received_at, inbox.c.id)
                 .limit(limit))
        rows = await self._lease(query, inbox, "next_attempt_at", now + lease)
        return [_event(row) for row in rows]

    async def settle_webhook(self, inbox_id: int, outcome: str, *, account_id: int | None = None) -> bool:
        """The webhook is done with: `outcome` says what was done (or why nothing was). With
        `account_id`, the account it concerned is recorded too. False when it was settled
        already (another worker, whose lease had run out, finished first)."""
        values: dict[str, Any] = {"processed_at": self._now(), "next_attempt_at": None,
                                  "outcome": _short(outcome)}
        if account_id is not None:
            values["account_id"] = account_id
        async with self._write() as conn:
            result = await conn.execute(update(inbox).where(inbox.c.id == inbox_id, _UNPROCESSED)
                                        .values(**values))
        return result.rowcount > 0

    async def defer_webhook(self, inbox_id: int, reason: str, next_attempt_at: datetime, *,
                            failed: bool) -> bool:
        """Try the webhook again at `next_attempt_at`. `failed`: the re-check failed (the
        attempt counts, `reason` is its error); otherwise it waits for something outside it
        (a paused account) and its attempts stay. False when it is no longer unprocessed."""
        values: dict[str, Any] = {"next_attempt_at": _aware(next_attempt_at, "next_attempt_at"),
                                  "outcome": _short(reason)}
        if failed:
            values["attempts"] = inbox.c.attempts + 1
        async with self._write() as conn:
            result = await conn.execute(update(inbox).where(inbox.c.id == inbox_id, _UNPROCESSED)
                                        .values(**values))
        return result.rowcount > 0

    async def inbox_event(self, event_id: str) -> InboxEvent | None:
        """The webhook stored under Bling's eventId, if any."""
        async with self._read() as conn:
            row = (await conn.execute(select(inbox).where(inbox.c.event_id == event_id))).first()
        return None if row is None else _event(row)

    async def inbox_events(self, *, after_id: int = 0, limit: int = 100, unprocessed: bool | None = None,
                           account_id: int | None = None) -> list[InboxEvent]:
        """Stored webhooks by id ascending, after `after_id`; only the unprocessed ones (or only
        the processed ones) when `unprocessed` says so."""
        query = select(inbox).where(inbox.c.id > after_id)
        if unprocessed is not None:
            query = query.where(_UNPROCESSED if unprocessed else inbox.c.processed_at.is_not(None))
        if account_id is not None:
            query = query.where(inbox.c.account_id == account_id)
        async with self._read() as conn:
            rows = (await conn.execute(query.order_by(inbox.c.id).limit(limit))).all()
        return [_event(row) for row in rows]

    async def inbox_depth(self, *, due_by: datetime | None = None) -> int:
        """Unprocessed webhooks (only those due by `due_by`, when given): the queue's depth."""
        query = select(func.count()).select_from(inbox).where(_UNPROCESSED)
        if due_by is not None:
            query = query.where(or_(inbox.c.next_attempt_at.is_(None),
                                    inbox.c.next_attempt_at <= _aware(due_by, "due_by")))
        async with self._read() as conn:
            return int(await conn.scalar(query) or 0)

    async def next_webhook_due(self) -> datetime | None:
        """When the earliest unprocessed webhook falls due (a worker sleeps until then)."""
        async with self._read() as conn:
            due: datetime | None = await conn.scalar(
                select(func.min(inbox.c.next_attempt_at)).where(_UNPROCESSED))
        return due

