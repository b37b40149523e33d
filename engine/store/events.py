"""DynamicImageComplete events: one per finished job, success or failure.

An event is written to the ``events`` table in the same transaction that finishes its job, so a
finished job always has its event and a killed worker leaves neither. From there it is copied to
``events.jsonl`` (every worker run and ``engine events flush`` copy what is not copied yet, under a
file lock) and, when a callback URL is configured, queued in the outbox for the webhook. The log
is at-least-once: a process killed between appending and marking may append a line twice, which
the line's ``EventId`` lets readers drop.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .db import transaction

def insert_event(conn: sqlite3.Connection, event: dict[str, Any]) -> str:
    """Store ``event``; call inside the job's completing transaction. Returns its id."""
    conn.execute("INSERT INTO events (id, job_id, body, created) VALUES (?, ?, ?, ?)",
                 (event["EventId"], event["JobId"], json.dumps(event, ensure_ascii=False), time.time()))
    return event["EventId"]


def list_events(conn: sqlite3.Connection, *, job_id: str | None = None) -> list[dict[str, Any]]:
    query, args = "SELECT body FROM events", ()
    if job_id is not None:
        query, args = query + " WHERE job_id = ?", (job_id,)
    return [json.loads(r["body"]) for r in conn.execute(query + " ORDER BY created, id", args)]


def append_to_log(conn: sqlite3.Connection, log_path: Path) -> int:
    """Append every event not yet in ``log_path`` (JSON Lines); returns how many were appended."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        fcntl.flock(log.fileno(), fcntl.LOCK_EX)  # one writer at a time: no interleaved or doubled lines
        try:
            rows = conn.execute("SELECT id, body FROM events WHERE logged = 0 ORDER BY created, id").fetchall()
            if not rows:
                return 0
            log.write("".join(r["body"] + "\n" for r in rows))
            log.flush()
            os.fsync(log.fileno())
            with transaction(conn):
                conn.executemany("UPDATE events SET logged = 1 WHERE id = ?", [(r["id"],) for r in rows])
            return len(rows)
        finally:
            fcntl.flock(log.fileno(), fcntl.LOCK_UN)
