"""Settings kept in the store (``engine config set``): where events go and how they are signed.

Keeping them in the store means every worker on it, ``engine events flush`` and ``engine serve``
agree on where events go without repeating flags; a flag or environment variable given to one
command wins. Values with a fixed vocabulary (AuthSwitch, the callback URL's scheme, event types)
are checked here, so a setting written by the CLI and one written through the service's
SetMessageCallback are held to the same rules.
"""

from __future__ import annotations

import secrets
import sqlite3
from urllib.parse import urlsplit

from ..errors import EngineError, ErrorCode
from .db import transaction

KEYS = {
    "callback_url": "URL that DynamicImageComplete events are POSTed to (http or https)",
    "callback_secret": "HMAC-SHA256 key that signs each callback (X-Engine-Signature)",
    "callback_auth_switch": "on: callbacks also carry the service's X-VOD-TIMESTAMP and X-VOD-SIGNATURE",
    "callback_auth_key": "the AuthKey in X-VOD-SIGNATURE = md5(CallbackURL|timestamp|AuthKey)",
    "callback_event_types": "comma list of event types POSTed to the callback [default: DynamicImageComplete]",
    "base_url": "URL prefix that image paths below the images folder map to",
    "served_url": "set by engine serve while it runs: where it serves the images folder (used without base_url)",
    "url_signing_key": "key that signs image URLs (auth_key tokens); made on first use by engine serve",
}
SECRET_KEYS = frozenset({"callback_secret", "callback_auth_key", "url_signing_key"})
"""Settings that are keys: shown masked, never printed."""
SERVER_KEYS = frozenset({"served_url"})
"""Settings only ``engine serve`` writes (``engine config set`` does not offer them)."""
AUTH_SWITCH_VALUES = ("on", "off")
DEFAULT_EVENT_TYPES = ("DynamicImageComplete",)
URL_SIGNING_KEY_CHARS = 32


def _invalid(message: str) -> EngineError:
    return EngineError(ErrorCode.INVALID_PARAMETER, message)


def _check(key: str) -> str:
    if key not in KEYS:
        raise _invalid(f"unknown setting {key!r}; known: {', '.join(sorted(KEYS))}")
    return key


CALLBACK_SCHEMES = ("http", "https")


def check_callback_url(url: str) -> str:
    """An http(s) URL with a host: the only callbacks this engine can POST to. Anything else
    (``file:``, ``data:``, ``ftp:``, ``gopher:``, a bare path, ``http//host``) is refused when set,
    not discovered at the first event. The one validator for every place a callback URL enters:
    ``--callback`` flags, ``engine config set callback_url``, SetMessageCallback, and each delivery
    attempt (an outbox row written by an older engine). Also refused: credentials in the URL (they
    would not be sent), a port that is not a number from 1 to 65535, and spaces, control or
    non-ASCII characters (percent-encode them; write an international host name in its xn-- form).
    Returns the URL, stripped of surrounding spaces."""
    if not isinstance(url, str):
        raise _invalid(f"callback URL must be an http:// or https:// URL with a host, got {url!r}")
    text = url.strip()
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in text):
        raise _invalid(f"callback URL must be an http:// or https:// URL with a host, without spaces, control or "
                       f"non-ASCII characters (percent-encode them), got {url!r}")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # an unbalanced [ or ] (IPv6 literal)
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in CALLBACK_SCHEMES or not host:
        raise _invalid(f"callback URL must be an http:// or https:// URL with a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise _invalid(f"callback URL must be an http:// or https:// URL with a host and no user:password@ "
                       f"(use callback_secret or callback_auth_key to authenticate), got {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise _invalid(f"callback URL must be an http:// or https:// URL with a host and a port from 1 to 65535, "
                       f"got {url!r}")
    return text


def parse_event_types(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"A,B"`` or ``["A", "B"]`` -> ``("A", "B")``: stripped, empties dropped, order kept, no repeats."""
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise _invalid(f"event types must be names such as DynamicImageComplete, got {value!r}")
    types = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not types:
        raise _invalid(f"give at least one event type (e.g. DynamicImageComplete), got {value!r}")
    return types


def _normalize(key: str, value: str) -> str:
    if key == "callback_url":
        return check_callback_url(value)
    if key == "callback_auth_switch":
        switch = value.strip().lower()
        if switch not in AUTH_SWITCH_VALUES:
            raise _invalid(f"callback_auth_switch (AuthSwitch) must be on or off, got {value!r}")
        return switch
    if key == "callback_event_types":
        return ",".join(parse_event_types(value))
    return value


def set_setting(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    """Set ``key`` (``None`` or "" removes it); values with a vocabulary are checked first."""
    _check(key)
    if value:
        conn.execute("INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, _normalize(key, value)))
    else:
        conn.execute("DELETE FROM config WHERE key = ?", (key,))


def remove_setting_if(conn: sqlite3.Connection, key: str, value: str) -> bool:
    """Remove ``key`` only while it still holds ``value`` (one statement: nobody's newer value is
    removed); whether it did."""
    return conn.execute("DELETE FROM config WHERE key = ? AND value = ?", (_check(key), value)).rowcount > 0


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM config WHERE key = ?", (_check(key),)).fetchone()
    return None if row is None else row["value"]


def all_settings(conn: sqlite3.Connection) -> dict[str, str]:
    return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM config ORDER BY key")}


def subscribed_event_types(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The event types the callback gets (EventTypeList); the default when none is set."""
    stored = get_setting(conn, "callback_event_types")
    return parse_event_types(stored) if stored else DEFAULT_EVENT_TYPES


def ensure_url_signing_key(conn: sqlite3.Connection) -> str:
    """The store's URL signing key, made (from ``secrets``) the first time it is asked for. One
    write transaction with ``INSERT OR IGNORE``: two servers starting on one store at once end up
    with the same key, never with links one of them cannot check."""
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO config (key, value) VALUES ('url_signing_key', ?)",
                     (secrets.token_hex(URL_SIGNING_KEY_CHARS // 2),))
        return conn.execute("SELECT value FROM config WHERE key = 'url_signing_key'").fetchone()["value"]


def callback_auth_key(conn: sqlite3.Connection) -> str | None:
    """The AuthKey that signs X-VOD-SIGNATURE, when AuthSwitch is on and a key is set; else None."""
    if get_setting(conn, "callback_auth_switch") != "on":
        return None
    return get_setting(conn, "callback_auth_key")
