"""The inbox worker: turns stored Bling webhooks into targeted re-checks (docs/webhooks.md).

A webhook is a hint, never the truth: for `invoice.*` and `consumer_invoice.*` the worker asks
Bling's API about the one note the webhook names (`Importer.recheck_note`) and does what the
API's answer says, so a duplicated, late or reordered webhook can only cause a re-check that
changes nothing. Everything else is stored and settled as "not used", with the reason.

Why it is shaped this way:

* **Claimed from the store** (`Store.claim_webhooks`): a lease per row, `FOR UPDATE SKIP LOCKED`
  on PostgreSQL, so any number of workers in any number of processes share the inbox, and a
  worker that dies gives its rows back when their lease ends.
* **One re-check per note per batch**: the webhooks of a batch that name the same note (Bling's
  duplicates, a `created` followed by an `updated`) are settled by one look at the API, taken
  after all of them arrived.
* **Never lost**: a failed re-check (Bling unavailable, a rate limit that outlived the client's
  retries, a database error) is retried with capped, jittered backoff; an account that only its
  user can fix (paused, revoked, …: `service.SKIPPED_STATES`) keeps its webhooks waiting. After
  `horizon` (three days, like Bling's own retries) a row is settled with the last error: by
  then the account's sweeps have imported the note anyway.
* **Same pace as the importer**: each re-check goes through `service.client(account)`, the
  account's rate-limited client, so webhooks and polls share Bling's 3 requests/s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from blingsync.bling.errors import BlingError
from blingsync.bling.models import NoteKind, NoteRef
from blingsync.service import SKIPPED_STATES, Service
from blingsync.store.inbox import InboxEvent
from blingsync.store.records import Account
from blingsync.sync.importer import Importer, Recheck, account_state_for
from blingsync.waiting import first_of

log = logging.getLogger(__name__)

NOTE_EVENTS: Final = {"invoice": NoteKind.NFE, "consumer_invoice": NoteKind.NFCE}
"""Webhook resources that name a note, and which kind of note."""

DEFAULT_LEASE: Final = timedelta(minutes=5)
"""Longer than a batch of re-checks can take (a few requests each at 3/s, 30 s timeouts)."""
DEFAULT_HORIZON: Final = timedelta(days=3)
HOLD: Final = timedelta(minutes=5)
"""How often a webhook waiting for a paused (or otherwise stopped) account looks again."""
NOT_YET: Final = frozenset({1, 4, 5})
"""Webhook `data.situacao` values that say "not Emitida DANFE yet, not cancelled" whichever
numbering Bling's webhooks use (the reference leaves it open: v3's `/nfe` enum or Bling's
internal v2 codes): 1 Pendente in both; 4 Rejeitada (v3) or Aguardando recibo (v2); 5 Autorizada
(v3) or Rejeitada (v2). See `InboxWorker._needless`."""
RETRY_BASE: Final = timedelta(seconds=5)
RETRY_CAP: Final = timedelta(minutes=10)


def _nothing() -> None:
    return None


def retry_delay(attempt: int, rng: random.Random) -> timedelta:
    """Capped exponential backoff with full jitter (5 s, 10 s, … 10 min, at least 1 s): a Bling
    outage that ends must not bring every waiting webhook back in the same second."""
    ceiling = min(RETRY_CAP, RETRY_BASE * (1 << min(max(attempt - 1, 0), 16)))
    floor = timedelta(seconds=1)
    return floor + (ceiling - floor) * rng.random()


def _in_words(exc: BaseException) -> str:
    if isinstance(exc, BlingError):
        return exc.user_message
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (f"{type(exc).__name__}: {first}" if first else type(exc).__name__)[:300]


def _data_int(payload: str, name: str) -> int | None:
    """A whole number of the webhook's `data` (`numero` "000123" for API v2, `situacao` as a
    hint); None when absent or not a number."""
    try:
        value = json.loads(payload).get("data", {}).get(name)
    except (ValueError, AttributeError):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class _Decision:
    """What to do with every webhook of a group: settle it with `outcome`, or keep it waiting
    until `wait_until`."""

    outcome: str
    account_id: int | None = None
    wait_until: datetime | None = None
    wrote_events: bool = False


class InboxWorker:
    """Processes stored Bling webhooks. `on_saved` is called whenever a re-check wrote outbox
    events (`blingsync serve` passes the relay's `notify`, so the order goes out at once)."""

    def __init__(self, service: Service, *, on_saved: Callable[[], None] = _nothing,
                 batch: int = 20, concurrency: int = 8, lease: timedelta = DEFAULT_LEASE,
                 horizon: timedelta = DEFAULT_HORIZON, hold: timedelta = HOLD,
                 rng: random.Random | None = None) -> None:
        if batch < 1 or lease <= timedelta(0) or horizon <= timedelta(0) or hold <= timedelta(0):
            raise ValueError("the inbox worker needs a positive batch, lease, horizon and hold")
        self._service = service
        self._store = service.store
        self._on_saved = on_saved
        self._batch = batch
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._lease = lease
        self.horizon = horizon
        self._hold = hold
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not security)
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """A webhook was stored: an idle `run_forever` claims at once instead of sleeping."""
        self._wake.set()

    # --- one batch ----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch of due webhooks and settle or reschedule every one of them. Returns
        how many were claimed (0: nothing was due)."""
        events = await self._store.claim_webhooks(limit=self._batch, lease=self._lease,
                                                  now=self._service.now())
        groups: dict[tuple[object, ...], list[InboxEvent]] = {}
        for event in events:
            groups.setdefault(_group_key(event), []).append(event)
        await asyncio.gather(*(self._group(group) for group in groups.values()))
        return len(events)

    async def _group(self, events: Sequence[InboxEvent]) -> None:
        async with self._gate:
            try:
                decision = await self._decide(events[0], {_data_int(e.payload, "situacao") for e in events})
            except Exception as exc:
                if not isinstance(exc, BlingError):
                    log.exception("webhook %s: the re-check failed unexpectedly", events[0].event_id)
                for event in events:
                    await self._failed(event, exc)
                return
            for event in events:
                try:
                    await self._apply(event, decision)
                except Exception:
                    log.exception("webhook %s: its outcome could not be recorded; it comes back when "
                                  "its lease ends", event.event_id)
            if decision.wrote_events:
                self._on_saved()

    async def _apply(self, event: InboxEvent, decision: _Decision) -> None:
        if decision.wait_until is None:
            await self._store.settle_webhook(event.id, decision.outcome, account_id=decision.account_id)
            log.info("webhook %s (%s, id %s): %s", event.event_id, event.event, event.resource_id,
                     decision.outcome)
            return
        if self._service.now() - event.received_at >= self.horizon:
            await self._store.settle_webhook(
                event.id, f"gave up waiting after {_days(self.horizon)}: {decision.outcome}; the "
                "account's sweeps import the note once the account runs again")
            return
        await self._store.defer_webhook(event.id, decision.outcome, decision.wait_until, failed=False)

    async def _failed(self, event: InboxEvent, exc: BaseException) -> None:
        """A re-check failed: retried with backoff, or settled with the error past the horizon."""
        words = _in_words(exc)
        attempt = event.attempts + 1
        now = self._service.now()
        try:
            if now - event.received_at >= self.horizon:
                await self._store.settle_webhook(
                    event.id, f"gave up after {attempt} attempts over {_days(self.horizon)}: {words}; "
                    "the account's sweeps import the note")
                log.error("webhook %s: given up after %d attempts: %s", event.event_id, attempt, words)
                return
            delay = retry_delay(attempt, self._rng)
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > 0:
                delay = max(delay, min(timedelta(seconds=retry_after), RETRY_CAP))
            await self._store.defer_webhook(event.id, f"attempt {attempt} failed: {words}", now + delay,
                                            failed=True)
            log.warning("webhook %s: re-check attempt %d failed (%s); next in %s", event.event_id,
                        attempt, words, delay)
        except Exception:
            log.exception("webhook %s: its failure could not be recorded; it comes back when its "
                          "lease ends", event.event_id)

    # --- what a webhook asks for --------------------------------------------------------------

    async def _decide(self, event: InboxEvent, hints: set[int | None]) -> _Decision:
        """What the webhooks of one group (`event` first; `hints`: the `data.situacao` of each)
        ask for, carried out."""
        resource = (event.event or "").partition(".")[0]
        kind = NOTE_EVENTS.get(resource)
        if kind is None:
            if resource == "order":
                return _Decision("not used: blingsync imports invoices (NF-e, NFC-e), not sales orders")
            return _Decision(f"not used: blingsync does not follow {event.event or 'unnamed'} events")
        if event.resource_id is None:
            return _Decision("not used: the webhook names no note (no data.id)")
        accounts = await self._store.accounts_by_company(event.company_id) if event.company_id else []
        if not accounts:
            return _Decision(f"not used: no account is connected to Bling company {event.company_id} "
                             "(an account connected later imports the note in its first sync)")
        active = [account for account in accounts if account.state not in SKIPPED_STATES]
        if not active:
            waiting = "; ".join(f"account {a.name} is {a.state.value}"
                                + (f" ({a.state_reason})" if a.state_reason else "") for a in accounts)
            return _Decision(f"waiting: {waiting}", wait_until=self._service.now() + self._hold)
        ref = NoteRef(kind=kind, bling_id=event.resource_id, numero=_data_int(event.payload, "numero"))
        results: list[tuple[Account, Recheck]] = []
        for account in active:
            needless = await self._needless(account, ref, hints)
            results.append((account, needless or await self._recheck(account, ref)))
        words = [r.outcome if len(accounts) == 1 else f"account {a.name}: {r.outcome}" for a, r in results]
        words += [f"account {a.name}: skipped, it is {a.state.value}" for a in accounts if a not in active]
        return _Decision("; ".join(words), account_id=active[0].id if len(active) == 1 else None,
                         wrote_events=any(r.wrote_events for _, r in results))

    async def _needless(self, account: Account, ref: NoteRef, hints: set[int | None]) -> Recheck | None:
        """The one use of a webhook's body beyond naming the note: when every webhook of the
        group says the note is not Emitida DANFE yet (`NOT_YET`; Autorizada counts only when the
        account does not import it) and no order of it is stored, asking Bling cannot lead to
        an import or a cancellation, and would spend a request of the account's 3 per second on
        each step of every note's life (created at Pendente, Autorizada, …). The webhook of its
        next change, or the next poll, brings it. A stored note is always re-checked."""
        if not hints or not all(h in NOT_YET for h in hints):
            return None
        if 5 in hints and account.settings.import_authorized:
            return None
        assert ref.bling_id is not None  # noqa: S101 - checked by _decide
        if await self._store.known_notes(account.id, [ref.bling_id], kind=ref.kind.value):
            return None
        said = ", ".join(str(h) for h in sorted(h for h in hints if h is not None))
        return Recheck(f"not re-checked: the webhook says situacao {said} (not Emitida DANFE yet) and the "
                       "note is not imported; the webhook of its next change, or the next poll, brings it")

    async def _recheck(self, account: Account, ref: NoteRef) -> Recheck:
        client = await self._service.client(account)
        try:
            return await Importer(self._store, client, account, now=self._service.now).recheck_note(ref)
        except BlingError as error:
            # Like a sweep: an error only the user can fix puts the account in its state (the
            # next attempt then waits for the account instead of asking Bling again).
            state = account_state_for(error)
            if state is not None:
                await self._store.set_account_state(account.id, state, error.user_message)
            raise

    # --- forever ------------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event, idle_sleep: float = 5.0) -> None:
        """Batches until `stop` is set: the next at once while there is work, else after a
        `notify()`, when the earliest waiting webhook falls due, or after `idle_sleep` seconds.
        A failing database is logged and retried, never fatal."""
        while not stop.is_set():
            self._wake.clear()  # before the claim: a webhook stored during it wakes the next wait
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("the inbox worker could not claim webhooks; trying again in %.1f s",
                              idle_sleep)
                claimed = 0
            if claimed:
                await asyncio.sleep(0)
                continue
            await first_of(stop.wait(), self._wake.wait(), asyncio.sleep(await self._sleep_for(idle_sleep)))

    async def _sleep_for(self, idle_sleep: float) -> float:
        try:
            due = await self._store.next_webhook_due()
        except Exception:
            return idle_sleep
        if due is None:
            return idle_sleep
        return min(idle_sleep, max(0.05, (due - self._service.now()).total_seconds()))



def _group_key(event: InboxEvent) -> tuple[object, ...]:
    """Webhooks that one re-check settles together: those naming the same note of the same
    company; any other webhook is a group of its own."""
    kind = NOTE_EVENTS.get((event.event or "").partition(".")[0])
    if kind is None or event.resource_id is None:
        return ("single", event.id)
    return ("note", event.company_id, kind, event.resource_id)


def _days(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
