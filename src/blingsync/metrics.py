"""Prometheus metrics of `blingsync serve` (docs/serve.md lists every series).

Two kinds of figures, kept apart on purpose:

* **Events counted as they happen** (imports, sync runs, deliveries) live in a `Metrics`
  object: the scheduler and the relay loops record into it, and `/metrics` renders it. Bling
  requests, 429s and retries are counted by every client the service makes
  (`Service.bling_calls`), whoever uses it, and read at scrape time. One `Metrics` per app with
  a `CollectorRegistry` of its own, never prometheus_client's global one, so tests can build
  any number of apps in one process.
* **State read at scrape time** (queue depth per account, inbox backlog, accounts per state,
  requests used today) comes from the database and the limiter when `/metrics` is asked: a
  counter kept in memory would be wrong after a restart or when another process wrote, while
  the database is the truth. A bare app without a `Metrics` (a test, a web-only embedding)
  still serves these.

Labels are bounded: the account's name (one per connected brand), and small fixed sets
(outcome, relay, loop, state). Never an order, an event id or an error text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from blingsync.bling.transport import CallStats
from blingsync.delivery.relay import Deliverer, RelayStats, SinkResolver
from blingsync.delivery.sinks.base import DeliveryResult, Outcome
from blingsync.service import Service
from blingsync.store import Store
from blingsync.store.outbox import CHANNELS
from blingsync.store.records import AccountState, OutboxEvent, SinkKind
from blingsync.sync.importer import ImportReport

log = logging.getLogger(__name__)

SYNC_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""A quiet poll is two list calls (well under a second at 3 requests/s); a first import of a
busy brand is minutes."""
ATTEMPT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""A receiver answers in milliseconds; the sinks time out at 10 s."""
SCRAPE_TIMEOUT_S: Final = 5.0
"""How long `/metrics` waits for the database before serving what it has (`database_up 0`)."""


# --- background loops -------------------------------------------------------------------------


@dataclass
class LoopStatus:
    """One background loop of `serve` as `/readyz` reports it: alive, or crashed and waiting to
    be restarted. Only the exception's type is kept: `/readyz` answers anyone, and an
    exception's message may quote what it failed on; the traceback is in the log."""

    name: str
    alive: bool = False
    restarts: int = 0
    last_error: str | None = None  # the exception's type name
    restart_in_s: float | None = None

    def describe(self) -> str:
        if self.alive:
            return "running"
        if self.last_error is None:
            return "not started"
        return (f"crashed ({self.last_error}, see the log); restarting in "
                f"{self.restart_in_s or 0:.0f} s (restart {self.restarts})")


class SchedulerView(Protocol):
    """What `/metrics` reads of the scheduler at scrape time."""

    def lag(self) -> float: ...

    def running(self) -> int: ...

    def scheduled(self) -> int: ...


# --- the recorded metrics ---------------------------------------------------------------------


@dataclass(frozen=True)
class SyncRecord:
    """One scheduled import pass, as the scheduler hands it to `Metrics.record_sync`."""

    account: str
    report: ImportReport | None  # None: the pass raised before a report existed
    duration_s: float


