"""The simulator as one ASGI app: Bling's v3 and v2 APIs, the signed XML and DANFE links, and
the admin API, behind the edge that applies IP blocks and injected faults."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Mount, Route

from blingsync.simulator import admin, errors, oauth, v2, v3
from blingsync.simulator.clock import Clock
from blingsync.simulator.danfe import build_danfe_html, build_danfe_pdf
from blingsync.simulator.data import generate_world
from blingsync.simulator.faults import FaultSpec
from blingsync.simulator.guard import BlingEdge, count_and_limit
from blingsync.simulator.limits import LimitSettings
from blingsync.simulator.state import AuthSettings, SimState
from blingsync.simulator.webhooks import WebhookHub, WebhookKnobs

log = logging.getLogger("blingsync.simulator")
XML_LABEL = "GET /relatorios/nfe.xml.php"


@dataclass
class Simulator:
    state: SimState
    hub: WebhookHub
    app: BlingEdge



def build(
    *,
    seed: int = 1,
    accounts: int = 3,
    invoices: int = 200,
    anchor: datetime,
    clock: Clock | None = None,
    limits: LimitSettings | None = None,
    faults: FaultSpec | None = None,
    auth: AuthSettings | None = None,
    webhook_knobs: WebhookKnobs | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    evolve_every: float | None = None,
    v2_discontinued: bool = False,
) -> Simulator:
    """Generate the world for (seed, accounts, invoices, anchor) and wire the app around it."""
    world = generate_world(seed=seed, accounts=accounts, invoices=invoices, anchor=anchor)
    state = SimState(
        world, clock=clock, limits=limits, faults=faults, auth=auth,
        v2_discontinued=v2_discontinued,
    )
    hub = WebhookHub(state, webhook_knobs or WebhookKnobs(), webhook_transport)

    async def signed_xml(request: Request) -> Response:
        chave = request.query_params.get("chaveAcesso", "")
        signature = request.query_params.get("signature", "")
        # The signature is checked before any lookup (in constant time), so a link without a
        # valid signature learns nothing about which access keys exist.
        if not chave or not signature or not hmac.compare_digest(
                signature, state.xml_signature(chave)):
            return PlainTextResponse("Assinatura inválida ou expirada", status_code=403)
        found = state.find_note_by_chave(chave)
        if found is None or not found[1].is_authorised:
            return PlainTextResponse("Arquivo não encontrado", status_code=404)
        company, note = found
        # Counted against the account like an API call (see docs/simulator.md).
        refused = count_and_limit(state, request, company, XML_LABEL)
        if refused is not None:
            return refused
        state.counters[company.id].record(XML_LABEL, 200)
        return Response(state.note_xml(company, note), media_type="application/xml")

    async def doc_view(request: Request) -> Response:
        found = state.find_note_by_danfe(request.query_params.get("id", ""))
        if found is None:
            return PlainTextResponse("Documento não encontrado", status_code=404)
        company, note = found
        if request.query_params.get("PDF") == "true":
            return Response(build_danfe_pdf(company, note), media_type="application/pdf")
        return HTMLResponse(build_danfe_html(company, note))

    async def home(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "service": "blingsync Bling simulator",
            "v3": f"{base}/Api/v3",
            "v2": f"{base}/Api/v2",
            "authorize": f"{base}/Api/v3/oauth/authorize",
            "token": f"{base}/Api/v3/oauth/token",
            "admin": f"{base}/_sim/",
            "accounts": f"{base}/_sim/accounts",
        })

    v3_routes = [*oauth.routes(state), *v3.routes(state)]

    async def v3_fallback(request: Request) -> Response:
        # A known path with another method is 405, as Bling's error enum has it; else 404.
        scope = {**request.scope, "path": "/" + request.path_params["rest"]}
        if any(route.matches(scope)[0] == Match.PARTIAL for route in v3_routes):
            return errors.v3_error(
                405, "METHOD_NOT_ALLOWED", "Método não permitido",
                f"O método {request.method} não é aceito por este recurso.",
            )
        return errors.not_found()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(hub.run(), name="webhooks")]
        if evolve_every:
            tasks.append(asyncio.create_task(_evolve_forever(state, evolve_every), name="evolve"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.aclose()

    starlette = Starlette(
        routes=[
            Route("/", home),
            Mount("/Api/v3", routes=[
                *v3_routes,
                Route("/{rest:path}", v3_fallback,
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]),
            Mount("/Api/v2", routes=v2.routes(state)),
            Route("/relatorios/nfe.xml.php", signed_xml),
            Route("/doc.view.php", doc_view),
            Mount("/_sim", routes=admin.routes(state, hub)),
        ],
        lifespan=lifespan,
    )
    return Simulator(state, hub, BlingEdge(starlette, state))


async def _evolve_forever(state: SimState, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for change in state.evolve():
            log.info("simulator: %s", change)
