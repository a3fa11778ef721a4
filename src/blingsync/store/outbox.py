"""The store's side of delivery (`blingsync.delivery`): each account's sink, and the outbox
events' life after they were written: claimed by a relay, delivered, retried, dead, replayed.

`Store` inherits `DeliveryStore`, so these are ordinary store methods, one transaction each.

Claiming is where correctness lives:

* **Per order, in order.** An event is handed out only when no earlier event of its order is
  undelivered (pending *or* dead): a cancel never overtakes its create, and an update never
  reaches the warehouse before the version it updates. A dead event therefore holds its order's
  later events back until an operator replays it: skipping it would deliver a cancel of an order
  the warehouse never received. At most one event of an order is ever out at once.
* **Never to two relays at once.** A claim sets `leased_until`; until then no other claim
  returns the event, and after it (the relay crashed, or hung) the event comes back by itself.
  On PostgreSQL the claim's `SELECT … FOR UPDATE SKIP LOCKED` lets relays claim side by side
  without waiting on each other's candidate rows; on SQLite the claim runs inside `BEGIN
  IMMEDIATE`, which already excludes every other writer, so the lease column alone suffices.
* **Only what a relay can deliver.** Events of accounts without a sink, with a disabled sink or
  with the pull-only `none` sink stay pending (the events feed serves them) and are never
  claimed, so they neither crowd out deliverable events nor run into the retry horizon.

**Channels.** Each event belongs to one channel (`outbox.channel`): `sink` events are order
changes for the warehouse (the account's sink, the pull feed); `bling` events are write-backs to
Bling of what the warehouse reported (`blingsync.delivery.writeback`). A relay claims from one
channel only, and the per-order rule holds within a channel: a write-back that Bling refuses
never holds back the warehouse's next order change, nor the other way round.

Leases, due times and horizons are compared with the `now` the relay passes in (its injectable
clock), so tests can move hours in a loop; outcomes default to the store's clock.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Row, and_, exists, func, insert, or_, select, update

from blingsync.bling.secrets import Secret
from blingsync.store.crypto import DecryptionFailed
from blingsync.store.errors import AccountNotFound, NotFoundError, StoreError
from blingsync.store.part import StorePart
from blingsync.store.records import PUSH_KINDS, EventType, OutboxEvent, SinkConfig, SinkKind
from blingsync.store.tables import accounts, outbox, sinks

CHANNEL_SINK: Final = "sink"
"""Order changes for the warehouse: delivered through the account's sink, read by the feed."""
CHANNEL_BLING: Final = "bling"
"""Write-backs to Bling of what the warehouse reported (shipments)."""
CHANNELS: Final = frozenset({CHANNEL_SINK, CHANNEL_BLING})

ERROR_LIMIT: Final = 500
"""Characters of a delivery error kept (the UI shows it; a receiver's whole HTML page is noise)."""


class EventNotFound(NotFoundError):
    def __init__(self, event_id: int) -> None:
        super().__init__(f"no outbox event with id {event_id}")
        self.event_id = event_id


