"""Operators of the dashboard (`users`, hashed passwords), their sign-in sessions (`ui_sessions`)
and the sign-in throttle (`signin_failures`).

`Store` inherits `UserStore`, so these are ordinary store methods, one transaction each.

Why it is shaped this way:

* **Passwords are hashed with scrypt** (`hashlib.scrypt`, in the standard library: no new
  dependency), n=2**14, r=8, p=1, a 16-byte random salt, stored as one self-describing string
  `scrypt$n$r$p$salt$hash` (base64): a later change of parameters still verifies old hashes.
  Verification compares in constant time.
* **An unknown username costs the same as a wrong password**: `authenticate` hashes against a
  dummy hash, so the time a sign-in takes does not tell whether the user exists.
* **Only a SHA-256 of the session token is stored** (like the API tokens): a copy of the
  database does not let anyone sign in. The token carries 256 random bits; a plain hash is enough.
* **Sliding expiry, written at most once a minute** (`SESSION_TOUCH_GRANULARITY`): a write per
  page view would turn every read into a write transaction. The caller decides what counts as
  use (the dashboard's background polls do not: `web/ui/auth.py`). **And an absolute end**
  (`SESSION_MAX_AGE`, 7 days after sign-in, from `created_at`): a tab in constant use, or a
  stolen cookie kept alive, still ends.
* **Disabling a user or changing their password ends their sessions**, and a session of a
  disabled user is never returned, so a disabled operator is out at once.
* **The sign-in throttle is rows in the database** (`begin_signin`), so every `serve` process on
  the database counts the same failures and a restart forgets none. An attempt is recorded as a
  failure *before* its password is checked (a success then clears its pair), in one write
  transaction that counts and inserts: parallel attempts cannot all pass a count none of them
  has added to yet. That transaction is serialised per address (SQLite: `BEGIN IMMEDIATE`
  excludes every other writer; PostgreSQL: a transaction-scoped advisory lock on the address).
  Bounded: rows older than the window are deleted at every attempt, and an address with
  `per_address` recent failures (whatever the usernames) is locked too, so one address cannot
  fill the table with made-up usernames.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import anyio.to_thread
from sqlalchemy import ColumnElement, Row, Select, delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from blingsync.store.errors import NotFoundError, StoreError
from blingsync.store.part import StorePart
from blingsync.store.tables import signin_failures, ui_sessions, users

MIN_PASSWORD_LENGTH: Final = 10
MAX_PASSWORD_LENGTH: Final = 1024
"""Bounded, so a megabyte 'password' cannot make one sign-in burn the CPU."""

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32

SESSION_TTL: Final = timedelta(hours=12)
"""A session ends 12 hours after its last use (sliding)."""

SESSION_MAX_AGE: Final = timedelta(days=7)
"""A session ends 7 days after its sign-in, however much it is used (absolute)."""

SESSION_TOUCH_GRANULARITY: Final = timedelta(minutes=1)


def session_over(now: datetime) -> ColumnElement[bool]:
    """A session that has ended at `now`: expired, or older than `SESSION_MAX_AGE`. What the
    sign-in sweeps and the housekeeping removes; `ui_session` looks up the opposite."""
    return or_(ui_sessions.c.expires_at <= now, ui_sessions.c.created_at <= now - SESSION_MAX_AGE)


_USERNAME_SHAPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""Letters, digits and `._@-`, 1 to 64 characters: printable in a terminal and in a page as is."""


class UserExists(StoreError):
    def __init__(self, username: str) -> None:
        super().__init__(f"an operator named {username!r} already exists")
        self.username = username


