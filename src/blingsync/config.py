"""Where blingsync keeps its data and which Bling it talks to, read from `BLINGSYNC_*`
environment variables (command-line options override them).

The embedded default needs nothing: a data directory in the user's home holding a SQLite
database and, unless `BLINGSYNC_SECRET_KEY` is set, a generated key file for the credentials
(see `blingsync.store.crypto`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

DEFAULT_BLING_URL: Final = "https://api.bling.com.br/Api/v3"
"""API v3's base; OAuth lives below it (`/oauth/authorize`, `/oauth/token`)."""
DEFAULT_BLING_V2_URL: Final = "https://bling.com.br/Api/v2"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable or option."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str = field(repr=False)  # may carry a password
    secret_key: str | None = field(repr=False)
    bling_url: str
    bling_v2_url: str
    requests_per_second: int = 3
    """Bling's own limit. Raise it only against a Bling-compatible test server (the simulator
    with its limits off): Bling refuses a 4th request within a second."""
    public_url: str = "http://127.0.0.1:8000"
    """Where browsers and Bling reach `blingsync serve` (the OAuth redirect URI is below it)."""
    oauth_client_id: str | None = None
    """The Bling app that brands connect through (`/oauth/bling/start`); its secret also
    verifies Bling's webhooks to that app."""
    oauth_client_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("BLINGSYNC_DATA_DIR") or Path.home() / ".blingsync").expanduser()
        bling_url = check_url(env.get("BLINGSYNC_BLING_URL") or DEFAULT_BLING_URL,
                              "BLINGSYNC_BLING_URL")
        v2 = env.get("BLINGSYNC_BLING_V2_URL")
        return cls(
            data_dir=data_dir,
            database_url=env.get("BLINGSYNC_DATABASE_URL") or sqlite_url(data_dir),
            secret_key=env.get("BLINGSYNC_SECRET_KEY") or None,
            bling_url=bling_url,
            bling_v2_url=check_url(v2, "BLINGSYNC_BLING_V2_URL") if v2 else v2_url_for(bling_url),
            requests_per_second=_positive(env.get("BLINGSYNC_REQUESTS_PER_SECOND") or "3",
                                          "BLINGSYNC_REQUESTS_PER_SECOND"),
            public_url=check_url(env.get("BLINGSYNC_PUBLIC_URL") or "http://127.0.0.1:8000",
                                 "BLINGSYNC_PUBLIC_URL"),
            oauth_client_id=env.get("BLINGSYNC_OAUTH_CLIENT_ID") or None,
            oauth_client_secret=env.get("BLINGSYNC_OAUTH_CLIENT_SECRET") or None,
        )

    def with_data_dir(self, data_dir: Path) -> Settings:
        """The same settings on another data directory (the database follows it unless it was
        given explicitly)."""
        database_url = self.database_url
        if database_url == sqlite_url(self.data_dir):
            database_url = sqlite_url(data_dir)
        return replace(self, data_dir=data_dir, database_url=database_url)


def _positive(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"{name} must be at least 1, got {number}")
    return number


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'blingsync.db'}"


def check_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def v2_url_for(bling_url: str) -> str:
    """API v2's base next to a v3 base: Bling's own pair, or `…/Api/v2` beside `…/Api/v3`
    (as the simulator and any compatible server serve them)."""
    if bling_url.rstrip("/") == DEFAULT_BLING_URL:
        return DEFAULT_BLING_V2_URL
    base = bling_url.rstrip("/")
    if base.endswith("/Api/v3"):
        return base[: -len("/v3")] + "/v2"
    return base + "/v2"
