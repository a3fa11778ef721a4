"""The store's JSON columns and small rules that need no database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from blingsync.store import idempotency_key, quarantine_backoff
from blingsync.store.codec import order_content, settings_from_json, settings_to_json
from blingsync.store.records import AccountSettings, EventType, SweepTier
from tests.integration.store_fixtures import make_order


def test_settings_round_trip_with_tiers_in_seconds() -> None:
    settings = AccountSettings(import_authorized=True, initial_lookback_days=10,
                               tiers=(SweepTier("a", timedelta(days=2), timedelta(0)),
                                      SweepTier("b", timedelta(seconds=90.5), timedelta(hours=1))))
    text = settings_to_json(settings)
    assert json.loads(text)["tiers"] == [{"name": "a", "lookback_s": 172800, "every_s": 0},
                                         {"name": "b", "lookback_s": 90.5, "every_s": 3600}]
    assert settings_from_json(text) == settings
    assert settings_from_json(settings_to_json(AccountSettings())) == AccountSettings()


def test_settings_tolerate_unknown_and_missing_keys() -> None:
    text = '{"write_back": true, "from_the_future": 1}'
    assert settings_from_json(text) == AccountSettings(write_back=True)


def test_content_hash_follows_content_only() -> None:
    order = make_order()
    content, digest = order_content(order)
    assert json.loads(content)["access_key"] == order.access_key
    assert order_content(make_order())[1] == digest
    assert order_content(replace(order, total_value=Decimal("20.0")))[1] != digest  # "20.0" ≠ "20.00"
    assert "links" not in json.loads(content) and "situation" not in json.loads(content)


def test_quarantine_backoff_doubles_to_a_day() -> None:
    assert [quarantine_backoff(n) / timedelta(hours=1) for n in range(1, 8)] == [1, 2, 4, 8, 16, 24, 24]
    assert quarantine_backoff(10_000) == timedelta(hours=24)


def test_idempotency_key_shape() -> None:
    key = "35261150985703000194550010000024151596965354"
    assert idempotency_key(key, 3, EventType.CANCELED) == f"{key}-v3-order.canceled"
