"""The poll scheduler of `blingsync serve`: every account imported at its own interval.

Why it is shaped this way:

* **Spread, not synchronised.** A thousand brands polled "every 60 s" must not all fire in the
  same second (a burst of database writes and a wall of requests from one IP). An account seen
  for the first time whose last pass is older than its interval (a restart after downtime)
  starts at a random offset within one interval; one polled recently keeps its phase (its last
  start + interval), so a restart does not re-synchronise anything. Each later poll is
  `interval × U(1 − jitter, 1 + jitter)` after the previous start, so phases keep drifting
  apart instead of locking together. An account that was never imported starts at once: a
  brand that just connected is waiting to see its orders.
* **One pass per account at a time, a bounded number at once.** A pass that outlives its
  interval is not overlapped by the next (the importer is idempotent, but two passes would pay
  Bling twice for the same notes); at most `parallel` accounts import at once, the others wait
  in due order (`lag()` says how late the most overdue one is).
* **Accounts come and go while it runs.** The account list is re-read every `refresh_every`
  seconds (added, removed, paused, resumed, interval changed); `sync_now` re-reads that one
  account at once, so an account added or resumed through the API starts without waiting.
* **Only the user can fix some states** (`Service.SKIPPED_STATES`: paused, revoked, invalid key,
  API v2 discontinued): polling them would only repeat the error, so they are left alone until
  their state changes. `sync_now` still runs them, except paused ones: an explicit request after
  a fix deserves a try.
* **One account's failure is its own.** A pass that raises is logged and counted; the account
  is polled again at its next interval and every other account carries on.
* **Time is injected** (`blingsync.bling.limits.Clock`): tests run hours of polls on a
  `FakeClock` in milliseconds.

The scheduler talks to the rest through `SchedulerPort` (`ServicePort` in production: the store's
accounts and the importer over the service's rate-limited clients), so its rules are testable
against an in-memory port on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from blingsync.bling.limits import Clock, SystemClock
from blingsync.metrics import Metrics, SyncRecord
from blingsync.service import PARALLEL_ACCOUNTS, SKIPPED_STATES, Service
from blingsync.store import NotFoundError
from blingsync.store.records import Account, AccountState
from blingsync.sync.importer import Importer, ImportReport
from blingsync.waiting import first_of

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 60.0
JITTER: Final = 0.10
"""Each poll comes `interval × U(0.9, 1.1)` after the previous one started."""
REFRESH_EVERY_S: Final = 5.0
"""How often the account list is re-read (one query): how soon a paused, resumed, added or
removed account is noticed when nobody called `sync_now` for it."""
MIN_INTERVAL_S: Final = 1.0


@dataclass(frozen=True)
class SyncResult:
    """What one pass did: the importer's report (its Bling calls are counted by the client,
    `Service.bling_calls`)."""

    report: ImportReport

    @property
    def wrote_events(self) -> bool:
        counters = self.report.counters
        return bool(counters.created or counters.updated or counters.canceled)


class SchedulerPort(Protocol):
    """What the scheduler needs of the world."""

    async def accounts(self) -> list[Account]: ...

    async def account(self, account_id: int) -> Account | None:
        """The account as stored now; None when it no longer exists."""
        ...

    async def last_started(self, account: Account) -> datetime | None:
        """When the account's latest import pass started; None when it never ran."""
        ...

    def now(self) -> datetime: ...

    async def sync(self, account: Account, trigger: str) -> SyncResult: ...


class ServicePort:
    """The scheduler's port over a `Service`: accounts from the store, passes through the
    importer with the service's client (one rate limiter per Bling account in the process)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    async def accounts(self) -> list[Account]:
        return await self._service.store.accounts()

    async def account(self, account_id: int) -> Account | None:
        try:
            return await self._service.store.account_by_id(account_id)
        except NotFoundError:
            return None

    async def last_started(self, account: Account) -> datetime | None:
        runs = await self._service.store.runs(account.id, limit=1)
        return runs[0].started_at if runs else None

    def now(self) -> datetime:
        return self._service.now()

    async def sync(self, account: Account, trigger: str) -> SyncResult:
        # The importer directly rather than `Service.sync`: the scheduler already chose this
        # account (state, pause) and wants the pass's error raised, not summarised.
        client = await self._service.client(account)
        report = await Importer(self._service.store, client, account, now=self._service.now).run(
            trigger=trigger)
        return SyncResult(report)


def interval_of(account: Account) -> float:
    """The account's poll interval in seconds (its setting, 60 s by default, at least 1 s)."""
    return max(MIN_INTERVAL_S, float(account.settings.poll_interval_s or DEFAULT_INTERVAL_S))


