"""`blingsync serve`: the scheduler's rules on virtual time, the health and metrics endpoints,
the supervision of the background loops, and the whole process as a user runs it (a real
`blingsync serve` against a simulator process, a webhook receiver, SIGTERM).

The scheduler's unit tests drive it through an in-memory `SchedulerPort` on a `FakeClock`:
hours of polls in milliseconds, with every start time exact. Everything else talks to real
things: the simulator over HTTP, SQLite files, uvicorn, signals."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import itertools
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from blingsync.bling.limits import FakeClock, LimiterRegistry, LimiterSettings
from blingsync.bling.secrets import Secret
from blingsync.commands.serve import ServeOptions, run, supervise
from blingsync.config import Settings
from blingsync.delivery.signing import WebhookVerificationError, verify_headers
from blingsync.domain import ApiGeneration
from blingsync.metrics import Metrics, snapshot
from blingsync.service import Service
from blingsync.simulator.faults import FaultSpec
from blingsync.store import migrate as migrations
from blingsync.store.records import (
    Account,
    AccountSettings,
    AccountState,
    NewAccount,
    RunCounters,
    RunOutcome,
    SyncRun,
    V2Credentials,
)
from blingsync.sync.importer import ImportReport
from blingsync.sync.scheduler import Scheduler, ServicePort, SyncResult
from blingsync.web.app import create_app
from tests.conftest import Bling, make_sim, simulator_process

T0 = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)

# --- the scheduler on virtual time ------------------------------------------------------------


def account(account_id: int, *, interval: int = 60, state: AccountState = AccountState.ACTIVE) -> Account:
    return Account(id=account_id, name=f"Marca {account_id}", generation=ApiGeneration.V3,
                   bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2",
                   document=None, settings=AccountSettings(poll_interval_s=interval), state=state,
                   state_reason=None, created_at=T0, updated_at=T0)


@dataclass
class Port:
    """An in-memory world for the scheduler: accounts, their last runs, and passes that take
    virtual time (and fail, for the accounts in `failing`)."""

    clock: FakeClock
    accounts_: dict[int, Account] = field(default_factory=dict)
    last: dict[int, datetime] = field(default_factory=dict)
    duration: dict[int, float] = field(default_factory=dict)
    failing: set[int] = field(default_factory=set)
    starts: dict[int, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    inflight: Counter[int] = field(default_factory=Counter)
    most_inflight: Counter[int] = field(default_factory=Counter)
    total_inflight: int = 0
    most_total: int = 0

    def add(self, *accounts: Account, last_started: datetime | None = None) -> None:
        for one in accounts:
            self.accounts_[one.id] = one
            if last_started is not None:
                self.last[one.id] = last_started

    async def accounts(self) -> list[Account]:
        return list(self.accounts_.values())

    async def account(self, account_id: int) -> Account | None:
        return self.accounts_.get(account_id)

    async def last_started(self, account: Account) -> datetime | None:
        return self.last.get(account.id)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)

    async def sync(self, account: Account, trigger: str) -> SyncResult:
        self.starts[account.id].append((self.clock.monotonic(), trigger))
        self.inflight[account.id] += 1
        self.total_inflight += 1
        self.most_inflight[account.id] = max(self.most_inflight[account.id], self.inflight[account.id])
        self.most_total = max(self.most_total, self.total_inflight)
        try:
            await self.clock.sleep(self.duration.get(account.id, 0.5))
            if account.id in self.failing:
                raise RuntimeError("the database went away")
            run = SyncRun(id=1, account_id=account.id, trigger=trigger, tier="recent", window_from=T0,
                          window_to=T0, started_at=T0, finished_at=T0, outcome=RunOutcome.OK,
                          counters=RunCounters(listed=2, created=2), requests=3, error=None)
            return SyncResult(ImportReport(account.name, runs=[run]))
        finally:
            self.inflight[account.id] -= 1
            self.total_inflight -= 1

    def times(self, account_id: int) -> list[float]:
        return [at - START for at, _ in self.starts[account_id]]


START = 1000.0  # FakeClock's monotonic start


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0, monotonic_start=START)


@pytest.fixture
def port(clock: FakeClock) -> Port:
    return Port(clock)



@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[None]:
    """The scheduler's loop for the body of the block, then a stop that waits for its passes."""
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def scheduler_for(port: Port, clock: FakeClock, **kw: Any) -> Scheduler:
    kw.setdefault("rng", random.Random(1))
    return Scheduler(port, clock=clock, **kw)


