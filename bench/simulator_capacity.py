"""How much load the Bling simulator can carry, as a ratio to Bling's own limit.

The client benchmarks run N accounts at Bling's 3 requests/s against the simulator; the figures
mean something only if the simulator is far from being the bottleneck. This starts
`blingsync simulator --no-rate-limit` on a free port, drives each endpoint the importer uses with
a few concurrent connections for a fixed time, and prints requests/s as a multiple of one
account's 3 req/s (= how many accounts at full speed the simulator could serve on that endpoint).

    .venv/bin/python bench/simulator_capacity.py [--seconds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from urllib.parse import parse_qs, urlsplit

import httpx

BLING_PER_SECOND = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _token(http: httpx.AsyncClient, client: dict[str, str]) -> str:
    r = await http.get("/Api/v3/oauth/authorize",
                       params={"client_id": client["client_id"], "state": "bench"})
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = await http.post("/Api/v3/oauth/token",
                        data={"grant_type": "authorization_code", "code": code},
                        auth=(client["client_id"], client["client_secret"]),
                        headers={"enable-jwt": "1"})
    return str(r.json()["access_token"])


async def _drive(http: httpx.AsyncClient, urls: list[str], headers: dict[str, str],
                 seconds: float, concurrency: int) -> tuple[float, float]:
    done = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = await http.get(urls[i % len(urls)], headers=headers)
            if r.status_code != 200:
                raise SystemExit(f"{urls[i % len(urls)]} answered {r.status_code}")
            latencies.append(time.monotonic() - started)
            done += 1
            i += concurrency

    started = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done / (time.monotonic() - started), median(latencies)


async def measure(base: str, seconds: float, concurrency: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(500):
            try:
                if (await http.get("/")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.02)
        account = (await http.get("/_sim/accounts")).json()["accounts"][0]
        auth = {"authorization": f"Bearer {await _token(http, account['clients'][0])}"}
        listing = (await http.get("/Api/v3/nfe", params={"situacao": 6},
                                  headers=auth)).json()["data"]
        ids = [n["id"] for n in listing]
        xml_links = [
            (await http.get(f"/Api/v3/nfe/{i}", headers=auth)).json()["data"]["xml"]
            for i in ids[:20]
        ]
        cases = {
            "GET /Api/v3/nfe?situacao=6 (page of 100)": [
                f"/Api/v3/nfe?situacao=6&pagina={p}" for p in (1, 2, 3)],
            "GET /Api/v3/nfe/{id}": [f"/Api/v3/nfe/{i}" for i in ids[:50]],
            "GET signed XML": [urlsplit(u).path + "?" + urlsplit(u).query for u in xml_links],
            "GET /Api/v3/nfe/documento/{chave}?formato=xml": [
                f"/Api/v3/nfe/documento/{n['chaveAcesso']}?formato=xml" for n in listing[:20]],
        }
        print(f"simulator capacity ({concurrency} connections, {seconds:g} s per endpoint, "
              "1,000 notes per account, rate limit off)")
        print(f"{'endpoint':48} {'req/s':>8} {'median ms':>10} {'× 3 req/s':>10}")
        for name, urls in cases.items():
            rate, lat = await _drive(http, urls, auth, seconds, concurrency)
            print(f"{name:48} {rate:8.0f} {lat * 1000:10.1f} {rate / BLING_PER_SECOND:9.0f}×")
        print("The last column is how many Bling accounts at full speed (3 req/s each) the "
              "simulator can serve on that endpoint from this one process.")


def main(seconds: float, concurrency: int) -> None:
    port = _free_port()
    exe = Path(sys.executable).parent / "blingsync"
    proc = subprocess.Popen(
        [str(exe), "simulator", "--port", str(port), "--no-rate-limit", "--seed", "1",
         "--invoices", "1000", "--anchor", "2026-11-20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(measure(f"http://127.0.0.1:{port}", seconds, concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    main(args.seconds, args.concurrency)
