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

import contextlib
import dataclasses
import itertools
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..batch import OutputClaims, ResultsLog, check_results_path, results_file, run_files
from ..device import DeviceRequest, parse_device
from ..errors import EngineError, ErrorCode
from ..executors import Executor, open_executor, refuse_in_worker_start_up
from ..first_lines import FirstLines
from ..liveness import holder_gone, new_worker_id
from ..manifest import ManifestEntry
from ..output import remove_partial_files, resolve_output
from ..result import Result
from ..store import transaction
from ..store.batch_jobs import BatchLine, batch_line, claim_line, enlist, jobs_by_key, release_lines, renew_leases
from ..store.heartbeat import LEASE_S, POLL_S, Heartbeat
from ..store.jobs import Job
from .delivery import DRAIN_S, Delivery, DeliveryReport
from .outcomes import record_line
from .site import Site


@contextlib.contextmanager
def held_open(executor: Executor) -> Iterator[None]:
    """The executor's connection held for the whole run, if it has one (Ray: one connection, or
    one local Ray instance, for every window), rather than opened and closed by each window."""
    if hasattr(executor, "__enter__"):
        with executor:  # type: ignore[attr-defined]
            yield
    else:
        yield


def reused_result(job: Job, entry: ManifestEntry) -> Result:
    """An earlier run's Result for this line, under this run's id and line number."""
    stored = Result.from_dict(job.result) if job.result else Result.failure(entry.id, EngineError(
        ErrorCode.INTERNAL_ERROR, "the store holds no result for this job"))
    return dataclasses.replace(stored, id=entry.id, line=entry.line, job_id=job.id, reused=True)


WINDOW_LINES = 4096
"""Manifest lines planned, enlisted and run together. A run holds one window's entries (about
1.2 KB a line) and 16 bytes for every line before it (:class:`Planner`), so its memory is flat
however long the manifest; each window starts the executor's workers anew (a few milliseconds
for the local pool's forked processes), and its last jobs run with fewer beside them."""


def windows(entries: Iterable[ManifestEntry], size: int | None = None) -> Iterator[list[ManifestEntry]]:
    """``entries`` in consecutive lists of at most ``size`` (default :data:`WINDOW_LINES`), read
    only as each list is asked for."""
    size = size or WINDOW_LINES
    window: list[ManifestEntry] = []
    for entry in entries:
        window.append(entry)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


class Planner:
    """Each window's valid lines' identities, in manifest order, and failed Results for lines
    that cannot be jobs, among them a line asking for the same image as an earlier line (of any
    window) or naming another line's output with other settings (:class:`OutputClaims`)."""

    def __init__(self, out_dir: Path, results: Path | None = None) -> None:
        self.out_dir = out_dir
        self._images = FirstLines()
        self._outputs = OutputClaims(results)

    def plan(self, entries: Iterable[ManifestEntry]) -> tuple[dict[str, tuple[ManifestEntry, BatchLine]], list[Result]]:
        lines: dict[str, tuple[ManifestEntry, BatchLine]] = {}
        refused: list[Result] = []
        for entry in entries:
            if entry.spec is None:
                refused.append(entry.refusal())
                continue
            try:
                line = batch_line(entry.spec, resolve_output(entry.spec, self.out_dir))
            except EngineError as error:
                refused.append(Result.failure(entry.id, error, line=entry.line, input=str(entry.spec.input)))
                continue
            first = self._images.claim(line.key, entry.line)
            if first is not None:
                refused.append(Result.failure(entry.id, EngineError(
                    ErrorCode.INVALID_PARAMETER, f"line {entry.line} asks for the same image as line {first} "
                    f"(same input, settings and output {line.output})"), line=entry.line, input=str(entry.spec.input)))
                continue
            taken = self._outputs.claim(line.output, entry.line)
            if taken is not None:
                refused.append(Result.failure(entry.id, taken, line=entry.line, input=str(entry.spec.input)))
                continue
            lines[line.key] = (entry, line)
        return lines, refused


