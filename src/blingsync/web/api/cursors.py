"""Opaque page cursors for the order list.

A cursor holds the position of the row its page ended at (that order's issue time and id: the
list's keyset, `store.dashboard.OrderKey`), the sort, and a fingerprint of the filters it was
made under: a cursor used with other filters (or another sort) would page through a different
list from a position that means nothing there, so it is refused with a message instead. The
position is the row's values, not only its id, so the next page is found even if that order has
been removed since. Clients must treat a cursor as opaque text; its format may change. Version
1 (before the list could be ordered by issue date) held only the id and the direction: it still
continues the import-order sorts (`-id`, `id`) it was made for, and is refused in words for
the others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from blingsync.store.dashboard import OrderKey

_VERSION = 2
_MAX_ID = 2_147_483_647


class CursorInvalid(ValueError):
    """A cursor this API did not make, or made for another query."""


def fingerprint(filters: dict[str, Any]) -> str:
    text = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(key: OrderKey, *, sort: str, filters: dict[str, Any]) -> str:
    body = json.dumps({"v": _VERSION, "t": key.issued_at.astimezone(UTC).isoformat(), "id": key.id,
                       "s": sort, "f": fingerprint(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(cursor: str, *, sort: str, filters: dict[str, Any]) -> OrderKey:
    """The position (the last row's key) the cursor's page ended at."""
    key: OrderKey | None = None
    version: object = None
    made_sort = made_for = ""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
        version = body.get("v")
        if version == _VERSION:
            issued_at, last_id, made_sort, made_for = body["t"], body["id"], body["s"], body["f"]
            if (type(last_id) is int and 0 <= last_id <= _MAX_ID and isinstance(issued_at, str)
                    and isinstance(made_sort, str) and isinstance(made_for, str)):
                when = datetime.fromisoformat(issued_at)
                if when.tzinfo is not None and when.utcoffset() is not None:
                    key = OrderKey(when.astimezone(UTC), last_id)
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError,
            OverflowError):
        key = None
    if key is None and version == 1:
        key, made_sort, made_for = _version_1(body)
    if key is None:
        raise CursorInvalid("cursor is not one this API gave out: pass `next_cursor` from the previous "
                            "page unchanged, or leave it out to start at the first page")
    if made_sort != sort or made_for != fingerprint(filters):
        raise CursorInvalid("cursor belongs to a list with other filters or another sort: use the same "
                            "parameters as the page it came from, or leave it out to start again")
    return key


_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""The issue time of a version 1 position: unused, as the import-order sorts page by id alone."""


def _version_1(body: Any) -> tuple[OrderKey | None, str, str]:
    """A version 1 cursor ({"v": 1, "id", "desc", "f"}) as a position in the import order."""
    last_id, descending, made_for = body.get("id"), body.get("desc"), body.get("f")
    if type(last_id) is int and 0 <= last_id <= _MAX_ID and isinstance(descending, bool) \
            and isinstance(made_for, str):
        return OrderKey(_NO_TIME, last_id), "-id" if descending else "id", made_for
    return None, "", ""
