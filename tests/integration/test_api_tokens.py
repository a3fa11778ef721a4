"""API tokens: `blingsync tokens create|list|revoke` as real processes on a data directory of their
own, then the printed token used against the API opened on the same database; and what the
database keeps of a token (its SHA-256 and first characters, never the token)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from blingsync.config import Settings
from blingsync.service import Service
from blingsync.store.tables import api_tokens
from blingsync.store.tokens import PREFIX_LENGTH, TokenExists, TokenNotFound, TokenScope
from blingsync.web.app import create_app

TOKEN = re.compile(r"bsk_[A-Za-z0-9_-]{43}")


def blingsync(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BLINGSYNC_DATA_DIR": str(data_dir), "BLINGSYNC_SECRET_KEY": "", "COLUMNS": "200"}
    env.pop("BLINGSYNC_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-c", "from blingsync.cli import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def settings(data_dir: Path, db_url: str | None = None) -> Settings:
    url = db_url or f"sqlite+aiosqlite:///{data_dir / 'blingsync.db'}"
    return Settings(data_dir=data_dir, database_url=url, secret_key=None, bling_url="http://bling.test/Api/v3",
                    bling_v2_url="http://bling.test/Api/v2")


async def test_the_cli_prints_a_token_once_and_the_api_takes_it_until_revoked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = blingsync(data, "tokens", "create", "--name", "wms", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    [token] = TOKEN.findall(created.stdout)
    assert "shown only now" in created.stderr
    again = blingsync(data, "tokens", "create", "--name", "wms")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert blingsync(data, "tokens", "create", "--name", "  ").returncode == 2

    listed = blingsync(data, "tokens", "list")
    assert listed.returncode == 0, listed.stderr
    assert "wms" in listed.stdout and "admin" in listed.stdout and token[:PREFIX_LENGTH] in listed.stdout
    assert token not in listed.stdout and "never" in listed.stdout

    async with Service.open(settings(data), warn=lambda _: None) as service:
        app = create_app(service)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            r = await http.get("/api/v1/accounts", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json() == {"data": []}

            revoked = blingsync(data, "tokens", "revoke", "wms")
            assert revoked.returncode == 0 and "revoked" in revoked.stdout
            r = await http.get("/api/v1/accounts", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 401 and "revoked" in r.json()["detail"]
    listed = blingsync(data, "tokens", "list")
    assert "revoked" in listed.stdout and "never" not in listed.stdout  # its use was recorded
    missing = blingsync(data, "tokens", "revoke", "nobody")
    assert missing.returncode == 3 and "no API token named 'nobody'" in missing.stderr


async def test_only_a_hash_of_the_token_is_stored(tmp_path: Path, db_url: str) -> None:
    async with Service.open(settings(tmp_path, db_url), warn=lambda _: None) as service:
        store = service.store
        record, token = await store.create_api_token(" ci ", TokenScope.READ)
        assert TOKEN.fullmatch(token) and record.name == "ci" and record.scope is TokenScope.READ
        assert record.prefix == token[:PREFIX_LENGTH] and record.active
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(api_tokens))).one()
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert all(token not in str(value) for value in row)
        assert await store.api_token_by_secret(token) == record
        assert await store.api_token_by_secret(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert await store.api_token_by_secret("") is None
        with pytest.raises(TokenExists):
            await store.create_api_token("ci", TokenScope.ADMIN)
        with pytest.raises(ValueError, match="printable"):
            await store.create_api_token("c\x00i")
        _, other = await store.create_api_token("ops", TokenScope.ADMIN)
        assert other != token
        assert [t.name for t in await store.api_tokens()] == ["ci", "ops"]
        first = await store.revoke_api_token("ci")
        assert first.revoked_at is not None and not first.active
        assert (await store.revoke_api_token("ci")).revoked_at == first.revoked_at
        with pytest.raises(TokenNotFound):
            await store.revoke_api_token("nobody")
