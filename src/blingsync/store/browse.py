"""Reads for the REST API: orders by filters with cursor pagination, and the events feed.

`Store` inherits `BrowseStore`, so these are ordinary store methods."""

from __future__ import annotations

from blingsync.store.part import StorePart


class BrowseStore(StorePart):
    """The methods of `Store` for browsing (mixed in; see the module docstring)."""
