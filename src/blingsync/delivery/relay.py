"""The outbox relay: takes due events from the store and delivers them through each account's
sink, at least once per event and in order per order (docs/delivery.md).

Why it is shaped this way:

* **The store decides what may go out** (`Store.claim_events`): at most one event per order,
  its earliest undelivered one, leased to this relay. Ordering therefore holds across any
  number of relays and processes without the relays talking to each other; within a batch the
  relay still delivers each order's events one after another, should a claim ever hold more.
* **Retries are the relay's, not the sink's**: capped exponential backoff with full jitter
  (thousands of events of a receiver that comes back must not all knock at the same second),
  until `horizon` after the event was written (or last replayed); the failure after that makes
  it dead, visible and replayable, with its last error.
* **Everything time-based reads the injected clock**, so a test can live through an hour of
  downtime in a loop; only the attempt's duration is measured with the real monotonic clock.
* Bounded concurrency: one slow receiver holds at most `per_account` of the `concurrency`
  slots, so other accounts keep flowing.
* **One channel per relay** (`store.outbox`): the sink relay claims the order changes meant for
  the warehouse (`sink`), the write-back relay (`blingsync.delivery.writeback`) what goes back
  to Bling (`bling`); each keeps its own per-order order, so neither can block the other.
* Most failures are worth retrying; the few that no retry can fix (a permission the brand must
  grant, a record Bling no longer has) come back as `Permanent` and make the event dead at
  once, with its words, instead of knocking for three days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from blingsync.delivery.sinks.base import DeliveryResult, Outcome
from blingsync.store import Store
from blingsync.store.outbox import CHANNEL_SINK, CHANNELS
from blingsync.store.records import OutboxEvent, SinkKind
from blingsync.waiting import first_of

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DEFAULT_HORIZON: Final = timedelta(days=3)
DEFAULT_LEASE: Final = timedelta(minutes=5)
"""Longer than a batch can take (`batch` events, `per_account` at a time, 10 s timeout each)."""
UNRESOLVED_DELAY: Final = timedelta(minutes=1)
"""How long events wait when their account's sink could not be built or read."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits a uniform random time in
    [floor, min(cap, base·2ⁿ⁻¹)] (5 s, 10 s, 20 s … 10 min). Full jitter spreads the retries of
    many events over the whole interval; the floor keeps a failing receiver from being hammered
    in a tight loop."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=10)
    floor: timedelta = timedelta(seconds=1)

    def ceiling(self, attempt: int) -> timedelta:
        exponent = min(max(attempt - 1, 0), 32)
        return min(self.cap, self.base * (1 << exponent))

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        ceiling = self.ceiling(attempt)
        low = min(self.floor, ceiling)
        return low + (ceiling - low) * rng.random()


@dataclass(frozen=True)
class Permanent(DeliveryResult):
    """A failure that no retry can fix (Bling refused for want of a permission, the record is
    gone): the relay marks the event dead at once, with `error`, for an operator to fix the
    cause and replay. Its `outcome` stays RETRY, so anything that does not know this class
    still treats it as a failure to retry, never as delivered."""

    @classmethod
    def because(cls, error: str, *, status: int | None = None) -> Permanent:
        return cls(Outcome.RETRY, error=error, status=status)


class Deliverer(Protocol):
    """What the relay delivers one account's events through: a `Sink` (channel `sink`) or an
    account's write-back to Bling (channel `bling`). Must not raise for the far side's
    failures; an exception anyway is treated as a failure to retry."""

    async def deliver(self, event: OutboxEvent) -> DeliveryResult: ...


class SinkResolver(Protocol):
    """Builds an account's deliverer for the relay (`blingsync.delivery.sinks.StoreSinks`,
    `blingsync.delivery.writeback.BlingWritebacks`)."""

    @property
    def kinds(self) -> frozenset[SinkKind]:
        """The sink kinds it can build: the sink relay claims only events of accounts with
        these (channel `bling` has no sinks and ignores them)."""
        ...

    async def resolve(self, account_id: int) -> Deliverer | None:
        """The account's deliverer now; None when its events must wait (no sink, a disabled
        one, write-back switched off): they are given back, without an attempt."""
        ...