class Metrics:
    """The counters and histograms of one `serve` process, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.loops: dict[str, LoopStatus] = {}
        self.stopping = False  # set on SIGTERM: /readyz turns 503 while the process drains
        r = self.registry
        self.orders_imported = Counter(
            "blingsync_orders_imported", "Orders created from notes that reached the trigger situation.",
            ["account"], registry=r)
        self.orders_updated = Counter(
            "blingsync_orders_updated", "Orders whose content changed in Bling after import.",
            ["account"], registry=r)
        self.orders_canceled = Counter(
            "blingsync_orders_canceled", "Imported orders canceled because their note was canceled.",
            ["account"], registry=r)
        self.notes_quarantined = Counter(
            "blingsync_notes_quarantined", "Notes that could not be imported (see `quarantine list`).",
            ["account"], registry=r)
        self.sync_runs = Counter(
            "blingsync_sync_runs", "Scheduled import passes by outcome: ok, partial (some notes "
            "quarantined), failed (Bling or the account refused; see the account's state), error "
            "(an unexpected failure; see the log).", ["account", "outcome"], registry=r)
        self.sync_duration = Histogram(
            "blingsync_sync_duration_seconds", "Duration of scheduled import passes.",
            buckets=SYNC_BUCKETS, registry=r)
        self.last_success = Gauge(
            "blingsync_last_successful_sync_timestamp_seconds",
            "Unix time when the account's last scheduled pass ended without error.", ["account"],
            registry=r)
        self.deliveries_delivered = Counter(
            "blingsync_deliveries_delivered", "Outbox events delivered, by relay (sink: downstream; "
            "writeback: to Bling).", ["relay"], registry=r)
        self.deliveries_failed = Counter(
            "blingsync_deliveries_failed", "Delivery attempts that failed and were scheduled again.",
            ["relay"], registry=r)
        self.deliveries_dead = Counter(
            "blingsync_deliveries_dead", "Events that failed past the retry horizon (replayable).",
            ["relay"], registry=r)
        self.sinks_disabled = Counter(
            "blingsync_sinks_disabled", "Sinks switched off by their receiver (410 Gone, refused key).",
            ["relay"], registry=r)
        self.delivery_attempts = Counter(
            "blingsync_delivery_attempts", "Attempts to deliver to an account's sink, by outcome "
            "(delivered, retry, disable).", ["account", "outcome"], registry=r)
        self.delivery_latency = Histogram(
            "blingsync_delivery_attempt_seconds", "Duration of one delivery attempt to a sink.",
            buckets=ATTEMPT_BUCKETS, registry=r)
        self.loop_restarts = Counter(
            "blingsync_background_loop_restarts", "Background loops restarted after a crash.",
            ["loop"], registry=r)
        self._loops = _LoopCollector(self.loops)
        r.register(self._loops)
        self._scheduler: SchedulerView | None = None
        self._snapshot = _SnapshotCollector()
        r.register(self._snapshot)

    # --- recording ----------------------------------------------------------------------------

    def record_sync(self, record: SyncRecord) -> None:
        name = record.account
        self.sync_duration.observe(max(0.0, record.duration_s))
        report = record.report
        if report is None:
            self.sync_runs.labels(name, "error").inc()
            return
        counters = report.counters
        self.orders_imported.labels(name).inc(counters.created)
        self.orders_updated.labels(name).inc(counters.updated)
        self.orders_canceled.labels(name).inc(counters.canceled)
        self.notes_quarantined.labels(name).inc(counters.quarantined)
        if report.error is not None:
            outcome = "failed"
        else:
            outcome = "partial" if counters.quarantined else "ok"
            self.last_success.labels(name).set(time.time())
        self.sync_runs.labels(name, outcome).inc()

    def record_relay(self, relay: str, stats: RelayStats) -> None:
        self.deliveries_delivered.labels(relay).inc(stats.delivered)
        self.deliveries_failed.labels(relay).inc(stats.retried)
        self.deliveries_dead.labels(relay).inc(stats.dead)
        self.sinks_disabled.labels(relay).inc(stats.disabled)

    def record_attempt(self, account: str, result: DeliveryResult, seconds: float) -> None:
        self.delivery_attempts.labels(account, result.outcome.value).inc()
        self.delivery_latency.observe(max(0.0, seconds))

    def loop(self, name: str) -> LoopStatus:
        """The status of loop `name`, created on first use (shown by /readyz and /metrics)."""
        return self.loops.setdefault(name, LoopStatus(name))

    def watch_scheduler(self, scheduler: SchedulerView) -> None:
        self._scheduler = scheduler

    # --- rendering ----------------------------------------------------------------------------

    def render(self, snapshot: StoreSnapshot) -> bytes:
        """The exposition text: the recorded series, the loops and the scrape-time state."""
        self._snapshot.snapshot = snapshot
        self._snapshot.scheduler = self._scheduler
        return generate_latest(self.registry)


# --- scrape-time state ------------------------------------------------------------------------


@dataclass
class StoreSnapshot:
    """What the database and the limiter say at scrape time (`snapshot`)."""

    database_up: bool = False
    pending: dict[tuple[str, str], int] = field(default_factory=dict)  # (account, channel) -> pending
    accounts_by_state: dict[str, int] = field(default_factory=dict)
    inbox_backlog: int | None = None
    requests_today: dict[str, int] = field(default_factory=dict)
    calls: dict[str, CallStats] = field(default_factory=dict)
    """The process's running totals per account (`Service.bling_calls`), copied at scrape time."""


async def snapshot(service: Service, *, within: float = SCRAPE_TIMEOUT_S) -> StoreSnapshot:
    """Read the scrape-time state. A database that fails or hangs gives `database_up 0` and
    no per-account series, never a failed scrape: the recorded series still matter then."""
    found = StoreSnapshot()
    try:
        await asyncio.wait_for(_read(service, found), within)
        found.database_up = True
    except Exception as exc:  # the scrape must answer; the reason goes to the log
        log.warning("metrics: the database could not be read (%s)", type(exc).__name__)
        found.database_up = False
    # The accounts of now (a removed account's series, or a refused wizard attempt's, ends);
    # all of them while the database cannot say.
    connected = {name for name, _ in found.pending}
    found.calls = {name: replace(stats, by_status={}) for name, stats in service.bling_calls.items()
                   if name in connected or not found.database_up}
    registry = service.registry
    for name in sorted({name for name, _ in found.pending}):
        if name in registry:
            found.requests_today[name] = registry.for_account(name).used_today
    return found


async def _read(service: Service, into: StoreSnapshot) -> None:
    store = service.store
    accounts = await store.accounts()
    for channel in CHANNELS:
        pending = await store.pending_counts(channel=channel)
        into.pending.update({(a.name, channel): pending.get(a.id, 0) for a in accounts})
    into.accounts_by_state = {state.value: 0 for state in AccountState}
    for account in accounts:
        into.accounts_by_state[account.state.value] += 1
    into.inbox_backlog = await store.inbox_depth()


