"""The warehouse's shipment reports (`shipments`) and the write-back events they queue.

`Store` inherits `ShipmentStore`, so these are ordinary store methods, one transaction each."""

from __future__ import annotations

from blingsync.store.part import StorePart


class ShipmentStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""
