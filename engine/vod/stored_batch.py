"""Batch runs on the store: ``engine run --batch`` that picks up where a killed run stopped.

Every valid manifest line becomes a job in the store (:mod:`engine.store.batch_jobs`), known by its
input file and effective config. A run enlists the lines, claims those not done yet, runs them on
an executor (:mod:`engine.executors`; the local process pool by default) and records each Result
together with its input (registered as a video, from the job's own probe), its image (and cover,
with SetAsCover) and its DynamicImageComplete event in one transaction
(:func:`engine.vod.outcomes.record_line`), right after the image was written atomically. So a
run killed at any moment (SIGKILL, a node taken away) loses at most the jobs in flight, which the
next run of the same manifest does again; nothing that ended is done twice, nothing half-written
is ever recorded.

Lines that ended in an earlier run are answered from the store: their stored Result is written to
``results.jsonl`` again, marked ``reused``, so each run's results file still has one line per
manifest line. Lines that another live run holds are waited for, then answered the same way.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..batch import ResultsLog
from ..device import DeviceRequest, parse_device
from ..errors import EngineError, ErrorCode
from ..executors import Executor, open_executor
from ..liveness import holder_gone, new_worker_id
from ..manifest import ManifestEntry
from ..output import remove_partial_files, resolve_output
from ..result import Result
from ..store import transaction
from ..store.batch_jobs import BatchLine, batch_line, claim_line, enlist, jobs_by_key, release_lines, renew_leases
from ..store.heartbeat import LEASE_S, POLL_S, Heartbeat
from ..store.jobs import Job
from .delivery import Delivery
from .outcomes import record_line
from .site import Site

DELIVER_EVERY_S = 10.0
"""Events reach the log and the callback at most this long after their job ended (and at the end)."""


def reused_result(job: Job, entry: ManifestEntry) -> Result:
    """An earlier run's Result for this line, under this run's id and line number."""
    stored = Result.from_dict(job.result) if job.result else Result.failure(entry.id, EngineError(
        ErrorCode.INTERNAL_ERROR, "the store holds no result for this job"))
    return dataclasses.replace(stored, id=entry.id, line=entry.line, job_id=job.id, reused=True)


def _plan(entries: Iterable[ManifestEntry], out_dir: Path) -> tuple[dict[str, tuple[ManifestEntry, BatchLine]], list[Result]]:
    """Each valid line's identity, in manifest order; failed Results for lines that cannot be jobs."""
    lines: dict[str, tuple[ManifestEntry, BatchLine]] = {}
    refused: list[Result] = []
    for entry in entries:
        if entry.spec is None:
            refused.append(entry.refusal())
            continue
        try:
            line = batch_line(entry.spec, resolve_output(entry.spec, out_dir))
        except EngineError as error:
            refused.append(Result.failure(entry.id, error, line=entry.line, input=str(entry.spec.input)))
            continue
        if line.key in lines:
            first = lines[line.key][0]
            refused.append(Result.failure(entry.id, EngineError(
                ErrorCode.INVALID_PARAMETER, f"line {entry.line} asks for the same image as line {first.line} "
                f"(same input, settings and output {line.output})"), line=entry.line, input=str(entry.spec.input)))
            continue
        lines[line.key] = (entry, line)
    return lines, refused


def _claim_as_needed(conn: sqlite3.Connection, keys: list[str], lines: dict[str, tuple[ManifestEntry, BatchLine]],
                     worker: str, lease_seconds: float, held: dict[str, Job]) -> Iterator[ManifestEntry]:
    """The entries this run may do, each claimed only when the pool asks for the next job, so runs
    sharing a store (on several nodes) split a manifest between them instead of one taking it all.
    Lines another run holds or has ended are passed over; ``held`` collects what was claimed."""
    for key in keys:
        job = claim_line(conn, key, worker, lease_seconds, gone=holder_gone)
        if job is not None:
            held[key] = job
            remove_partial_files(lines[key][1].output)  # what a killed run of this job was writing
            yield lines[key][0]


def run_stored_batch(
    site: Site,
    delivery: Delivery,
    entries: Iterable[ManifestEntry],
    out_dir: Path | str,
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    device: str | DeviceRequest = "auto",
    retry_failed: bool = False,
    results_path: Path | str | None = None,
    on_result: Callable[[Result], None] | None = None,
    lease_seconds: float = LEASE_S,
    poll_seconds: float = POLL_S,
) -> Iterator[Result]:
    """Run the lines not done yet; yield one Result per manifest line (reused ones first).

    Invalid lines fail at once and are not stored (they have no identity). A failure is final
    until a run with ``retry_failed``. If the caller stops iterating or the process is
    interrupted, the jobs this run holds go back to the queue for the next run.
    """
    request = parse_device(device)
    executor = executor or open_executor("local", workers=workers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conn = site.connection
    worker = new_worker_id()
    lines, refused = _plan(entries, out_dir)
    with transaction(conn):
        enlist(conn, (line for _, line in lines.values()), retry_failed=retry_failed)
    remaining = dict.fromkeys(lines)  # keys in manifest order
    key_of = {entry.id: key for key, (entry, _) in lines.items()}  # manifest ids are unique
    last_delivery = time.monotonic()
    with ResultsLog(Path(results_path) if results_path else out_dir / "results.jsonl", on_result) as log:
        for result in refused:
            yield log.emit(result)
        try:
            with Heartbeat(site.store_path, lambda c: renew_leases(c, worker, lease_seconds) >= 0, lease_seconds,
                           name=f"batch-lease-{worker}"):
                while remaining:
                    for key, job in jobs_by_key(conn, list(remaining)).items():  # ended: answer from the store
                        if job.state in ("success", "failed"):
                            del remaining[key]
                            yield log.emit(reused_result(job, lines[key][0]))
                    held: dict[str, Job] = {}
                    claims = _claim_as_needed(conn, list(remaining), lines, worker, lease_seconds, held)
                    for result in executor.run(claims, out_dir, request):
                        key = key_of[result.id]
                        del remaining[key]
                        entry, line = lines[key]
                        yield log.emit(record_line(site, held[key], entry, line, worker, result, out_dir))
                        if time.monotonic() - last_delivery > DELIVER_EVERY_S:
                            delivery.deliver()
                            last_delivery = time.monotonic()
                    if remaining and not held:  # other live runs hold the rest: wait for them to end them
                        time.sleep(poll_seconds)
        except BaseException:  # Ctrl-C, SIGTERM (as KeyboardInterrupt), or the caller stopped iterating
            with transaction(conn):
                release_lines(conn, worker)
            raise
    delivery.deliver()
