"""The one way blingsync's background loops wait: for whichever of several things happens
first (a stop, a wake-up, a timeout), without leaking the waits it started."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


async def first_of(*waitables: Awaitable[object]) -> None:
    """Wait until one of `waitables` is done; cancel and reap the waits this created (a task
    or future given in is left running: it belongs to the caller)."""
    futures = [asyncio.ensure_future(w) for w in waitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, waitable in zip(futures, waitables, strict=True):
            if future is not waitable and not future.done():
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await future
