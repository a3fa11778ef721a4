"""REST API bearer tokens (`api_tokens`): create (the token returned once, its SHA-256 kept), look up
by token, list, revoke.

`Store` inherits `ApiTokenStore`, so these are ordinary store methods, one transaction each.

Why it is shaped this way:

* **Only a SHA-256 of the token is stored.** A copy of the database (a backup, a support dump)
  must not let anyone call the API. Tokens carry 256 random bits, so a plain SHA-256 is enough:
  there is nothing to brute-force, unlike a password, and a lookup by hash needs no per-row salt.
* **Looked up by its hash.** The database compares hashes, never the token, so the time a
  lookup takes says nothing about how much of a guessed token was right.
* **A short prefix is kept in clear** (`bsk_AbCd1234`): enough to recognise which token a
  client uses in `tokens list`, far too little to use it.
* **`last_used_at` is written at most once a minute per token** (`LAST_USED_GRANULARITY`): a
  write per request would turn every read of the API into a write transaction.
* **Revoked tokens stay** (with `revoked_at`), so `tokens list` shows what existed and when it
  stopped working; their names stay taken.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from blingsync.store.errors import NotFoundError, StoreError
from blingsync.store.part import StorePart
from blingsync.store.tables import api_tokens

TOKEN_PREFIX: Final = "bsk_"  # noqa: S105 - a marker, not a credential
"""What every blingsync API token starts with (secret scanners can look for it)."""

PREFIX_LENGTH: Final = 12
"""Characters of the token kept in clear: the `bsk_` marker and 8 random characters."""

LAST_USED_GRANULARITY: Final = timedelta(minutes=1)

_TOKEN_SHAPE: Final = re.compile(r"bsk_[A-Za-z0-9_-]{43}")
"""`bsk_` and 32 random bytes in unpadded base64url: anything else is refused before a lookup."""

_NAME_LIMIT: Final = 100


class TokenScope(StrEnum):
    """What a token may do: `read` every GET of the API; `admin` everything."""

    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiToken:
    """A stored API token, without the token itself (only its first characters, `prefix`)."""

    id: int
    name: str
    scope: TokenScope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: TokenScope) -> bool:
        """An admin token may do what a read token may, not the other way round."""
        return self.scope is TokenScope.ADMIN or scope is TokenScope.READ


class TokenExists(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an API token named {name!r} already exists (revoked tokens keep their "
                         "names); choose another name")
        self.name = name


class TokenNotFound(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no API token named {name!r}")
        self.name = name


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh token: `bsk_` and 32 random bytes, base64url without padding (47 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(token: str) -> bool:
    return _TOKEN_SHAPE.fullmatch(token) is not None


class ApiTokenStore(StorePart):
    """The methods of `Store` for this table (mixed in; see the module docstring)."""

    async def create_api_token(self, name: str, scope: TokenScope = TokenScope.READ) -> tuple[ApiToken, str]:
        """A new token: its record and the token itself, which is not stored and cannot be
        shown again."""
        name = name.strip()
        if not name:
            raise ValueError("an API token needs a name")
        if len(name) > _NAME_LIMIT or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError(f"an API token's name is at most {_NAME_LIMIT} printable characters")
        token = new_token()
        now = self._now()
        try:
            async with self._write() as conn:
                taken = await conn.scalar(select(api_tokens.c.id).where(api_tokens.c.name == name))
                if taken is not None:
                    raise TokenExists(name)
                await conn.execute(insert(api_tokens).values(
                    name=name, scope=TokenScope(scope).value, token_sha256=token_sha256(token),
                    prefix=token[:PREFIX_LENGTH], created_at=now, last_used_at=None, revoked_at=None))
                row = (await conn.execute(select(api_tokens).where(api_tokens.c.name == name))).one()
        except IntegrityError:
            raise TokenExists(name) from None
        return _token(row), token

    async def api_token_by_secret(self, token: str) -> ApiToken | None:
        """The token's record (revoked ones too: the caller says why it is refused), or None
        when no such token was ever created."""
        if not looks_like_token(token):
            return None
        async with self._read() as conn:
            row = (await conn.execute(select(api_tokens)
                                      .where(api_tokens.c.token_sha256 == token_sha256(token)))).first()
        return None if row is None else _token(row)

    async def touch_api_token(self, token: ApiToken) -> bool:
        """Record that the token was used now, unless that was recorded less than
        `LAST_USED_GRANULARITY` ago (then nothing is written). True when it wrote."""
        now = self._now()
        if token.last_used_at is not None and now - token.last_used_at < LAST_USED_GRANULARITY:
            return False
        async with self._write() as conn:
            result = await conn.execute(update(api_tokens).where(
                api_tokens.c.id == token.id,
                or_(api_tokens.c.last_used_at.is_(None),
                    api_tokens.c.last_used_at <= now - LAST_USED_GRANULARITY),
            ).values(last_used_at=now))
        return result.rowcount > 0

    async def api_tokens(self) -> list[ApiToken]:
        """Every token ever created, active and revoked, by name."""
        async with self._read() as conn:
            rows = (await conn.execute(select(api_tokens).order_by(api_tokens.c.name))).all()
        return [_token(row) for row in rows]

    async def revoke_api_token(self, name: str) -> ApiToken:
        """The token stops working at once. Revoking a revoked token changes nothing (its
        original revocation time stays)."""
        async with self._write() as conn:
            await conn.execute(update(api_tokens).where(
                api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None),
            ).values(revoked_at=self._now()))
            row = (await conn.execute(select(api_tokens).where(api_tokens.c.name == name))).first()
        if row is None:
            raise TokenNotFound(name)
        return _token(row)


def _token(row: Row[Any]) -> ApiToken:
    return ApiToken(id=row.id, name=row.name, scope=TokenScope(row.scope), prefix=row.prefix,
                    created_at=row.created_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at)
