"""Bling webhooks received (`inbox`): stored once per eventId, claimed for their targeted re-check,
marked done.

`Store` inherits `InboxStore`, so these are ordinary store methods, one transaction each."""

from __future__ import annotations

from blingsync.store.part import StorePart


class InboxStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""
