"""The base of the store's mixins (`tokens`, `inbox`, `oauth`, `shipments`): what each part may
use of `Store` (its connections, clock and secret box), declared once for the type checker."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

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
