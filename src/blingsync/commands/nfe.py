"""`blingsync nfe inspect`: what an NF-e XML file becomes as an expedition order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from blingsync.commands.common import EXIT_FAILED, EXIT_NOT_FOUND, console, fail

app = typer.Typer(help="Look at NF-e XML files.", no_args_is_help=True)


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="An NF-e 4.00 XML (nfeProc or NFe).")],
) -> None:
    """Print the order JSON parsed from FILE (the fields the warehouse receives)."""
    from blingsync.nfe.parse import DEFAULT_MAX_BYTES, NfeError, parse_nfe
    from blingsync.orderjson import order_fields

    try:
        size = file.stat().st_size
        if size > DEFAULT_MAX_BYTES:
            fail(f"{file}: {size} bytes, over the {DEFAULT_MAX_BYTES}-byte limit of an NF-e XML")
        data = file.read_bytes()
    except FileNotFoundError:
        fail(f"{file}: no such file", EXIT_NOT_FOUND)
    except IsADirectoryError:
        fail(f"{file}: is a directory", EXIT_NOT_FOUND)
    except OSError as exc:
        fail(f"{file}: {exc.strerror}", EXIT_FAILED)
    try:
        order = parse_nfe(data)
    except NfeError as exc:
        fail(f"{file}: {exc}")
    console.print_json(json.dumps(order_fields(order), ensure_ascii=False))
