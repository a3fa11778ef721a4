"""OAuth connect attempts (`oauth_states`): one-time tickets and states bound to a browser session and
an account.

`Store` inherits `OAuthStateStore`, so these are ordinary store methods, one transaction each."""

from __future__ import annotations

from blingsync.store.part import StorePart


class OAuthStateStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""
