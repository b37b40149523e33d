"""Settings kept in the store (``engine config set``): the callback URL and secret, the base URL.

Keeping them in the store means every worker on it, and ``engine events flush``, agree on where
events go without repeating flags; a flag or environment variable given to one command wins.
"""

from __future__ import annotations

import sqlite3

from ..errors import EngineError, ErrorCode

KEYS = {
    "callback_url": "URL that DynamicImageComplete events are POSTed to",
    "callback_secret": "HMAC-SHA256 key that signs each callback",
    "base_url": "URL prefix that image paths below the images folder map to",
}


def _check(key: str) -> str:
    if key not in KEYS:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"unknown setting {key!r}; known: {', '.join(sorted(KEYS))}")
    return key


def set_setting(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    """Set ``key`` (``None`` or "" removes it)."""
    _check(key)
    if value:
        conn.execute("INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, value))
    else:
        conn.execute("DELETE FROM config WHERE key = ?", (key,))


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM config WHERE key = ?", (_check(key),)).fetchone()
    return None if row is None else row["value"]


def all_settings(conn: sqlite3.Connection) -> dict[str, str]:
    return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM config ORDER BY key")}
