"""OAuth connect attempts (`oauth_states`): one-time tickets and states bound to a browser session and
an account.

`Store` inherits `OAuthStateStore`, so these are ordinary store methods, one transaction each.

One row is one attempt to connect (or reconnect) one account through Bling's login, in three steps
(`blingsync.web.oauth` drives them):

1. **ticket**: the connect link handed to the brand carries a random ticket, valid for a day;
2. **start**: opening the link spends the ticket (once) and binds the attempt to the browser that
   opened it (a random session value in a cookie) and to a fresh `state`, valid for minutes, which
   travels to Bling and back;
3. **callback**: Bling's redirect spends the state (once, and only from that browser), and the
   outcome of the code exchange is written on the row.

Only SHA-256 digests of the ticket, the state and the session value are kept: a copy of the
database lets nobody finish someone's connection. Callers hand in the values themselves and never
see a digest. Each step's check-and-spend is one conditional UPDATE, so two requests racing with
the same ticket or state cannot both win, on SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Row, delete, select, update

from blingsync.store.codec import settings_from_json, settings_to_json
from blingsync.store.errors import StoreError
from blingsync.store.part import StorePart
from blingsync.store.records import AccountSettings
from blingsync.store.tables import oauth_states

RETENTION: Final = timedelta(days=30)
"""How long an attempt's row is kept after it expired (what happened to a brand's connect link
stays answerable for a month), before a new ticket sweeps it away."""

OUTCOME_LIMIT: Final = 500
"""Characters of an outcome kept."""


class OAuthRefusal(StrEnum):
    """Why a ticket or a state was not accepted."""

    UNKNOWN = "unknown"  # never issued here: forged, mistyped, or from another installation
    USED = "used"  # spent already (links and states are one-time)
    EXPIRED = "expired"
    OTHER_SESSION = "other_session"  # the state belongs to another browser (or the cookie is gone)


@dataclass(frozen=True)
class OAuthAttempt:
    """One attempt to connect an account through Bling's login. `started` once its ticket was
    spent; `used_at` once Bling's answer came back; `outcome` says, in words, how it ended."""

    id: int
    account_name: str
    reconnect: bool
    settings: AccountSettings | None  # for a new account: its import settings (None: defaults)
    created_at: datetime
    expires_at: datetime  # the ticket's expiry before `started`, the state's after
    started: bool
    used_at: datetime | None
    outcome: str | None


