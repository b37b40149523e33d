"""The webhook outbox: events waiting for their callback, retried with exponential backoff.

An event bound for a callback gets an outbox row in the transaction that finishes its job, so a
receiver that is down, slow or failing loses nothing: the row stays until a 2xx answer. The row
keeps the URL and the HMAC key (``secret``) the event was queued with, so every later attempt, made
by whichever process, goes to the same place signed with the same key.

Each attempt first leases its row (:func:`claim`, ``lease_until``), so two processes delivering at
once never POST the same event side by side; a failed attempt schedules the next one
``BACKOFF_BASE_S * 2**(attempts-1)`` seconds later, capped at ``BACKOFF_MAX_S``. An event is given
up (``dead_at`` set, kept with its last error, never tried again by itself) after ``MAX_ATTEMPTS``
failed attempts, or at once when its URL is not one this engine can POST to (:func:`mark_dead`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Iterable

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 3600.0
MAX_ATTEMPTS = 30
"""Failed attempts after which an event is given up: with the default backoff, about 18 hours of
retrying (1 s, 2 s, ... then hourly) for the workers and flushes that keep running."""
DELIVERY_LEASE_S = 60.0
"""How long a process may take over one attempt before another may make it, unless the caller
says (:mod:`engine.vod.delivery` leases for the attempt's own deadline plus a few seconds)."""

_WAITING = "delivered_at IS NULL AND dead_at IS NULL"


@dataclass(frozen=True)
class PendingDelivery:
    event_id: str
    url: str
    body: str
    attempts: int
    secret: str | None = None


def backoff(attempts: int, base: float = BACKOFF_BASE_S) -> float:
    """Seconds to wait after the ``attempts``-th failure."""
    return min(BACKOFF_MAX_S, base * 2 ** max(0, attempts - 1))


def enqueue(conn: sqlite3.Connection, event_id: str, url: str, secret: str | None = None) -> None:
    """Queue ``event_id`` for ``url``, to be signed with ``secret``; call inside the job's
    completing transaction."""
    conn.execute("INSERT INTO outbox (event_id, url, secret, next_attempt_at) VALUES (?, ?, ?, ?)",
                 (event_id, url, secret or None, time.time()))


def due(conn: sqlite3.Connection, *, include_not_due: bool = False) -> list[tuple[str, str]]:
    """``(event_id, url)`` of every waiting event whose next attempt is due (every waiting one with
    ``include_not_due``) and that no one holds, oldest schedule first. Nothing is leased: each
    attempt leases its own row with :func:`claim` just before it is made."""
    now = time.time()
    when = "" if include_not_due else " AND next_attempt_at <= :now"
    return [(r["event_id"], r["url"]) for r in conn.execute(
        f"SELECT event_id, url FROM outbox WHERE {_WAITING}{when} AND (lease_until IS NULL OR lease_until < :now)"
        " ORDER BY next_attempt_at, event_id", {"now": now})]


def claim(conn: sqlite3.Connection, event_id: str, *, include_not_due: bool = False,
          lease_s: float = DELIVERY_LEASE_S) -> PendingDelivery | None:
    """Lease one waiting event for an attempt; None if it was delivered, given up, is held by
    another process or (unless ``include_not_due``) is no longer due meanwhile."""
    now = time.time()
    when = "" if include_not_due else " AND next_attempt_at <= :now"
    row = conn.execute(
        f"UPDATE outbox SET lease_until = :lease WHERE event_id = :id AND {_WAITING}{when}"
        " AND (lease_until IS NULL OR lease_until < :now)"
        " RETURNING event_id, url, attempts, secret, (SELECT body FROM events WHERE events.id = outbox.event_id) AS body",
        {"lease": now + lease_s, "now": now, "id": event_id}).fetchone()
    if row is None:
        return None
    return PendingDelivery(row["event_id"], row["url"], row["body"], row["attempts"], row["secret"])


def mark_delivered(conn: sqlite3.Connection, event_id: str) -> None:
    conn.execute("UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, lease_until = NULL, last_error = NULL"
                 " WHERE event_id = ?", (time.time(), event_id))


def mark_failed(conn: sqlite3.Connection, event_id: str, error: str, *, base: float = BACKOFF_BASE_S,
                max_attempts: int = MAX_ATTEMPTS) -> float | None:
    """Record a failed attempt and schedule the next; returns when it is due, or None when this
    was the ``max_attempts``-th failure and the event is given up."""
    attempts = conn.execute("SELECT attempts FROM outbox WHERE event_id = ?", (event_id,)).fetchone()[0] + 1
    now = time.time()
    if attempts >= max_attempts:
        conn.execute("UPDATE outbox SET attempts = ?, lease_until = NULL, dead_at = ?, last_error = ? WHERE event_id = ?",
                     (attempts, now, f"{error} (given up after {attempts} attempts)", event_id))
        return None
    due_at = now + backoff(attempts, base)
    conn.execute("UPDATE outbox SET attempts = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?"
                 " WHERE event_id = ?", (attempts, due_at, error, event_id))
    return due_at


def mark_dead(conn: sqlite3.Connection, event_id: str, error: str) -> None:
    """Give the event up at once (its URL can never take it): counted as an attempt, never retried."""
    conn.execute("UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, dead_at = ?, last_error = ?"
                 " WHERE event_id = ?", (time.time(), error, event_id))


def release(conn: sqlite3.Connection, event_id: str) -> None:
    """Give back a leased row untried (its attempt count and schedule unchanged)."""
    conn.execute("UPDATE outbox SET lease_until = NULL WHERE event_id = ?", (event_id,))


def pending(conn: sqlite3.Connection) -> list[dict]:
    """Events still waiting for their callback (neither delivered nor given up): id, url, attempts,
    next attempt, last error. The key they are signed with is never part of the answer."""
    return [dict(r) for r in conn.execute(
        f"SELECT event_id, url, attempts, next_attempt_at, last_error FROM outbox WHERE {_WAITING}"
        " ORDER BY next_attempt_at")]


def waiting(conn: sqlite3.Connection) -> int:
    """How many events still wait for their callback."""
    return conn.execute(f"SELECT count(*) FROM outbox WHERE {_WAITING}").fetchone()[0]


def given_up(conn: sqlite3.Connection) -> list[dict]:
    """Events the outbox gave up on: id, url, attempts, when, and the reason (last error)."""
    return [dict(r) for r in conn.execute(
        "SELECT event_id, url, attempts, dead_at, last_error FROM outbox WHERE dead_at IS NOT NULL ORDER BY dead_at")]


def waiting_among(conn: sqlite3.Connection, event_ids: Iterable[str]) -> int:
    """How many of ``event_ids`` still wait (neither delivered nor given up)."""
    ids = list(event_ids)
    waiting = 0
    for start in range(0, len(ids), 500):  # SQLite's limit on bound parameters
        chunk = ids[start:start + 500]
        waiting += conn.execute(f"SELECT count(*) FROM outbox WHERE {_WAITING} AND event_id IN "
                                f"({','.join('?' * len(chunk))})", chunk).fetchone()[0]
    return waiting


def next_due(conn: sqlite3.Connection, event_ids: Iterable[str] | None = None) -> float | None:
    """When the next waiting event (of ``event_ids``, if given) is due; None when none waits."""
    if event_ids is None:
        return conn.execute(f"SELECT min(next_attempt_at) FROM outbox WHERE {_WAITING}").fetchone()[0]
    ids, soonest = list(event_ids), None
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        value = conn.execute(f"SELECT min(next_attempt_at) FROM outbox WHERE {_WAITING} AND event_id IN "
                             f"({','.join('?' * len(chunk))})", chunk).fetchone()[0]
        if value is not None and (soonest is None or value < soonest):
            soonest = value
    return soonest
