"""The job queue: submit, claim with a lease, renew, finish; abandoned jobs come back.

A job is ``queued`` until a worker claims it. Claiming is one ``UPDATE ... RETURNING`` statement,
which SQLite runs under its single write lock, so each job goes to exactly one worker. The claim
sets a lease (``lease_expires``) that the worker renews while it runs; a worker that dies stops
renewing, and once the lease has passed the job is claimable again (``attempts`` counts the tries).
A worker can only finish a job while it still holds it (``worker`` is its id and the state is
``running``): a worker that lost its lease cannot overwrite the result of the one that took over.

Batch jobs (``engine run --batch``, :mod:`engine.store.batch_jobs`) share the table but never the
queue: the run that enlisted them claims them, so ``engine worker`` leaves them alone.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import EngineError, ErrorCode
from .db import transaction

STATES = ("queued", "running", "success", "failed")
HolderGone = Callable[[str | None], bool]
"""Whether a claim's holder (a worker id) is known to be dead, so its jobs need not wait for the
lease. The store cannot tell (it knows no processes): the service passes
:func:`engine.liveness.holder_gone`."""
MAX_ATTEMPTS = 3
"""Tries before a job whose worker keeps dying (a decoder crash on that file) is failed for good."""


@dataclass(frozen=True)
class Job:
    """One SubmitDynamicImageJob request and what became of it."""

    id: str
    video_id: str | None
    """None for a batch job until it ends with its input probed (then the input is registered)."""
    template_id: str | None
    state: str
    spec: dict[str, Any] = field(hash=False)
    """The template's fields as they were at submission."""
    attempts: int = 0
    worker: str | None = None
    lease_expires: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    image_id: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    batch_key: str | None = None
    """A batch job's identity: its input file (path, size, mtime) and effective config."""
    input: str | None = None
    name: str | None = None
    """A batch job's manifest id."""
    output: str | None = None
    result: dict[str, Any] | None = field(default=None, hash=False)
    """A finished batch job's Result (as in results.jsonl)."""


def job_from_row(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], video_id=row["video_id"], template_id=row["template_id"], state=row["state"],
               spec=json.loads(row["spec"]), attempts=row["attempts"], worker=row["worker"],
               lease_expires=row["lease_expires"], error_code=row["error_code"], error_message=row["error_message"],
               image_id=row["image_id"], created=row["created"], started=row["started"], finished=row["finished"],
               batch_key=row["batch_key"], input=row["input"], name=row["name"], output=row["output"],
               result=json.loads(row["result"]) if row["result"] else None)


def submit_job(conn: sqlite3.Connection, video_id: str, template_id: str, spec: dict[str, Any]) -> Job:
    job = Job(id=uuid.uuid4().hex, video_id=video_id, template_id=template_id, state="queued", spec=spec,
              created=time.time())
    with transaction(conn):
        conn.execute("INSERT INTO jobs (id, video_id, template_id, spec, state, created) VALUES (?, ?, ?, ?, 'queued', ?)",
                     (job.id, job.video_id, job.template_id, json.dumps(spec), job.created))
    return job


def get_job(conn: sqlite3.Connection, job_id: str) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise EngineError(ErrorCode.JOB_NOT_FOUND, f"no job with id {job_id!r}")
    return job_from_row(row)


def list_jobs(conn: sqlite3.Connection, *, state: str | None = None, video_id: str | None = None,
              kind: str | None = None, last: int | None = None) -> list[Job]:
    """Jobs, oldest first: only ``state``, ``video_id``, ``kind`` ("batch" or "submitted") when
    given, and only the ``last`` most recent (a batch store holds one job per manifest line).
    Jobs made in the same instant (a batch's lines are enlisted together) keep the order they
    were stored in (the table's rowid), not their random ids'."""
    query, args = "SELECT *, rowid AS stored FROM jobs WHERE 1 = 1", []
    if state is not None:
        query += " AND state = ?"
        args.append(state)
    if video_id is not None:
        query += " AND video_id = ?"
        args.append(video_id)
    if kind is not None:
        query += " AND batch_key IS NOT NULL" if kind == "batch" else " AND batch_key IS NULL"
    if last is not None:
        query = f"SELECT * FROM ({query} ORDER BY created DESC, stored DESC LIMIT ?)"
        args.append(last)
    return [job_from_row(r) for r in conn.execute(query + " ORDER BY created, stored", args)]


def claim_job(conn: sqlite3.Connection, worker: str, lease_seconds: float, *, gone: HolderGone,
              now: float | None = None) -> Job | None:
    """Take the oldest queued job, or one whose worker's lease ran out or whose worker is ``gone``;
    None when there is none."""
    now = time.time() if now is None else now
    job = _claim_queued_or_expired(conn, worker, lease_seconds, now)
    return job if job is not None else _take_over_from_dead(conn, worker, lease_seconds, now, gone)