def secret_digest(value: str) -> str:
    """The SHA-256 (hex) kept for a ticket, state or session value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class OAuthStateStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""

    async def create_oauth_ticket(self, account_name: str, ticket: str, *, ttl: timedelta,
                                  reconnect: bool = False,
                                  settings: AccountSettings | None = None) -> OAuthAttempt:
        """A new attempt whose connect link carries `ticket` (only its digest is kept). Rows that
        expired more than `RETENTION` ago go in the same transaction."""
        name = account_name.strip()
        if not name:
            raise ValueError("an OAuth connect attempt needs an account name")
        if not ticket:
            raise ValueError("an OAuth connect ticket must not be empty")
        now = self._now()
        options: dict[str, Any] = {"reconnect": reconnect}
        if settings is not None:
            options["settings"] = json.loads(settings_to_json(settings))
        async with self._write() as conn:
            await conn.execute(delete(oauth_states).where(oauth_states.c.expires_at < now - RETENTION))
            result = await conn.execute(oauth_states.insert().values(
                account_name=name, ticket_sha256=secret_digest(ticket), state_sha256=None,
                session_sha256=None, options=json.dumps(options, sort_keys=True), created_at=now,
                expires_at=now + ttl, used_at=None, outcome=None,
            ).returning(*oauth_states.c))
            return _attempt(result.one())

    async def oauth_ticket(self, ticket: str) -> OAuthAttempt | OAuthRefusal:
        """What a ticket would start, without spending it (the page that asks the brand to go
        on to Bling: link previews and scanners open links too, and must not spend them)."""
        async with self._read() as conn:
            row = (await conn.execute(select(*oauth_states.c).where(
                oauth_states.c.ticket_sha256 == secret_digest(ticket)))).first()
        if row is None:
            return OAuthRefusal.UNKNOWN
        if row.state_sha256 is not None or row.used_at is not None:
            return OAuthRefusal.USED
        if row.expires_at <= self._now():
            return OAuthRefusal.EXPIRED
        return _attempt(row)

    async def start_oauth_attempt(self, ticket: str, *, state: str, session: str,
                                  ttl: timedelta) -> OAuthAttempt | OAuthRefusal:
        """Spend `ticket`: the attempt is bound from now on to `state` (what goes to Bling) and
        `session` (what the browser's cookie holds), both valid for `ttl`."""
        digest = secret_digest(ticket)
        now = self._now()
        async with self._write() as conn:
            row = (await conn.execute(
                select(*oauth_states.c).where(oauth_states.c.ticket_sha256 == digest))).first()
            if row is None:
                return OAuthRefusal.UNKNOWN
            if row.state_sha256 is not None or row.used_at is not None:
                return OAuthRefusal.USED
            if row.expires_at <= now:
                return OAuthRefusal.EXPIRED
            spent = await conn.execute(
                update(oauth_states)
                .where(oauth_states.c.id == row.id, oauth_states.c.state_sha256.is_(None),
                       oauth_states.c.used_at.is_(None))
                .values(state_sha256=secret_digest(state), session_sha256=secret_digest(session),
                        expires_at=now + ttl)
                .returning(*oauth_states.c))
            after = spent.first()
            return OAuthRefusal.USED if after is None else _attempt(after)

    async def oauth_attempt_by_state(self, state: str) -> OAuthAttempt | None:
        """The attempt a state was issued for, whatever became of it (None: never issued)."""
        async with self._read() as conn:
            row = (await conn.execute(select(*oauth_states.c).where(
                oauth_states.c.state_sha256 == secret_digest(state)))).first()
        return None if row is None else _attempt(row)

    async def use_oauth_state(self, state: str, *, session: str | None) -> OAuthAttempt | OAuthRefusal:
        """Spend `state`, which must come back from the browser session it was bound to (`session`
        is that browser's cookie value; None when it sent none). A state presented from another
        session is refused and left unspent, so the rightful browser can still finish; only that
        browser learns whether a state was spent or has expired."""
        digest = secret_digest(state)
        now = self._now()
        async with self._write() as conn:
            row = (await conn.execute(
                select(*oauth_states.c).where(oauth_states.c.state_sha256 == digest))).first()
            if row is None:
                return OAuthRefusal.UNKNOWN
            if session is None or row.session_sha256 is None or not hmac.compare_digest(
                    row.session_sha256, secret_digest(session)):
                return OAuthRefusal.OTHER_SESSION
            if row.used_at is not None:
                return OAuthRefusal.USED
            if row.expires_at <= now:
                return OAuthRefusal.EXPIRED
            spent = await conn.execute(
                update(oauth_states)
                .where(oauth_states.c.id == row.id, oauth_states.c.used_at.is_(None))
                .values(used_at=now)
                .returning(*oauth_states.c))
            after = spent.first()
            return OAuthRefusal.USED if after is None else _attempt(after)

    async def finish_oauth_attempt(self, attempt_id: int, outcome: str) -> None:
        """Record how the attempt ended (in words, for operators; never a secret)."""
        async with self._write() as conn:
            result = await conn.execute(update(oauth_states).where(oauth_states.c.id == attempt_id)
                                        .values(outcome=outcome[:OUTCOME_LIMIT]))
        if result.rowcount != 1:
            raise StoreError(f"no OAuth connect attempt with id {attempt_id}")

    async def oauth_attempts(self, account_name: str | None = None, *, limit: int = 50) -> list[OAuthAttempt]:
        """The latest attempts, newest first (of one account when named)."""
        query = select(*oauth_states.c).order_by(oauth_states.c.id.desc()).limit(limit)
        if account_name is not None:
            query = query.where(oauth_states.c.account_name == account_name)
        async with self._read() as conn:
            return [_attempt(row) for row in (await conn.execute(query)).all()]


def _attempt(row: Row[Any]) -> OAuthAttempt:
    options = json.loads(row.options)
    raw_settings = options.get("settings")
    return OAuthAttempt(
        id=row.id, account_name=row.account_name, reconnect=bool(options.get("reconnect")),
        settings=None if raw_settings is None else settings_from_json(json.dumps(raw_settings)),
        created_at=row.created_at, expires_at=row.expires_at, started=row.state_sha256 is not None,
        used_at=row.used_at, outcome=row.outcome,
    )
