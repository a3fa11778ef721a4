"""OAuth against the simulator: code exchange, refresh before expiry, rotation persisted before
use, single-flight refreshes (also across 'processes' sharing a store and a lock), and
invalid_grant as a clear re-authorisation error."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from blingsync.bling.auth import (
    LocalRefreshLock,
    MemoryTokenStore,
    OAuthApp,
    StoredTokens,
    TokenManager,
    with_expiry,
)
from blingsync.bling.errors import BlingUnavailable, ReauthorizationNeeded
from blingsync.bling.secrets import Secret
from tests.conftest import Bling


class CountingTransport(httpx.AsyncBaseTransport):
    """The simulator over ASGI, counting requests by path (it fails exactly as the app does)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths[request.url.path] += 1
        return await self.inner.handle_async_request(request)


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SlowStore(MemoryTokenStore):
    """A store that takes its time to save, to widen any race window."""

    saves: list[str] = field(default_factory=list)

    async def save(self, account: str, tokens: StoredTokens) -> None:
        await asyncio.sleep(0.01)
        self.saves.append(tokens.refresh_token.reveal())
        await super().save(account, tokens)


def _manager(bling: Bling, transport: httpx.AsyncBaseTransport, store: MemoryTokenStore,
             clock: Clock, lock: LocalRefreshLock | None = None) -> TokenManager:
    client = bling.company().clients[0]
    app = OAuthApp(client.client_id, Secret(client.client_secret), "http://bling.test/Api/v3")
    http = httpx.AsyncClient(transport=transport, base_url="http://bling.test")
    return TokenManager("acme", app, store, http, lock=lock, now=clock)


async def _connected(bling: Bling, store: MemoryTokenStore, clock: Clock,
                     transport: httpx.AsyncBaseTransport) -> TokenManager:
    manager = _manager(bling, transport, store, clock)
    code = await bling.code(bling.company().clients[0])
    await manager.exchange_code(code)
    return manager


@pytest.fixture
def transport(bling: Bling) -> CountingTransport:
    return CountingTransport(httpx.ASGITransport(app=bling.sim.app))


async def test_exchange_and_use(bling: Bling, transport: CountingTransport) -> None:
    store, clock = MemoryTokenStore(), Clock()
    manager = await _connected(bling, store, clock, transport)
    token = await manager.access_token()
    assert 1500 <= len(token.reveal()) <= 3000  # enable-jwt: 1
    r = await bling.http.get("/Api/v3/empresas/me/dados-basicos",
                             headers={"authorization": f"Bearer {token.reveal()}"})
    assert r.status_code == 200
    stored = await store.load("acme")
    assert stored is not None and stored.expires_at == clock.now + 21600
    assert token.reveal() not in repr(stored) and token.reveal() not in repr(manager)


async def test_refresh_before_expiry_and_rotation(bling: Bling, transport: CountingTransport) -> None:
    store, clock = SlowStore(), Clock()
    manager = await _connected(bling, store, clock, transport)
    first = await store.load("acme")
    assert first is not None
    clock.now += 21600 - 200  # inside the refresh margin
    token = await manager.access_token()
    second = await store.load("acme")
    assert second is not None
    assert token == second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert store.saves[-1] == second.refresh_token.reveal()  # persisted before it was returned
    assert transport.paths["/Api/v3/oauth/token"] == 2


async def test_concurrent_refreshes_make_one_token_call(
    bling: Bling, transport: CountingTransport
) -> None:
    store, clock = SlowStore(), Clock()
    manager = await _connected(bling, store, clock, transport)
    stale = (await store.load("acme")).access_token  # type: ignore[union-attr]
    before = transport.paths["/Api/v3/oauth/token"]
    results = await asyncio.gather(*(manager.refresh(stale=stale) for _ in range(20)))
    assert transport.paths["/Api/v3/oauth/token"] - before == 1
    assert len({r.access_token.reveal() for r in results}) == 1


async def test_two_processes_sharing_store_and_lock_refresh_once(
    bling: Bling, transport: CountingTransport
) -> None:
    store, clock, lock = SlowStore(), Clock(), LocalRefreshLock()
    first = await _connected(bling, store, clock, transport)
    second = _manager(bling, transport, store, clock, lock=lock)
    first.lock = lock
    stale = (await store.load("acme")).access_token  # type: ignore[union-attr]
    before = transport.paths["/Api/v3/oauth/token"]
    a, b = await asyncio.gather(first.refresh(stale=stale), second.refresh(stale=stale))
    assert a == b
    assert transport.paths["/Api/v3/oauth/token"] - before == 1