def render(metrics: Metrics | None, found: StoreSnapshot) -> bytes:
    """The `/metrics` text: with a `Metrics`, everything; without one (a bare app), only the
    scrape-time state."""
    if metrics is not None:
        return metrics.render(found)
    registry = CollectorRegistry(auto_describe=True)
    collector = _SnapshotCollector()
    collector.snapshot = found
    registry.register(collector)
    return generate_latest(registry)


_CALL_COUNTERS: Final = (
    ("requests", "Requests this process sent to Bling per account: imports, webhook re-checks, "
                 "write-backs and permission checks alike."),
    ("rate_limited", "429 answers (or API v2's rate-limit refusals) Bling gave this process per account."),
    ("retries", "Requests to Bling sent again after a retriable failure, per account."),
)


class _SnapshotCollector(Collector):
    """Series computed from the last snapshot handed in just before rendering (the render is
    synchronous, so two scrapes cannot mix their snapshots)."""

    def __init__(self) -> None:
        self.snapshot = StoreSnapshot()
        self.scheduler: SchedulerView | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with what was read; nothing to clash with at registration

    def collect(self) -> Iterable[Metric]:
        found = self.snapshot
        yield _gauge("blingsync_database_up", "1 when the last scrape could read the database.",
                     [((), 1.0 if found.database_up else 0.0)])
        yield _gauge("blingsync_outbox_pending", "Events neither delivered nor dead, per account "
                     "and channel (sink: downstream, pull-only accounts' events too; bling: "
                     "write-backs): the delivery queue depth.", [
                         (key, float(count)) for key, count in sorted(found.pending.items())
                     ], labels=("account", "channel"))
        yield _gauge("blingsync_accounts", "Connected accounts by state.", [
            ((state,), float(count)) for state, count in sorted(found.accounts_by_state.items())
        ], labels=("state",))
        if found.inbox_backlog is not None:
            yield _gauge("blingsync_inbox_backlog", "Bling webhooks stored and not yet re-checked.",
                         [((), float(found.inbox_backlog))])
        yield _gauge("blingsync_bling_requests_today", "Requests this process sent to Bling today "
                     "(Brasília day) per account, against Bling's 120,000 a day.", [
                         ((name,), float(n)) for name, n in sorted(found.requests_today.items())
                     ], labels=("account",))
        calls = sorted(found.calls.items())
        for what, documentation in _CALL_COUNTERS:
            family = CounterMetricFamily(f"blingsync_bling_{what}", documentation, labels=["account"])
            for name, stats in calls:
                family.add_metric([name], float(getattr(stats, what)))
            yield family
        scheduler = self.scheduler
        if scheduler is not None:
            yield _gauge("blingsync_scheduler_lag_seconds", "How late the most overdue account's "
                         "poll is (0 when every due poll has started).", [((), scheduler.lag())])
            yield _gauge("blingsync_scheduler_running", "Accounts being imported right now.",
                         [((), float(scheduler.running()))])
            yield _gauge("blingsync_scheduler_accounts", "Accounts the scheduler polls.",
                         [((), float(scheduler.scheduled()))])


class _LoopCollector(Collector):
    def __init__(self, loops: dict[str, LoopStatus]) -> None:
        self._loops = loops

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        yield _gauge("blingsync_background_loop_up", "1 while the background loop runs, 0 while it "
                     "waits to be restarted after a crash.", [
                         ((name,), 1.0 if status.alive else 0.0)
                         for name, status in sorted(self._loops.items())
                     ], labels=("loop",))


def _gauge(name: str, documentation: str, samples: Iterable[tuple[tuple[str, ...], float]], *,
           labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


# --- measuring deliveries ---------------------------------------------------------------------


class MeasuredSinks:
    """A `SinkResolver` that times every attempt of the sinks it hands out and counts their
    outcomes per account, around the relay's own resolver: the relay stays unaware of metrics."""

    def __init__(self, inner: SinkResolver, metrics: Metrics, store: Store) -> None:
        self._inner = inner
        self._metrics = metrics
        self._store = store
        self._names: dict[int, str] = {}

    @property
    def kinds(self) -> frozenset[SinkKind]:
        return self._inner.kinds

    async def resolve(self, account_id: int) -> Deliverer | None:
        sink = await self._inner.resolve(account_id)
        if sink is None:
            return None
        name = self._names.get(account_id)
        if name is None:
            name = self._names[account_id] = (await self._store.account_by_id(account_id)).name
        return _MeasuredSink(sink, self._metrics, name)


class _MeasuredSink:
    def __init__(self, inner: Deliverer, metrics: Metrics, account: str) -> None:
        self._inner = inner
        self._metrics = metrics
        self._account = account

    @property
    def kind(self) -> SinkKind | None:
        """The wrapped sink's kind, which the relay's logs name."""
        kind = getattr(self._inner, "kind", None)
        return kind if isinstance(kind, SinkKind) else None

    async def deliver(self, event: OutboxEvent) -> DeliveryResult:
        started = time.monotonic()
        result = await self._inner.deliver(event)  # an exception: the relay's retry, not counted here
        if result.outcome is not Outcome.KEEP:  # a pull-only sink made no attempt
            self._metrics.record_attempt(self._account, result, time.monotonic() - started)
        return result
