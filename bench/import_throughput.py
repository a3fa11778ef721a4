"""The importer end to end — listing, detail, XML, parse, store, outbox — against the simulator
served over a socket by another process.

Part 1, rate limit off (simulator `--no-rate-limit`, client at 1,000 req/s): how many notes per
second blingsync itself can import, on SQLite and on PostgreSQL (when reachable). This is the
ceiling that the 3 requests/s of a real Bling account never lets one account reach: it says how
many accounts one worker can keep up with.

Part 2, rate limit on (Bling's real limits, the client's default pacing): the efficiency ratio,
elapsed ÷ the minimum that 3 requests/s allows for the calls made (bar ≤ 1.05), and the 429s
(bar 0).

    .venv/bin/python bench/import_throughput.py                     # 2,000 notes off, 150 on: ~3 min
    .venv/bin/python bench/import_throughput.py --notes 500 --paced-notes 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from blingsync.bling.limits import LimiterRegistry, LimiterSettings, minimum_duration
from blingsync.config import Settings, sqlite_url
from blingsync.service import Service
from blingsync.store.records import AccountSettings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Result:
    database: str
    notes: int
    imported: int
    requests: int
    rate_limited: int
    elapsed: float
    cpu: float  # this process's CPU time during the import (client, parser, store driver)

    @property
    def per_second(self) -> float:
        return self.imported / self.elapsed if self.elapsed else float("nan")

    @property
    def ratio(self) -> float:
        minimum = minimum_duration(self.requests)
        return self.elapsed / minimum if minimum else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator(*, rate_limit: bool) -> Iterator[str]:
    port = _free_port()
    exe = Path(sys.executable).parent / "blingsync"
    args = [str(exe), "simulator", "--port", str(port), "--accounts", "1", "--invoices", "0", "--seed", "5"]
    if not rate_limit:
        args.append("--no-rate-limit")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1000):
            try:
                if httpx.get(base + "/", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str | None]:
    """A fresh database for one measurement, dropped afterwards; None when unreachable."""
    try:
        import psycopg

        admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"  (PostgreSQL not reachable at 127.0.0.1:5432: {type(exc).__name__}; skipped)")
        yield None
        return
    name = f"blingsync_bench_{os.getpid()}"
    async with admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run_import(base: str, database: str, database_url: str, data_dir: Path, notes: int,
                     registry: LimiterRegistry) -> Result:
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        [account] = (await admin.get("/_sim/accounts")).json()["accounts"]
        created = (await admin.post(f"/_sim/accounts/{account['id']}/notes",
                                    json={"count": notes, "situacao": 6})).json()["notes"]
        assert len(created) == notes
        settings = Settings(data_dir=data_dir, database_url=database_url, secret_key=None,
                            bling_url=f"{base}/Api/v3", bling_v2_url=f"{base}/Api/v2")
        async with Service.open(settings, warn=lambda _: None, registry=registry) as service:
            code = (await admin.post(f"/_sim/accounts/{account['id']}/code", json={})).json()
            added = (await service.add_account(
                f"bench-{database}", client_id=code["client_id"],
                client_secret=account["clients"][0]["client_secret"], code=code["code"],
                settings=AccountSettings(initial_lookback_days=2))).account
            before = (await admin.get(f"/_sim/accounts/{account['id']}/counters")).json()
            started, cpu_started = time.monotonic(), time.process_time()
            [outcome] = await service.sync([added.name])
            elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
            after = (await admin.get(f"/_sim/accounts/{account['id']}/counters")).json()
            if outcome.report is None or not outcome.report.ok:
                raise SystemExit(f"the import failed: {outcome.report}")
            imported = await service.store.count_orders(account_id=added.id)
            # Leave the simulator as found for the next measurement: these notes are imported.
            for note in created:
                await admin.post(f"/_sim/notes/{note['id']}/situacao", json={"action": "cancel"})
        return Result(database, notes, imported, outcome.report.requests,
                      after["rate_limited"] - before["rate_limited"], elapsed, cpu)


def _print(title: str, results: list[Result], *, paced: bool) -> None:
    print(title)
    print(f"  {'database':12} {'notes':>6} {'imported':>9} {'requests':>9} {'req/note':>9} "
          f"{'429s':>5} {'elapsed s':>10} {'notes/s':>8} {'CPU ms/note':>12}"
          + (f" {'minimum s':>10} {'ratio':>6}" if paced else ""))
    for r in results:
        line = (f"  {r.database:12} {r.notes:6d} {r.imported:9d} {r.requests:9d} "
                f"{r.requests / max(r.notes, 1):9.3f} {r.rate_limited:5d} {r.elapsed:10.1f} "
                f"{r.per_second:8.1f} {1000 * r.cpu / max(r.imported, 1):12.1f}")
        if paced:
            line += f" {minimum_duration(r.requests):10.1f} {r.ratio:6.3f}"
        print(line)


async def measure(args: argparse.Namespace) -> None:
    unpaced = LimiterRegistry(settings=LimiterSettings(per_second=1000, margin=0.0))
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        with simulator(rate_limit=False) as base:
            data = Path(tmp) / "sqlite"
            results.append(await run_import(base, "SQLite", sqlite_url(data), data, args.notes, unpaced))
            async with postgres_database() as url:
                if url is not None:
                    results.append(await run_import(base, "PostgreSQL", url, Path(tmp) / "pg",
                                                    args.notes, unpaced))
        _print(f"Rate limit off: {args.notes} Emitida DANFE notes, one account (the simulator in "
               "another process on the same 2 cores):", results, paced=False)
        print("  CPU ms/note is blingsync's own cost (client, parser, store; the database server's "
              "is not in it): one core imports at most 1000 ÷ that notes per second; notes/s is "
              "bounded by the simulator, which signs and serves every note on the other core.")
        if args.paced_notes:
            with simulator(rate_limit=True) as base:
                data = Path(tmp) / "paced"
                paced = await run_import(base, "SQLite", sqlite_url(data), data, args.paced_notes,
                                         LimiterRegistry())
            _print(f"Rate limit on (Bling's 3 requests/s): {args.paced_notes} notes:", [paced], paced=True)
            print("ratio = elapsed ÷ the minimum that 3 requests/s allows for the calls made "
                  "((requests − 1) // 3 seconds); bar: ≤ 1.05 with 0 × 429.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=2000, help="notes imported with the limit off")
    parser.add_argument("--paced-notes", type=int, default=150, help="notes imported at 3 req/s (0: skip)")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
