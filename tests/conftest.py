"""Shared fixtures: a simulator built in-process on a manual clock, and an HTTP client that
talks to it through ASGI (the same bytes as over a socket, without one)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from blingsync.simulator.app import Simulator, build
from blingsync.simulator.clock import ManualClock
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.model import BRT, Company, OAuthClient
from blingsync.simulator.process import simulator_process

ANCHOR = datetime(2026, 11, 20, tzinfo=BRT)
"""'Today' of the test world. The manual clock starts ten hours later."""


def make_sim(*, clock: ManualClock | None = None, limits: LimitSettings | None = None,
             seed: int = 7, accounts: int = 2, invoices: int = 200, **kw: Any) -> Simulator:
    return build(
        seed=seed, accounts=accounts, invoices=invoices, anchor=ANCHOR,
        clock=clock or ManualClock(ANCHOR.timestamp() + 10 * 3600),
        limits=limits or LimitSettings(enabled=False), **kw,
    )


def basic(client: OAuthClient) -> str:
    return "Basic " + base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()


class Bling:
    """A thin test client for the simulator: real requests, no shortcuts past the API."""

    def __init__(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.http = http

    @property
    def clock(self) -> ManualClock:
        clock = self.sim.state.clock
        assert isinstance(clock, ManualClock)
        return clock

    def company(self, index: int = 0) -> Company:
        return self.sim.state.world.companies[index]

    async def code(self, client: OAuthClient, state: str = "xyz") -> str:
        r = await self.http.get("/Api/v3/oauth/authorize", params={
            "response_type": "code", "client_id": client.client_id, "state": state,
        })
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["state"] == [state]
        return query["code"][0]

    async def token(self, client: OAuthClient, *, jwt: bool = True) -> dict[str, Any]:
        code = await self.code(client)
        r = await self.http.post(
            "/Api/v3/oauth/token", data={"grant_type": "authorization_code", "code": code},
            headers={"authorization": basic(client), **({"enable-jwt": "1"} if jwt else {})},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def bearer(self, index: int = 0, client: OAuthClient | None = None) -> dict[str, str]:
        client = client or self.company(index).clients[0]
        token = await self.token(client)
        return {"authorization": f"Bearer {token['access_token']}"}

    async def get(self, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=headers)

    async def all_pages(self, path: str, headers: dict[str, str], **params: Any) -> list[Any]:
        out: list[Any] = []
        page = 1
        while True:
            r = await self.get(path, headers, pagina=page, **params)
            assert r.status_code == 200, r.text
            data = r.json()["data"]
            if not data:
                return out
            out.extend(data)
            page += 1


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture
async def bling(sim: Simulator) -> AsyncIterator[Bling]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://bling.test"
    ) as http:
        yield Bling(sim, http)


# Database fixtures for every test directory: `db_url` runs a test on SQLite and on PostgreSQL
# (when reachable; skipped with the reason otherwise), `pg_url` on PostgreSQL only.
from tests.integration.store_fixtures import db_url, pg_url  # noqa: E402

__all__ = ["ANCHOR", "Bling", "basic", "db_url", "make_sim", "pg_url", "simulator_process"]
