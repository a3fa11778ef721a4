"""Kill -9 in the middle of an import, again and again, then let it finish: exactly one order
per note and exactly one outbox event per order — whatever the moment of death.

Everything is a real process: the simulator serves over a socket, `blingsync accounts add` and
`blingsync sync` run as the CLI a user runs, and SIGKILL gives them no chance to clean up.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from blingsync.store import Store
from blingsync.store.crypto import SecretBox
from blingsync.store.records import EventType, RunOutcome
from tests.conftest import simulator_process

NOTES = 2_000
KILLS = 6

pytestmark = pytest.mark.slow


def _blingsync(*args: str) -> list[str]:
    return [sys.executable, "-c", "from blingsync.cli import main; main()", *args]


@pytest.fixture
def simulator() -> Iterator[str]:
    with simulator_process("--accounts", "1", "--invoices", "0", "--no-rate-limit", "--seed", "3") as base:
        yield base


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {**os.environ, "BLINGSYNC_DATA_DIR": str(tmp_path / "data"),
            "BLINGSYNC_DATABASE_URL": database_url, "BLINGSYNC_REQUESTS_PER_SECOND": "1000",
            "BLINGSYNC_SECRET_KEY": ""}


async def _count_orders(database_url: str, tmp_path: Path) -> int:
    box = SecretBox.from_settings(None, tmp_path / "data", lambda _: None)
    store = await Store.open(database_url, box=box)
    try:
        return await store.count_orders()
    finally:
        await store.close()


def _kill9_then_finish(simulator: str, tmp_path: Path, database_url: str) -> None:
    admin = httpx.Client(base_url=simulator, timeout=60)
    [account] = admin.get("/_sim/accounts").json()["accounts"]
    created = admin.post(f"/_sim/accounts/{account['id']}/notes",
                         json={"count": NOTES, "situacao": 6}).json()["notes"]
    assert len(created) == NOTES
    creds = admin.post(f"/_sim/accounts/{account['id']}/refresh-token", json={}).json()
    env = _env(tmp_path, database_url)
    added = subprocess.run(
        _blingsync("accounts", "add", "--name", "Marca", "--client-id", creds["client_id"],
                   "--client-secret", creds["client_secret"], "--refresh-token", creds["refresh_token"],
                   "--bling-url", f"{simulator}/Api/v3"),
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert added.returncode == 0, added.stdout + added.stderr

    rng = random.Random(11)
    kills_landed = 0
    imported_at_kill: list[int] = []
    for _ in range(KILLS):
        sync = subprocess.Popen(_blingsync("sync"), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 6.0))  # from the listing to deep into the imports
        if sync.poll() is None:
            sync.send_signal(signal.SIGKILL)
            kills_landed += 1
        sync.wait(30)
        imported_at_kill.append(asyncio.run(_count_orders(database_url, tmp_path)))
    assert kills_landed >= KILLS - 1, "the import finished before most kills: make NOTES larger"
    # The kills fell in the middle of the import, not only before or after it.
    assert sum(1 for n in imported_at_kill if 0 < n < NOTES) >= 3, imported_at_kill
    assert imported_at_kill == sorted(imported_at_kill), imported_at_kill
    final = subprocess.run(_blingsync("sync"), env=env, capture_output=True, text=True, timeout=900,
                           check=False)
    assert final.returncode == 0, final.stdout + final.stderr

    async def check() -> None:
        box = SecretBox.from_settings(None, tmp_path / "data", lambda _: None)
        store = await Store.open(database_url, box=box)
        try:
            orders = await store.orders(limit=NOTES * 2)
            keys = [o.order.access_key for o in orders]
            assert len(keys) == NOTES and len(set(keys)) == NOTES
            assert set(keys) == {n["chave"] for n in created}
            events = await store.outbox(limit=NOTES * 3)
            assert Counter(e.type for e in events) == {EventType.CREATED: NOTES}
            # One event per change: each (order, version, type) once, every order once.
            assert len({(e.order_id, e.order_version, e.type) for e in events}) == NOTES
            assert len({e.order_id for e in events}) == NOTES
            assert {e.order_id for e in events} == {o.id for o in orders}
            runs = await store.runs((await store.account("Marca")).id, limit=50)
            assert runs[0].outcome is RunOutcome.OK
            assert sum(1 for r in runs if r.outcome is RunOutcome.INTERRUPTED) >= kills_landed - 1
        finally:
            await store.close()

    asyncio.run(check())


def test_kill9_during_an_import_on_sqlite(simulator: str, tmp_path: Path) -> None:
    _kill9_then_finish(simulator, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'data' / 'blingsync.db'}")


@pytest.mark.postgres
def test_kill9_during_an_import_on_postgresql(simulator: str, tmp_path: Path, pg_url: str) -> None:
    _kill9_then_finish(simulator, tmp_path, pg_url)
