"""Delivery downstream against real databases (SQLite and PostgreSQL via `db_url`) and a real
HTTP receiver: a Starlette app served by uvicorn on a free port, which verifies every signature
with the documented algorithm, deduplicates by `webhook-id` as docs/delivery.md tells receivers
to, and can be down (nothing listening: connection refused), failing (503), gone (410) or losing
its answer after processing (500 after the work was done).

Time is the store's and relay's injectable clock: an hour of downtime is a loop."""
# ruff: noqa: F811  (fixtures imported from store_fixtures are "redefined" as parameters)

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blingsync.bling.secrets import Secret
from blingsync.delivery import Relay, StoreSinks, webhook_sink_config
from blingsync.delivery.relay import Backoff
from blingsync.delivery.signing import WebhookVerificationError, new_secret, verify_headers
from blingsync.delivery.sinks.webhook import envelope
from blingsync.store import AccountNotFound, SecretBox, Store
from blingsync.store.outbox import EventNotFound, NotReplayable, SinkSecretUnreadable
from blingsync.store.records import EventType, OutboxEvent, SinkConfig, SinkKind
from blingsync.store.tables import sinks
from tests.integration.store_fixtures import (  # noqa: F401  (fixtures are used by name)
    T0,
    Clock,
    box,
    clock,
    db_url,
    make_note,
    make_order,
    new_account,
    pg_url,
    store,
    with_total,
)

# --- the receiver -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Receiver:
    """A warehouse's webhook endpoint, as docs/delivery.md describes one."""

    secret: Secret
    clock: Clock
    port: int = field(default_factory=free_port)
    mode: str = "ok"  # "ok" | "503" | "410"
    lose_answer_once: set[str] = field(default_factory=set)  # process, then answer 500 once
    fail_once: set[str] = field(default_factory=set)  # answer 503 once, without processing
    delay_s: float = 0.0
    requests: list[tuple[str, int]] = field(default_factory=list)  # (webhook-id, status answered)
    processed: list[dict[str, Any]] = field(default_factory=list)  # first-time envelopes, in order
    forged: int = 0
    overlaps: list[str] = field(default_factory=list)  # ids received while the same id was in flight
    _inflight: set[str] = field(default_factory=set)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/orders"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            msg_id = verify_headers(self.secret, request.headers, body, now=self.clock().timestamp())
        except WebhookVerificationError:
            self.forged += 1
            return Response(status_code=401)
        if msg_id in self._inflight:
            self.overlaps.append(msg_id)
        self._inflight.add(msg_id)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            status = self._answer(msg_id, body)
        finally:
            self._inflight.discard(msg_id)
        self.requests.append((msg_id, status))
        return Response(status_code=status)

    def _answer(self, msg_id: str, body: bytes) -> int:
        if self.mode != "ok":
            return int(self.mode)
        if msg_id in self.fail_once:
            self.fail_once.discard(msg_id)
            return 503
        envelope = json.loads(body)
        assert envelope["id"] == msg_id
        if msg_id not in self.seen:  # dedupe by webhook-id: a retry of a processed event is a no-op
            self.processed.append(envelope)
        if msg_id in self.lose_answer_once:
            self.lose_answer_once.discard(msg_id)
            return 500  # processed, but the answer says otherwise: the sender must retry
        return 200

    @property
    def seen(self) -> set[str]:
        return {e["id"] for e in self.processed}

    def delivered_statuses(self) -> Counter[str]:
        return Counter(msg_id for msg_id, status in self.requests if 200 <= status < 300)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks/orders", self.handle, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            assert not self._task.done(), "the receiver could not start"
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


@pytest.fixture
async def receiver(clock: Clock) -> AsyncIterator[Receiver]:
    found = Receiver(secret=new_secret(), clock=clock)
    try:
        yield found
    finally:
        await found.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def relay_for(store: Store, http: httpx.AsyncClient, clock: Clock, **kw: Any) -> Relay:
    kw.setdefault("rng", random.Random(5))
    return Relay(store, StoreSinks(store, http, clock=clock), clock, **kw)


async def drain(relay: Relay, rounds: int = 50) -> None:
    """run_once until nothing is due at this instant."""
    for _ in range(rounds):
        if (await relay.run_once()).claimed == 0:
            return
    raise AssertionError("the relay kept claiming")


