"""`blingsync writeback`: per-account write-back to Bling (being written)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Write the warehouse's shipments back to Bling, per account.", no_args_is_help=True)
