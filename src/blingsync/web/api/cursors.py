"""Opaque page cursors for the order list.

A cursor holds the last id of the page it ends, the direction, and a fingerprint of the filters
it was made under: a cursor used with other filters (or the other direction) would page through
a different list from a position that means nothing there, so it is refused with a message
instead. Clients must treat it as opaque text; its format may change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any


class CursorInvalid(ValueError):
    """A cursor this API did not make, or made for another query."""


def fingerprint(filters: dict[str, Any]) -> str:
    text = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(last_id: int, *, descending: bool, filters: dict[str, Any]) -> str:
    body = json.dumps({"v": 1, "id": last_id, "desc": descending, "f": fingerprint(filters)},
                      separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(cursor: str, *, descending: bool, filters: dict[str, Any]) -> int:
    """The last id the cursor's page ended at."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
        last_id, desc, made_for = body["id"], body["desc"], body["f"]
        valid = (body.get("v") == 1 and type(last_id) is int and 0 <= last_id <= 2_147_483_647
                 and isinstance(desc, bool) and isinstance(made_for, str))
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        raise CursorInvalid("cursor is not one this API gave out: pass `next_cursor` from the previous "
                            "page unchanged, or leave it out to start at the first page")
    if desc != descending or made_for != fingerprint(filters):
        raise CursorInvalid("cursor belongs to a list with other filters or another sort: use the same "
                            "parameters as the page it came from, or leave it out to start again")
    return int(last_id)