class NotReplayable(StoreError):
    """Replay of an event that was delivered already (the warehouse has it under its key)."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"outbox event {event_id} was delivered already; only dead or pending events "
                         "can be replayed")
        self.event_id = event_id


class SinkSecretUnreadable(StoreError):
    """The sink's stored secret cannot be decrypted (another secret key, or a blob copied from
    another account). Never garbage, never a half-read secret."""

    def __init__(self, account_id: int, why: str) -> None:
        super().__init__(
            f"the stored sink secret of account {account_id} cannot be read: {why}. Start blingsync "
            "with the secret key it was saved with, or configure the account's sink again"
        )
        self.account_id = account_id


def sink_secret_aad(account_id: int) -> bytes:
    """Binds a sink secret blob to its account (a purpose distinct from the Bling credentials,
    so neither blob can stand in for the other)."""
    return f"blingsync:account:{account_id}:sink-secret".encode()


def outbox_event(row: Row[Any]) -> OutboxEvent:
    """An outbox row as a record, delivery columns included."""
    return OutboxEvent(
        id=row.id, account_id=row.account_id, order_id=row.order_id, type=EventType(row.type),
        order_version=row.order_version, idempotency_key=row.idempotency_key,
        payload=json.loads(row.payload), created_at=row.created_at, attempts=row.attempts,
        next_attempt_at=row.next_attempt_at, last_error=row.last_error,
        delivered_at=row.delivered_at, dead_at=row.dead_at, leased_until=row.leased_until,
        replayed_at=row.replayed_at, last_attempt_ms=row.last_attempt_ms)


def _ms(duration: timedelta | None) -> int | None:
    return None if duration is None else max(0, round(duration.total_seconds() * 1000))


def _short(error: str) -> str:
    error = " ".join(error.split())
    return error if len(error) <= ERROR_LIMIT else error[: ERROR_LIMIT - 1] + "…"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown outbox channel {channel!r}; known: {', '.join(sorted(CHANNELS))}")
    return channel


def _check_sink(config: SinkConfig) -> None:
    kind = SinkKind(config.kind)
    if kind in PUSH_KINDS:
        parts = urlsplit(config.url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a {kind.value} sink needs an http(s) URL")
        if config.secret is None or not config.secret.reveal():
            raise ValueError(f"a {kind.value} sink needs a secret")
    if any(not isinstance(k, str) or not isinstance(v, str) for k, v in config.options.items()):
        raise ValueError("sink options are text keys and text values")


EVENT_UNDELIVERED: Final = outbox.c.delivered_at.is_(None)
EVENT_PENDING: Final = and_(EVENT_UNDELIVERED, outbox.c.dead_at.is_(None))
"""An event waiting for (another) attempt: the predicate of `ix_outbox_pending`. With
`EVENT_DEAD`, the one definition every count and list of the queue uses (the relay's claims,
the API, the dashboard, the Contas figures), so they can never disagree about an event."""
EVENT_DEAD: Final = and_(EVENT_UNDELIVERED, outbox.c.dead_at.is_not(None))
"""An event given up on, waiting for a fix and a replay: the predicate of `ix_outbox_dead`."""


class DeliveryStore(StorePart):
    """The delivery methods of `Store` (mixed in; see the module docstring)."""

    def _at(self, now: datetime | None) -> datetime:
        return self._now() if now is None else _aware(now, "now")

    # --- sinks --------------------------------------------------------------------------------

    async def set_sink(self, account_id: int, config: SinkConfig) -> SinkConfig:
        """Store the account's sink, replacing the one it had (a new secret, URL or kind takes
        effect at the relay's next claim). Enabling it again clears the disabled reason."""
        _check_sink(config)
        now = self._now()
        secret = None if config.secret is None else self._box.encrypt(
            config.secret.reveal().encode(), sink_secret_aad(account_id))
        values = {
            "kind": SinkKind(config.kind).value, "url": config.url, "secret": secret,
            "options": json.dumps(dict(config.options), sort_keys=True, ensure_ascii=False),
            "enabled": config.enabled, "disabled_reason": None if config.enabled else config.disabled_reason,
            "updated_at": now,
        }
        async with self._write() as conn:
            # The account row is locked (by this FOR UPDATE on PostgreSQL, by the write transaction
            # on SQLite), so two set_sink calls of one account take turns instead of both inserting.
            found = await conn.scalar(select(accounts.c.id).where(accounts.c.id == account_id)
                                      .with_for_update())
            if found is None:
                raise AccountNotFound(account_id=account_id)
            result = await conn.execute(update(sinks).where(sinks.c.account_id == account_id)
                                        .values(**values))
            if result.rowcount == 0:
                await conn.execute(insert(sinks).values(account_id=account_id, created_at=now, **values))
            row = (await conn.execute(select(sinks).where(sinks.c.account_id == account_id))).one()
        return self._sink(row)

    async def sink(self, account_id: int) -> SinkConfig | None:
        """The account's sink, secret included (as a `Secret`); None when it has none."""
        async with self._read() as conn:
            row = (await conn.execute(select(sinks).where(sinks.c.account_id == account_id))).first()
        return None if row is None else self._sink(row)

    async def disable_sink(self, account_id: int, reason: str) -> bool:
        """Switch the sink off (the receiver said 410 Gone): its events stay pending, unclaimed,
        until someone enables it again with `set_sink`. False when it had no enabled sink."""
        async with self._write() as conn:
            result = await conn.execute(update(sinks).where(
                sinks.c.account_id == account_id, sinks.c.enabled.is_(True),
            ).values(enabled=False, disabled_reason=_short(reason), updated_at=self._now()))
        return result.rowcount > 0

    async def remove_sink(self, account_id: int) -> bool:
        """Forget the account's sink: its events stay pending (pull-only, as with `none`)."""
        async with self._write() as conn:
            result = await conn.execute(sinks.delete().where(sinks.c.account_id == account_id))
        return result.rowcount > 0

    def _sink(self, row: Row[Any]) -> SinkConfig:
        secret: Secret | None = None
        if row.secret is not None:
            try:
                plain = self._box.decrypt(bytes(row.secret), sink_secret_aad(row.account_id))
                secret = Secret(plain.decode())
            except DecryptionFailed as exc:
                raise SinkSecretUnreadable(row.account_id, exc.why) from None
        return SinkConfig(
            kind=SinkKind(row.kind), url=row.url, secret=secret, options=dict(json.loads(row.options)),
            enabled=bool(row.enabled), disabled_reason=row.disabled_reason, created_at=row.created_at,
            updated_at=row.updated_at)

    # --- claiming -----------------------------------------------------------------------------

    async def claim_events(self, *, limit: int, lease: timedelta, now: datetime,
                           kinds: Collection[SinkKind] = PUSH_KINDS,
                           channel: str = CHANNEL_SINK) -> list[OutboxEvent]:
        """Up to `limit` due events of `channel` for a relay, leased to it until `now + lease`:
        the oldest due first, at most one per order (its earliest undelivered one in the
        channel). Channel `sink`: only of accounts whose sink is enabled and of one of `kinds`;
        channel `bling`: of every account (the write-back relay decides per account). See the
        module docstring for why each rule holds."""
        _check_channel(channel)
        if limit <= 0:
            return []
        if lease <= timedelta(0):
            raise ValueError("a claim's lease must be positive")
        now = _aware(now, "now")
        earlier = outbox.alias("earlier")
        blocked = exists().where(earlier.c.order_id == outbox.c.order_id, earlier.c.id < outbox.c.id,
                                 earlier.c.channel == outbox.c.channel, earlier.c.delivered_at.is_(None))
        conditions = [EVENT_PENDING, outbox.c.channel == channel, outbox.c.next_attempt_at <= now,
                      or_(outbox.c.leased_until.is_(None), outbox.c.leased_until <= now), ~blocked]
        if channel == CHANNEL_SINK:
            deliverable = select(sinks.c.account_id).where(
                sinks.c.enabled.is_(True), sinks.c.kind.in_(sorted(SinkKind(k).value for k in kinds)))
            conditions.append(outbox.c.account_id.in_(deliverable))
        query = (select(outbox)
                 .where(*conditions)
                 .order_by(outbox.c.next_attempt_at, outbox.c.id)
                 .limit(limit))
        until = now + lease
        rows = await self._lease(query, outbox, "leased_until", until)
        return [replace(outbox_event(row), leased_until=until) for row in rows]

    async def release_events(self, event_ids: Sequence[int], *,
                             next_attempt_at: datetime | None = None) -> int:
        """Give claimed events back without an attempt (the relay stops, or cannot reach a sink
        for reasons of its own): due again at once, or at `next_attempt_at`."""
        if not event_ids:
            return 0
        values: dict[str, Any] = {"leased_until": None}
        if next_attempt_at is not None:
            values["next_attempt_at"] = _aware(next_attempt_at, "next_attempt_at")
        async with self._write() as conn:
            result = await conn.execute(update(outbox).where(outbox.c.id.in_(list(event_ids)), EVENT_PENDING)
                                        .values(**values))
        return int(result.rowcount)

    # --- outcomes -----------------------------------------------------------------------------

    async def mark_delivered(self, event_id: int, *, attempt_duration: timedelta,
                             now: datetime | None = None) -> bool:
        """The sink accepted the event. False when it was delivered already (a relay whose lease
        ran out delivered it too: at least once, under the same key)."""
        async with self._write() as conn:
            result = await conn.execute(update(outbox).where(
                outbox.c.id == event_id, outbox.c.delivered_at.is_(None),
            ).values(delivered_at=self._at(now), dead_at=None, attempts=outbox.c.attempts + 1,
                     next_attempt_at=None, leased_until=None, last_attempt_ms=_ms(attempt_duration)))
        return result.rowcount > 0

    async def mark_failed(self, event_id: int, error: str, next_attempt_at: datetime, *,
                          attempt_duration: timedelta | None = None) -> bool:
        """An attempt failed; try again at `next_attempt_at`. `error` must hold no secret (it is
        shown to operators); it is cut to `ERROR_LIMIT`. False when the event is no longer
        pending."""
        due = _aware(next_attempt_at, "next_attempt_at")
        async with self._write() as conn:
            result = await conn.execute(update(outbox).where(outbox.c.id == event_id, EVENT_PENDING).values(
                attempts=outbox.c.attempts + 1, last_error=_short(error), next_attempt_at=due,
                leased_until=None, last_attempt_ms=_ms(attempt_duration)))
        return result.rowcount > 0

    async def mark_dead(self, event_id: int, error: str, *, attempt_duration: timedelta | None = None,
                        now: datetime | None = None) -> bool:
        """The last attempt failed past the retry horizon: the event stops being tried and is
        listed in `dead_events` until replayed. False when it is no longer pending."""
        async with self._write() as conn:
            result = await conn.execute(update(outbox).where(outbox.c.id == event_id, EVENT_PENDING).values(
                attempts=outbox.c.attempts + 1, last_error=_short(error), dead_at=self._at(now),
                next_attempt_at=None, leased_until=None, last_attempt_ms=_ms(attempt_duration)))
        return result.rowcount > 0

    async def replay(self, event_id: int, *, now: datetime | None = None) -> OutboxEvent:
        """A dead (or still pending) event becomes due now, its attempts kept and its retry
        horizon restarted (`replayed_at`): the operator fixed the receiver and wants it sent.
        The later pending events of its order in its channel, held back behind it all along,
        get a fresh horizon too: they were never tried, and must not die on their first
        failure."""
        at = self._at(now)
        async with self._write() as conn:
            row = (await conn.execute(select(outbox.c.delivered_at, outbox.c.order_id, outbox.c.channel)
                                      .where(outbox.c.id == event_id).with_for_update())).first()
            if row is None:
                raise EventNotFound(event_id)
            if row.delivered_at is not None:
                raise NotReplayable(event_id)
            await conn.execute(update(outbox).where(outbox.c.id == event_id).values(
                dead_at=None, next_attempt_at=at, replayed_at=at))
            await conn.execute(update(outbox).where(
                outbox.c.order_id == row.order_id, outbox.c.channel == row.channel, outbox.c.id > event_id,
                EVENT_PENDING,
            ).values(replayed_at=at))
            replayed = (await conn.execute(select(outbox).where(outbox.c.id == event_id))).one()
        return outbox_event(replayed)

    # --- reading ------------------------------------------------------------------------------

    async def event(self, event_id: int) -> OutboxEvent:
        async with self._read() as conn:
            row = (await conn.execute(select(outbox).where(outbox.c.id == event_id))).first()
        if row is None:
            raise EventNotFound(event_id)
        return outbox_event(row)

    async def dead_events(self, account_id: int | None = None, *, limit: int = 1000,
                          channel: str | None = None) -> list[OutboxEvent]:
        """Dead events by id (oldest first): what an operator must look at and replay. Every
        channel unless `channel` is given (a dead write-back needs an operator as much)."""
        query = select(outbox).where(outbox.c.dead_at.is_not(None), outbox.c.delivered_at.is_(None))
        if account_id is not None:
            query = query.where(outbox.c.account_id == account_id)
        if channel is not None:
            query = query.where(outbox.c.channel == _check_channel(channel))
        async with self._read() as conn:
            rows = (await conn.execute(query.order_by(outbox.c.id).limit(limit))).all()
        return [outbox_event(row) for row in rows]

    async def pending_count(self, account_id: int | None = None, *, channel: str | None = None) -> int:
        """Events neither delivered nor dead (the queue depth; pull-only accounts' too), of
        every channel unless `channel` is given."""
        query = select(func.count()).select_from(outbox).where(EVENT_PENDING)
        if account_id is not None:
            query = query.where(outbox.c.account_id == account_id)
        if channel is not None:
            query = query.where(outbox.c.channel == _check_channel(channel))
        async with self._read() as conn:
            return int(await conn.scalar(query) or 0)

    async def pending_counts(self, *, channel: str | None = None) -> dict[int, int]:
        """Queue depth per account with any pending event (for metrics), of every channel
        unless `channel` is given."""
        query = select(outbox.c.account_id, func.count()).where(EVENT_PENDING)
        if channel is not None:
            query = query.where(outbox.c.channel == _check_channel(channel))
        query = query.group_by(outbox.c.account_id)
        async with self._read() as conn:
            return {int(account): int(count) for account, count in (await conn.execute(query)).all()}
