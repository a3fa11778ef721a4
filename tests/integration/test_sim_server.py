"""The simulator as a real server on a real port, driven by standard, third-party clients."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():
    # authlib's httpx integration announces a rename to "httpx2" that we cannot act on; authlib
    # installs an "always" filter for its category on import, so ours goes in after it.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def blingsync_command() -> list[str]:
    script = Path(sys.executable).parent / "blingsync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "blingsync.cli"]


@pytest.fixture
def server() -> Iterator[tuple[str, float]]:
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [*blingsync_command(), "simulator", "--port", str(port), "--seed", "1",
         "--invoices", "500", "--anchor", "2026-11-20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"the simulator exited: {out}")
            try:
                if httpx.get(base + "/", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - started > 20:
                pytest.fail("the simulator did not start in 20 s")
            time.sleep(0.02)
        yield base, time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_starts_fast_and_a_standard_oauth2_client_pages_to_the_end(
    server: tuple[str, float],
) -> None:
    base, startup = server
    assert startup < 3.0, f"startup took {startup:.2f} s"
    async with httpx.AsyncClient(base_url=base) as http:
        account = (await http.get("/_sim/accounts")).json()["accounts"][0]
    creds = account["clients"][0]
    expected = account["notes"]["nfe:saida:EMITIDA_DANFE"]
    oauth = AsyncOAuth2Client(
        client_id=creds["client_id"], client_secret=creds["client_secret"],
        token_endpoint_auth_method="client_secret_basic", redirect_uri=creds["redirect_uri"],
    )
    async with oauth:
        url, _state = oauth.create_authorization_url(f"{base}/Api/v3/oauth/authorize")
        async with httpx.AsyncClient() as browser:
            redirect = await browser.get(url)
        assert redirect.status_code == 302
        token = await oauth.fetch_token(
            f"{base}/Api/v3/oauth/token", authorization_response=redirect.headers["location"]
        )
        assert token["expires_in"] == 21600
        ids: list[int] = []
        page = 1
        while True:
            await asyncio.sleep(0.35)  # Bling's 3 requests/s
            r = await oauth.get(f"{base}/Api/v3/nfe",
                                params={"situacao": 6, "tipo": 1, "pagina": page})
            assert r.status_code == 200, r.text
            data = r.json()["data"]
            if not data:
                break
            ids.extend(n["id"] for n in data)
            page += 1
    assert len(ids) == len(set(ids)) == expected > 0


async def test_timeout_fault_times_a_real_client_out(server: tuple[str, float]) -> None:
    base, _ = server
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.put("/_sim/faults", json={"spec": "timeout=1,hang=2s"})
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/Api/v3/nfe", timeout=httpx.Timeout(0.3))
        await http.put("/_sim/faults", json={"spec": ""})
        assert (await http.get("/Api/v3/nfe")).status_code == 401


def test_demo_once_imports_exactly_the_simulators_emitida_danfe_notes(tmp_path: Path) -> None:
    result = subprocess.run(
        [*blingsync_command(), "demo", "--once", "--invoices", "60"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "COLUMNS": "200", "BLINGSYNC_DATA_DIR": str(tmp_path)}, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("connected") == 3
    # The table: per brand, the simulator's Emitida DANFE saída NF-e vs the orders imported.
    rows = [line for line in result.stdout.splitlines() if line.count("│") >= 8]
    assert len(rows) >= 3
    brand_rows = [[cell.strip() for cell in row.split("│")[1:-1]] for row in rows]
    counts = [(int(r[1]), int(r[2]), r[3]) for r in brand_rows if r[1].isdigit()]
    assert len(counts) == 3, result.stdout
    assert all(danfe == imported > 0 and match == "yes" for danfe, imported, match in counts)
    total = int(re.search(r"(\d+) expedition orders imported", result.stdout).group(1))  # type: ignore[union-attr]
    assert total == sum(imported for _, imported, _ in counts)
    # And the database says the same, with one order.created event per order.
    db = sqlite3.connect(tmp_path / "demo" / "blingsync.db")
    assert db.execute("SELECT count(*) FROM orders WHERE status = 'ready'").fetchone()[0] == total
    assert db.execute("SELECT count(DISTINCT idempotency_key) FROM outbox").fetchone()[0] == total


def test_bad_fault_spec_is_a_clear_error() -> None:
    result = subprocess.run(
        [*blingsync_command(), "simulator", "--faults", "5xx=7"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "5xx: 7.0 is not a probability" in result.stderr
