"""Rows of the store's tables turned into records, for every part of the store.

They live in a module of their own, not in `repo.py`, because several parts read accounts and
runs (`repo`, `browse`, `account_views`) and a part must not import `repo`, which imports every
part to build `Store`."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

from sqlalchemy import Row

from blingsync.domain import ApiGeneration
from blingsync.store.codec import settings_from_json
from blingsync.store.records import Account, AccountState, RunCounters, RunOutcome, SyncRun
from blingsync.store.tables import accounts

ACCOUNT_COLUMNS: Final = tuple(c for c in accounts.c if c.name != "credentials")
"""Every column of `accounts` but the sealed credentials: what an `Account` is read from, so no
read of an account carries its secrets further than it must."""

RUN_COUNTERS: Final = frozenset(f.name for f in fields(RunCounters))
"""The counter columns of `sync_runs` (one per `RunCounters` field)."""


def account_from_row(row: Row[Any]) -> Account:
    """An account from a row of `ACCOUNT_COLUMNS`."""
    return Account(
        id=row.id, name=row.name, generation=ApiGeneration(row.generation), bling_url=row.bling_url,
        bling_v2_url=row.bling_v2_url, document=row.document, settings=settings_from_json(row.settings),
        state=AccountState(row.state), state_reason=row.state_reason, created_at=row.created_at,
        updated_at=row.updated_at, company_id=row.company_id)


def run_from_row(row: Row[Any]) -> SyncRun:
    """A run from a row of `sync_runs`."""
    return SyncRun(
        id=row.id, account_id=row.account_id, trigger=row.trigger, tier=row.tier,
        window_from=row.window_from, window_to=row.window_to, started_at=row.started_at,
        finished_at=row.finished_at, outcome=RunOutcome(row.outcome),
        counters=RunCounters(**{name: getattr(row, name) for name in RUN_COUNTERS}),
        requests=row.requests, error=row.error, error_code=row.error_code)
