"""`blingsync prune`: let the import history and handled webhooks go by the retention rules
(store/housekeeping.py). `blingsync serve` does this every hour by itself; this is for machines
that import with `blingsync sync` from cron."""

from __future__ import annotations

import typer

from blingsync.commands.common import console, with_service
from blingsync.service import Service
from blingsync.store.housekeeping import (
    EMPTY_RUNS_KEPT_FOR,
    RUNS_KEPT_FOR,
    RUNS_KEPT_PER_ACCOUNT,
    WEBHOOKS_KEPT_FOR,
)


def prune(ctx: typer.Context) -> None:
    """Remove empty import runs older than 2 days, other runs older than 90 days (each account
    keeps its latest 20), webhooks handled more than 7 days ago, expired dashboard sessions and
    failed sign-ins older than a day."""

    async def work(service: Service) -> None:
        pruned = await service.store.prune()
        console.print(
            f"removed {pruned.empty_runs} empty runs (older than {EMPTY_RUNS_KEPT_FOR.days} days), "
            f"{pruned.old_runs} runs older than {RUNS_KEPT_FOR.days} days (each account keeps its "
            f"latest {RUNS_KEPT_PER_ACCOUNT}), {pruned.webhooks} webhooks handled more than "
            f"{WEBHOOKS_KEPT_FOR.days} days ago and {pruned.signin_rows} expired sessions or old "
            "failed sign-ins")

    with_service(ctx, work)