async def test_invalid_grant_is_reauthorisation(bling: Bling, transport: CountingTransport) -> None:
    store, clock = MemoryTokenStore(), Clock()
    manager = await _connected(bling, store, clock, transport)
    current = await store.load("acme")
    assert current is not None
    await manager.refresh(stale=current.access_token)  # rotates: the old refresh token dies
    await store.save("acme", with_expiry(current, 0))  # a stale copy comes back (lost write)
    with pytest.raises(ReauthorizationNeeded) as caught:
        await manager.access_token()
    assert current.refresh_token.reveal() not in str(caught.value)
    assert current.refresh_token.reveal() not in repr(caught.value)


async def test_no_tokens_is_reauthorisation(bling: Bling, transport: CountingTransport) -> None:
    manager = _manager(bling, transport, MemoryTokenStore(), Clock())
    with pytest.raises(ReauthorizationNeeded):
        await manager.access_token()


# --- the token endpoint's retry rule ---------------------------------------------------------


class TokenFaults(httpx.AsyncBaseTransport):
    """The simulator, with scripted failures of the next token calls: "connect" (never sent),
    "lost" (Bling handles it, the answer never arrives), "503" (Bling's proxy fails, unhandled)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.script: list[str] = []
        self.token_calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/oauth/token"):
            return await self.inner.handle_async_request(request)
        self.token_calls += 1
        fault = self.script.pop(0) if self.script else None
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "503":
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        response = await self.inner.handle_async_request(request)
        if fault == "lost":
            await response.aread()
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request)
        return response


async def _no_wait(_: float) -> None:
    return None


def _faulty_manager(bling: Bling, faults: TokenFaults, store: MemoryTokenStore,
                    clock: Clock) -> TokenManager:
    manager = _manager(bling, faults, store, clock)
    manager._sleep = _no_wait
    return manager


@pytest.fixture
def faults(bling: Bling) -> TokenFaults:
    return TokenFaults(httpx.ASGITransport(app=bling.sim.app))


@pytest.mark.parametrize("script", [["connect"], ["503"], ["connect", "503"]])
async def test_refresh_is_retried_when_bling_did_not_handle_it(
    bling: Bling, faults: TokenFaults, script: list[str]
) -> None:
    store, clock = SlowStore(), Clock()
    manager = _faulty_manager(bling, faults, store, clock)
    await manager.exchange_code(await bling.code(bling.company().clients[0]))
    before = await store.load("acme")
    assert before is not None
    faults.script = list(script)
    calls = faults.token_calls
    tokens = await manager.refresh(stale=before.access_token)
    assert faults.token_calls - calls == len(script) + 1
    assert tokens.refresh_token != before.refresh_token
    assert store.saves[-1] == tokens.refresh_token.reveal()


async def test_a_lost_refresh_answer_says_so_and_asks_to_connect_again(
    bling: Bling, faults: TokenFaults
) -> None:
    store, clock = MemoryTokenStore(), Clock()
    manager = _faulty_manager(bling, faults, store, clock)
    await manager.exchange_code(await bling.code(bling.company().clients[0]))
    before = await store.load("acme")
    assert before is not None
    faults.script = ["lost"]
    calls = faults.token_calls
    with pytest.raises(ReauthorizationNeeded) as caught:
        await manager.refresh(stale=before.access_token)
    # One retry with the old refresh token (Bling had rotated it): invalid_grant, no loop.
    assert faults.token_calls - calls == 2
    assert "answer was lost" in str(caught.value)
    assert before.refresh_token.reveal() not in str(caught.value)


async def test_a_code_exchange_is_retried_only_when_it_never_left(
    bling: Bling, faults: TokenFaults
) -> None:
    client = bling.company().clients[0]
    manager = _faulty_manager(bling, faults, MemoryTokenStore(), Clock())
    faults.script = ["connect"]
    await manager.exchange_code(await bling.code(client))
    assert faults.token_calls == 2

    # A lost answer is not retried: presenting a used code again would revoke the access.
    other = _faulty_manager(bling, faults, MemoryTokenStore(), Clock())
    faults.script = ["lost"]
    with pytest.raises(BlingUnavailable):
        await other.exchange_code(await bling.code(client))
    assert faults.token_calls == 3


async def test_odd_optional_fields_of_a_refresh_answer_do_not_lose_the_rotated_token(
    bling: Bling,
) -> None:
    """Bling has rotated the refresh token by the time its answer is read: a `scope` or
    `expires_in` we cannot read must not throw the new token away."""
    inner = httpx.ASGITransport(app=bling.sim.app)

    class Odd(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if not request.url.path.endswith("/oauth/token"):
                return response
            body = json.loads(await response.aread())
            body.update(scope="98309 nfe.read", expires_in="seis horas")
            return httpx.Response(200, json=body)

    store, clock = MemoryTokenStore(), Clock()
    manager = _manager(bling, Odd(), store, clock)
    await manager.exchange_code(await bling.code(bling.company().clients[0]))
    tokens = await store.load("acme")
    assert tokens is not None
    assert tokens.scope == (98309,)
    assert tokens.expires_at == clock.now + 3600  # unknown lifetime: refresh within the hour