async def test_polls_spread_over_the_interval_and_repeat_within_the_jitter(
        port: Port, clock: FakeClock) -> None:
    brands = [account(i) for i in range(1, 601)]
    port.add(*brands, last_started=T0 - timedelta(days=1))  # overdue: a restart after downtime
    port.add(account(1001))  # never imported
    port.add(account(1002), last_started=T0 - timedelta(seconds=20))  # polled 20 s ago
    scheduler = scheduler_for(port, clock, parallel=1000)
    async with running(scheduler):
        await clock.sleep(125)

    firsts = [port.times(b.id)[0] for b in brands]
    assert all(0 <= t < 60 for t in firsts)
    per_second = Counter(int(t) for t in firsts)
    assert len(per_second) >= 58  # nearly every second of the minute has some
    assert max(per_second.values()) <= 25  # 10 a second on average; never a wall of them
    gaps = [b - a for brand in brands for a, b in itertools.pairwise(port.times(brand.id))]
    assert gaps and all(54 <= gap <= 66 for gap in gaps)  # 60 s ± 10 %
    assert min(gaps) < 56 and max(gaps) > 64  # and the jitter is really there
    assert port.times(1001)[0] == 0  # a brand that just connected does not wait
    assert port.times(1002)[0] == pytest.approx(40)  # keeps its phase across the restart


async def test_a_pass_longer_than_its_interval_is_never_overlapped_and_parallelism_is_bounded(
        port: Port, clock: FakeClock) -> None:
    port.add(account(1, interval=10))
    port.duration[1] = 25.0
    port.add(*(account(i) for i in range(2, 12)))  # ten brands that never synced: all due now
    scheduler = scheduler_for(port, clock, parallel=3)
    async with running(scheduler):
        await clock.sleep(1)
        assert scheduler.running() == 3
        assert scheduler.lag() == pytest.approx(1.0)  # eight due since t=0 wait for a slot
        await clock.sleep(200)

    assert port.most_inflight[1] == 1
    starts = port.times(1)
    assert len(starts) >= 6
    assert all(b - a >= 25 for a, b in itertools.pairwise(starts))
    assert port.most_total == 3
    assert all(port.starts[i] for i in range(2, 12))  # everyone got their turn


async def test_accounts_only_the_user_can_fix_are_left_alone_until_their_state_changes(
        port: Port, clock: FakeClock) -> None:
    port.add(account(1), account(2, state=AccountState.PAUSED),
             account(3, state=AccountState.NEEDS_REAUTH),
             account(4, state=AccountState.INVALID_CREDENTIALS),
             account(5, state=AccountState.API_DISCONTINUED))
    scheduler = scheduler_for(port, clock)
    async with running(scheduler):
        await clock.sleep(130)
        assert [i for i in range(1, 6) if port.starts[i]] == [1]
        assert scheduler.scheduled() == 1

        port.accounts_[2] = replace(port.accounts_[2], state=AccountState.ACTIVE)  # resumed
        await clock.sleep(6)  # one refresh later
        assert len(port.starts[2]) == 1

        scheduler.sync_now(3)  # "sync now" after a reconnect: tried, whatever the stored state
        scheduler.sync_now(5)
        port.accounts_[4] = replace(port.accounts_[4], state=AccountState.PAUSED)
        scheduler.sync_now(4)  # paused: the operator's pause wins
        await clock.sleep(1)
        assert [trigger for _, trigger in port.starts[3]] == ["manual"]
        assert [trigger for _, trigger in port.starts[5]] == ["manual"]
        assert port.starts[4] == []
        await clock.sleep(120)
    assert len(port.starts[3]) == len(port.starts[5]) == 1  # not polled afterwards
    assert port.starts[4] == []


