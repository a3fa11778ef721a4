"""The bar of issue 5 for the REST API: schemathesis, generating requests from the published
`/api/v1/openapi.json` for every operation (valid and invalid inputs, the documented examples
first), finds no 5xx and no answer that breaks the documented schema, status codes or content
types.

The app runs in a real uvicorn on a free port, in a thread with its own event loop, over a
database (SQLite, and PostgreSQL when reachable: `db_url`) seeded by importing from the
simulator; schemathesis calls it over HTTP with an admin token, so every route, writes included,
is reached past authentication. Account 1 has no orders: the documented examples name id 1, and
`DELETE /accounts/1` must not take the imported orders with it.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from tests.conftest import make_sim
from tests.integration.test_import import World, open_world

from blingsync.bling.secrets import Secret
from blingsync.simulator.model import NfeSituacao
from blingsync.store.records import SinkConfig, SinkKind
from blingsync.store.tokens import TokenScope
from blingsync.web.app import create_app

CHECKS = ["not_a_server_error", "response_schema_conformance", "status_code_conformance",
          "content_type_conformance", "response_headers_conformance"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(world: World) -> str:
    """Two imported accounts after an empty one, a cancellation, a dead event, a sink with a
    secret; the admin token."""
    service = world.service
    client = world.company(0).clients[0]
    service.settings = replace(service.settings, oauth_client_id=client.client_id,
                               oauth_client_secret=client.client_secret, public_url="https://sync.example")
    r = await world.http.post(f"/_sim/accounts/{world.company(1).id}/apikeys", json={})
    await service.add_account("Conta Vazia", api_key=r.json()["apikey"])
    v3 = await world.add_v3(0)
    await world.add_v2(1)
    await service.sync()
    orders = await service.store.orders(account=v3.name, limit=1)
    note = next(n for n in world.company(0).notes.values() if n.chave == orders[0].order.access_key)
    await world.move(note, "cancel")
    world.bling.clock.advance(60)
    await service.sync(since=world.now() - timedelta(days=120))
    assert await service.store.count_orders() > 20
    events = await service.store.outbox(limit=5)
    await service.store.mark_dead(events[2].id, "receiver answered 500")
    await service.store.set_sink(v3.id, SinkConfig(SinkKind.WEBHOOK, url="https://wms.example/hook",
                                                   secret=Secret("whsec_" + "k" * 32)))
    created = await world.http.post(f"/_sim/accounts/{world.company(0).id}/notes",
                                    json={"count": 1, "situacao": int(NfeSituacao.AUTORIZADA)})
    assert created.status_code == 200
    _, token = await service.store.create_api_token("schemathesis", TokenScope.ADMIN)
    return token


class ServedApi:
    """The web app over a seeded service, served by uvicorn in a thread of its own."""

    def __init__(self, db_url: str, data_dir: Path) -> None:
        self.db_url, self.data_dir = db_url, data_dir
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="api-under-test", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        sim = make_sim(accounts=2, invoices=50)
        async with open_world(sim, httpx.ASGITransport(app=sim.app), self.data_dir, self.db_url) as world:
            self.token = await _seed(world)
            config = uvicorn.Config(create_app(world.service), host="127.0.0.1", port=self.port,
                                    log_level="warning", lifespan="off")
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve())
            while not self._server.started and not serving.done():  # noqa: ASYNC110 - uvicorn sets a flag
                await asyncio.sleep(0.01)
            self._ready.set()
            await serving

    def __enter__(self) -> ServedApi:
        self._thread.start()
        self._ready.wait(120)
        if self._failure is not None:
            raise RuntimeError("the API under test did not start") from self._failure
        if self._server is None or not self._server.started:
            raise RuntimeError("the API under test did not start in time")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)


CLI_ARGUMENTS = [
    "--checks", ",".join(CHECKS), "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "25",
    "--seed", "20261124", "--workers", "1", "--suppress-health-check", "all", "--request-timeout", "30",
    "--no-color",
]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path, db_url: str) -> None:
    with ServedApi(db_url, tmp_path) as served:
        run = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run",
             f"{served.base_url}/api/v1/openapi.json", "-H", f"Authorization: Bearer {served.token}",
             *CLI_ARGUMENTS],
            capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:]
    assert "No issues found" in report or " passed" in report, report[-5000:]
