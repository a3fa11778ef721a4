"""Retention of the tables that grow with time rather than with orders: the import history
(`sync_runs`) and the webhooks already handled (`inbox`).

Why these rules:

* **A poll that found nothing is worth a day or two, not forever.** At one poll a minute an
  account writes 1,440 runs a day, nearly all "ok, nothing new"; at 1,000 brands that is 1.4
  million rows a day that nobody reads. Empty runs (ok, nothing created, updated, canceled or
  quarantined) go after `EMPTY_RUNS_KEPT_FOR`; every other run (one that imported something, or
  failed) is history an operator asks about ("when did this order come in?", "since when does this
  brand fail?") and stays `RUNS_KEPT_FOR`.
* **An account's latest `RUNS_KEPT_PER_ACCOUNT` runs always stay**, whatever their age: the
  account page shows them, and a paused or daily-polled brand must not lose its last run (the
  Contas page reads "last sync" from it).
* **A handled webhook is kept `WEBHOOKS_KEPT_FOR` after it was handled**: Bling re-sends a webhook
  it did not see acknowledged for up to 3 days, and the stored `eventId` is what answers such a
  re-send "duplicate" instead of re-checking the note. Unhandled webhooks are never removed.
* **Sign-in leftovers**: expired dashboard sessions, and failed sign-ins older than
  `SIGNIN_FAILURES_KEPT_FOR` (the throttle looks back 15 minutes and prunes as it goes; this
  catches what a burst left when nobody signed in afterwards).
* **Deletes go in batches of `BATCH` rows, each its own transaction**, through indexes holding
  exactly the deletable rows (migration 0009), so a prune never holds a long lock nor walks the
  history it keeps, and a first prune after months without one catches up in steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Select, Table, delete, select, text

from blingsync.store.part import StorePart
from blingsync.store.records import RunOutcome
from blingsync.store.tables import EMPTY_RUN_SQL, inbox, signin_failures, sync_runs, ui_sessions
from blingsync.store.users import session_over

EMPTY_RUNS_KEPT_FOR: Final = timedelta(days=2)
RUNS_KEPT_FOR: Final = timedelta(days=90)
RUNS_KEPT_PER_ACCOUNT: Final = 20
WEBHOOKS_KEPT_FOR: Final = timedelta(days=7)
SIGNIN_FAILURES_KEPT_FOR: Final = timedelta(days=1)
BATCH: Final = 5_000

@dataclass(frozen=True)
class Pruned:
    """What one prune removed."""

    empty_runs: int = 0
    old_runs: int = 0
    webhooks: int = 0
    signin_rows: int = 0
    """Expired sessions and old failed sign-ins."""

    @property
    def total(self) -> int:
        return self.empty_runs + self.old_runs + self.webhooks + self.signin_rows


def run_candidates(now: datetime) -> tuple[Select[Any], Select[Any]]:
    """The ids of the empty runs, and of the other finished runs, that may go at `now`."""
    # The alias leaves the unqualified columns of EMPTY_RUN_SQL (the partial index's predicate,
    # word for word, so that PostgreSQL uses it) to the outer query's one table.
    run = sync_runs.alias("run")
    # The id of the account's RUNS_KEPT_PER_ACCOUNT-th latest run: runs below it may go. NULL (so
    # nothing goes) while the account has fewer runs.
    kept_from = (select(sync_runs.c.id).where(sync_runs.c.account_id == run.c.account_id)
                 .order_by(sync_runs.c.id.desc()).offset(RUNS_KEPT_PER_ACCOUNT - 1).limit(1)
                 .correlate(run).scalar_subquery())
    empty = select(run.c.id).where(text(EMPTY_RUN_SQL), run.c.started_at < now - EMPTY_RUNS_KEPT_FOR,
                                   run.c.id < kept_from)
    old = select(run.c.id).where(run.c.started_at < now - RUNS_KEPT_FOR,
                                 run.c.outcome != RunOutcome.RUNNING.value, run.c.id < kept_from)
    return empty, old


class HousekeepingStore(StorePart):
    async def prune(self, *, now: datetime | None = None, batch: int = BATCH) -> Pruned:
        """Remove what the retention rules above let go, in batches; returns the counts (under
        prunes running side by side, each counts what it selected)."""
        now = now or self._now()
        empty_runs, old_runs = run_candidates(now)
        empty = await self._delete_in_batches(sync_runs, empty_runs, batch)
        old = await self._delete_in_batches(sync_runs, old_runs, batch)
        webhooks = await self._delete_in_batches(inbox, select(inbox.c.id).where(
            inbox.c.processed_at < now - WEBHOOKS_KEPT_FOR), batch)
        sessions = await self._delete_in_batches(ui_sessions, select(ui_sessions.c.id).where(
            session_over(now)), batch)
        failures = await self._delete_in_batches(signin_failures, select(signin_failures.c.id).where(
            signin_failures.c.failed_at < now - SIGNIN_FAILURES_KEPT_FOR), batch)
        return Pruned(empty_runs=empty, old_runs=old, webhooks=webhooks, signin_rows=sessions + failures)

    async def _delete_in_batches(self, table: Table, candidates: Select[Any], batch: int) -> int:
        """Delete the rows `candidates` selects (by id), `batch` per transaction, until none is left."""
        removed = 0
        while True:
            async with self._write() as conn:
                ids = list((await conn.scalars(candidates.limit(batch))).all())
                if ids:
                    await conn.execute(delete(table).where(table.c.id.in_(ids)))
            removed += len(ids)
            if len(ids) < batch:
                return removed
