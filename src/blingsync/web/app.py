"""The one ASGI app of `blingsync serve`: REST API under `/api/v1` (its OpenAPI document at
`/api/v1/openapi.json`), Bling's webhooks, the OAuth connect flow, health and metrics, and the
dashboard (`blingsync.web.ui`, its files under `/static`).

The app does not open or close the service: whoever runs it (`blingsync serve`, a test) owns
the service's lifetime and the background loops, and hands their wake-ups in."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from blingsync import __version__
from blingsync.service import Service
from blingsync.web import health, oauth, ui, webhooks
from blingsync.web.api import router as api_router
from blingsync.web.deps import Wakeups


def create_app(service: Service, *, wakeups: Wakeups | None = None) -> FastAPI:
    app = FastAPI(
        title="blingsync",
        version=__version__,
        summary="Bling NF-e → warehouse expedition orders: accounts, orders, events, deliveries.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.service = service
    app.state.wakeups = wakeups or Wakeups()
    app.include_router(api_router)
    app.include_router(webhooks.router)
    app.include_router(oauth.router)
    app.include_router(health.router)
    app.include_router(ui.router)
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    ui.install(app)  # the dashboard's security headers and pt-BR error pages
    return app
