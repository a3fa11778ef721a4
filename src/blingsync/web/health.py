"""Probes and metrics for whoever runs `blingsync serve` (a load balancer, Kubernetes,
Prometheus). Outside the API's OpenAPI document and without authentication, like every
health endpoint: they reveal no account data beyond account names in metric labels.

* `/healthz` — liveness: the process answers HTTP. Always 200 while it serves; restarting the
  process is the only cure for a failure here, so nothing that can recover on its own (the
  database, a crashed loop being restarted) is checked.
* `/readyz` — readiness: the database answers and its schema is at this version's head, and
  every background loop of `serve` is running (a crashed one is restarted with backoff and
  reported here meanwhile). 503 with a JSON body naming what is not ready.
* `/metrics` — Prometheus text format (`blingsync.metrics`): what the process recorded
  (`request.app.state.metrics`, set by `serve`) and what the database says now.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from blingsync.metrics import Metrics, render, snapshot
from blingsync.service import Service
from blingsync.store.errors import SchemaOutdated

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

DATABASE_TIMEOUT_S: Final = 5.0
"""A database slower than this to answer one query counts as not ready."""


def _metrics(request: Request) -> Metrics | None:
    found = getattr(request.app.state, "metrics", None)
    return found if isinstance(found, Metrics) else None


def _service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    failing: list[str] = []
    checks["database"] = await _database(_service(request))
    if checks["database"] != "ok":
        failing.append("database")
    metrics = _metrics(request)
    if metrics is not None:
        if metrics.stopping:
            checks["process"] = "shutting down"
            failing.append("process")
        for name, status in sorted(metrics.loops.items()):
            checks[name] = status.describe()
            if not status.alive:
                failing.append(name)
    body: dict[str, Any] = {"status": "not ready" if failing else "ready", "checks": checks}
    if failing:
        body["not_ready"] = failing
    return JSONResponse(body, status_code=503 if failing else 200,
                        headers={"cache-control": "no-store"})


async def _database(service: Service) -> str:
    """'ok', or why not in words (no URL, no credentials: the probe answers anyone)."""
    try:
        await asyncio.wait_for(service.store.check_schema(), DATABASE_TIMEOUT_S)
    except SchemaOutdated as exc:
        return str(exc)
    except TimeoutError:
        return f"the database did not answer within {DATABASE_TIMEOUT_S:.0f} s"
    except Exception as exc:
        log.warning("readyz: the database check failed", exc_info=True)
        return f"the database is unreachable ({type(exc).__name__})"
    return "ok"


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    found = await snapshot(_service(request))
    return Response(render(_metrics(request), found), media_type=CONTENT_TYPE_LATEST,
                    headers={"cache-control": "no-store"})
