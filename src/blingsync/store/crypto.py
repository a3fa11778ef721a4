"""Secrets at rest: a brand's Bling credentials (v2 API key, v3 client secret and tokens) are
stored only as AES-256-GCM ciphertext.

Blob layout (`FORMAT_VERSION` 1)::

    0x01 | key id (4 bytes) | nonce (12 random bytes) | ciphertext + 16-byte tag

* The **key id** (a hash prefix of the key, not secret) lets a later version hold several keys
  and rotate: old blobs name the key that opens them (`SecretBox(key, previous=[old_key])`).
  It also turns "wrong key" into a clear message instead of a bare authentication failure.
* The **associated data** binds a blob to its place, e.g. `blingsync:account:7:credentials`:
  a blob copied onto another account's row fails to decrypt rather than lending that account
  someone else's Bling access.
* GCM authenticates: a wrong key or an altered byte is an error, never garbage.

The key comes from `BLINGSYNC_SECRET_KEY` (32 random bytes, URL-safe base64) or, for the
embedded default, from a key file generated in the data directory (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blingsync.bling.auth import StoredTokens
from blingsync.bling.secrets import Secret
from blingsync.store.errors import SecretKeyError
from blingsync.store.records import Credentials, V2Credentials, V3Credentials

FORMAT_VERSION: Final = 1
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KEY_ID_BYTES: Final = 4
_HEADER: Final = 1 + KEY_ID_BYTES + NONCE_BYTES

KEY_FILE_NAME: Final = "secret.key"
_URLSAFE_B64: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")
GENERATE_KEY_HINT: Final = (
    'generate one with: python -c "import secrets,base64;'
    'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'
)


class DecryptionFailed(Exception):
    """A blob that this box cannot open; `why` says which way (no secret in it). The store turns
    it into `CredentialsUnreadable`, which names the account."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def key_id(key: bytes) -> bytes:
    """The 4-byte public name of a key (a hash prefix: tells keys apart, reveals nothing)."""
    return hashlib.sha256(b"blingsync-key-id:" + key).digest()[:KEY_ID_BYTES]


class SecretBox:
    """Authenticated encryption of small values with one current key (and older ones kept only
    to read what they wrote)."""

    def __init__(self, key: bytes, *, previous: Sequence[bytes] = ()) -> None:
        for candidate in (key, *previous):
            if len(candidate) != KEY_BYTES:
                raise SecretKeyError(f"a secret key must be {KEY_BYTES} bytes, got {len(candidate)}")
        self._key_id = key_id(key)
        self._ciphers: dict[bytes, AESGCM] = {key_id(k): AESGCM(k) for k in reversed((key, *previous))}
        self._ciphers[self._key_id] = AESGCM(key)

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh random key (tests, one-off tools)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_settings(cls, secret_key: str | None, data_dir: Path, warn: Callable[[str], None]) -> SecretBox:
        """The box of this installation: `BLINGSYNC_SECRET_KEY` when set, else the data
        directory's key file, generated on first use (and `warn` is told where it is and why
        production should set the variable instead)."""
        if secret_key is not None and secret_key.strip():
            return cls(parse_key(secret_key, "BLINGSYNC_SECRET_KEY"))
        path = data_dir / KEY_FILE_NAME
        created = _create_key_file(path)
        if created:
            warn(
                f"generated a secret key in {path}: it encrypts the stored Bling credentials, and "
                "without it they cannot be read again, so keep it (and back it up) with the "
                "database. In production set BLINGSYNC_SECRET_KEY instead, which keeps the key out "
                f"of the data directory ({GENERATE_KEY_HINT})"
            )
        else:
            mode = stat.S_IMODE(path.stat().st_mode)
            if os.name == "posix" and mode & 0o077:
                warn(f"the secret key file {path} is readable by other users (mode {mode:o}); "
                     f"run: chmod 600 {path}")
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretKeyError(f"cannot read the secret key file {path}: {type(exc).__name__}") from None
        return cls(parse_key(text, f"the secret key file {path}"))

    @property
    def key_id(self) -> str:
        """The current key's public name, in hex (shown in messages about key mismatches)."""
        return self._key_id.hex()

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r}, keys={len(self._ciphers)})"

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._key_id].encrypt(nonce, plaintext, associated_data)
        return bytes([FORMAT_VERSION]) + self._key_id + nonce + sealed

    def decrypt(self, blob: bytes, associated_data: bytes) -> bytes:
        if len(blob) < _HEADER + 16 or blob[0] != FORMAT_VERSION:
            raise DecryptionFailed("the stored value is not in a format this version knows")
        blob_key = blob[1 : 1 + KEY_ID_BYTES]
        cipher = self._ciphers.get(blob_key)
        if cipher is None:
            raise DecryptionFailed(
                f"they were encrypted with another secret key (key id {blob_key.hex()}; "
                f"this process has key id {self.key_id})"
            )
        nonce = blob[1 + KEY_ID_BYTES : _HEADER]
        try:
            return cipher.decrypt(nonce, blob[_HEADER:], associated_data)
        except InvalidTag:
            raise DecryptionFailed(
                "they fail authentication: altered, or copied from another account"
            ) from None

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the blob was written with an older key (re-encrypt it with this one)."""
        return blob[1 : 1 + KEY_ID_BYTES] != self._key_id


def parse_key(text: str, source: str) -> bytes:
    """32 bytes from URL-safe base64 (padding optional); anything else is refused, saying how to
    make a good key. `source` names where the text came from; the text itself is never shown."""
    cleaned = text.strip()
    if not _URLSAFE_B64.fullmatch(cleaned):
        # Standard base64's "+" and "/" are refused too: such a key breaks in URLs and .env files.
        raise SecretKeyError(f"{source} is not URL-safe base64; {GENERATE_KEY_HINT}")
    padded = cleaned.rstrip("=") + "=" * (-len(cleaned.rstrip("=")) % 4)
    try:
        key = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{source} is not URL-safe base64; {GENERATE_KEY_HINT}") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"{source} must hold {KEY_BYTES} random bytes in URL-safe base64 (44 characters), "
            f"it holds {len(key)} bytes; {GENERATE_KEY_HINT}"
        )
    return key


def _create_key_file(path: Path) -> bool:
    """Create the key file with mode 0600 unless it exists; True when this call created it.

    Written to a temporary file and hard-linked into place: linking fails when the name exists,
    so two processes starting together agree on one key, and neither can read a half-written
    file."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --- credentials ------------------------------------------------------------------------------