def holder_lost(job: Job, now: float, gone: HolderGone) -> bool:
    """A running job its holder will not finish: the lease has passed, or the holder is ``gone``."""
    return job.state == "running" and ((job.lease_expires or 0) < now or gone(job.worker))


def take(conn: sqlite3.Connection, job: Job, worker: str, lease_seconds: float, now: float) -> Job | None:
    """Make ``job`` (as last read: queued, or running under a lost holder) this worker's. Compare-
    and-set on the state and holder read, so of two takers that read it alike only one gets it."""
    row = conn.execute(
        "UPDATE jobs SET state = 'running', worker = ?, lease_expires = ?, attempts = attempts + 1, started = ?"
        " WHERE id = ? AND state = ? AND worker IS ? RETURNING *",
        (worker, now + lease_seconds, now, job.id, job.state, job.worker)).fetchone()
    return None if row is None else job_from_row(row)


def _take_over_from_dead(conn: sqlite3.Connection, worker: str, lease_seconds: float, now: float,
                         gone: HolderGone) -> Job | None:
    """A job whose worker is known dead need not wait for its lease."""
    rows = conn.execute("SELECT * FROM jobs WHERE batch_key IS NULL AND state = 'running' AND attempts < ?"
                        " ORDER BY created, id", (MAX_ATTEMPTS,)).fetchall()
    for job in map(job_from_row, rows):
        if holder_lost(job, now, gone) and (taken := take(conn, job, worker, lease_seconds, now)) is not None:
            return taken
    return None


def _claim_queued_or_expired(conn: sqlite3.Connection, worker: str, lease_seconds: float, now: float) -> Job | None:
    row = conn.execute(
        "UPDATE jobs SET state = 'running', worker = ?, lease_expires = ?, attempts = attempts + 1, started = ?"
        " WHERE id = (SELECT id FROM jobs WHERE batch_key IS NULL AND (state = 'queued' OR (state = 'running'"
        " AND lease_expires < ? AND attempts < ?)) ORDER BY created, id LIMIT 1) RETURNING *",
        (worker, now + lease_seconds, now, now, MAX_ATTEMPTS)).fetchone()
    return None if row is None else job_from_row(row)


def renew_lease(conn: sqlite3.Connection, job_id: str, worker: str, lease_seconds: float) -> bool:
    """Extend this worker's lease; False if the job is no longer this worker's."""
    cursor = conn.execute("UPDATE jobs SET lease_expires = ? WHERE id = ? AND worker = ? AND state = 'running'",
                          (time.time() + lease_seconds, job_id, worker))
    return cursor.rowcount == 1


def renew_held(conn: sqlite3.Connection, worker: str, lease_seconds: float) -> int:
    """Extend every queue job this worker holds (a worker running several at once); how many."""
    return conn.execute("UPDATE jobs SET lease_expires = ? WHERE worker = ? AND state = 'running'"
                        " AND batch_key IS NULL", (time.time() + lease_seconds, worker)).rowcount


def finish_job(conn: sqlite3.Connection, job_id: str, worker: str, *, image_id: str | None = None,
               error_code: str | None = None, error_message: str | None = None) -> bool:
    """Mark the job done (success when ``error_code`` is None); call inside a transaction.

    Returns False, changing nothing, when this worker no longer holds the job."""
    cursor = conn.execute(
        "UPDATE jobs SET state = ?, image_id = ?, error_code = ?, error_message = ?, finished = ?, lease_expires = NULL"
        " WHERE id = ? AND worker = ? AND state = 'running'",
        ("failed" if error_code else "success", image_id, error_code, error_message, time.time(), job_id, worker))
    return cursor.rowcount == 1


def release_job(conn: sqlite3.Connection, job_id: str, worker: str) -> bool:
    """Give a job back to the queue (a worker stopping on Ctrl-C); this try does not count."""
    cursor = conn.execute("UPDATE jobs SET state = 'queued', worker = NULL, lease_expires = NULL,"
                          " attempts = max(0, attempts - 1) WHERE id = ? AND worker = ? AND state = 'running'",
                          (job_id, worker))
    return cursor.rowcount == 1


def fail_abandoned(conn: sqlite3.Connection, *, now: float | None = None) -> list[Job]:
    """Fail jobs whose workers died ``MAX_ATTEMPTS`` times; call inside a transaction."""
    now = time.time() if now is None else now
    rows = conn.execute(
        "UPDATE jobs SET state = 'failed', error_code = ?, error_message = 'the worker stopped (killed or crashed)'"
        " || ' while running this job ' || attempts || ' times; the file may crash the decoder', finished = ?,"
        " lease_expires = NULL WHERE batch_key IS NULL AND state = 'running' AND lease_expires < ? AND attempts >= ?"
        " RETURNING *",
        (ErrorCode.INTERNAL_ERROR.value, now, now, MAX_ATTEMPTS)).fetchall()
    return [job_from_row(r) for r in rows]