async def test_sync_now_starts_at_once_and_coalesces_during_a_pass(port: Port, clock: FakeClock) -> None:
    port.add(account(1), last_started=T0 - timedelta(seconds=30))  # next poll due at t=30
    port.duration[1] = 10.0
    scheduler = scheduler_for(port, clock)
    async with running(scheduler):
        await clock.sleep(5)
        scheduler.sync_now(1)  # idle: now
        await clock.sleep(5)
        for _ in range(3):  # during the pass: one more pass after it, not three
            scheduler.sync_now(1)
        await clock.sleep(90)
    starts = [(round(at - START, 3), trigger) for at, trigger in port.starts[1]]
    # Due at t=30, asked for at t=5: at once; asked for thrice during that pass: once after it.
    assert starts[:2] == [(5.0, "manual"), (15.0, "manual")]
    assert len(starts) == 3 and starts[2][1] == "poll"
    assert 15 + 54 <= starts[2][0] <= 15 + 66  # the next poll counts from the last start


async def test_a_failing_account_does_not_stop_the_others(port: Port, clock: FakeClock) -> None:
    port.add(account(1, interval=30), account(2, interval=30))
    port.failing.add(1)
    metrics = Metrics()
    pokes: list[float] = []
    scheduler = scheduler_for(port, clock, metrics=metrics,
                              on_events=lambda: pokes.append(clock.monotonic()))
    async with running(scheduler):
        await clock.sleep(200)
    failed, fine = len(port.starts[1]), len(port.starts[2])
    assert failed >= 6 and fine >= 6

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("blingsync_sync_runs_total", account="Marca 1", outcome="error") == failed
    assert sample("blingsync_sync_runs_total", account="Marca 2", outcome="ok") == fine
    assert sample("blingsync_sync_runs_total", account="Marca 2", outcome="error") is None
    assert sample("blingsync_orders_imported_total", account="Marca 2") == 2 * fine
    assert sample("blingsync_sync_duration_seconds_count") == failed + fine
    assert sample("blingsync_sync_duration_seconds_sum") == pytest.approx(0.5 * (failed + fine))
    assert len(pokes) == fine  # the relay is woken after every pass that wrote events


async def test_accounts_added_and_removed_while_running_are_picked_up(port: Port, clock: FakeClock) -> None:
    port.add(account(1, interval=10))
    scheduler = scheduler_for(port, clock)
    async with running(scheduler):
        await clock.sleep(30)
        port.add(account(2, interval=10))
        await clock.sleep(5.5)
        assert len(port.starts[2]) == 1 and port.times(2)[0] <= 35.01
        del port.accounts_[1]
        await clock.sleep(5.5)
        seen = len(port.starts[1])
        await clock.sleep(60)
        assert len(port.starts[1]) == seen  # gone: no more polls
        assert len(port.starts[2]) >= 6
        port.accounts_[2] = replace(port.accounts_[2], settings=AccountSettings(poll_interval_s=100))
        await clock.sleep(6)
        before = len(port.starts[2])
        await clock.sleep(80)
        assert len(port.starts[2]) <= before + 1  # the longer interval applies


# --- health, readiness, metrics, supervision ---------------------------------------------------


@pytest.fixture
async def service(tmp_path: Path, db_url: str) -> AsyncIterator[Service]:
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        secret_key=None, bling_url="http://bling.test/Api/v3",
                        bling_v2_url="http://bling.test/Api/v2")
    async with Service.open(settings, warn=lambda _: None) as opened:
        yield opened


@contextlib.asynccontextmanager
async def client_of(service: Service, metrics: Metrics | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service)
    if metrics is not None:
        app.state.metrics = metrics
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as http:
        yield http