def credentials_aad(account_id: int) -> bytes:
    """Binds a credentials blob to its account row."""
    return f"blingsync:account:{account_id}:credentials".encode()


def seal_credentials(box: SecretBox, account_id: int, credentials: Credentials) -> bytes:
    """The encrypted JSON of an account's credentials: the one place their values are revealed."""
    return box.encrypt(credentials_to_json(credentials).encode(), credentials_aad(account_id))


def open_credentials(box: SecretBox, account_id: int, blob: bytes) -> Credentials:
    """Raises `DecryptionFailed` for a wrong key, another account's blob or altered bytes."""
    plaintext = box.decrypt(blob, credentials_aad(account_id))
    try:
        return credentials_from_json(plaintext.decode())
    except (ValueError, KeyError, TypeError) as exc:
        # Authenticated yet unreadable: written by a newer version, say. Name the error only.
        raise DecryptionFailed(f"they decrypt but cannot be parsed ({type(exc).__name__})") from None


def credentials_to_json(credentials: Credentials) -> str:
    data: dict[str, Any]
    if isinstance(credentials, V2Credentials):
        data = {"type": "v2", "api_key": credentials.api_key}
    else:
        data = {
            "type": "v3",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "tokens": None if credentials.tokens is None else tokens_to_dict(credentials.tokens),
        }
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def credentials_from_json(text: str) -> Credentials:
    data = json.loads(text)
    if data["type"] == "v2":
        return V2Credentials(api_key=str(data["api_key"]))
    if data["type"] == "v3":
        tokens = data.get("tokens")
        return V3Credentials(
            client_id=str(data["client_id"]),
            client_secret=str(data["client_secret"]),
            tokens=None if tokens is None else tokens_from_dict(tokens),
        )
    raise ValueError("unknown credentials type")


def tokens_to_dict(tokens: StoredTokens) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token.reveal(),
        "refresh_token": tokens.refresh_token.reveal(),
        "expires_at": tokens.expires_at,
        "scope": list(tokens.scope),
    }


def tokens_from_dict(data: dict[str, Any]) -> StoredTokens:
    return StoredTokens(
        access_token=Secret(str(data["access_token"])),
        refresh_token=Secret(str(data["refresh_token"])),
        expires_at=float(data["expires_at"]),
        scope=tuple(int(s) for s in data.get("scope", ())),
    )