def _enlisted(conn: sqlite3.Connection, planner: Planner, entries: Iterable[ManifestEntry],
              retry_failed: bool) -> Iterator[tuple[dict[str, tuple[ManifestEntry, BatchLine]], list[Result]]]:
    """Each window of ``entries`` planned (:class:`Planner`) and its lines enlisted in the store,
    the next window read only when this one is done."""
    for window in windows(entries):
        lines, refused = planner.plan(window)
        with transaction(conn):
            enlist(conn, (line for _, line in lines.values()), retry_failed=retry_failed)
        yield lines, refused


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
    drain_s: float = DRAIN_S,
    on_drained: Callable[[DeliveryReport], None] | None = None,
) -> Iterator[Result]:
    """Run the lines not done yet; yield one Result per manifest line. The manifest is read
    :data:`WINDOW_LINES` lines at a time: a window's refused lines, then its reused ones, then
    the rest as they finish.

    Invalid lines fail at once and are not stored (they have no identity). A failure is final
    until a run with ``retry_failed``. If the caller stops iterating or the process is
    interrupted, the jobs this run holds go back to the queue for the next run.

    Each ended job's event is handed to a background sender (:class:`engine.vod.delivery.Courier`)
    and the next result follows at once, however slow the receiver. After the last line the run
    waits up to ``drain_s`` seconds for its own callbacks (retrying failures with backoff), then
    ``on_drained`` gets what became of them: ``pending`` is how many of them still wait (in the
    outbox, for ``engine events flush`` or any later run or worker).
    """
    refuse_in_worker_start_up()  # before the store: a worker importing an unguarded script would wait on its lease
    request = parse_device(device)
    executor = executor or open_executor("local", workers=workers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conn = site.connection
    worker = new_worker_id()
    results = results_file(out_dir, results_path)
    check_results_path(results, run_files((), out_dir, store=site.store_path, events=site.events_path))
    plans = _enlisted(conn, Planner(out_dir, results), entries, retry_failed)
    first = next(plans, None)  # a store that cannot take the lines fails here, before the results file is made
    with ResultsLog(results, on_result) as log:
        courier = delivery.courier()  # the loop only hands events over: sending is the courier's
        running: Iterator[Result] | None = None
        try:
            with Heartbeat(site.store_path, lambda c: renew_leases(c, worker, lease_seconds) >= 0, lease_seconds,
                           name=f"batch-lease-{worker}"), held_open(executor):
                for lines, refused in itertools.chain([first] if first else [], plans):
                    for result in refused:
                        yield log.emit(result)
                    remaining = dict.fromkeys(lines)  # keys in manifest order
                    key_of = {entry.id: key for key, (entry, _) in lines.items()}  # manifest ids are unique
                    while remaining:
                        for key, job in jobs_by_key(conn, list(remaining)).items():  # ended: answer from the store
                            if job.state in ("success", "failed"):
                                del remaining[key]
                                yield log.emit(reused_result(job, lines[key][0]))
                        held: dict[str, Job] = {}
                        claims = _claim_as_needed(conn, list(remaining), lines, worker, lease_seconds, held)
                        running = executor.run(claims, out_dir, request)
                        for result in running:
                            key = key_of[result.id]
                            del remaining[key]
                            entry, line = lines[key]
                            yield log.emit(record_line(site, held[key], entry, line, worker, result, out_dir,
                                                       on_queued=courier.hand_over))
                        running = None
                        if remaining and not held:  # other live runs hold the rest: wait for them to end them
                            time.sleep(poll_seconds)
        except BaseException:  # Ctrl-C, SIGTERM (as KeyboardInterrupt), the caller stopped iterating, a StoreError
            stop_jobs = getattr(running, "close", None)
            if stop_jobs is not None:
                stop_jobs()  # the executor's jobs stop first (none starts after the signal), then they are given back
            try:
                with transaction(conn):
                    release_lines(conn, worker)
            except EngineError:  # the store failed too: its lines' holder (this process) is about to be gone,
                pass             # so the next run on this host takes them over at once; the first error is the one to tell
            courier.close(abandon=True, timeout=1.0)  # what was not sent waits in the outbox
            raise
    try:
        waiting = courier.drain(drain_s)
    except BaseException:
        courier.close(abandon=True, timeout=1.0)
        raise
    if on_drained is not None:
        done = courier.report
        on_drained(DeliveryReport(delivered=done.delivered, failed=done.failed, pending=waiting,
                                  given_up=done.given_up))
