"""How the store's JSON columns are written and read: account settings, and the canonical text of
an order's content (the text its hash is computed over)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from datetime import timedelta
from typing import Any

from blingsync.domain import ExpeditionOrder
from blingsync.orderjson import order_fields
from blingsync.store.records import AccountSettings, SweepTier


def canonical_json(value: Any) -> str:
    """One text per value (sorted keys, no spaces), so equal content hashes equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def like_escape(value: str) -> str:
    """`value` as a literal inside a LIKE pattern (escape character: backslash), so a search for
    "100%" or "a_b" matches those characters, not any."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def order_content(order: ExpeditionOrder) -> tuple[str, str]:
    """(content, content_hash): `order_fields` as canonical JSON and its sha256. Bling's links
    and situation are not in it: the XML link is signed anew on every request, and a situation
    change alone is nothing the warehouse must act on."""
    content = canonical_json(order_fields(order))
    return content, hashlib.sha256(content.encode()).hexdigest()


def settings_to_json(settings: AccountSettings) -> str:
    data: dict[str, Any] = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "tiers"}
    data["tiers"] = [
        {"name": tier.name, "lookback_s": _seconds(tier.lookback), "every_s": _seconds(tier.every)}
        for tier in settings.tiers
    ]
    return canonical_json(data)


def settings_from_json(text: str) -> AccountSettings:
    """Keys this version does not know are ignored and missing ones take their defaults, so a
    database written by a newer or older blingsync still opens."""
    data = json.loads(text)
    known = {f.name for f in fields(AccountSettings)} - {"tiers"}
    kwargs: dict[str, Any] = {name: data[name] for name in known if name in data}
    if "tiers" in data:
        kwargs["tiers"] = tuple(
            SweepTier(str(t["name"]), timedelta(seconds=t["lookback_s"]), timedelta(seconds=t["every_s"]))
            for t in data["tiers"]
        )
    return AccountSettings(**kwargs)


def _seconds(delta: timedelta) -> int | float:
    seconds = delta.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds
