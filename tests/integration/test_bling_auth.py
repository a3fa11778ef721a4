"""OAuth against the simulator: code exchange, refresh before expiry, rotation persisted before
use, single-flight refreshes (also across 'processes' sharing a store and a lock), and
invalid_grant as a clear re-authorisation error."""

from __future__ import annotations

import asyncio
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
from blingsync.bling.errors import ReauthorizationNeeded
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