async def eventually(check: Callable[[], bool], *, within: float = 20.0) -> None:
    for _ in range(int(within / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def samples(text: str) -> dict[str, float]:
    """`name{labels} value` lines of an exposition, by their name with labels."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


async def test_a_bare_app_serves_probes_and_the_scrape_time_state(service: Service) -> None:
    await service.store.add_account(NewAccount(
        name="Loja", generation=ApiGeneration.V2, credentials=V2Credentials("k" * 40),
        bling_url="http://bling.test/Api/v3", bling_v2_url="http://bling.test/Api/v2"))
    async with client_of(service) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "checks": {"database": "ok"}}
        scraped = await http.get("/metrics")
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        found = samples(scraped.text)
        assert found["blingsync_database_up"] == 1
        assert found['blingsync_outbox_pending{account="Loja",channel="sink"}'] == 0
        assert found['blingsync_accounts{state="active"}'] == 1
        assert found["blingsync_inbox_backlog"] == 0
        assert not any(key.startswith("blingsync_orders_imported") for key in found)  # nothing recorded
        assert "/metrics" not in (await http.get("/api/v1/openapi.json")).text

        async with service.store.engine.begin() as conn:  # an older schema than this version's
            await conn.run_sync(migrations.downgrade, "0002")
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["not_ready"] == ["database"] and "schema revision 0002" in body["checks"]["database"]
        scraped = await http.get("/metrics")  # still answers, saying the database is not readable
        assert scraped.status_code == 200 and samples(scraped.text)["blingsync_database_up"] == 0


async def test_a_crashing_loop_is_restarted_with_backoff_and_readyz_names_it(service: Service) -> None:
    metrics = Metrics()
    status = metrics.loop("relay:sink")
    stop = asyncio.Event()
    starts: list[float] = []

    async def flaky(stop: asyncio.Event) -> None:
        starts.append(time.monotonic())
        if len(starts) <= 2:
            raise RuntimeError("database is locked\nsecond line not shown")
        await stop.wait()

    task = asyncio.create_task(supervise("relay:sink", flaky, stop, status, metrics=metrics,
                                         first_delay=0.2, max_delay=5))
    async with client_of(service, metrics) as http:
        await eventually(lambda: bool(starts))
        await asyncio.sleep(0.05)  # crashed once, waiting 0.2 s to restart
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["not_ready"] == ["relay:sink"]
        assert ready.json()["checks"]["relay:sink"] == ("crashed (RuntimeError, see the log); "
                                                        "restarting in 0 s (restart 1)")
        assert "database is locked" not in ready.text  # a message may quote anything: the log has it
        found = samples((await http.get("/metrics")).text)
        assert found['blingsync_background_loop_up{loop="relay:sink"}'] == 0
        await eventually(lambda: len(starts) == 3)
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["relay:sink"] == "running"
        found = samples((await http.get("/metrics")).text)
        assert found['blingsync_background_loop_restarts_total{loop="relay:sink"}'] == 2
        assert found['blingsync_background_loop_up{loop="relay:sink"}'] == 1
    assert starts[1] - starts[0] >= 0.2 and starts[2] - starts[1] >= 0.4  # backoff doubles
    stop.set()
    await asyncio.wait_for(task, 5)
    assert not status.alive


async def test_a_loop_that_returns_on_its_own_counts_as_a_crash() -> None:
    metrics = Metrics()
    stop = asyncio.Event()
    runs = 0

    async def quits(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stop.set()

    await asyncio.wait_for(supervise("inbox", quits, stop, metrics.loop("inbox"), metrics=metrics,
                                     first_delay=0.01), 5)
    assert runs == 3
    assert metrics.registry.get_sample_value("blingsync_background_loop_restarts_total",
                                             {"loop": "inbox"}) == 2
    assert metrics.loops["inbox"].last_error == "LoopReturned"


# --- the real importer under the scheduler ------------------------------------------------------


async def test_scheduled_passes_are_counted_with_their_bling_requests_and_429s(tmp_path: Path) -> None:
    sim = make_sim(accounts=1, invoices=80, faults=FaultSpec.parse("429=0.05,burst=1,seed=5"))
    transport = httpx.ASGITransport(app=sim.app)
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
                        secret_key=None, bling_url="http://bling.test/Api/v3",
                        bling_v2_url="http://bling.test/Api/v2")
    # Bling's pace is not under test: a fast limiter, whose 429 pauses pass on virtual time.
    registry = LimiterRegistry(clock=FakeClock(time.time()),
                               settings=LimiterSettings(per_second=1000, margin=0.0))
    async with httpx.AsyncClient(transport=transport, base_url="http://bling.test") as http:
        bling = Bling(sim, http)
        async with Service.open(settings, warn=lambda _: None, registry=registry, transport=transport,
                                now=lambda: datetime.fromtimestamp(bling.clock.time(), UTC)) as service:
            company = bling.company(0)
            client = company.clients[0]
            counters = f"/_sim/accounts/{company.id}/counters"
            before = (await http.get(counters)).json()
            added = await service.add_account(
                "Loja", client_id=client.client_id, client_secret=client.client_secret,
                code=await bling.code(client), settings=AccountSettings(initial_lookback_days=120))
            checks = (await http.get(counters)).json()["requests"] - before["requests"]
            metrics = Metrics()
            pokes: list[int] = []
            scheduler = Scheduler(ServicePort(service), metrics=metrics, on_events=lambda: pokes.append(1))

            def sample(name: str, **labels: str) -> float:
                return metrics.registry.get_sample_value(name, labels) or 0.0

            async with running(scheduler):
                await eventually(lambda: bool(sample("blingsync_sync_duration_seconds_count")))
            after = (await http.get(counters)).json()
            orders = await service.store.orders(account="Loja", limit=10_000)
            [run] = await service.store.runs(added.account.id)
            scraped = {(family.name, tuple(sample.labels.items())): sample.value
                       for family in text_string_to_metric_families(
                           metrics.render(await snapshot(service)).decode())
                       for sample in family.samples}

    assert sample("blingsync_sync_runs_total", account="Loja", outcome="ok") == 1
    assert run.trigger == "poll" and run.outcome is RunOutcome.OK
    assert sample("blingsync_orders_imported_total", account="Loja") == len(orders) > 0
    assert pokes == [1]  # the relay was woken once, after the pass that wrote events
    rate_limited = after["rate_limited"] - before["rate_limited"]
    assert rate_limited > 0  # the fault seed makes some
    # Every request the process sent is counted, the account's checks when it was added as
    # much as the scheduled pass.
    loja = (("account", "Loja"),)
    assert scraped["blingsync_bling_rate_limited", loja] == rate_limited
    assert scraped["blingsync_bling_requests", loja] == after["requests"] - before["requests"]
    assert scraped["blingsync_bling_requests", loja] == checks + run.requests


@pytest.mark.parametrize("grace", [30.0, 0.3])
async def test_a_stop_lets_the_pass_in_flight_finish_within_the_grace(tmp_path: Path, db_url: str,
                                                                      grace: float) -> None:
    """`run` in-process (what `blingsync serve` runs, minus the signal): a stop in the middle of
    an import lets it finish when the grace allows, and cancels it, recorded as interrupted
    and resumable, when it does not. Either way nothing stays claimed."""
    sim = make_sim(accounts=1, invoices=50, faults=FaultSpec.parse("latency=60-80ms,seed=2"))
    transport = httpx.ASGITransport(app=sim.app)
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        secret_key=None, bling_url="http://bling.test/Api/v3",
                        bling_v2_url="http://bling.test/Api/v2")
    registry = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    async with httpx.AsyncClient(transport=transport, base_url="http://bling.test") as http:
        bling = Bling(sim, http)
        async with Service.open(settings, warn=lambda _: None, registry=registry, transport=transport,
                                now=lambda: datetime.fromtimestamp(bling.clock.time(), UTC)) as service:
            client = bling.company(0).clients[0]
            added = await service.add_account(
                "Loja", client_id=client.client_id, client_secret=client.client_secret,
                code=await bling.code(client), settings=AccountSettings(initial_lookback_days=120))
            stop = asyncio.Event()
            said: list[str] = []
            ports: list[int] = []
            task = asyncio.create_task(run(service, ServeOptions(port=0, grace_s=grace), announce=said.append,
                                           ready=ports.append, stop=stop))
            for _ in range(1000):
                runs = await service.store.runs(added.account.id)
                if runs and runs[0].outcome is RunOutcome.RUNNING and runs[0].counters.created:
                    break
                assert not task.done(), task
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the scheduler did not start an import")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}") as web:
                assert (await web.get("/readyz")).status_code == 200
            stopped_at = time.monotonic()
            stop.set()
            await asyncio.wait_for(task, grace + 10)
            took = time.monotonic() - stopped_at
            [run_] = await service.store.runs(added.account.id)
            orders = await service.store.orders(account="Loja", limit=10_000)
            claimed = [e for e in await service.store.outbox(account_id=added.account.id)
                       if e.leased_until is not None]

    assert "1 account;" in said[0] and said[-1] == "stopped"
    assert claimed == []
    if grace > 1:
        assert run_.outcome is RunOutcome.OK  # finished, cursor moved
        assert len(orders) == run_.counters.created > 0
        assert took < grace
    else:
        assert run_.outcome is RunOutcome.FAILED and run_.error == "the import was interrupted"
        assert 0 < len(orders) == run_.counters.created  # what was committed stays
        assert took < grace + 2


# --- the process, as a user runs it -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


class Warehouse(http.server.BaseHTTPRequestHandler):
    """The warehouse's webhook endpoint: every delivery's Standard Webhooks signature checked
    with the documented algorithm (`verify_headers`), processed once per webhook-id."""

    secret = Secret("")
    lock = threading.Lock()
    requests: list[str] = []  # noqa: RUF012 - reset by the test
    processed: dict[str, dict[str, Any]] = {}  # noqa: RUF012
    forged = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            msg_id = verify_headers(self.secret, {k.lower(): v for k, v in self.headers.items()}, body)
        except WebhookVerificationError:
            with self.lock:
                type(self).forged += 1
            self.send_response(401)
        else:
            with self.lock:
                self.requests.append(msg_id)
                self.processed.setdefault(msg_id, json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def warehouse() -> Iterator[str]:
    Warehouse.secret = Secret("whsec_" + base64.b64encode(os.urandom(32)).decode())
    Warehouse.requests, Warehouse.processed, Warehouse.forged = [], {}, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Warehouse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/orders"
    finally:
        server.shutdown()


def wait_for(what: str, check: Any, *, timeout: float = 30.0,
             proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"blingsync serve exited ({proc.returncode}) while waiting for {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_serve_imports_delivers_reports_and_stops_cleanly_on_sigterm(tmp_path: Path, warehouse: str) -> None:
    with simulator_process("--accounts", "1", "--invoices", "60", "--no-rate-limit", "--seed", "11") as base:
        data = tmp_path / "data"
        env = {**os.environ, "BLINGSYNC_DATA_DIR": str(data), "BLINGSYNC_SECRET_KEY": "",
               "BLINGSYNC_BLING_URL": f"{base}/Api/v3", "BLINGSYNC_REQUESTS_PER_SECOND": "200",
               "BLINGSYNC_LOG": "warning", "COLUMNS": "200"}
        env.pop("BLINGSYNC_DATABASE_URL", None)

        def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([sys.executable, "-c", "from blingsync.cli import main; main()", *args],
                                  env={**env, **extra}, capture_output=True, text=True, timeout=120,
                                  check=False)
            assert done.returncode == 0, done.stdout + done.stderr
            return done

        [company] = httpx.get(f"{base}/_sim/accounts", timeout=10).json()["accounts"]
        creds = httpx.post(f"{base}/_sim/accounts/{company['id']}/refresh-token", json={}, timeout=10).json()
        cli("accounts", "add", "--name", "Loja", "--client-id", creds["client_id"], "--lookback-days", "120",
            BLINGSYNC_CLIENT_SECRET=creds["client_secret"], BLINGSYNC_REFRESH_TOKEN=creds["refresh_token"])
        cli("sinks", "set", "Loja", "--webhook", warehouse, BLINGSYNC_SINK_SECRET=Warehouse.secret.reveal())
        counters = f"{base}/_sim/accounts/{company['id']}/counters"
        before = httpx.get(counters, timeout=10).json()

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-c", "from blingsync.cli import main; main()", "serve",
                                 "--port", str(port), "--grace", "10"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for("/healthz", lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, proc=proc)

            def scraped() -> dict[str, float]:
                return samples(httpx.get(f"{url}/metrics", timeout=5).text)

            def delivered_all() -> dict[str, float] | None:
                found = scraped()
                imported = found.get('blingsync_orders_imported_total{account="Loja"}', 0)
                if imported and found['blingsync_outbox_pending{account="Loja",channel="sink"}'] == 0:
                    return found
                return None

            found = wait_for("the scheduler's import and its deliveries", delivered_all, proc=proc)
            ready = httpx.get(f"{url}/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "housekeeping": "running", "inbox": "running",
                                              "relay:sink": "running", "relay:writeback": "running",
                                              "scheduler": "running"}
            after = httpx.get(counters, timeout=10).json()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                returncode = proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        stdout, stderr = proc.stdout.read() if proc.stdout else "", proc.stderr.read() if proc.stderr else ""

    assert returncode == 0, stderr
    assert f"serving on {url} — 1 account;" in stdout and f"{url}/api/v1/docs" in stdout
    assert "SIGTERM: stopping" in stdout and stdout.rstrip().endswith("stopped")
    assert "Traceback" not in stderr

    with sqlite3.connect(data / "blingsync.db") as db:
        keys = {row[0]: row[1] for row in db.execute("SELECT access_key, status FROM orders")}
        leased = db.execute("SELECT count(*) FROM outbox WHERE leased_until IS NOT NULL").fetchone()[0]
        running_runs = db.execute("SELECT count(*) FROM sync_runs WHERE outcome = 'running'").fetchone()[0]
        triggers = {row[0] for row in db.execute("SELECT trigger FROM sync_runs")}
    assert keys and triggers == {"poll"}
    assert leased == 0 and running_runs == 0  # nothing left claimed or half-recorded

    # Every order reached the warehouse once, signed; the metrics say what happened.
    assert Warehouse.forged == 0
    assert len(Warehouse.requests) == len(set(Warehouse.requests)) == len(keys)
    assert {event["data"]["access_key"] for event in Warehouse.processed.values()} == set(keys)
    assert found['blingsync_orders_imported_total{account="Loja"}'] == len(keys)
    assert found['blingsync_sync_runs_total{account="Loja",outcome="ok"}'] == 1
    assert found['blingsync_deliveries_delivered_total{relay="sink"}'] == len(keys)
    assert found['blingsync_delivery_attempts_total{account="Loja",outcome="delivered"}'] == len(keys)
    assert found["blingsync_delivery_attempt_seconds_count"] == len(keys)
    assert found["blingsync_sync_duration_seconds_count"] == 1
    assert found['blingsync_bling_requests_total{account="Loja"}'] == after["requests"] - before["requests"]
    assert found['blingsync_bling_requests_today{account="Loja"}'] == after["requests"] - before["requests"]
    assert found['blingsync_accounts{state="active"}'] == 1
    assert found["blingsync_inbox_backlog"] == 0
    assert found["blingsync_scheduler_accounts"] == 1
    assert found['blingsync_background_loop_up{loop="scheduler"}'] == 1


async def test_without_polling_only_sync_now_imports(port: Port, clock: FakeClock) -> None:
    port.add(account(1, interval=10), account(2, interval=10))
    scheduler = scheduler_for(port, clock, poll=False)
    async with running(scheduler):
        await clock.sleep(100)
        assert not port.starts[1] and not port.starts[2]
        scheduler.sync_now(2)
        await clock.sleep(100)
    assert [trigger for _, trigger in port.starts[2]] == ["manual"] and not port.starts[1]
    assert scheduler.scheduled() == 0


def test_a_busy_port_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "BLINGSYNC_DATA_DIR": str(tmp_path), "BLINGSYNC_SECRET_KEY": ""}
        env.pop("BLINGSYNC_DATABASE_URL", None)
        done = subprocess.run([sys.executable, "-c", "from blingsync.cli import main; main()", "serve",
                               "--port", str(port)], env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: cannot listen on 127.0.0.1:") and "in use" in lines[-1]
    assert "Traceback" not in done.stderr
