"""SignatureNonce values already used, per access key, so a signed request cannot be replayed.

A request is accepted once per (AccessKeyId, SignatureNonce) while its timestamp is still inside
the server's window; the row is kept until then (``expires``) and pruned after, since a replay of
an older request is refused for its timestamp anyway. "Was it seen?" and "remember it" are one
``INSERT`` on the table's primary key, so two server processes on one store cannot both accept it.
"""

from __future__ import annotations

import sqlite3
import time

from .db import transaction


def use_nonce(conn: sqlite3.Connection, key_id: str, nonce: str, ttl_s: float, *, now: float | None = None) -> bool:
    """True the first time ``nonce`` is used with ``key_id`` within ``ttl_s`` seconds, False if it
    was seen (and has not expired). Expired rows are pruned in the same transaction."""
    now = time.time() if now is None else now
    with transaction(conn):
        conn.execute("DELETE FROM nonces WHERE expires <= ?", (now,))
        cursor = conn.execute("INSERT OR IGNORE INTO nonces (key_id, nonce, expires) VALUES (?, ?, ?)",
                              (key_id, nonce, now + ttl_s))
        return cursor.rowcount == 1