def assert_in_order(receiver: Receiver, events: list[OutboxEvent]) -> None:
    """Every order's events reached the receiver once, in the order they were written."""
    expected: dict[object, list[str]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.id):
        expected[event.order_id].append(event.idempotency_key)
    got: dict[object, list[str]] = defaultdict(list)
    for envelope_ in receiver.processed:
        got[envelope_["data"]["id"]].append(envelope_["id"])
    assert got == expected


async def orders_with_history(store: Store, account_id: int, count: int, *, first: int = 1) -> None:
    """`count` orders; every third is then updated, every fourth canceled (one event each)."""
    for n in range(first, first + count):
        order = make_order(number=n)
        await store.save_order(account_id, make_note(order, bling_id=n))
        if n % 3 == 0:
            await store.save_order(account_id, make_note(with_total(order, "31.00"), bling_id=n))
        if n % 4 == 0:
            await store.cancel_order(account_id, n)


# --- sinks in the store -----------------------------------------------------------------------


async def test_sink_config_round_trips_with_its_secret_sealed(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    assert await store.sink(account.id) is None
    config = webhook_sink_config("https://wms.example/hooks?token=abc123def456ghi789")
    secret = config.secret
    assert secret is not None
    stored = await store.set_sink(account.id, config)
    assert stored.kind is SinkKind.WEBHOOK and stored.secret == secret and stored.enabled
    assert stored.created_at == T0 and stored.updated_at == T0
    assert await store.sink(account.id) == stored
    for text in (repr(stored), str(stored), f"{stored}"):
        assert secret.reveal() not in text and "abc123def456ghi789" not in text
    async with store.engine.connect() as conn:
        blob = bytes((await conn.execute(select(sinks.c.secret))).scalar_one())
    for plain in (secret.reveal(), secret.reveal().removeprefix("whsec_")):
        assert plain.encode() not in blob

    clock.advance(minutes=1)  # replacing keeps one row
    replaced = await store.set_sink(account.id, SinkConfig(SinkKind.NONE))
    assert replaced.kind is SinkKind.NONE and replaced.secret is None and replaced.created_at == T0
    assert replaced.updated_at == T0 + timedelta(minutes=1)

    with pytest.raises(ValueError, match="needs an http"):
        await store.set_sink(account.id, SinkConfig(SinkKind.WEBHOOK, url="ftp://x", secret=Secret("s")))
    with pytest.raises(ValueError, match="needs a secret"):
        await store.set_sink(account.id, SinkConfig(SinkKind.WEBHOOK, url="https://x.example"))
    with pytest.raises(ValueError, match="whsec_"):
        webhook_sink_config("https://x.example", "not-a-secret!")
    with pytest.raises(AccountNotFound):
        await store.set_sink(999, SinkConfig(SinkKind.NONE))

    await store.remove_account(account.name)  # the sink goes with its account
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(sinks.c.id))).all() == []


async def test_a_sink_secret_copied_to_another_account_does_not_decrypt(store: Store) -> None:
    a = await store.add_account(new_account("a"))
    b = await store.add_account(new_account("b"))
    await store.set_sink(a.id, webhook_sink_config("https://a.example/h"))
    await store.set_sink(b.id, webhook_sink_config("https://b.example/h"))
    async with store.engine.begin() as conn:
        blob = (await conn.execute(select(sinks.c.secret).where(sinks.c.account_id == a.id))).scalar_one()
        await conn.execute(update(sinks).where(sinks.c.account_id == b.id).values(secret=blob))
    with pytest.raises(SinkSecretUnreadable, match=f"account {b.id}"):
        await store.sink(b.id)


async def test_another_key_cannot_read_a_sink_secret(db_url: str, store: Store) -> None:
    account = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config("https://a.example/h"))
    other = await Store.open(db_url, box=SecretBox.generate())
    try:
        with pytest.raises(SinkSecretUnreadable, match="another secret key"):
            await other.sink(account.id)
    finally:
        await other.close()


# --- claiming ---------------------------------------------------------------------------------


