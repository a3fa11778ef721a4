"""`blingsync tokens`: REST API bearer tokens (being written)."""

from __future__ import annotations

import typer

app = typer.Typer(help="REST API tokens: create (shown once), list, revoke.", no_args_is_help=True)
