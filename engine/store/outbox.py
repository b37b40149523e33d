"""The webhook outbox: events waiting for their callback, retried with exponential backoff.

An event bound for a callback gets an outbox row in the transaction that finishes its job, so a
receiver that is down, slow or failing loses nothing: the row stays until a 2xx answer. Each
delivery attempt first leases the row (``lease_until``), so two workers flushing at once never
POST the same event side by side; a failed attempt schedules the next one ``BACKOFF_BASE_S *
2**(attempts-1)`` seconds later, capped at ``BACKOFF_MAX_S``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 3600.0
DELIVERY_LEASE_S = 60.0
"""How long a worker may take to deliver one event before another may try it."""


@dataclass(frozen=True)
class PendingDelivery:
    event_id: str
    url: str
    body: str
    attempts: int


def backoff(attempts: int, base: float = BACKOFF_BASE_S) -> float:
    """Seconds to wait after the ``attempts``-th failure."""
    return min(BACKOFF_MAX_S, base * 2 ** max(0, attempts - 1))


def enqueue(conn: sqlite3.Connection, event_id: str, url: str) -> None:
    """Queue ``event_id`` for ``url``; call inside the job's completing transaction."""
    conn.execute("INSERT INTO outbox (event_id, url, next_attempt_at) VALUES (?, ?, ?)", (event_id, url, time.time()))


def claim_due(conn: sqlite3.Connection, *, include_not_due: bool = False, limit: int = 100) -> list[PendingDelivery]:
    """Lease the undelivered events whose next attempt is due (all of them with ``include_not_due``)."""
    now = time.time()
    due = "" if include_not_due else " AND next_attempt_at <= :now"
    rows = conn.execute(
        "UPDATE outbox SET lease_until = :lease WHERE event_id IN (SELECT event_id FROM outbox WHERE delivered_at IS NULL"
        f"{due} AND (lease_until IS NULL OR lease_until < :now) ORDER BY next_attempt_at LIMIT :limit)"
        " RETURNING event_id, url, attempts, (SELECT body FROM events WHERE events.id = outbox.event_id) AS body",
        {"lease": now + DELIVERY_LEASE_S, "now": now, "limit": limit}).fetchall()
    return [PendingDelivery(r["event_id"], r["url"], r["body"], r["attempts"]) for r in rows]


def mark_delivered(conn: sqlite3.Connection, event_id: str) -> None:
    conn.execute("UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, lease_until = NULL, last_error = NULL"
                 " WHERE event_id = ?", (time.time(), event_id))


def mark_failed(conn: sqlite3.Connection, event_id: str, error: str, *, base: float = BACKOFF_BASE_S) -> float:
    """Record a failed attempt and schedule the next; returns when it is due."""
    attempts = conn.execute("SELECT attempts FROM outbox WHERE event_id = ?", (event_id,)).fetchone()[0] + 1
    due = time.time() + backoff(attempts, base)
    conn.execute("UPDATE outbox SET attempts = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?"
                 " WHERE event_id = ?", (attempts, due, error, event_id))
    return due


def release(conn: sqlite3.Connection, event_id: str) -> None:
    """Give back a leased row untried (its attempt count and schedule unchanged)."""
    conn.execute("UPDATE outbox SET lease_until = NULL WHERE event_id = ?", (event_id,))


def pending(conn: sqlite3.Connection) -> list[dict]:
    """Undelivered events: id, url, attempts, next attempt, last error."""
    return [dict(r) for r in conn.execute(
        "SELECT event_id, url, attempts, next_attempt_at, last_error FROM outbox WHERE delivered_at IS NULL"
        " ORDER BY next_attempt_at")]


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT min(next_attempt_at) FROM outbox WHERE delivered_at IS NULL").fetchone()
    return row[0]
