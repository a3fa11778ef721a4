"""The dashboard and the brand's connection wizard: server-rendered pages (Jinja2 + HTMX, both
served from the package, no CDN), pt-BR texts from a message catalogue.

Each page module defines its own `router`, included below; `create_app` mounts `router` and
serves `STATIC_DIR` under `/static`. `install(app)` adds what a router cannot carry: the
security-headers middleware and the pt-BR error pages (see `render`)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter

STATIC_DIR: Final = Path(__file__).parent / "static"
TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
MESSAGES_DIR: Final = Path(__file__).parent / "messages"

router: Final[APIRouter] = APIRouter(include_in_schema=False)



def _include_pages() -> None:
    """The page modules import the constants above, so they are imported after them."""
    from blingsync.web.ui import pages_accounts, pages_auth, pages_orders

    for page in (pages_auth, pages_accounts, pages_orders):
        router.include_router(page.router)


_include_pages()

from blingsync.web.ui.render import install  # noqa: E402

__all__ = ["MESSAGES_DIR", "STATIC_DIR", "TEMPLATES_DIR", "install", "router"]
