"""Batch jobs: every line of ``engine run --batch`` is a job in the store, known by what it makes.

A batch job's identity (``batch_key``) is its input file (resolved path, size, modification time)
plus its effective config (format, fps, size, time span) and the output path. Running a manifest
again finds each line's job by that key: a job that ended is not redone (a failure is, with
``retry_failed``; a success is when its output file is gone or has another size), an edited input
file or a changed config is a new job.

Claims work as for the VOD queue (:mod:`engine.store.jobs`): the run that takes a job marks it
``running`` under its worker id with a lease its heartbeat renews; a run killed mid-batch leaves
its jobs ``running`` with a holder that no longer exists, and the next run takes them over at once
(same host, dead pid) or when the lease has passed (another host). Finishing is compare-and-set on
the holder, so a job is recorded exactly once even when two runs of one manifest race.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..result import Result
from ..spec import JobSpec
from .jobs import HolderGone, Job, holder_lost, job_from_row, take


@dataclass(frozen=True)
class BatchLine:
    """What the store keeps of one manifest line: identity, manifest id, input, output, config."""

    key: str
    name: str
    input: Path
    output: Path
    config: dict[str, Any]


def effective_config(spec: JobSpec) -> dict[str, Any]:
    """The fields that decide the image's pixels and timing. ``fit`` and ``pad_colour`` only when
    not the default, ``max_bytes`` only when given, ``seek_auto`` only when True, so a line without
    them keeps the key it had before they existed."""
    config = {"format": spec.format, "fps": spec.fps, "seek": spec.seek, "duration": spec.duration,
              "trim_end": spec.trim_end, "width": spec.width, "height": spec.height}
    if spec.fit != "fill":
        config.update(fit=spec.fit, pad_colour=spec.pad_colour)
    if spec.max_bytes is not None:
        config["max_bytes"] = spec.max_bytes
    if spec.seek_auto:
        config["seek_auto"] = True
    return config


def input_identity(path: Path) -> dict[str, Any]:
    """The input file as it is now: a file replaced or edited in place gets another identity.

    Size and modification time (nanoseconds) rather than a content hash: stat costs microseconds,
    hashing a library of videos would cost as much as decoding them."""
    path = Path(path).absolute()
    try:
        resolved = path.resolve()
        stat = resolved.stat()
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop, before Python 3.13
        return {"path": str(path), "missing": True}
    return {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def batch_line(spec: JobSpec, output: Path) -> BatchLine:
    config = effective_config(spec)
    identity = {"input": input_identity(spec.input), "config": config, "output": str(output)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return BatchLine(key=key, name=spec.id, input=spec.input, output=output, config=config)


def _output_intact(job: Job) -> bool:
    """A success still counts while its file is there with the size it was written with."""
    expected = (job.result or {}).get("bytes")
    try:
        return job.output is not None and os.path.getsize(job.output) == expected
    except OSError:
        return False


def enlist(conn: sqlite3.Connection, lines: Iterable[BatchLine], *, retry_failed: bool = False) -> None:
    """Add lines not yet in the store as queued jobs; queue again failures (``retry_failed``) and
    successes whose output is gone. Call inside a transaction."""
    now = time.time()
    for line in lines:
        conn.execute(
            "INSERT INTO jobs (id, spec, state, created, batch_key, input, name, output)"
            " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?) ON CONFLICT(batch_key) DO UPDATE SET name = excluded.name",
            (uuid.uuid4().hex, json.dumps(line.config), now, line.key, str(line.input), line.name, str(line.output)))
        row = conn.execute("SELECT * FROM jobs WHERE batch_key = ?", (line.key,)).fetchone()
        job = job_from_row(row)
        if (job.state == "failed" and retry_failed) or (job.state == "success" and not _output_intact(job)):
            conn.execute("UPDATE jobs SET state = 'queued', attempts = 0, worker = NULL, lease_expires = NULL,"
                         " error_code = NULL, error_message = NULL, result = NULL, finished = NULL WHERE id = ?",
                         (job.id,))


def claim_line(conn: sqlite3.Connection, key: str, worker: str, lease_seconds: float, *,
               gone: HolderGone) -> Job | None:
    """Take the line's job if it is queued or its holder is lost (``gone``, or its lease passed);
    None when it is done or another live run holds it."""
    now = time.time()
    job = job_from_row(conn.execute("SELECT * FROM jobs WHERE batch_key = ?", (key,)).fetchone())
    if job.state == "queued" or holder_lost(job, now, gone):
        return take(conn, job, worker, lease_seconds, now)
    return None


def jobs_by_key(conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, Job]:
    out: dict[str, Job] = {}
    for key in keys:
        row = conn.execute("SELECT * FROM jobs WHERE batch_key = ?", (key,)).fetchone()
        if row is not None:
            out[key] = job_from_row(row)
    return out


def renew_leases(conn: sqlite3.Connection, worker: str, lease_seconds: float) -> int:
    """Extend every running batch job this worker holds; returns how many."""
    return conn.execute("UPDATE jobs SET lease_expires = ? WHERE worker = ? AND state = 'running'"
                        " AND batch_key IS NOT NULL", (time.time() + lease_seconds, worker)).rowcount


def finish_line(conn: sqlite3.Connection, key: str, worker: str, result: Result) -> Job | None:
    """Record a held job's Result; None (nothing changed) if this worker no longer holds it.
    Call inside the transaction that also writes the job's video, image and event."""
    row = conn.execute(
        "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, result = ?, finished = ?, lease_expires = NULL"
        " WHERE batch_key = ? AND worker = ? AND state = 'running' RETURNING *",
        ("success" if result.ok else "failed", result.error_code, result.error_message,
         json.dumps(result.to_dict(), ensure_ascii=False), time.time(), key, worker)).fetchone()
    return None if row is None else job_from_row(row)


def attach(conn: sqlite3.Connection, job_id: str, *, video_id: str | None, image_id: str | None) -> None:
    """Link a finished batch job to its input's video and its image (None: none)."""
    conn.execute("UPDATE jobs SET video_id = ?, image_id = ? WHERE id = ?", (video_id, image_id, job_id))


def release_lines(conn: sqlite3.Connection, worker: str) -> int:
    """Give back every batch job this worker holds (a run stopped by Ctrl-C or SIGTERM)."""
    return conn.execute("UPDATE jobs SET state = 'queued', worker = NULL, lease_expires = NULL,"
                        " attempts = max(0, attempts - 1) WHERE worker = ? AND state = 'running'"
                        " AND batch_key IS NOT NULL", (worker,)).rowcount
