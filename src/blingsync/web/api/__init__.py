"""The REST API, version 1 (`/api/v1`): accounts, orders, the events feed, deliveries and the
warehouse's shipment reports. Every route needs a bearer token (`blingsync.web.api.auth`);
errors are `{"detail": "…"}` (`blingsync.web.api.problems`). See docs/api.md."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from blingsync.web.api import accounts, deliveries, events, orders, shipments
from blingsync.web.api.problems import COMMON_RESPONSES, ApiRoute


def _operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names (`list_orders`), stable for client
    generators, instead of FastAPI's path-derived ones."""
    return route.name


router = APIRouter(prefix="/api/v1", route_class=ApiRoute, responses=COMMON_RESPONSES,
                   generate_unique_id_function=_operation_id)
router.include_router(accounts.router)
router.include_router(orders.router)
router.include_router(events.router)
router.include_router(deliveries.router)

router.include_router(shipments.router)
