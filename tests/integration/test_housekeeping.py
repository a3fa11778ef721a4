"""Retention (store/housekeeping.py, `blingsync prune`, the housekeeping loop of `serve`): empty
import runs go after 2 days, other runs after 90, each account keeps its latest 20 whatever their
age, and webhooks handled more than 7 days ago go while unhandled ones stay. Once per backend."""
# The fixtures are imported from store_fixtures, so test parameters "redefine" them:
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import func, select, text

from blingsync.commands.serve import _housekeeping_loop
from blingsync.service import Service
from blingsync.store import Store
from blingsync.store.housekeeping import BATCH, RUNS_KEPT_PER_ACCOUNT, run_candidates
from blingsync.store.inbox import ReceivedWebhook
from blingsync.store.records import RunOutcome
from blingsync.store.tables import inbox, signin_failures, sync_runs, ui_sessions
from tests.integration.store_fixtures import (  # noqa: F401  (fixtures are used by name)
    T0,
    Clock,
    box,
    clock,
    db_url,
    new_account,
    pg_url,
    store,
)


async def _run(store: Store, account_id: int, *, created: int = 0,
               outcome: RunOutcome = RunOutcome.OK) -> int:
    run = await store.start_run(account_id, trigger="poll", tier="recent",
                                window_from=T0 - timedelta(days=1), window_to=T0)
    if created:
        await store.count_in_run(run, listed=created, created=created)
    error = "boom" if outcome is RunOutcome.FAILED else None
    await store.finish_run(run, outcome=outcome, requests=1, error=error)
    return run


async def _run_ids(store: Store, account_id: int) -> set[int]:
    async with store.engine.connect() as conn:
        ids = await conn.scalars(select(sync_runs.c.id).where(sync_runs.c.account_id == account_id))
        return set(ids.all())


async def test_empty_runs_go_after_two_days_and_the_latest_twenty_stay(store: Store, clock: Clock) -> None:
    busy = await store.add_account(new_account("Movimentada"))
    quiet = await store.add_account(new_account("Parada"))
    imported = await _run(store, busy.id, created=3)
    failed = await _run(store, busy.id, outcome=RunOutcome.FAILED)
    old_empty = [await _run(store, busy.id) for _ in range(30)]
    assert await _run_ids(store, busy.id) >= set(old_empty)
    quiet_runs = [await _run(store, quiet.id) for _ in range(5)]  # a paused brand: a few, long ago
    clock.advance(days=2, minutes=1)
    fresh_empty = [await _run(store, busy.id) for _ in range(25)]

    pruned = await store.prune(batch=7)  # several batches

    # The 30 old empty runs go: the account's latest 20 are all among the fresh ones.
    assert (pruned.empty_runs, pruned.old_runs, pruned.webhooks) == (30, 0, 0)
    assert await _run_ids(store, busy.id) == {imported, failed, *fresh_empty}
    assert await _run_ids(store, quiet.id) == set(quiet_runs)  # fewer than 20: all stay
    assert [run.id for run in await store.runs(busy.id, limit=1)] == [fresh_empty[-1]]
    assert (await store.prune()).total == 0  # nothing more to do


async def test_runs_that_did_something_stay_ninety_days_except_the_latest(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    runs = [await _run(store, account.id, created=1) for _ in range(RUNS_KEPT_PER_ACCOUNT + 5)]
    clock.advance(days=89)
    assert (await store.prune()).total == 0
    clock.advance(days=1, minutes=1)

    pruned = await store.prune()

    # All are older than 90 days; the latest 20 stay all the same.
    assert (pruned.old_runs, pruned.empty_runs) == (5, 0)
    assert await _run_ids(store, account.id) == set(runs[5:])


async def test_handled_webhooks_go_after_seven_days_unhandled_ones_stay(store: Store, clock: Clock) -> None:
    async def received(event_id: str) -> int:
        stored = await store.receive_webhook(ReceivedWebhook(
            event_id=event_id, event="invoice.updated", company_id="c1", body=b'{"eventId": "x"}'))
        assert stored is not None
        return stored.id

    handled = await received("e-1")
    waiting = await received("e-2")
    await store.settle_webhook(handled, "imported")
    clock.advance(days=7, minutes=1)
    recent = await received("e-3")
    await store.settle_webhook(recent, "imported")

    assert (await store.prune()).webhooks == 1
    async with store.engine.connect() as conn:
        left = set((await conn.scalars(select(inbox.c.id))).all())
    assert left == {waiting, recent}
    assert await store.receive_webhook(ReceivedWebhook(  # a re-send within 7 days is still a duplicate
        event_id="e-3", event="invoice.updated", company_id="c1", body=b"{}")) is None


async def test_postgres_finds_empty_runs_through_the_partial_index(store: Store, clock: Clock) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the plan question is PostgreSQL's; SQLite is covered by the tests above")
    account = await store.add_account(new_account())
    for _ in range(3):
        await _run(store, account.id)
    empty_runs, _ = run_candidates(clock.now)  # the very statement `prune` runs
    compiled = empty_runs.limit(BATCH).compile(store.engine, compile_kwargs={"literal_binds": True})
    async with store.engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join((await conn.scalars(text(f"EXPLAIN {compiled}"))).all())
    assert "ix_sync_runs_empty" in plan, plan


async def test_the_serve_loop_prunes_and_stops(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    for _ in range(RUNS_KEPT_PER_ACCOUNT + 5):
        await _run(store, account.id)
    clock.advance(days=3)
    service = cast(Service, SimpleNamespace(store=store))  # the loop uses only `service.store`
    stop = asyncio.Event()
    loop = asyncio.create_task(_housekeeping_loop(service, first_after_s=0.01, every_s=0.05)(stop))
    count = None
    for _ in range(250):
        async with store.engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(sync_runs))
        if count == RUNS_KEPT_PER_ACCOUNT:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(loop, 5)  # returns once stopped (a loop that returned early would be a bug)
    assert count == RUNS_KEPT_PER_ACCOUNT


async def test_expired_sessions_and_old_failed_signins_go(store: Store, clock: Clock) -> None:
    user = await store.create_user("ana", "uma senha comprida o bastante")
    _, old_token = await store.start_ui_session(user.id, ttl=timedelta(hours=1))
    assert await store.begin_signin("bia", "203.0.113.9") is None  # a failure, recorded
    clock.advance(days=1, minutes=1)
    _, live_token = await store.start_ui_session(user.id)  # (sweeps expired sessions itself too)
    _, expiring_token = await store.start_ui_session(user.id, ttl=timedelta(minutes=5))
    clock.advance(minutes=10)

    pruned = await store.prune()

    assert pruned.signin_rows == 2  # the session that expired 5 minutes ago and the old failure
    assert await store.ui_session(live_token) is not None
    assert await store.ui_session(old_token) is None and await store.ui_session(expiring_token) is None
    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(signin_failures)) == 0
        assert await conn.scalar(select(func.count()).select_from(ui_sessions)) == 1
