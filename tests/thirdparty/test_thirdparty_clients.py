"""Existing third-party Bling clients, written for the real API, work against the simulator unchanged.

The issue's bar is that code nobody here wrote, and that was written against bling.com.br, runs
against the simulator without edits. Two such clients are used exactly as published:

* the npm package ``bling-erp-api`` 5.8.1 (API v3, axios), driven by ``bling_js_probe.mjs``;
* the PyPI package ``pybling`` 0.0.9 (API v2, requests), which hard-codes
  ``https://bling.com.br`` and so is redirected at the transport, the way a hosts-file entry
  would redirect it.

What each client reports is checked against the simulator's own truth (``/_sim/accounts`` and
the simulator's v3 answers fetched independently), so a client that merely ran without errors
does not pass. Both run at Bling's 3 requests/s, which the simulator enforces: the probe sleeps
between calls; pybling does not pace at all, so the transport that redirects it does.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.test_sim_server import blingsync_command

HERE = Path(__file__).resolve().parent
PROBE = HERE / "bling_js_probe.mjs"
JS_LIBRARY = HERE / "node_modules" / "bling-erp-api" / "package.json"
JS_INSTALL = "npm ci --prefix tests/thirdparty (bash scripts/bootstrap.sh runs it when npm is on PATH)"
PY_INSTALL = ".venv/bin/pip install pybling==0.0.9"

PACE = 0.35
"""Seconds between two calls on one Bling account: Bling allows 3 requests/s and the simulator
enforces it (a sliding second that never holds more than 3 calls spaced 350 ms apart)."""

BLING_HOST = "https://bling.com.br"
"""The only host pybling knows; see `_RedirectToSimulator`."""

PERIOD = ("01/08/2026", "20/11/2026")
"""The v2 period queried through pybling (dd/mm/yyyy, as its docstring shows). With
``--anchor 2026-11-20`` the seeded history lies inside it, so the period's notes are the account's."""

V2_EMITIDA_DANFE = 7
V2_AUTORIZADA = 6
V3_EMITIDA_DANFE = 6
V3_AUTORIZADA = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    """A real simulator process on a free port (a third-party client needs a socket, not ASGI),
    shared by both tests: they use different accounts, so their rate limits do not mix. Its
    output goes to a file rather than a pipe nobody reads, which could fill and stall it."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [*blingsync_command(), "simulator", "--port", str(port), "--seed", "1",
             "--invoices", "300", "--anchor", "2026-11-20"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
        )
        try:
            started = time.monotonic()
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"the simulator exited: {log.read().decode(errors='replace')}")
                try:
                    if httpx.get(base + "/", timeout=0.5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > 20:
                    pytest.fail("the simulator did not start in 20 s")
                time.sleep(0.05)
            yield base
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _account(base: str, index: int) -> dict[str, Any]:
    account: dict[str, Any] = httpx.get(base + "/_sim/accounts").json()["accounts"][index]
    return account


def _access_token(base: str, account: Mapping[str, Any]) -> str:
    """An access token obtained the way an integration gets one: the authorization endpoint
    (which auto-approves), the code from its redirect, then the token endpoint with HTTP Basic
    client authentication and JWT tokens. No admin shortcut."""
    client = account["clients"][0]
    with httpx.Client(base_url=base) as http:
        redirect = http.get("/Api/v3/oauth/authorize", follow_redirects=False, params={
            "response_type": "code", "client_id": client["client_id"], "state": "thirdparty",
        })
        assert redirect.status_code == 302, redirect.text
        location = redirect.headers["location"]
        assert location.startswith(client["redirect_uri"])
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == ["thirdparty"]
        token = http.post(
            "/Api/v3/oauth/token", data={"grant_type": "authorization_code", "code": query["code"][0]},
            auth=(client["client_id"], client["client_secret"]), headers={"enable-jwt": "1"},
        )
        assert token.status_code == 200, token.text
        access: str = token.json()["access_token"]
        return access


class _Pacer:
    """Keeps calls on one account at least `PACE` apart, whoever makes them (the library under
    test or this test's own truth lookups), so no 429 can distort what a client sees."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0

    def wait(self) -> None:
        with self._lock:
            delay = self._last + PACE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last = time.monotonic()


def _v3_pages(http: httpx.Client, pacer: _Pacer, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a v3 list, for the truth side of a comparison."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        pacer.wait()
        r = http.get(path, params={**params, "pagina": page, "limite": 100})
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        if not data:
            return out
        out.extend(data)
        page += 1


# ---------------------------------------------------------------------------------------------
# v3: bling-erp-api (JavaScript)


async def _run_probe(node: str, base: str, token: str) -> tuple[int, dict[str, Any], str]:
    """Runs bling_js_probe.mjs against the simulator's v3 and returns its exit code, the one
    JSON object it printed and its stderr. The token goes in the environment, not argv."""
    proc = await asyncio.create_subprocess_exec(
        node, str(PROBE), cwd=HERE,
        env={**os.environ, "BLING_BASE_URL": f"{base}/Api/v3", "BLING_ACCESS_TOKEN": token},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("the bling-erp-api probe did not finish in 60 s")
    try:
        printed: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the probe printed no JSON ({proc.returncode}): {stdout!r} {stderr!r}")
    assert proc.returncode is not None
    return proc.returncode, printed, stderr.decode(errors="replace")


async def test_bling_erp_api_js_v3_client_unchanged(simulator: str) -> None:
    """The npm client pages NF-e in Emitida DANFE to the end, reads details, NFC-e, orders,
    situation modules, the company, and creates and reads back a logistics object; every answer
    it got must agree with the simulator's truth, fetched here independently of the library."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not on PATH; install Node.js 20+, then {JS_INSTALL}")
    if not JS_LIBRARY.exists():
        pytest.skip(f"bling-erp-api is not installed in tests/thirdparty/node_modules; run {JS_INSTALL}")

    base = simulator
    # Blocking helpers shared with the sync test run off the event loop.
    account = await asyncio.to_thread(_account, base, 0)

    # A bad token first: the library's own exception must carry Bling's error, and the probe
    # must report it as JSON with exit code 1 rather than crash or pass.
    code, refused, _ = await _run_probe(node, base, "not-a-token")
    assert code == 1, refused
    assert (refused["ok"], refused["step"]) == (False, "nfes.get pagina=1")
    assert refused["error"]["name"] == "BlingApiException"
    assert refused["error"]["response"]["error"]["type"] == "invalid_token"

    token = await asyncio.to_thread(_access_token, base, account)
    started = time.monotonic()
    code, got, stderr = await _run_probe(node, base, token)
    elapsed = time.monotonic() - started
    assert code == 0, f"probe failed ({code}): {json.dumps(got, ensure_ascii=False)} {stderr}"
    print(f"bling-erp-api probe: {got['requests']} requests in {elapsed:.1f} s")
    assert got["ok"] is True
    assert got["library"] == {"name": "bling-erp-api", "version": "5.8.1"}

    notes = account["notes"]
    # NF-e list: exactly the account's saída notes in Emitida DANFE, once each, in 100s.
    expected = notes["nfe:saida:EMITIDA_DANFE"]
    assert expected > 100, "the seeded data should need more than one page"
    assert got["nfe"]["count"] == len(set(got["nfe"]["ids"])) == expected
    assert got["nfe"]["pages"] == math.ceil(expected / 100)

    # NFC-e: with no `situacao` filter Bling leaves cancelled notes out (reference §v3 /nfce).
    nfce_total = sum(n for key, n in notes.items() if key.startswith("nfce:"))
    assert got["nfce"]["count"] == nfce_total - notes.get("nfce:saida:CANCELADA", 0)
    assert got["nfce"]["detail"]["chaveAcesso"][20:22] == "65"  # modelo 65 inside the chave

    company_digits = re.sub(r"\D", "", got["company"]["cnpj"])
    assert company_digits == account["cnpj"]
    assert got["company"]["nome"] == account["nome"]

    assert got["orders"]["firstPageCount"] == min(100, account["orders"])
    assert "Vendas" in got["modules"]["names"]
    order = got["order"]
    assert order["situacaoId"] in {s["id"] for s in got["modules"]["vendasSituations"]}
    assert order["notaFiscalId"] > 0

    obj = got["logisticsObject"]
    sent, read_back = obj["sent"], obj["readBack"]
    assert read_back["rastreamento"]["codigo"] == sent["rastreamento"]["codigo"]
    assert read_back["pedidoVenda"]["id"] == order["id"]
    assert read_back["notaFiscal"]["id"] == order["notaFiscalId"]
    assert read_back["dimensao"]["peso"] == sent["dimensoes"]["peso"]
    # The library's update() sends PATCH, which Bling's v3 spec does not define for this path
    # (it has PUT); the refusal must still reach the caller as a well-formed Bling error.
    assert got["libraryUpdate"]["ok"] is False
    assert got["libraryUpdate"]["name"] == "BlingApiException", got["libraryUpdate"]
    assert got["libraryUpdate"]["response"]["error"]["type"]

    # Independent truth, fetched without the library: details and the object's existence.
    pacer = _Pacer()
    async with httpx.AsyncClient(base_url=f"{base}/Api/v3",
                                 headers={"authorization": f"Bearer {token}"}) as http:

        async def get(path: str) -> dict[str, Any]:
            await asyncio.to_thread(pacer.wait)
            r = await http.get(path)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
            data: dict[str, Any] = r.json()["data"]
            return data

        assert len(got["nfeDetails"]) == 3
        for detail in got["nfeDetails"]:
            truth = await get(f"/nfe/{detail['id']}")
            assert detail["chaveAcesso"] == truth["chaveAcesso"]
            assert re.fullmatch(r"\d{44}", detail["chaveAcesso"])
            assert detail["chaveAcesso"][6:20] == account["cnpj"]
            assert (detail["numero"], detail["situacao"], detail["tipo"]) == (
                truth["numero"], V3_EMITIDA_DANFE, 1)
            assert detail["id"] in got["nfe"]["ids"]
        stored = await get(f"/logisticas/objetos/{obj['id']}")
        assert stored["rastreamento"]["codigo"] == sent["rastreamento"]["codigo"]
        # The refused PATCH changed nothing.
        assert stored["rastreamento"]["descricao"] == sent["rastreamento"]["descricao"]
        assert stored["pedidoVenda"]["id"] == order["id"]
        in_order = await get(f"/pedidos/vendas/{order['id']}")
        volume_ids = [v["id"] for v in in_order["transporte"]["volumes"]]
        assert volume_ids == [*order["volumeIds"], obj["id"]]


# ---------------------------------------------------------------------------------------------
# v2: pybling (Python)


class _RedirectToSimulator:
    """What a hosts-file entry does for pybling, at the transport: requests to
    https://bling.com.br go to the simulator instead, paced at Bling's limit (pybling does not
    pace, and treats any answer without a list, a cod 18 rate-limit refusal included, as the
    end of the pages, so an unpaced burst would silently truncate its results). The library's
    code, URLs and parameters are untouched; every original URL is recorded to prove it."""

    def __init__(self, base: str, pacer: _Pacer) -> None:
        import requests.adapters  # here, not at the top: pybling (and requests) may be absent

        self.seen: list[tuple[str, int]] = []
        outer = self

        class Adapter(requests.adapters.HTTPAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                original = str(request.url)
                request.url = base + original.removeprefix(BLING_HOST)
                pacer.wait()
                response = super().send(request, *args, **kwargs)
                outer.seen.append((original, int(response.status_code)))
                return response

        self.adapter = Adapter()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import requests

        original = requests.Session.get_adapter
        adapter = self.adapter

        def get_adapter(session: requests.Session, url: str) -> Any:
            if url.startswith(BLING_HOST + "/"):
                return adapter
            return original(session, url)

        monkeypatch.setattr(requests.Session, "get_adapter", get_adapter)


def _import_pybling(monkeypatch: pytest.MonkeyPatch, apikey: str) -> ModuleType:
    """pybling reads BLING_API_KEY once, at import: set it first, and reload if an earlier
    import captured another value."""
    monkeypatch.setenv("BLING_API_KEY", apikey)
    try:
        notas = importlib.import_module("pybling.notas")
    except ImportError as exc:
        pytest.skip(f"pybling is not importable ({exc}); run {PY_INSTALL}")
    if getattr(notas, "BLING_SECRET_KEY", None) != apikey:
        notas = importlib.reload(notas)
    captured: object = notas.BLING_SECRET_KEY
    assert captured == apikey
    return notas


def _v2_notes(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [item["notafiscal"] for item in result["retorno"]["notasfiscais"]]


def test_pybling_v2_client_unchanged(simulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """pybling lists a period's notes in v2 "Emitida DANFE" (code 7) and reads one note; the
    answers must be exactly the simulator's notes, with v2's string values. The library's own
    docstring suggests code 6, which in v2 is "Autorizada": that must give the authorised notes,
    not the Emitida DANFE ones, so a client making that mistake sees it."""
    base = simulator
    account = _account(base, 1)
    notas = _import_pybling(monkeypatch, account["api_keys"][0]["apikey"])
    pacer = _Pacer()
    redirect = _RedirectToSimulator(base, pacer)
    redirect.install(monkeypatch)

    # Truth: the same period through v3, without pybling.
    token = _access_token(base, account)
    with httpx.Client(base_url=f"{base}/Api/v3", headers={"authorization": f"Bearer {token}"}) as http:
        period = {"tipo": 1, "dataEmissaoInicial": "2026-08-01", "dataEmissaoFinal": "2026-11-20"}
        truth_emitida = _v3_pages(http, pacer, "/nfe", situacao=V3_EMITIDA_DANFE, **period)
        truth_autorizada = _v3_pages(http, pacer, "/nfe", situacao=V3_AUTORIZADA, **period)

        started = time.monotonic()
        emitida = _v2_notes(notas.list_notas(PERIOD, V2_EMITIDA_DANFE, tipo="S", page="all"))
        one = emitida[0]
        response = notas.get_nota(one["numero"], one["serie"])
        autorizada = _v2_notes(notas.list_notas(PERIOD, V2_AUTORIZADA, tipo="S", page="all"))
        elapsed = time.monotonic() - started
        pacer.wait()
        v3_detail = http.get(f"/nfe/{one['id']}").json()["data"]
    print(f"pybling: {len(redirect.seen)} requests in {elapsed:.1f} s")

    # Every call was pybling's own v2 URL on bling.com.br, answered 200 (v2's end of pages is
    # cod 14 with HTTP 200); none was refused for the rate.
    assert redirect.seen, "pybling made no request through the redirect"
    assert all(url.startswith(BLING_HOST + "/Api/v2/") for url, _ in redirect.seen), redirect.seen
    assert [status for _, status in redirect.seen] == [200] * len(redirect.seen)

    notes = account["notes"]
    assert len(truth_emitida) == notes["nfe:saida:EMITIDA_DANFE"] > 100, "period no longer covers the data"
    assert sorted(n["chaveAcesso"] for n in emitida) == sorted(n["chaveAcesso"] for n in truth_emitida)
    assert len({n["id"] for n in emitida}) == len(emitida)
    assert {(n["situacao"], n["tipo"]) for n in emitida} == {("Emitida DANFE", "S")}
    # Each listing ends with one request past the last page (the cod 14 that stops pybling's loop).
    assert len(redirect.seen) == (math.ceil(len(emitida) / 100) + 1) + 1 + (
        math.ceil(len(autorizada) / 100) + 1)

    assert response.status_code == 200
    found = _v2_notes(response.json())
    assert len(found) == 1
    nota = found[0]
    assert (nota["numero"], nota["serie"], nota["chaveAcesso"]) == (
        one["numero"], one["serie"], one["chaveAcesso"])
    assert isinstance(nota["valorNota"], str) and re.fullmatch(r"\d+\.\d{2}", nota["valorNota"])
    assert all(isinstance(nota[key], str) for key in ("id", "numero", "serie", "dataEmissao"))
    assert nota["valorNota"] == one["valorNota"]
    assert Decimal(nota["valorNota"]) == Decimal(str(v3_detail["valorNota"]))

    # The docstring's situacao 6 is v2 "Autorizada" (v3 5): authorised, not yet printed notes.
    assert autorizada, "the seeded data should hold authorised notes"
    assert {n["situacao"] for n in autorizada} == {"Autorizada"}
    assert len(truth_autorizada) == notes["nfe:saida:AUTORIZADA"]
    assert sorted(n["chaveAcesso"] for n in autorizada) == sorted(
        n["chaveAcesso"] for n in truth_autorizada)
    assert not {n["chaveAcesso"] for n in autorizada} & {n["chaveAcesso"] for n in emitida}
