"""The v3 (or v2) client at Bling's own speed limit, against the simulator with Bling's real limits.

`--api v3` (the default) connects each account through OAuth2 (`connect_v3`, base `/Api/v3`);
`--api v2` with the account's API user's key (`connect_v2`, base `/Api/v2`). Both generations
share the account's 3 requests/s, so the figures and the bar are the same.

Part 1, one account: list every Emitida DANFE NF-e and fetch each note's XML (and, with
`--detail`, its JSON detail too) for `--notes` notes. Prints the requests made per note, the 429s
(must be 0), and the efficiency ratio: elapsed time ÷ the minimum that 3 requests/s allows for
the calls made (bar: ≤ 1.05).

Part 2, `--accounts` accounts in parallel, `--parallel-notes` notes each: every account must keep
its own 3 requests/s (ratio per account) with no 429.

    .venv/bin/python bench/client_throughput.py                       # 1,000 notes: ~6 min
    .venv/bin/python bench/client_throughput.py --notes 120 --parallel-notes 45   # ~1 min
    .venv/bin/python bench/client_throughput.py --faults '5xx=0.1,timeout=0.05,hang=2s,429=0.02'
    .venv/bin/python bench/client_throughput.py --api v2 --notes 120 --parallel-notes 45
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from blingsync.bling.auth import MemoryTokenStore, OAuthApp, TokenManager
from blingsync.bling.client import BlingClient, connect_v2, connect_v3
from blingsync.bling.limits import LimiterRegistry, minimum_duration
from blingsync.bling.models import NoteSummary
from blingsync.bling.retry import RetryPolicy
from blingsync.bling.secrets import Secret
from blingsync.domain import BRASILIA, InvoiceStatus

ANCHOR = datetime(2026, 11, 20, tzinfo=BRASILIA)


@dataclass
class Result:
    account: str
    notes: int
    requests: int
    rate_limited: int
    retries: int
    elapsed: float
    duplicates: int

    @property
    def minimum(self) -> float:
        return minimum_duration(self.requests)

    @property
    def ratio(self) -> float:
        return self.elapsed / self.minimum if self.minimum else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def connect(base: str, account: dict[str, Any], registry: LimiterRegistry,
                  http_timeout: httpx.Timeout, api: str) -> tuple[BlingClient, httpx.AsyncClient]:
    """The account's client for API `api` ("v3": OAuth2; "v2": its API user's key) and the
    HTTP client under it (the caller closes it)."""
    key = str(account["id"])
    policy = RetryPolicy(max_attempts=8)
    http = httpx.AsyncClient(base_url=f"{base}/Api/{api}", timeout=http_timeout)
    if api == "v2":
        users = account["api_keys"]
        if not users:
            raise SystemExit(f"account {account['id']} has no API user for v2")
        return connect_v2(key, Secret(users[0]["apikey"]), http, registry, policy=policy), http
    creds = account["clients"][0]
    app = OAuthApp(creds["client_id"], Secret(creds["client_secret"]), f"{base}/Api/v3")
    tokens = TokenManager(key, app, MemoryTokenStore(), http, budget=registry.ip_guard)
    # A fresh code (they live 60 s), as the brand's browser would bring back from Bling.
    code = (await http.post(f"{base}/_sim/accounts/{account['id']}/code")).json()["code"]
    await tokens.exchange_code(code)
    return connect_v3(key, tokens, http, registry, policy=policy), http


async def run_account(base: str, account: dict[str, Any], registry: LimiterRegistry,
                      notes_wanted: int, detail: bool, http_timeout: httpx.Timeout,
                      faults: str = "", api: str = "v3") -> Result:
    client, http = await connect(base, account, registry, http_timeout, api)
    if faults:  # after connecting: a token exchange is not retried (a code is single-use)
        (await http.put(f"{base}/_sim/faults", json={"spec": faults})).raise_for_status()
    started = time.monotonic()
    seen: list[int] = []
    listed: list[NoteSummary] = []
    async for note in client.iter_notes(InvoiceStatus.DANFE_PRINTED,
                                        issued_from=ANCHOR - timedelta(days=200),
                                        issued_to=ANCHOR + timedelta(days=1)):
        seen.append(note.bling_id)
        listed.append(note)
        if len(seen) >= notes_wanted:
            break
    for note in listed:
        if detail:
            await client.get_note(note.ref)
        await client.get_note_xml(note)
    elapsed = time.monotonic() - started
    await http.aclose()
    stats = client.stats
    return Result(account["fantasia"], len(seen), stats.requests, stats.rate_limited,
                  stats.retries, elapsed, len(seen) - len(set(seen)))


def _report(title: str, results: list[Result]) -> None:
    print(title)
    print(f"  {'account':24} {'notes':>6} {'requests':>9} {'req/note':>9} {'429s':>5} "
          f"{'retries':>8} {'dupes':>6} {'elapsed s':>10} {'minimum s':>10} {'ratio':>7}")
    for r in results:
        print(f"  {r.account[:24]:24} {r.notes:6d} {r.requests:9d} "
              f"{r.requests / max(r.notes, 1):9.3f} {r.rate_limited:5d} {r.retries:8d} "
              f"{r.duplicates:6d} "
              f"{r.elapsed:10.1f} {r.minimum:10.1f} {r.ratio:7.3f}")


async def measure(base: str, args: argparse.Namespace) -> None:
    timeout = httpx.Timeout(connect=5, read=args.read_timeout, write=30, pool=5)
    async with httpx.AsyncClient(base_url=base) as http:
        accounts = (await http.get("/_sim/accounts")).json()["accounts"]
    first = await run_account(base, accounts[0], LimiterRegistry(), args.notes, args.detail,
                              timeout, args.faults, args.api)
    _report(f"API {args.api}, one account, {args.notes} Emitida DANFE notes, "
            f"{'detail + XML' if args.detail else 'XML'} per note"
            f"{', faults ' + args.faults if args.faults else ''}:", [first])
    if args.faults:  # `--faults` is for part 1 only: part 2 measures pacing, without faults
        async with httpx.AsyncClient(base_url=base) as http:
            (await http.put("/_sim/faults", json={"spec": ""})).raise_for_status()
    if args.accounts > 1:
        registry = LimiterRegistry()  # one process: one IP guard, a limiter per account
        started = time.monotonic()
        results = await asyncio.gather(*(
            run_account(base, a, registry, args.parallel_notes, args.detail, timeout,
                        api=args.api)
            for a in accounts[1 : args.accounts + 1]
        ))
        _report(f"API {args.api}, {len(results)} accounts in parallel ({time.monotonic() - started:.1f} s "
                "wall clock), each paced on its own 3 req/s:", list(results))
    print("ratio = elapsed ÷ the minimum that 3 requests/s allows for the calls made "
          "((requests − 1) // 3 seconds); bar: ≤ 1.05 with 0 × 429.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", choices=("v3", "v2"), default="v3",
                        help="v3: OAuth2 (connect_v3); v2: the account's API key (connect_v2)")
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=10, help="parallel accounts in part 2")
    parser.add_argument("--parallel-notes", type=int, default=60)
    parser.add_argument("--detail", action="store_true", help="also GET /nfe/{id} per note")
    parser.add_argument("--faults", default="", help="simulator fault spec for part 1")
    parser.add_argument("--read-timeout", type=float, default=1.0)
    args = parser.parse_args()
    # about 45% of the generated notes are Emitida DANFE saída NF-e
    invoices = max(int(2.4 * args.notes) + 200, 3 * args.parallel_notes + 200)
    port = _free_port()
    exe = Path(sys.executable).parent / "blingsync"
    proc = subprocess.Popen(
        [str(exe), "simulator", "--port", str(port), "--seed", "1",
         "--accounts", str(args.accounts + 1), "--invoices", str(invoices),
         "--anchor", ANCHOR.date().isoformat()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1000):
            try:
                if httpx.get(base + "/", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        asyncio.run(measure(base, args))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
