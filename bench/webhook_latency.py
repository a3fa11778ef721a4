"""Webhook latency: a Bling webhook `invoice.updated` to Emitida DANFE → the order delivered
downstream. Bar: p95 under 1 s.

Everything runs for real, over sockets: the simulator in another process (Bling's rate limits
ON: 3 requests/s per account, enforced by the simulator; blingsync's client paces itself to
it), its webhook hub POSTing signed webhooks to blingsync's app served by uvicorn in this
process, the inbox worker re-checking each note through the API (detail + XML: two requests),
the outbox relay delivering the order to a downstream receiver (uvicorn, Standard Webhooks
signature verified) — the loops that `blingsync serve` runs, one event loop, SQLite (or
`--postgres`).

Latency per note = the receiver got the order − blingsync stored the webhook (`inbox.received_at`);
both on this machine's wall clock. Also shown: note moved in Bling → order delivered (adds the
hub's own delay).

Part 1 (the bar): `--notes` notes moved to Emitida DANFE one every `--interval` seconds (a brand
printing DANFEs as orders are packed). Each note costs two requests, so one every second uses
2 of the 3 requests/s.
Part 2: a burst, `--burst` notes printed at once (a brand printing a batch). The rate limit,
not blingsync, sets the pace: the last order cannot leave before (2 × burst − 3) ÷ 3 s; the
ratio says how close to that floor the burst finished.

    .venv/bin/python bench/webhook_latency.py                      # 40 paced + a burst of 15: ~1 min
    .venv/bin/python bench/webhook_latency.py --notes 100 --interval 0.7 --burst 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blingsync.config import Settings, sqlite_url
from blingsync.delivery import Relay, StoreSinks, new_secret, verify_headers, webhook_sink_config
from blingsync.service import Service
from blingsync.store.records import AccountSettings
from blingsync.sync.inbox import InboxWorker
from blingsync.web.app import create_app
from blingsync.web.deps import Wakeups

BAR_S = 1.0
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    """`blingsync simulator` with Bling's limits on, one account, no history."""
    port = _free_port()
    exe = Path(sys.executable).parent / "blingsync"
    proc = subprocess.Popen([str(exe), "simulator", "--port", str(port), "--accounts", "1",
                             "--invoices", "0", "--seed", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1000):
            try:
                if httpx.get(base + "/", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        else:
            raise SystemExit("the simulator did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Downstream:
    """The warehouse's webhook endpoint: verifies each delivery, notes when each order arrived."""

    secret: str = field(default_factory=new_secret)
    port: int = field(default_factory=_free_port)
    arrived: dict[str, float] = field(default_factory=dict)  # access key → wall time of first arrival
    forged: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/orders"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        at = time.time()
        try:
            verify_headers(self.secret, request.headers, body)
        except Exception:
            self.forged += 1
            return Response(status_code=401)
        event = json.loads(body)
        if event["type"] == "order.created":
            self.arrived.setdefault(event["data"]["access_key"], at)
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/orders", self.handle, methods=["POST"])])


@contextlib.asynccontextmanager
async def served(app: object, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise SystemExit("a server could not start")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for the run, dropped afterwards."""
    import psycopg

    admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    name = f"blingsync_bench_webhooks_{os.getpid()}"
    async with admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Part:
    title: str
    latencies: list[float]  # webhook stored → order delivered, seconds
    end_to_end: list[float]  # note moved → order delivered
    rechecks: list[float]  # webhook stored → its re-check saved the order (outbox event written)
    deliveries: list[float]  # outbox event written → the receiver had it
    elapsed: float  # first move → last delivery
    missing: int
    requests: int
    rate_limited: int


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, math.ceil(p / 100 * len(ordered)) - 1)  # nearest-rank
    return ordered[rank]


async def until(done: Callable[[], Awaitable[bool]], wait_s: float) -> bool:
    """Poll `done` every 20 ms for up to `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        if await done():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


def _situacao(payload: str) -> object:
    data = json.loads(payload).get("data")
    return data.get("situacao") if isinstance(data, dict) else None


async def run_part(title: str, admin: httpx.AsyncClient, service: Service, sim_id: int,
                   downstream: Downstream, count: int, interval: float, wait_s: float) -> Part:
    created = (await admin.post(f"/_sim/accounts/{sim_id}/notes",
                                json={"count": count, "situacao": 5})).json()["notes"]

    async def inbox_empty() -> bool:
        return await service.store.inbox_depth() == 0

    # The notes' own webhooks (created at Pendente, then Autorizada) are handled first, so the
    # measurement starts from a quiet account, as a brand's would be between two prints.
    await asyncio.sleep(0.5)
    if not await until(inbox_empty, wait_s):
        raise SystemExit("the inbox did not drain before the measurement")
    before = (await admin.get(f"/_sim/accounts/{sim_id}/counters")).json()
    moved: dict[int, float] = {}
    chave: dict[int, str] = {}
    started = time.time()
    for index, note in enumerate(created):
        if index and interval:
            await asyncio.sleep(max(0.0, started + index * interval - time.time()))
        moved[note["id"]] = time.time()
        answer = await admin.post(f"/_sim/notes/{note['id']}/situacao", json={"action": "print-danfe"})
        chave[note["id"]] = answer.json()["chave"]

    async def all_arrived() -> bool:
        return all(k in downstream.arrived for k in chave.values())

    await until(all_arrived, wait_s)
    after = (await admin.get(f"/_sim/accounts/{sim_id}/counters")).json()
    received: dict[int, datetime] = {}
    for event in await service.store.inbox_events(limit=100_000):
        if event.resource_id in chave and _situacao(event.payload) == 6:  # the Emitida DANFE webhook
            received.setdefault(event.resource_id, event.received_at)
    written = {e.payload["access_key"]: e.created_at
               for e in await service.store.outbox(limit=100_000) if e.type.value == "order.created"}
    latencies, end_to_end, rechecks, deliveries = [], [], [], []
    for note_id, key in chave.items():
        if key in downstream.arrived and note_id in received:
            latencies.append(downstream.arrived[key] - received[note_id].timestamp())
            end_to_end.append(downstream.arrived[key] - moved[note_id])
            if key in written:
                rechecks.append((written[key] - received[note_id]).total_seconds())
                deliveries.append(downstream.arrived[key] - written[key].timestamp())
    last = max((downstream.arrived[k] for k in chave.values() if k in downstream.arrived), default=started)
    return Part(title, latencies, end_to_end, rechecks, deliveries, last - started, count - len(latencies),
                after["requests"] - before["requests"], after["rate_limited"] - before["rate_limited"])


def report(part: Part, *, burst: int | None = None) -> None:
    lat, e2e = part.latencies, part.end_to_end
    print(part.title)
    if not lat:
        print("  nothing was delivered")
        return
    print(f"  notes {len(lat) + part.missing}, delivered {len(lat)}, missing {part.missing}, "
          f"Bling requests {part.requests} ({part.requests / max(len(lat), 1):.2f}/note), "
          f"429s {part.rate_limited}")
    print(f"  webhook stored → order delivered:  p50 {statistics.median(lat):.3f} s   "
          f"p95 {percentile(lat, 95):.3f} s   max {max(lat):.3f} s")
    print(f"  note moved in Bling → delivered:   p50 {statistics.median(e2e):.3f} s   "
          f"p95 {percentile(e2e, 95):.3f} s   max {max(e2e):.3f} s")
    for label, values in (("  of which stored → re-check saved:", part.rechecks),
                          ("  and event written → delivered:    ", part.deliveries)):
        if values:
            print(f"{label} p50 {statistics.median(values):.3f} s   p95 {percentile(values, 95):.3f} s   "
                  f"max {max(values):.3f} s")
    if burst is None:
        print(f"  p95 ÷ the 1 s bar = {percentile(lat, 95) / BAR_S:.3f}  "
              f"({'under' if percentile(lat, 95) < BAR_S else 'OVER'} the bar)")
    else:
        floor = max(0.0, (part.requests - 3) / 3)
        print(f"  burst finished in {part.elapsed:.2f} s; the 3 requests/s floor for {part.requests} "
              f"requests is {floor:.2f} s; ratio {part.elapsed / floor if floor else float('nan'):.3f}")


async def measure(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(postgres_database()) if args.postgres else None
        await _measure(args, database_url)


async def _measure(args: argparse.Namespace, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, simulator() as base:
        data = Path(tmp)
        settings = Settings(data_dir=data, database_url=database_url or sqlite_url(data),
                            secret_key=None, bling_url=f"{base}/Api/v3", bling_v2_url=f"{base}/Api/v2")
        async with httpx.AsyncClient(base_url=base, timeout=60) as admin, \
                Service.open(settings, warn=lambda _: None) as service, \
                httpx.AsyncClient() as out:
            [sim_account] = (await admin.get("/_sim/accounts")).json()["accounts"]
            code = (await admin.post(f"/_sim/accounts/{sim_account['id']}/code", json={})).json()
            secret = next(c["client_secret"] for c in sim_account["clients"]
                          if c["client_id"] == code["client_id"])
            account = (await service.add_account(
                "bench", client_id=code["client_id"], client_secret=secret, code=code["code"],
                settings=AccountSettings(initial_lookback_days=1))).account
            downstream = Downstream()
            await service.store.set_sink(account.id, webhook_sink_config(downstream.url, downstream.secret))

            def now() -> datetime:
                return datetime.now(UTC)

            relay = Relay(service.store, StoreSinks(service.store, out, clock=now), now)
            worker = InboxWorker(service, on_saved=relay.notify)
            app = create_app(service, wakeups=Wakeups(inbox=worker.notify, outbox=relay.notify))
            app_port = _free_port()
            stop = asyncio.Event()
            async with served(downstream.app(), downstream.port), served(app, app_port):
                r = await admin.put("/_sim/webhooks", json={
                    "url": f"http://127.0.0.1:{app_port}/webhooks/bling", "account": sim_account["id"]})
                r.raise_for_status()
                loops = [asyncio.create_task(worker.run_forever(stop)),
                         asyncio.create_task(relay.run_forever(stop))]
                try:
                    print(f"blingsync webhook latency — simulator with Bling's limits on (3 requests/s), "
                          f"{'PostgreSQL' if database_url else 'SQLite'}, one process for blingsync, "
                          f"{os.cpu_count()} CPUs shared with the simulator (and whatever else runs here)")
                    paced = await run_part(
                        f"Part 1: {args.notes} notes moved to Emitida DANFE, one every {args.interval:g} s",
                        admin, service, sim_account["id"], downstream, args.notes, args.interval,
                        args.timeout)
                    report(paced)
                    if args.burst:
                        await asyncio.sleep(1.5)  # let the sliding second empty
                        burst = await run_part(
                            f"Part 2: a burst of {args.burst} notes moved at once", admin, service,
                            sim_account["id"], downstream, args.burst, 0.0, args.timeout)
                        report(burst, burst=args.burst)
                    depth = await service.store.inbox_depth()
                    print(f"inbox left unprocessed: {depth}; forged deliveries at the receiver: "
                          f"{downstream.forged}")
                finally:
                    stop.set()
                    await asyncio.gather(*loops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=40, help="notes moved one by one (part 1)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two moves (part 1)")
    parser.add_argument("--burst", type=int, default=15, help="notes moved at once (part 2; 0: skip)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the deliveries")
    parser.add_argument("--postgres", action="store_true",
                        help="a fresh database on the local PostgreSQL instead of SQLite")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
