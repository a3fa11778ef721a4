"""The base of the store's parts (`outbox`, `browse`, `tokens`, `inbox`, `oauth`, `shipments`):
what each part may use of `Store` (its connections, clock and secret box), declared once for the
type checker, and the one way rows are claimed by a lease."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select, Table, update
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from blingsync.store.crypto import SecretBox


class StorePart:
    """A group of `Store` methods in a module of its own; `Store` inherits every part."""

    if TYPE_CHECKING:
        _box: SecretBox
        _postgres: bool
        _clock: Callable[[], datetime]

        def _read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]: ...

        def _write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]: ...

        def _now(self) -> datetime: ...

    async def _lease(self, candidates: Select[Any], table: Table, column: str,
                     until: datetime) -> list[Row[Any]]:
        """Claim the rows `candidates` selects by setting `column` to `until`, in one write
        transaction: on PostgreSQL with `FOR UPDATE SKIP LOCKED` (claimers side by side skip each
        other's rows instead of waiting), on SQLite inside `BEGIN IMMEDIATE`, which already
        excludes every other writer. Returns the rows as they were before the claim."""
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        async with self._write() as conn:
            rows = list((await conn.execute(candidates)).all())
            if rows:
                await conn.execute(update(table).where(table.c.id.in_([row.id for row in rows]))
                                   .values({column: until}))
        return rows
