"""Access keys for signed API requests: one row per AccessKeyId, with its secret and whether it is revoked.

``engine serve`` checks each request's signature with the secret of the AccessKeyId it names, as the
hosted service does; ``engine keys create|list|revoke`` manages them. Ids and secrets come from
:mod:`secrets` and look like the service's (``LTAI`` + 20 characters, 30-character secret), so SDK
code and configuration written for the service take them unchanged. A revoked key stays listed
(who had access, and until when) but signs nothing.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
import time
from dataclasses import dataclass

from ..errors import EngineError, ErrorCode
from .db import transaction

KEY_ID_PREFIX = "LTAI"
KEY_ID_RANDOM_CHARS = 20
SECRET_CHARS = 30
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class AccessKey:
    """An AccessKeyId and its AccessKeySecret; ``revoked`` is when it stopped working (None: it works)."""

    id: str
    secret: str
    created: float
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _row(row: sqlite3.Row) -> AccessKey:
    return AccessKey(id=row["id"], secret=row["secret"], created=row["created"], revoked=row["revoked"])


def create_access_key(conn: sqlite3.Connection) -> AccessKey:
    """A new key: ``LTAI`` + 20 random letters and digits, a 30-character secret."""
    key = AccessKey(id=KEY_ID_PREFIX + _random(KEY_ID_RANDOM_CHARS), secret=_random(SECRET_CHARS), created=time.time())
    with transaction(conn):
        conn.execute("INSERT INTO access_keys (id, secret, created) VALUES (?, ?, ?)", (key.id, key.secret, key.created))
    return key


def list_access_keys(conn: sqlite3.Connection) -> list[AccessKey]:
    """Every key, revoked ones included, oldest first."""
    return [_row(r) for r in conn.execute("SELECT * FROM access_keys ORDER BY created, id")]


def get_access_key(conn: sqlite3.Connection, key_id: str) -> AccessKey | None:
    row = conn.execute("SELECT * FROM access_keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else _row(row)


def revoke_access_key(conn: sqlite3.Connection, key_id: str) -> AccessKey:
    """Stop ``key_id`` from signing requests; revoking it again keeps the first revocation time."""
    with transaction(conn):
        row = conn.execute("UPDATE access_keys SET revoked = coalesce(revoked, ?) WHERE id = ? RETURNING *",
                           (time.time(), key_id)).fetchone()
    if row is None:
        raise EngineError(ErrorCode.ACCESS_KEY_NOT_FOUND, f"no access key with AccessKeyId {key_id!r}; "
                          "`engine keys list` shows them")
    return _row(row)


def active_secret(conn: sqlite3.Connection, key_id: str) -> str | None:
    """The secret that signs requests for ``key_id``; None for an unknown or revoked key."""
    row = conn.execute("SELECT secret FROM access_keys WHERE id = ? AND revoked IS NULL", (key_id,)).fetchone()
    return None if row is None else row["secret"]