class UserNotFound(NotFoundError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no operator named {username!r}")
        self.username = username


class WeakPassword(ValueError):
    """The password is refused; `reason` is "short" or "long" (the UI words it in pt-BR)."""

    def __init__(self, reason: str) -> None:
        limit = MIN_PASSWORD_LENGTH if reason == "short" else MAX_PASSWORD_LENGTH
        word = "at least" if reason == "short" else "at most"
        super().__init__(f"the password must have {word} {limit} characters")
        self.reason = reason


@dataclass(frozen=True)
class User:
    """An operator, without the password hash."""

    id: int
    username: str
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Flash:
    """A one-shot message for the next page: a catalogue key, its kind and its parameters
    (plain text; the page escapes them)."""

    key: str
    kind: str = "ok"
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UiSession:
    """A signed-in browser: whose, its CSRF token and when it ends."""

    id: int
    user_id: int
    username: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    flashes: tuple[Flash, ...] = ()
    """Messages waiting to be shown on this browser's next page."""


@dataclass(frozen=True)
class SigninLimits:
    """The sign-in throttle: `per_pair` failures for one username from one address within
    `window` lock that pair, `per_address` failures from one address (any usernames) lock the
    address, each until the oldest of those failures leaves the window."""

    per_pair: int = 5
    per_address: int = 100
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.per_pair < 1 or self.per_address < 1 or self.window <= timedelta(0):
            raise ValueError(f"sign-in limits must be positive: {self}")


ADDRESS_LENGTH: Final = 64
"""What `signin_failures.address` holds (an IPv6 address is at most 45 characters)."""


def signin_username_key(username: str) -> str:
    """The throttle's key for a typed username: SHA-256 of its case-folded form."""
    return hashlib.sha256(username.casefold().encode()).hexdigest()


def _signin_lock_key(address: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key per client address."""
    digest = hashlib.sha256(f"blingsync:signin:{address}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def check_username(username: str) -> str:
    username = username.strip()
    if _USERNAME_SHAPE.fullmatch(username) is None:
        raise ValueError("a username is 1 to 64 letters, digits or . _ @ - (starting with a letter or digit)")
    return username


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword("short")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword("long")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """`scrypt$16384$8$1$<salt b64>$<hash b64>`."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False (never an exception) for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        computed = hashlib.scrypt(password.encode()[:4 * MAX_PASSWORD_LENGTH],
                                  salt=base64.b64decode(salt, validate=True),
                                  n=int(n), r=int(r), p=int(p), dklen=len(expected),
                                  maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, expected)


_DUMMY_HASH: Final = hash_password(secrets.token_urlsafe(16))
"""Verified against when the username is unknown, so both refusals take the same time."""


def session_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore(StorePart):
    """The methods of `Store` for these tables (mixed in; see the module docstring)."""

    async def create_user(self, username: str, password: str) -> User:
        username = check_username(username)
        check_password(password)
        hashed = hash_password(password)
        try:
            async with self._write() as conn:
                taken = await conn.scalar(select(users.c.id).where(users.c.username == username))
                if taken is not None:
                    raise UserExists(username)
                await conn.execute(insert(users).values(
                    username=username, password_hash=hashed, created_at=self._now(),
                    last_login_at=None, disabled_at=None))
                row = (await conn.execute(select(users).where(users.c.username == username))).one()
        except IntegrityError:
            raise UserExists(username) from None
        return _user(row)

    async def users(self) -> list[User]:
        """Every operator, active and disabled, by username."""
        async with self._read() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(row) for row in rows]

    async def user_by_name(self, username: str) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return None if row is None else _user(row)

    async def authenticate(self, username: str, password: str) -> User | None:
        """The active operator with this username and password, or None (unknown user, wrong
        password and disabled user alike; the time taken does not say which)."""
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        if len(password) > MAX_PASSWORD_LENGTH:
            password = password[:MAX_PASSWORD_LENGTH + 1]  # still wrong, bounded cost
        stored = _DUMMY_HASH if row is None else row.password_hash
        # scrypt takes tens of milliseconds of CPU: off the event loop, so other pages keep flowing.
        matches = await anyio.to_thread.run_sync(verify_password, password, stored)
        if row is None or not matches or row.disabled_at is not None:
            return None
        return _user(row)

    async def disable_user(self, username: str) -> User:
        """The operator can no longer sign in and every session of theirs ends now. Disabling a
        disabled operator changes nothing."""
        async with self._write() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
            if row is None:
                raise UserNotFound(username)
            if row.disabled_at is None:
                await conn.execute(update(users).where(users.c.id == row.id).values(disabled_at=self._now()))
            await conn.execute(delete(ui_sessions).where(ui_sessions.c.user_id == row.id))
            row = (await conn.execute(select(users).where(users.c.id == row.id))).one()
        return _user(row)

    async def enable_user(self, username: str) -> User:
        async with self._write() as conn:
            result = await conn.execute(update(users).where(users.c.username == username)
                                        .values(disabled_at=None))
            if result.rowcount == 0:
                raise UserNotFound(username)
            row = (await conn.execute(select(users).where(users.c.username == username))).one()
        return _user(row)

    async def set_user_password(self, username: str, password: str) -> User:
        """A new password; every session of the operator ends (whoever knew the old one is out)."""
        check_password(password)
        hashed = hash_password(password)
        async with self._write() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
            if row is None:
                raise UserNotFound(username)
            await conn.execute(update(users).where(users.c.id == row.id).values(password_hash=hashed))
            await conn.execute(delete(ui_sessions).where(ui_sessions.c.user_id == row.id))
        return _user(row)

    async def start_ui_session(self, user_id: int, *, ttl: timedelta = SESSION_TTL) -> tuple[UiSession, str]:
        """A new session for the operator: its record and the token for the cookie (not stored).
        Expired sessions of every operator are swept here: sign-ins are rare, so the table stays
        small without a background job."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        async with self._write() as conn:
            await conn.execute(delete(ui_sessions).where(session_over(now)))
            await conn.execute(insert(ui_sessions).values(
                token_sha256=session_sha256(token), user_id=user_id, csrf_token=secrets.token_urlsafe(32),
                created_at=now, expires_at=min(now + ttl, now + SESSION_MAX_AGE), last_seen_at=now))
            await conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))
            row = (await conn.execute(_session_query().where(
                ui_sessions.c.token_sha256 == session_sha256(token)))).one()
        return _session(row), token

    async def ui_session(self, token: str) -> UiSession | None:
        """The live session of this token (not expired, not older than `SESSION_MAX_AGE`, its
        operator not disabled), or None."""
        if not token or len(token) > 128:
            return None
        now = self._now()
        async with self._read() as conn:
            row = (await conn.execute(_session_query().where(
                ui_sessions.c.token_sha256 == session_sha256(token),
                ui_sessions.c.expires_at > now,
                ui_sessions.c.created_at > now - SESSION_MAX_AGE,
                users.c.disabled_at.is_(None)))).first()
        return None if row is None else _session(row)

    async def touch_ui_session(self, session: UiSession, *, ttl: timedelta = SESSION_TTL) -> bool:
        """Slide the session's end to `ttl` from now (never past `SESSION_MAX_AGE` after its
        sign-in), unless that was done less than `SESSION_TOUCH_GRANULARITY` ago (then nothing
        is written). True when it wrote."""
        now = self._now()
        if now - session.last_seen_at < SESSION_TOUCH_GRANULARITY:
            return False
        async with self._write() as conn:
            result = await conn.execute(update(ui_sessions).where(
                ui_sessions.c.id == session.id,
                ui_sessions.c.last_seen_at <= now - SESSION_TOUCH_GRANULARITY,
            ).values(last_seen_at=now, expires_at=min(now + ttl, session.created_at + SESSION_MAX_AGE)))
        return result.rowcount > 0

    async def set_ui_flashes(self, session_id: int, flashes: Sequence[Flash]) -> None:
        """Replace the messages waiting for the session's next page (empty: none wait)."""
        text = json.dumps([{"key": f.key, "kind": f.kind, "params": dict(f.params)} for f in flashes],
                          ensure_ascii=False) if flashes else None
        async with self._write() as conn:
            await conn.execute(update(ui_sessions).where(ui_sessions.c.id == session_id).values(flash=text))

    async def end_ui_session(self, token: str) -> bool:
        """Sign out: the session is deleted. True when there was one."""
        async with self._write() as conn:
            result = await conn.execute(delete(ui_sessions).where(
                ui_sessions.c.token_sha256 == session_sha256(token)))
        return result.rowcount > 0


    # --- the sign-in throttle -------------------------------------------------------------------

    async def begin_signin(self, username: str, address: str, *,
                           limits: SigninLimits = SigninLimits()) -> timedelta | None:
        """Before checking a password typed for `username` from `address`: None, and the attempt
        is recorded as a failure (`signin_succeeded` clears it); or how long that pair, or that
        address, must still wait (then nothing is recorded). Rows older than the window go."""
        key, address = signin_username_key(username), address[:ADDRESS_LENGTH]
        now = self._now()
        since = now - limits.window
        recent = signin_failures.c.failed_at > since
        here = signin_failures.c.address == address

        def nth_newest(n: int, *where: Any) -> Select[Any]:
            return (select(signin_failures.c.failed_at).where(here, recent, *where)
                    .order_by(signin_failures.c.failed_at.desc()).offset(n - 1).limit(1))

        async with self._write() as conn:
            if self._postgres:  # SQLite's BEGIN IMMEDIATE already excludes every other writer
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": _signin_lock_key(address)})
            await conn.execute(delete(signin_failures).where(signin_failures.c.failed_at <= since))
            locked: list[datetime] = [found for found in (
                await conn.scalar(nth_newest(limits.per_pair, signin_failures.c.username_key == key)),
                await conn.scalar(nth_newest(limits.per_address)),
            ) if found is not None]
            if locked:
                return max(locked) + limits.window - now
            await conn.execute(insert(signin_failures).values(username_key=key, address=address,
                                                              failed_at=now))
        return None

    async def signin_succeeded(self, username: str, address: str) -> None:
        """A right password: the failures of this username from this address are forgotten."""
        async with self._write() as conn:
            await conn.execute(delete(signin_failures).where(
                signin_failures.c.address == address[:ADDRESS_LENGTH],
                signin_failures.c.username_key == signin_username_key(username)))


def _session_query() -> Select[Any]:
    return (select(ui_sessions, users.c.username)
            .join(users, users.c.id == ui_sessions.c.user_id))


def _user(row: Row[Any]) -> User:
    return User(id=row.id, username=row.username, created_at=row.created_at,
                last_login_at=row.last_login_at, disabled_at=row.disabled_at)


def _flashes(text: str | None) -> tuple[Flash, ...]:
    if not text:
        return ()
    try:
        items = json.loads(text)
        return tuple(Flash(key=str(item["key"]), kind=str(item.get("kind", "ok")),
                           params=tuple((str(k), str(v)) for k, v in dict(item.get("params", {})).items()))
                     for item in items)
    except (ValueError, TypeError, KeyError, AttributeError):  # unreadable: drop, never break a page
        return ()


def _session(row: Row[Any]) -> UiSession:
    return UiSession(id=row.id, user_id=row.user_id, username=row.username, csrf_token=row.csrf_token,
                     created_at=row.created_at, expires_at=row.expires_at, last_seen_at=row.last_seen_at,
                     flashes=_flashes(row.flash))
