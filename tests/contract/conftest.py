"""Fixtures of the contract suite.

One simulator per module, because generating the world is the slow part; a fresh in-process
httpx client per test; tokens obtained through the real OAuth endpoints (authorize, then the
token endpoint with HTTP Basic), so the token answer is itself under contract and the v3 calls
are authorised exactly as blingsync authorises them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from openapi import (
    RECORDED,
    CheckedClient,
    Contract,
    checked_client,
    loaded_contract,
    shared_contract,
    summarize,
)

from blingsync.simulator.app import Simulator, build
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.model import BRT

ANCHOR = datetime(2026, 11, 20, tzinfo=BRT)


def build_sim(**overrides: Any) -> Simulator:
    """The brief's world (seed 5, 2 accounts, 300 invoices, anchored 2026-11-20 BRT, no rate
    limit), with `overrides` for the few tests that need limits or a smaller world."""
    options: dict[str, Any] = {
        "seed": 5,
        "accounts": 2,
        "invoices": 300,
        "anchor": ANCHOR,
        "limits": LimitSettings(enabled=False),
    }
    options.update(overrides)
    return build(**options)


def http_for(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim")


@pytest.fixture(scope="session")
def contract() -> Contract:
    return shared_contract()


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return build_sim()


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with http_for(sim) as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, contract: Contract) -> CheckedClient:
    return await checked_client(http, contract)


@pytest.fixture
def new_sim() -> Callable[..., Simulator]:
    """Builds a simulator of its own, for tests that change limits or move the clock."""
    return build_sim


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[Simulator], Awaitable[httpx.AsyncClient]]]:
    """Opens in-process clients to other simulators, closed at the end of the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_client(other: Simulator) -> httpx.AsyncClient:
            return await stack.enter_async_context(http_for(other))

        yield open_client


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Every distinct violation of the run in one list, for whoever owns the simulator; and, in
    verbose runs, which operation x status pairs were checked."""
    if RECORDED:
        terminalreporter.section("Bling contract violations (simulator vs OpenAPI document)")
        for line in summarize(RECORDED):
            terminalreporter.write_line(line)
    done = loaded_contract()
    if terminalreporter.verbosity > 0 and done is not None and done.checked:
        terminalreporter.section("Bling contract coverage (operation -> status)")
        for operation, status in sorted(done.checked):
            generic = (operation, status) in done.fallbacks
            note = "  (checked against ErrorResponse: the operation does not list it)" if generic else ""
            terminalreporter.write_line(f"{operation} -> {status}{note}")
