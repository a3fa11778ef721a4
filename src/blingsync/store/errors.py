"""The store's errors. Each message names what was asked for (an account, an order) and says what
to do, and none ever carries a secret: credentials are only ever inside ciphertext here."""

from __future__ import annotations

from blingsync.config import ConfigError


class StoreError(Exception):
    """Base of everything the store raises on purpose."""


class AccountExists(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an account named {name!r} already exists; choose another name or remove it first")
        self.name = name


class NotFoundError(StoreError):
    """Something asked for by name or id does not exist (the CLI maps it to its not-found exit)."""


class AccountNotFound(NotFoundError):
    def __init__(self, name: str | None = None, account_id: int | None = None) -> None:
        what = f"named {name!r}" if name is not None else f"with id {account_id}"
        super().__init__(f"no account {what}")
        self.name = name
        self.account_id = account_id


class OrderNotFound(NotFoundError):
    """The message is whole ("no order with id 7"), so callers can raise it with their own."""


class RunNotFound(NotFoundError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no sync run with id {run_id}")
        self.run_id = run_id


AccountNotFoundError = AccountNotFound
OrderNotFoundError = OrderNotFound


class CredentialsUnreadable(StoreError):
    """The stored credentials of an account cannot be decrypted: another secret key, or a blob
    that does not belong to this account. Never garbage, never a half-read credential."""

    def __init__(self, account: str, why: str) -> None:
        super().__init__(
            f"the stored credentials of account {account!r} cannot be read: {why}. Start blingsync "
            "with the secret key they were saved with (BLINGSYNC_SECRET_KEY or the data directory's "
            "secret.key), or connect the account again to store new credentials"
        )
        self.account = account


class DocumentCorrupt(StoreError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"the stored XML of order {order_id} does not match its checksum")
        self.order_id = order_id


class SchemaOutdated(StoreError):
    """The database is not at the schema this version of blingsync needs (opened without
    migrating)."""


class SecretKeyError(ConfigError):
    """BLINGSYNC_SECRET_KEY or the key file cannot be used as a key."""