async def test_claims_hand_out_one_event_per_order_under_a_lease(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    pull = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config("https://wms.example/h"))
    await store.set_sink(pull.id, SinkConfig(SinkKind.NONE))
    bare = await store.add_account(new_account())  # no sink at all: pull-only too
    for target in (account, pull, bare):
        await orders_with_history(store, target.id, 4)  # 4 orders, 6 events (order 3 updated, 4 canceled)
    mine = await store.outbox(account_id=account.id)
    assert len(mine) == 6

    first = await store.claim_events(limit=10, lease=timedelta(minutes=5), now=clock())
    firsts = {}
    for event in sorted(mine, key=lambda e: e.id):
        firsts.setdefault(event.order_id, event.id)
    assert sorted(e.id for e in first) == sorted(firsts.values())
    assert all(e.leased_until == clock() + timedelta(minutes=5) for e in first)
    # Leased: nobody else gets them; the later events of those orders wait behind them.
    assert await store.claim_events(limit=10, lease=timedelta(minutes=5), now=clock()) == []

    clock.advance(minutes=5)  # the claimer died: its lease ran out
    again = await store.claim_events(limit=10, lease=timedelta(minutes=5), now=clock())
    assert sorted(e.id for e in again) == sorted(e.id for e in first)

    for event in again:
        assert await store.mark_delivered(event.id, attempt_duration=timedelta(milliseconds=12))
    assert not await store.mark_delivered(again[0].id, attempt_duration=timedelta(0))  # once only
    nexts = await store.claim_events(limit=10, lease=timedelta(minutes=5), now=clock())
    assert sorted(e.id for e in nexts) == sorted({e.id for e in mine} - set(firsts.values()))
    await store.release_events([e.id for e in nexts])
    assert len(await store.claim_events(limit=1, lease=timedelta(seconds=1), now=clock())) == 1

    assert await store.pending_count(pull.id) == 6 and await store.pending_count(bare.id) == 6
    assert (await store.pending_counts())[pull.id] == 6
    delivered = await store.event(first[0].id)
    assert delivered.delivered_at is not None and delivered.attempts == 1 and delivered.last_attempt_ms == 12
    assert delivered.leased_until is None and not delivered.pending
    with pytest.raises(EventNotFound):
        await store.event(10**9)
    with pytest.raises(NotReplayable):
        await store.replay(delivered.id)
    with pytest.raises(ValueError, match="aware"):
        await store.claim_events(limit=1, lease=timedelta(seconds=1), now=clock().replace(tzinfo=None))


async def test_a_dead_event_holds_its_order_back_until_replayed(store: Store, clock: Clock) -> None:
    account = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config("https://wms.example/h"))
    await store.save_order(account.id, make_note(bling_id=1))
    await store.cancel_order(account.id, 1)
    created, canceled = await store.outbox(account_id=account.id)

    [claimed] = await store.claim_events(limit=10, lease=timedelta(minutes=1), now=clock())
    assert claimed.id == created.id
    assert await store.mark_dead(created.id, "HTTP 503 Service Unavailable")
    assert [e.id for e in await store.dead_events()] == [created.id]
    assert await store.dead_events(account_id=account.id + 1) == []
    assert await store.claim_events(limit=10, lease=timedelta(minutes=1), now=clock()) == []

    clock.advance(hours=1)
    replayed = await store.replay(created.id)
    assert replayed.pending and replayed.attempts == 1 and replayed.replayed_at == clock()
    assert replayed.next_attempt_at == clock() and replayed.last_error == "HTTP 503 Service Unavailable"
    assert (await store.event(canceled.id)).replayed_at == clock()  # its horizon restarts too
    assert [e.id for e in await store.claim_events(limit=10, lease=timedelta(minutes=1), now=clock())] \
        == [created.id]


# --- the relay --------------------------------------------------------------------------------


async def test_created_then_canceled_stay_in_order_when_the_first_attempt_fails(
        store: Store, clock: Clock, receiver: Receiver, http: httpx.AsyncClient) -> None:
    await receiver.start()
    account = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config(receiver.url, receiver.secret))
    await store.save_order(account.id, make_note(bling_id=1))
    await store.cancel_order(account.id, 1)
    created, canceled = await store.outbox(account_id=account.id)
    receiver.fail_once.add(created.idempotency_key)
    relay = relay_for(store, http, clock)

    stats = await relay.run_once()
    assert (stats.claimed, stats.retried, stats.delivered) == (1, 1, 0)
    failed = await store.event(created.id)
    assert failed.attempts == 1 and failed.last_error == "HTTP 503 Service Unavailable"
    assert failed.next_attempt_at is not None and failed.next_attempt_at > clock()
    # The cancel is due, but waits behind its create.
    assert (await relay.run_once()).claimed == 0

    clock.advance(seconds=6)  # past the first backoff (at most 5 s)
    await drain(relay)
    assert [e["id"] for e in receiver.processed] == [created.idempotency_key, canceled.idempotency_key]
    assert [e["type"] for e in receiver.processed] == ["order.created", "order.canceled"]
    assert receiver.processed[0] == json.loads(json.dumps(envelope(created)))
    assert receiver.processed[1]["data"]["status"] == "canceled"
    assert receiver.forged == 0 and await store.pending_count() == 0