@dataclass(eq=False)
class _Slot:
    """One account's place in the schedule."""

    account: Account
    due: float  # monotonic seconds
    task: asyncio.Task[None] | None = None
    again: bool = False  # a sync_now arrived during a pass: one more right after it
    trigger: str = "poll"  # "manual" once `sync_now` asked for the next pass

    @property
    def interval(self) -> float:
        return interval_of(self.account)

    @property
    def polled(self) -> bool:
        """Whether the schedule runs it (only the user can fix the skipped states)."""
        return self.account.state not in SKIPPED_STATES


def _nothing() -> None:
    return None


class Scheduler:
    def __init__(self, port: SchedulerPort, *, metrics: Metrics | None = None,
                 on_events: Callable[[], None] = _nothing, clock: Clock | None = None,
                 rng: random.Random | None = None, parallel: int = PARALLEL_ACCOUNTS,
                 refresh_every: float = REFRESH_EVERY_S, jitter: float = JITTER, poll: bool = True) -> None:
        if not 0 <= jitter < 1:
            raise ValueError("the jitter is a fraction of the interval, in [0, 1)")
        self._port = port
        self._metrics = metrics
        self._on_events = on_events
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not security)
        self._parallel = max(1, parallel)
        self._refresh_every = max(0.0, refresh_every)
        self._jitter = jitter
        self._poll = poll  # False: only `sync_now` passes (`serve --no-scheduler`)
        self._slots: dict[int, _Slot] = {}
        self._requested: set[int] = set()
        self._wake = asyncio.Event()
        self._next_refresh = -float("inf")

    # --- what others call ---------------------------------------------------------------------

    def sync_now(self, account_id: int) -> None:
        """Import this account as soon as a slot is free (the API's "sync now", an account just
        added or resumed). Coalesced: during a pass, one more pass follows it, however many
        times this is called meanwhile."""
        self._requested.add(account_id)
        self._wake.set()

    def lag(self) -> float:
        """Seconds the most overdue waiting poll is late (0 when every due poll has started)."""
        now = self._clock.monotonic()
        late = [now - slot.due for slot in self._slots.values()
                if slot.task is None and slot.due <= now
                and ((self._poll and slot.polled) or slot.trigger == "manual")]
        return max(late, default=0.0)

    def running(self) -> int:
        return sum(1 for slot in self._slots.values() if slot.task is not None)

    def scheduled(self) -> int:
        """Accounts polled at their interval (0 without polling)."""
        return sum(1 for slot in self._slots.values() if slot.polled) if self._poll else 0

    # --- the loop -----------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then let the passes in flight finish. Cancelled (a stop
        that ran out of patience), it cancels them: each records its run as interrupted and
        the next start carries on from the committed cursor."""
        try:
            while not stop.is_set():
                if self._poll and self._clock.monotonic() >= self._next_refresh:
                    await self.refresh()
                await self._take_requests()
                self._start_due()
                await self._wait(stop, self._next_wake())
            await self._drain()
        finally:
            await self._cancel_passes()

    async def refresh(self) -> None:
        """Re-read the account list: new accounts get a slot, removed ones lose theirs (after
        their pass), changed ones (state, interval) are updated in place. A database that fails
        here is logged and tried again later; the schedule keeps what it knew."""
        self._next_refresh = self._clock.monotonic() + self._refresh_every
        try:
            accounts = await self._port.accounts()
        except Exception:
            log.warning("scheduler: the account list could not be read; retrying in %.0f s",
                        self._refresh_every, exc_info=True)
            return
        seen = {account.id for account in accounts}
        for account_id in [i for i, slot in self._slots.items() if i not in seen and slot.task is None]:
            del self._slots[account_id]
        for account in accounts:
            await self._update(account)

    async def _update(self, account: Account) -> _Slot:
        slot = self._slots.get(account.id)
        if slot is None:
            slot = _Slot(account, await self._first_due(account))
            self._slots[account.id] = slot
            return slot
        before = slot.interval
        slot.account = account
        if slot.interval < before and slot.task is None:  # a shorter interval applies now
            slot.due = min(slot.due, self._clock.monotonic() + slot.interval)
        return slot

    async def _first_due(self, account: Account) -> float:
        now = self._clock.monotonic()
        interval = interval_of(account)
        try:
            last = await self._port.last_started(account)
        except Exception:
            log.warning("scheduler: account %s: its last run could not be read", account.name,
                        exc_info=True)
            return now + self._rng.uniform(0.0, interval)
        if last is None:
            return now  # never imported: its brand is waiting for the first orders
        since = (self._port.now() - last).total_seconds()
        if 0 <= since < interval:
            return now + (interval - since)  # keeps its phase across a restart
        return now + self._rng.uniform(0.0, interval)

    async def _take_requests(self) -> None:
        requested, self._requested = self._requested, set()
        for account_id in requested:
            try:
                account = await self._port.account(account_id)
            except Exception:
                log.warning("scheduler: account %s could not be read for sync now; the next "
                            "refresh tries again", account_id, exc_info=True)
                self._requested.add(account_id)
                continue
            if account is None:  # deleted meanwhile; a slot in a pass goes at the next refresh
                slot = self._slots.get(account_id)
                if slot is not None and slot.task is None:
                    del self._slots[account_id]
                continue
            slot = await self._update(account)
            if account.state is AccountState.PAUSED:
                log.info("scheduler: account %s is paused; sync now ignored", account.name)
                continue
            if slot.task is not None:
                slot.again = True
            else:
                slot.due = self._clock.monotonic()
                slot.trigger = "manual"

    def _start_due(self) -> None:
        now = self._clock.monotonic()
        free = self._parallel - self.running()
        if free <= 0:
            return
        waiting = sorted((slot for slot in self._slots.values()
                          if slot.task is None and slot.due <= now
                          and ((self._poll and slot.polled) or slot.trigger == "manual")
                          and slot.account.state is not AccountState.PAUSED),
                         key=lambda slot: slot.due)
        for slot in waiting[:free]:
            trigger, slot.trigger = slot.trigger, "poll"
            slot.task = asyncio.create_task(self._pass(slot, trigger),
                                            name=f"sync {slot.account.name}")

    async def _pass(self, slot: _Slot, trigger: str) -> None:
        account = slot.account
        started = self._clock.monotonic()
        result: SyncResult | None = None
        try:
            result = await self._port.sync(account, trigger)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler: account %s: the import pass failed", account.name)
        finally:
            finished = self._clock.monotonic()
            slot.task = None
            slot.due = self._next_due(slot, started, finished)
            if slot.again:
                slot.again, slot.due, slot.trigger = False, finished, "manual"
            self._wake.set()
        if self._metrics is not None:
            self._metrics.record_sync(SyncRecord(account.name, result.report if result else None,
                                                 finished - started))
        if result is not None:
            if result.report.error:
                log.warning("scheduler: account %s: %s", account.name, result.report.error)
            if result.wrote_events:
                self._on_events()

    def _next_due(self, slot: _Slot, started: float, finished: float) -> float:
        spread = self._rng.uniform(1.0 - self._jitter, 1.0 + self._jitter)
        return max(started + slot.interval * spread, finished)

    def _next_wake(self) -> float:
        """Seconds until something is due: the next poll (when a slot is free) or refresh."""
        now = self._clock.monotonic()
        if self._requested:
            return 1.0  # a `sync_now` whose account could not be read: try again soon
        if not self._poll:
            return float("inf")  # only a `sync_now` (a wake) brings work
        deadline = self._next_refresh if self._refresh_every > 0 else float("inf")
        if self.running() < self._parallel:
            for slot in self._slots.values():
                if slot.task is None and slot.polled:
                    deadline = min(deadline, slot.due)
        return max(0.0, deadline - now)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        waits: list[Awaitable[object]] = [stop.wait(), self._wake.wait()]
        if seconds != float("inf"):
            waits.append(self._clock.sleep(seconds))
        await first_of(*waits)
        self._wake.clear()

    async def _drain(self) -> None:
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        if tasks:
            log.info("scheduler: waiting for %d import passes to finish", len(tasks))
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _cancel_passes(self) -> None:
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
