"""The command line as a user runs it: real processes against the simulator over a socket, a
data directory of their own. Checks the one-line errors and exit codes as much as the output."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import simulator_process

NFELIB_SAMPLE = "35180834128745000152550010000476051695511860-nfe.xml"


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with simulator_process("--accounts", "2", "--invoices", "80", "--no-rate-limit", "--seed", "4") as base:
        yield base


class Cli:
    def __init__(self, data_dir: Path, base: str) -> None:
        self.base = base
        self.env = {**os.environ, "BLINGSYNC_DATA_DIR": str(data_dir), "BLINGSYNC_SECRET_KEY": "",
                    "BLINGSYNC_BLING_URL": f"{base}/Api/v3", "BLINGSYNC_REQUESTS_PER_SECOND": "200",
                    "COLUMNS": "200"}
        self.env.pop("BLINGSYNC_DATABASE_URL", None)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from blingsync.cli import main; main()", *args],
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=300,
                              check=False)

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, f"{self.base}/_sim{path}", timeout=30, **kw)
        r.raise_for_status()
        return r.json()


@pytest.fixture
def cli(simulator: str, tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data", simulator)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def test_a_wrong_api_key_is_one_clear_line_and_stores_nothing(cli: Cli) -> None:
    result = cli("accounts", "add", "--name", "Marca", "--api-key", "chave-errada-123")
    assert result.returncode == 1
    assert "key" in one_line_error(result).lower()
    assert "chave-errada-123" not in result.stderr + result.stdout
    listed = cli("accounts", "list")
    assert listed.returncode == 0 and "Marca" not in listed.stdout


def test_a_key_lacking_notas_fiscais_is_stored_and_says_which_permission(cli: Cli) -> None:
    [account, *_] = cli.admin("GET", "/accounts")["accounts"]
    key = cli.admin("POST", f"/accounts/{account['id']}/apikeys",
                    json={"permissions": ["pedidos_venda"]})["apikey"]
    result = cli("accounts", "add", "--name", "Sem Notas", env={"BLINGSYNC_API_KEY": key})
    assert result.returncode == 4, result.stdout + result.stderr
    assert "missing" in result.stdout and "Notas Fiscais" in result.stdout
    shown = cli("accounts", "show", "Sem Notas")
    assert shown.returncode == 0 and "missing permission" in shown.stdout


def test_add_sync_and_export_in_every_format(cli: Cli) -> None:
    [account, *_] = cli.admin("GET", "/accounts")["accounts"]
    creds = cli.admin("POST", f"/accounts/{account['id']}/refresh-token", json={})
    added = cli("accounts", "add", "--name", "Marca", "--client-id", creds["client_id"],
                "--lookback-days", "120",
                env={"BLINGSYNC_CLIENT_SECRET": creds["client_secret"],
                     "BLINGSYNC_REFRESH_TOKEN": creds["refresh_token"]})
    assert added.returncode == 0, added.stdout + added.stderr
    assert creds["refresh_token"] not in added.stdout + added.stderr
    synced = cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Marca" in synced.stdout and "ok" in synced.stdout

    as_json = cli("orders", "export", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    orders = json.loads(as_json.stdout)
    assert orders, "the import must have produced orders"
    schema = json.loads((resources.files("blingsync") / "schemas" / "order.schema.json").read_text())
    for order in orders:
        jsonschema.validate(order, schema, format_checker=jsonschema.FormatChecker())
    ndjson = cli("orders", "export", "--format", "ndjson", "--status", "ready")
    assert [json.loads(line) for line in ndjson.stdout.splitlines()] == orders
    as_csv = cli("orders", "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == sum(len(o["items"]) for o in orders)
    assert {r["access_key"] for r in rows} == {o["access_key"] for o in orders}

    shown = cli("orders", "show", orders[0]["access_key"])
    assert shown.returncode == 0 and json.loads(shown.stdout) == orders[0]
    again = cli("sync")
    assert again.returncode == 0
    assert json.loads(cli("orders", "export").stdout) == orders  # nothing changed


def test_bad_input_is_one_line_with_its_exit_code(cli: Cli, tmp_path: Path) -> None:
    assert cli("sync", "--since", "yesterday").returncode == 2
    assert one_line_error(cli("sync", "--since", "yesterday")).endswith("is not a date (YYYY-MM-DD)")
    missing = cli("accounts", "show", "Ninguém")
    assert missing.returncode == 3 and "no account" in one_line_error(missing)
    assert cli("orders", "show", "999999").returncode == 3
    assert cli("orders", "list", "--status", "shipped").returncode == 2
    out = cli("orders", "export", "--output", str(tmp_path / "no" / "such" / "dir" / "x.json"))
    assert out.returncode == 1 and "No such file or directory" in one_line_error(out)
    bad_db = cli("accounts", "list", env={"BLINGSYNC_DATABASE_URL": "postgresql+psycopg://u:pw@127.0.0.1:1/x"})
    assert bad_db.returncode == 1
    line = one_line_error(bad_db)
    assert "database" in line and "pw" not in line
    bad_key = cli("accounts", "list", env={"BLINGSYNC_SECRET_KEY": "short"})
    assert bad_key.returncode == 2 and "BLINGSYNC_SECRET_KEY" in one_line_error(bad_key)


def test_prune_says_what_it_removed(cli: Cli) -> None:
    result = cli("prune")
    assert result.returncode == 0, result.stderr
    assert "removed 0 empty runs" in result.stdout and "0 webhooks" in result.stdout


def test_nfe_inspect_prints_the_order_of_a_real_issuers_xml(cli: Cli, tmp_path: Path) -> None:
    nfelib = pytest.importorskip("nfelib", reason="nfelib (dev dependency) ships the public samples")
    sample = Path(nfelib.__file__).parent / "nfe" / "samples" / "v4_0" / "leiauteNFe" / NFELIB_SAMPLE
    result = cli("nfe", "inspect", str(sample))
    assert result.returncode == 0, result.stderr
    order = json.loads(result.stdout)
    assert order["access_key"] == NFELIB_SAMPLE.split("-")[0]
    broken = tmp_path / "broken.xml"
    broken.write_bytes(sample.read_bytes()[:500])
    failed = cli("nfe", "inspect", str(broken))
    assert failed.returncode == 1 and "not well-formed" in one_line_error(failed)
    assert cli("nfe", "inspect", str(tmp_path / "absent.xml")).returncode == 3


def test_quarantine_commands_name_what_they_cannot_find(cli: Cli) -> None:
    listed = cli("quarantine", "list")
    assert listed.returncode == 0 and "Quarantined notes (0)" in listed.stdout
    assert cli("quarantine", "retry", "--account", "Ninguém", "--all").returncode == 3
    both = cli("quarantine", "retry", "--account", "X")
    assert both.returncode == 2 and "--all" in one_line_error(both)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A warehouse's webhook endpoint: checks the Standard Webhooks signature itself."""

    secret = b""
    seen: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012 - per test, reset by the fixture
    forged = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        msg_id, ts = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        expected = base64.b64encode(hmac.new(self.secret, f"{msg_id}.{ts}.".encode() + body,
                                             hashlib.sha256).digest()).decode()
        offered = [s.split(",", 1)[1] for s in self.headers["webhook-signature"].split()]
        if expected not in offered:
            type(self).forged += 1
            self.send_response(401)
        else:
            type(self).seen.append((msg_id, json.loads(body)))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_events_reach_a_webhook_signed_once_per_key(cli: Cli) -> None:
    [_, account] = cli.admin("GET", "/accounts")["accounts"]
    creds = cli.admin("POST", f"/accounts/{account['id']}/refresh-token", json={})
    assert cli("accounts", "add", "--name", "Loja", "--client-id", creds["client_id"],
               env={"BLINGSYNC_CLIENT_SECRET": creds["client_secret"],
                    "BLINGSYNC_REFRESH_TOKEN": creds["refresh_token"]}).returncode == 0
    assert cli("sync").returncode == 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.seen, _Receiver.forged = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        set_sink = cli("sinks", "set", "Loja", "--webhook", url)
        assert set_sink.returncode == 0, set_sink.stderr
        secret = next(w for w in set_sink.stdout.split() if w.startswith("whsec_"))
        _Receiver.secret = base64.b64decode(secret.removeprefix("whsec_"))
        delivered = cli("deliver", "--once")
        assert delivered.returncode == 0, delivered.stdout + delivered.stderr
        orders = json.loads(cli("orders", "export", "--account", "Loja").stdout)
        keys = [key for key, _ in _Receiver.seen]
        assert _Receiver.forged == 0 and len(keys) == len(set(keys)) == len(orders) > 0
        received = {event["data"]["access_key"] for _, event in _Receiver.seen}
        assert received == {o["access_key"] for o in orders}
        assert cli("deliver", "--once").returncode == 0
        assert len(_Receiver.seen) == len(orders)  # nothing twice
        shown = cli("sinks", "show", "Loja")
        assert "0 pending, 0 dead" in shown.stdout
        assert secret not in shown.stdout + cli("deliveries", "list").stdout
    finally:
        server.shutdown()


def test_a_smartgo_sink_is_set_without_echoing_its_key(cli: Cli) -> None:
    [account, *_] = cli.admin("GET", "/accounts")["accounts"]
    key = cli.admin("POST", f"/accounts/{account['id']}/apikeys", json={})["apikey"]
    assert cli("accounts", "add", "--name", "Depósito", env={"BLINGSYNC_API_KEY": key}).returncode == 0
    set_sink = cli("sinks", "set", "Depósito", "--doc-depositante", "11.222.333/0001-81",
                   env={"BLINGSYNC_SMARTGO_KEY": "sg-key-0123456789abcdefghij"})
    assert set_sink.returncode == 0, set_sink.stderr
    shown = cli("sinks", "show", "Depósito")
    assert "smartgo" in shown.stdout and "sg-key-0123456789abcdefghij" not in shown.stdout + set_sink.stdout
    bad = cli("sinks", "set", "Depósito", "--smartgo-key", "k" * 30, "--doc-depositante", "123")
    assert bad.returncode == 2 and one_line_error(bad)