async def test_the_bar_an_hour_of_downtime_then_everything_once_and_in_order(
        store: Store, clock: Clock, receiver: Receiver, http: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 5's first bar. The receiver is down (connection refused) for 30 minutes, answers
    503 for 30 more, then works, while the importer keeps writing events (new orders, updates,
    cancels of orders not yet delivered). One answer is lost after processing, so that key is
    seen twice, as a retry, and processed once."""
    caplog.set_level(logging.INFO)
    account = await store.add_account(new_account("marca"))
    pull = await store.add_account(new_account("pull"))
    await store.set_sink(account.id, webhook_sink_config(receiver.url, receiver.secret))
    await store.set_sink(pull.id, SinkConfig(SinkKind.NONE))
    await orders_with_history(store, account.id, 12)
    await orders_with_history(store, pull.id, 3)
    relay = relay_for(store, http, clock, batch=7)

    stats_total: Counter[str] = Counter()
    step = timedelta(seconds=20)
    end = T0 + timedelta(hours=2)
    while clock() < end:
        elapsed = clock() - T0
        if elapsed == timedelta(minutes=20):  # the importer goes on while the receiver is down
            await orders_with_history(store, account.id, 8, first=100)
        if elapsed == timedelta(minutes=30):
            receiver.mode = "503"
            await receiver.start()
        if elapsed == timedelta(minutes=45):
            await store.cancel_order(account.id, 1)  # cancels an order the receiver never got
        if elapsed == timedelta(hours=1):
            receiver.mode = "ok"
            [lost] = [e for e in await store.outbox(account_id=account.id) if e.order_id == 2]
            receiver.lose_answer_once.add(lost.idempotency_key)
        if elapsed == timedelta(hours=1, minutes=30):
            await store.save_order(account.id, make_note(make_order(number=500), bling_id=500))
        stats = await relay.run_once()
        stats_total.update(vars(stats))
        clock.now += step

    events = await store.outbox(account_id=account.id)
    assert len(events) == 12 + 4 + 3 + 8 + 2 + 2 + 1 + 1  # orders, updates, cancels per batch, then 2
    assert await store.pending_count(account.id) == 0 and await store.dead_events() == []
    # (`Store.outbox` predates the delivery columns; `Store.event` reads them all.)
    for event in [await store.event(e.id) for e in events]:
        assert event.delivered_at is not None and event.last_attempt_ms is not None
    assert stats_total["dead"] == 0 and stats_total["retried"] > 50 and stats_total["errors"] == 0

    # Each key processed once, accepted (2xx) once; the only duplicate is the lost answer's retry.
    assert receiver.seen == {e.idempotency_key for e in events}
    assert len(receiver.processed) == len(events)
    assert set(receiver.delivered_statuses().values()) == {1}
    assert [msg_id for msg_id, status in receiver.requests if status == 500] == [lost.idempotency_key]
    assert receiver.forged == 0 and receiver.overlaps == []
    assert_in_order(receiver, events)
    late = max(e.delivered_at for e in events if e.delivered_at is not None)
    assert late < T0 + timedelta(hours=1, minutes=35)  # all delivered within the cap after recovery

    # Failures were recorded in words, without the secret; the pull-only account was left alone.
    errors = {e.last_error for e in events if e.last_error}
    assert "HTTP 503 Service Unavailable" in errors  # the last failure before the receiver came back
    assert "(ConnectError: All connection attempts failed)" in caplog.text  # while nothing listened
    for text in [*errors, caplog.text, repr(relay), repr(await store.sink(account.id))]:
        assert receiver.secret.reveal() not in text
        assert receiver.secret.reveal().removeprefix("whsec_") not in text
    for event in await store.outbox(account_id=pull.id):
        assert event.pending and event.attempts == 0 and event.dead_at is None


async def test_past_the_horizon_an_event_dies_and_a_replay_delivers_it(
        store: Store, clock: Clock, receiver: Receiver, http: httpx.AsyncClient) -> None:
    account = await store.add_account(new_account())
    pull = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config(receiver.url, receiver.secret))
    await store.set_sink(pull.id, SinkConfig(SinkKind.NONE))
    await store.save_order(account.id, make_note(bling_id=1))
    await store.cancel_order(account.id, 1)
    await store.save_order(pull.id, make_note(bling_id=1))
    created, canceled = await store.outbox(account_id=account.id)
    relay = relay_for(store, http, clock)  # the default horizon: 3 days

    while not await store.dead_events():  # nothing listens at the URL
        assert clock() < T0 + timedelta(days=3, hours=1), "never died"
        await relay.run_once()
        clock.advance(minutes=10)
    [dead] = await store.dead_events(account_id=account.id)
    assert dead.id == created.id and dead.dead_at is not None and dead.dead_at >= T0 + timedelta(days=3)
    assert dead.last_error is not None and "ConnectError" in dead.last_error
    assert dead.attempts > 400  # ~ every 5 min (full jitter under a 10 min cap) for 3 days
    assert (await store.event(canceled.id)).attempts == 0  # held back behind the dead create
    [pulled] = await store.outbox(account_id=pull.id)
    assert pulled.pending and pulled.attempts == 0  # a pull-only event never dies

    await receiver.start()
    await drain(relay)
    assert receiver.requests == []  # dead stays dead until someone replays it
    await store.replay(dead.id)
    await drain(relay)
    assert [e["id"] for e in receiver.processed] == [created.idempotency_key, canceled.idempotency_key]
    delivered = await store.event(dead.id)
    assert delivered.delivered_at is not None and delivered.attempts == dead.attempts + 1
    assert await store.dead_events() == [] and await store.pending_count(account.id) == 0


async def test_410_disables_the_sink_and_keeps_its_events(
        store: Store, clock: Clock, receiver: Receiver, http: httpx.AsyncClient) -> None:
    await receiver.start()
    receiver.mode = "410"
    account = await store.add_account(new_account())
    config = await store.set_sink(account.id, webhook_sink_config(receiver.url, receiver.secret))
    await orders_with_history(store, account.id, 6)
    relay = relay_for(store, http, clock, per_account=1)

    stats = await relay.run_once()
    assert stats.disabled == 1 and stats.delivered == 0 and stats.dead == 0
    assert stats.released == stats.claimed and len(receiver.requests) == 1
    sink = await store.sink(account.id)
    assert sink is not None and not sink.enabled
    assert sink.disabled_reason is not None and "410 Gone" in sink.disabled_reason
    assert receiver.secret.reveal() not in sink.disabled_reason
    events = await store.outbox(account_id=account.id)
    assert all(e.pending and e.attempts == 0 and e.leased_until is None for e in events)

    clock.advance(days=4)  # disabled for longer than the horizon: nothing is claimed, nothing dies
    assert (await relay.run_once()).claimed == 0
    assert await store.dead_events() == []

    receiver.mode = "ok"  # the warehouse fixed its endpoint; the sink is configured again
    await store.set_sink(account.id, replace(config, enabled=True))
    await drain(relay)
    assert receiver.seen == {e.idempotency_key for e in events}
    assert_in_order(receiver, events)


async def test_two_relays_never_send_one_event_at_once_and_deliver_everything(
        db_url: str, box: SecretBox, clock: Clock, receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.delay_s = 0.003  # widen the window in which a double delivery would overlap
    await receiver.start()
    first = await Store.open(db_url, box=box, clock=clock)
    second = await Store.open(db_url, box=box, clock=clock)
    try:
        accounts = [await first.add_account(new_account()) for _ in range(2)]
        for index, account in enumerate(accounts):
            await first.set_sink(account.id, webhook_sink_config(receiver.url, receiver.secret))
            # Distinct notes: keys are unique per account only (one brand connected twice
            # imports the same note under the same key).
            await orders_with_history(first, account.id, 15, first=1 + 100 * index)
        events = [e for account in accounts for e in await first.outbox(account_id=account.id)]
        relays = [relay_for(s, http, clock, batch=4, rng=random.Random(i))
                  for i, s in enumerate((first, second))]
        delivered = Counter[int]()

        async def work(index: int, relay: Relay) -> None:
            idle = 0
            while idle < 3:
                stats = await relay.run_once()
                delivered[index] += stats.delivered
                idle = idle + 1 if stats.claimed == 0 else 0
                await asyncio.sleep(0.002 if stats.claimed == 0 else 0)

        await asyncio.gather(*(work(i, relay) for i, relay in enumerate(relays)))
        assert await first.pending_count() == 0
        assert sum(delivered.values()) == len(events) == 2 * (15 + 5 + 3)
        assert min(delivered[0], delivered[1]) > 0  # both relays really took part
        assert receiver.overlaps == [] and set(receiver.delivered_statuses().values()) == {1}
        assert len(receiver.requests) == len(events) and receiver.seen == {e.idempotency_key for e in events}
        assert_in_order(receiver, events)
    finally:
        await first.close()
        await second.close()


async def test_sinks_it_cannot_deliver_to_leave_events_pending(
        store: Store, clock: Clock, http: httpx.AsyncClient) -> None:
    """An account without a sink: nothing is attempted, nothing dies, and the events are there
    for when a sink appears. (A SmartGo sink's configuration keeps its options and hides its
    key; its delivery is tested in test_smartgo_sink.py.)"""
    bare = await store.add_account(new_account())
    await store.save_order(bare.id, make_note(bling_id=1))
    relay = relay_for(store, http, clock)
    clock.advance(days=5)
    assert (await relay.run_once()).claimed == 0
    [event] = await store.outbox(account_id=bare.id)
    assert event.pending and event.attempts == 0
    smartgo = await store.add_account(new_account("smartgo"))
    await store.set_sink(smartgo.id, SinkConfig(SinkKind.SMARTGO, url="https://smartgo.example",
                                                 secret=Secret("api-key-0123456789abcdef"),
                                                 options={"doc_depositante": "12345678000195"}))
    config = await store.sink(smartgo.id)
    assert config is not None and config.options == {"doc_depositante": "12345678000195"}
    assert "api-key-0123456789abcdef" not in repr(config)


async def test_a_sink_raising_is_a_retry_without_its_message(
        store: Store, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    account = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config("https://wms.example/h"))
    await store.save_order(account.id, make_note(bling_id=1))

    class Exploding:
        kind = SinkKind.WEBHOOK

        async def deliver(self, event: OutboxEvent) -> Any:
            raise RuntimeError("token=super-secret-value-123456")

    class Resolver:
        kinds = frozenset({SinkKind.WEBHOOK})

        async def resolve(self, account_id: int) -> Any:
            return Exploding()

    stats = await Relay(store, Resolver(), clock, rng=random.Random(1)).run_once()
    assert stats.retried == 1
    [event] = await store.outbox(account_id=account.id)
    assert event.last_error == "the sink failed unexpectedly (RuntimeError)" and event.attempts == 1
    assert event.type is EventType.CREATED


def test_backoff_doubles_to_its_cap_with_full_jitter() -> None:
    backoff = Backoff()
    assert [backoff.ceiling(n).total_seconds() for n in (1, 2, 3, 4, 7, 8, 50)] == [
        5, 10, 20, 40, 320, 600, 600]
    rng = random.Random(3)
    delays = [backoff.delay(8, rng) for _ in range(500)]
    assert all(timedelta(seconds=1) <= d <= timedelta(minutes=10) for d in delays)
    assert max(delays) - min(delays) > timedelta(minutes=8)  # spread over the interval
    assert [backoff.delay(3, random.Random(9)) for _ in range(2)] == [backoff.delay(3, random.Random(9))] * 2


async def test_run_forever_wakes_on_notify_and_stops(
        store: Store, clock: Clock, receiver: Receiver, http: httpx.AsyncClient) -> None:
    await receiver.start()
    account = await store.add_account(new_account())
    await store.set_sink(account.id, webhook_sink_config(receiver.url, receiver.secret))
    relay = relay_for(store, http, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run_forever(stop, idle_sleep=30.0))
    await asyncio.sleep(0.05)  # idle now, for 30 s unless woken
    await store.save_order(account.id, make_note(bling_id=1))
    relay.notify()
    for _ in range(500):  # delivered well before the 30 s idle sleep would have ended
        if await store.pending_count() == 0:
            break
        await asyncio.sleep(0.01)
    assert await store.pending_count() == 0
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert len(receiver.processed) == 1
