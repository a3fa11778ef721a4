"""REST API bearer tokens (`api_tokens`): create (the token returned once, its SHA-256 kept), look up
by token, list, revoke.

`Store` inherits `ApiTokenStore`, so these are ordinary store methods, one transaction each."""

from __future__ import annotations

from blingsync.store.part import StorePart


class ApiTokenStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""