def _label(deliverer: Deliverer, channel: str) -> str:
    """How logs name a deliverer: the sink's kind, else the channel."""
    kind = getattr(deliverer, "kind", None)
    return str(kind.value) if isinstance(kind, SinkKind) else channel


@dataclass
class RelayStats:
    """What one `run_once` did (counts of events, except `disabled`: sinks switched off)."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0  # given back without an attempt (sink disabled or unavailable, pull-only)
    disabled: int = 0
    errors: int = 0  # the store failed while recording an outcome (the lease brings it back)

    def add(self, other: RelayStats) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _AccountTurn:
    """One account's share of a batch."""

    account_id: int
    sink: Deliverer
    label: str
    gate: asyncio.Semaphore
    disabled: bool = False
    stats: RelayStats = field(default_factory=RelayStats)


class Relay:
    def __init__(self, store: Store, sinks: SinkResolver, clock: Clock = utc_now, *,
                 horizon: timedelta = DEFAULT_HORIZON, backoff: Backoff | None = None,
                 batch: int = 100, lease: timedelta = DEFAULT_LEASE, concurrency: int = 16,
                 per_account: int = 4, rng: random.Random | None = None,
                 unresolved_delay: timedelta = UNRESOLVED_DELAY, channel: str = CHANNEL_SINK) -> None:
        if horizon <= timedelta(0) or lease <= timedelta(0) or batch < 1:
            raise ValueError("the relay needs a positive horizon, lease and batch")
        if channel not in CHANNELS:
            raise ValueError(f"unknown outbox channel {channel!r}; known: {', '.join(sorted(CHANNELS))}")
        self._store = store
        self.channel = channel
        self._sinks = sinks
        self._clock = clock
        self.horizon = horizon
        self.backoff = backoff or Backoff()
        self._batch = batch
        self._lease = lease
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._per_account = max(1, per_account)
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not security)
        self._unresolved_delay = unresolved_delay
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"Relay(store={self._store!r}, channel={self.channel!r}, horizon={self.horizon})"

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the relay's clock must return aware datetimes")
        return now.astimezone(UTC)

    def notify(self) -> None:
        """New events were written: an idle `run_forever` claims at once instead of sleeping."""
        self._wake.set()

    # --- one batch ----------------------------------------------------------------------------

    async def run_once(self) -> RelayStats:
        """Claim one batch and settle every event of it (delivered, retry scheduled, dead, or
        given back). Returns what happened; `claimed == 0` means nothing was due."""
        events = await self._store.claim_events(limit=self._batch, lease=self._lease, now=self._now(),
                                                kinds=self._sinks.kinds, channel=self.channel)
        stats = RelayStats(claimed=len(events))
        by_account: dict[int, list[OutboxEvent]] = defaultdict(list)
        for event in events:
            by_account[event.account_id].append(event)
        try:
            results = await asyncio.gather(*(self._account(account_id, batch)
                                             for account_id, batch in by_account.items()))
        except asyncio.CancelledError:
            # A stop cut the batch short: give back what is not settled (the store only touches
            # pending rows), so the next relay takes it at once instead of after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_events([event.id for event in events]))
            raise
        for result in results:
            stats.add(result)
        return stats

    async def _account(self, account_id: int, events: list[OutboxEvent]) -> RelayStats:
        try:
            sink = await self._sinks.resolve(account_id)
        except Exception:
            log.exception("account %s: its %s deliverer could not be built; its events wait", account_id,
                          self.channel)
            sink = None
        if sink is None:
            return await self._give_back(events, self._now() + self._unresolved_delay)
        turn = _AccountTurn(account_id, sink, _label(sink, self.channel),
                            asyncio.Semaphore(self._per_account))
        chains: dict[int, list[OutboxEvent]] = defaultdict(list)
        for event in sorted(events, key=lambda e: e.id):
            chains[event.order_id].append(event)
        await asyncio.gather(*(self._chain(turn, chain) for chain in chains.values()))
        return turn.stats

    async def _chain(self, turn: _AccountTurn, chain: Sequence[OutboxEvent]) -> None:
        """One order's events, strictly one after another; the first that is not delivered
        stops the chain (the rest go back, so nothing overtakes it)."""
        for index, event in enumerate(chain):
            async with self._gate, turn.gate:
                # Checked once the slot is ours: a sibling may have been told 410 meanwhile.
                delivered = None if turn.disabled else await self._one(turn, event)
            if delivered is None:
                turn.stats.add(await self._give_back(chain[index:]))
                return
            if not delivered:  # this event is settled (retry, dead, released); the rest go back
                turn.stats.add(await self._give_back(chain[index + 1 :]))
                return

    async def _one(self, turn: _AccountTurn, event: OutboxEvent) -> bool:
        """Deliver one event and record its outcome; True when delivered."""
        started = time.monotonic()
        try:
            result = await turn.sink.deliver(event)
        except Exception as exc:
            log.warning("event %s: the %s sink raised %s", event.id, turn.label, type(exc).__name__,
                        exc_info=True)
            result = DeliveryResult.retry(f"the sink failed unexpectedly ({type(exc).__name__})")
        duration = timedelta(seconds=time.monotonic() - started)
        try:
            return await self._record(turn, event, result, duration)
        except Exception:
            log.exception("event %s: its outcome could not be recorded; it comes back when its lease ends",
                          event.id)
            turn.stats.errors += 1
            return False

    async def _record(self, turn: _AccountTurn, event: OutboxEvent, result: DeliveryResult,
                      duration: timedelta) -> bool:
        now = self._now()
        stats = turn.stats
        if result.outcome is Outcome.DELIVERED:
            await self._store.mark_delivered(event.id, attempt_duration=duration, now=now)
            stats.delivered += 1
            log.info("event %s (%s) delivered to account %s's %s sink in %d ms", event.id,
                     event.idempotency_key, turn.account_id, turn.label,
                     duration.total_seconds() * 1000)
            return True
        if result.outcome is Outcome.KEEP:
            await self._store.release_events([event.id])
            stats.released += 1
            return False
        error = result.error or "not delivered"
        if result.outcome is Outcome.DISABLE:
            turn.disabled = True
            if await self._store.disable_sink(turn.account_id, error):
                stats.disabled += 1
                log.warning("account %s: sink disabled: %s", turn.account_id, error)
            await self._store.release_events([event.id])
            stats.released += 1
            return False
        started = event.replayed_at or event.created_at
        if isinstance(result, Permanent) or now >= started + self.horizon:
            await self._store.mark_dead(event.id, error, attempt_duration=duration, now=now)
            stats.dead += 1
            log.error("event %s (%s) is dead after %d attempts: %s", event.id, event.idempotency_key,
                      event.attempts + 1, error)
            return False
        delay = self.backoff.delay(event.attempts + 1, self._rng)
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, self.backoff.cap))
        await self._store.mark_failed(event.id, error, now + delay, attempt_duration=duration)
        stats.retried += 1
        log.info("event %s (%s): attempt %d failed (%s); next in %s", event.id, event.idempotency_key,
                 event.attempts + 1, error, delay)
        return False

    async def _give_back(self, events: Sequence[OutboxEvent], at: datetime | None = None) -> RelayStats:
        stats = RelayStats()
        if events:
            try:
                stats.released = await self._store.release_events([e.id for e in events], next_attempt_at=at)
            except Exception:
                log.exception("claimed events could not be given back; they return when their lease ends")
                stats.errors += len(events)
        return stats

    # --- forever ------------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event, idle_sleep: float = 1.0,
                          on_batch: Callable[[RelayStats], None] | None = None) -> None:
        """Batches until `stop` is set: the next at once while there is work, else after
        `idle_sleep` seconds or a `notify()`. A failing database is logged and retried, never
        fatal: the relay of `blingsync serve` must outlive a database restart. `on_batch` sees
        each batch's outcome (serve counts them in its metrics)."""
        while not stop.is_set():
            self._wake.clear()  # before the claim: a notify() during the batch is not lost
            try:
                stats = await self.run_once()
            except Exception:
                log.exception("the relay could not claim events; trying again in %.1f s", idle_sleep)
                stats = RelayStats()
            if on_batch is not None:
                on_batch(stats)
            if stats.claimed and stats.claimed > stats.released:
                await asyncio.sleep(0)  # let others run between busy batches
                continue
            await first_of(stop.wait(), self._wake.wait(), asyncio.sleep(idle_sleep))
