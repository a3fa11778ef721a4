"""`blingsync serve` (being written)."""

from __future__ import annotations

import typer


def serve(ctx: typer.Context) -> None:
    """Run the web app, the scheduler and the delivery relay in one process."""
    raise typer.Exit(1)
