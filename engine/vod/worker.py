"""The queue worker: claim a submitted job, make its image, record the outcome and its event.

Several workers (processes, on one machine) may share a store: each claim is atomic, each job
is held under a lease that a heartbeat thread renews while the job runs, and a job whose worker
died is claimed again at once (same host) or once its lease has run out. The image is written
atomically (temp file + rename) under its final name before the job is marked done, and the job's
state, image record, cover, event and outbox row are written in one transaction
(:mod:`engine.vod.outcomes`): a kill at any moment leaves either nothing (the job is retried) or
all of it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from ..decode import open_decoder
from ..device import parse_device
from ..executors import Executor
from ..liveness import holder_gone, new_worker_id
from ..manifest import ManifestEntry
from ..output import remove_partial_files
from ..spec import SEEK_AUTO, JobSpec
from ..store.heartbeat import LEASE_S, POLL_S, Heartbeat
from ..store.jobs import Job, claim_job, release_job, renew_held, renew_lease
from ..store.videos import get_video
from .delivery import Delivery
from .outcomes import fail_abandoned_jobs, record_queued_job
from .site import Site


@dataclass(frozen=True)
class WorkerReport:
    """What one worker run did."""

    worker: str
    succeeded: int
    failed: int
    events_delivered: int

    @property
    def jobs(self) -> int:
        return self.succeeded + self.failed


def job_spec(job: Job, video_path: Path, output: Path) -> JobSpec:
    """The pipeline's request for a stored job: its template snapshot applied to its video."""
    s = job.spec
    auto = s["seek"] == SEEK_AUTO  # a template with TimeSpan.Seek "auto": the job picks its start
    return JobSpec(id=job.id, input=video_path, format=s["format"], fps=s["fps"], seek=0.0 if auto else s["seek"],
                   duration=s["duration"], trim_end=s["trim_end"], width=s["width"], height=s["height"],
                   output=output, set_as_cover=s["set_as_cover"],
                   fit=s.get("fit") or "fill", pad_colour=s.get("pad_colour"),  # jobs from older stores: fill
                   seek_auto=auto, max_bytes=s.get("max_bytes"))


def run_worker(site: Site, delivery: Delivery, *, until_empty: bool = False, lease_seconds: float = LEASE_S,
               poll_seconds: float = POLL_S, max_jobs: int | None = None, worker_id: str | None = None,
               stop: threading.Event | None = None, on_job: Callable[[Job], None] | None = None,
               threads: int | None = None, device: str = "auto", executor: Executor | None = None) -> WorkerReport:
    """Process queued jobs until none is left (``until_empty``), ``max_jobs`` are done, or ``stop``.

    ``device`` is the ``--device`` request ("auto", "cpu", "cuda", "cuda:N"), as for ``engine run``.
    ``executor``: run the jobs there (a Ray cluster: :func:`run_worker_on`) instead of one at a
    time in this process.

    Events go to the log and due callbacks are delivered in the background (a
    :class:`engine.vod.delivery.Courier`: each finished job's event is handed over, and a slow
    receiver never holds the next job); before returning, the worker waits for one last pass over
    what it handed over. ``threads`` caps torch's and the decoder's threads in this process: with
    N workers on a machine, cores // N each keeps them from fighting over the cores (as ``engine
    run`` does).
    """
    if executor is not None:
        return run_worker_on(executor, site, delivery, until_empty=until_empty, lease_seconds=lease_seconds,
                             poll_seconds=poll_seconds, max_jobs=max_jobs, worker_id=worker_id, stop=stop,
                             on_job=on_job, device=device)
    from ..job import run_job  # here, not at the top: commands that run no job (engine jobs list) skip torch

    worker = worker_id or new_worker_id()
    request = parse_device(device)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    decoder = open_decoder("pyav", threads=threads or 1)  # the CPU path; run_job picks a GPU per job
    images_dir = site.images_dir.resolve()
    succeeded = failed = 0
    courier = delivery.courier()  # delivers what waits now, then each event handed over
    try:
        while not (stop is not None and stop.is_set()):
            if max_jobs is not None and succeeded + failed >= max_jobs:
                break
            failed += fail_abandoned_jobs(site, on_queued=courier.hand_over)
            job = claim_job(site.connection, worker, lease_seconds, gone=holder_gone)
            if job is None:
                if until_empty:
                    break
                (stop or threading.Event()).wait(poll_seconds)
                continue
            try:  # from the claim on: a Ctrl-C or SIGTERM anywhere gives the job back at once
                video = get_video(site.connection, job.video_id)
                output = images_dir / job.video_id / f"{job.id}.{job.spec['format']}"
                spec = job_spec(job, video.path, output)
                remove_partial_files(output)
                with Heartbeat(site.store_path, lambda conn: renew_lease(conn, job.id, worker, lease_seconds),
                               lease_seconds, name=f"lease-{job.id}"):
                    result = run_job(spec, images_dir, decoder, device=request)
            except KeyboardInterrupt:
                release_job(site.connection, job.id, worker)
                raise
            if record_queued_job(site, job, worker, spec, result, on_queued=courier.hand_over):
                succeeded += result.ok
                failed += not result.ok
            if on_job is not None:
                on_job(job)
    except BaseException:  # Ctrl-C, SIGTERM: stop sending at once; what waits stays in the outbox
        courier.close(abandon=True, timeout=1.0)
        raise
    courier.close()
    return WorkerReport(worker=worker, succeeded=succeeded, failed=failed, events_delivered=courier.delivered)


def run_worker_on(executor: Executor, site: Site, delivery: Delivery, *, until_empty: bool = False,
                  lease_seconds: float = LEASE_S, poll_seconds: float = POLL_S, max_jobs: int | None = None,
                  worker_id: str | None = None, stop: threading.Event | None = None,
                  on_job: Callable[[Job], None] | None = None, device: str = "auto") -> WorkerReport:
    """The queue worked through an executor: jobs are claimed only as the executor asks for the next
    one (so several workers, and the executor's capacity, share the queue fairly), their leases
    renewed together while they run, and each ends in one transaction as with one-at-a-time work.

    When the queue is empty the executor's run ends (its jobs in flight finish first) and the
    worker polls; a new run starts when jobs come (for Ray: new actors on the same connection).
    Ctrl-C or SIGTERM gives every held job back."""
    worker = worker_id or new_worker_id()
    request = parse_device(device)
    images_dir = site.images_dir.resolve()
    held: dict[str, tuple[Job, JobSpec]] = {}
    counts = {"succeeded": 0, "failed": 0}

    def wanted() -> bool:
        done = counts["succeeded"] + counts["failed"] + len(held)
        return not (stop is not None and stop.is_set()) and (max_jobs is None or done < max_jobs)

    def claims() -> Iterator[ManifestEntry]:
        while wanted():
            counts["failed"] += fail_abandoned_jobs(site, on_queued=courier.hand_over)
            job = claim_job(site.connection, worker, lease_seconds, gone=holder_gone)
            if job is None:
                return
            video = get_video(site.connection, job.video_id)
            output = images_dir / job.video_id / f"{job.id}.{job.spec['format']}"
            spec = job_spec(job, video.path, output)
            remove_partial_files(output)
            held[job.id] = (job, spec)
            yield ManifestEntry(line=0, id=job.id, spec=spec)

    courier = delivery.courier()
    try:
        with _connected(executor), Heartbeat(site.store_path, lambda conn: renew_held(conn, worker, lease_seconds) >= 0,
                                             lease_seconds, name=f"queue-lease-{worker}"):
            while wanted():
                for result in executor.run(claims(), images_dir, request):
                    job, spec = held.pop(result.id)
                    if record_queued_job(site, job, worker, spec, result, on_queued=courier.hand_over):
                        counts["succeeded" if result.ok else "failed"] += 1
                    if on_job is not None:
                        on_job(job)
                if until_empty or not wanted():
                    break
                (stop or threading.Event()).wait(poll_seconds)
    except BaseException:  # Ctrl-C, SIGTERM: every job this worker holds goes back to the queue
        for job_id in list(held):
            release_job(site.connection, job_id, worker)
        courier.close(abandon=True, timeout=1.0)
        raise
    courier.close()
    return WorkerReport(worker=worker, succeeded=counts["succeeded"], failed=counts["failed"],
                        events_delivered=courier.delivered)


def _connected(executor: Executor) -> ContextManager[object]:
    """The executor's connection held for the worker's whole life when it has one (Ray: one
    cluster connection, not one per run), else nothing."""
    return executor if hasattr(executor, "__enter__") else contextlib.nullcontext()


def _serve_queue(store: str, device: str, threads: int, poll_seconds: float,
                 executor: tuple[str, dict] | None = None) -> None:
    """A worker process's life (:class:`WorkerProcesses`): work the queue until SIGTERM, which
    gives the job in flight back (as ``engine worker`` does), then exit."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    site = Site(store)
    try:
        from ..executors import open_executor

        run_worker(site, Delivery(site), poll_seconds=poll_seconds, threads=threads, device=device,
                   executor=open_executor(executor[0], **executor[1]) if executor else None)
    except KeyboardInterrupt:
        pass
    finally:
        site.close()


class WorkerProcesses:
    """``count`` queue workers on the store at ``store``, as child processes (``engine serve``).

    Processes, not threads: a job holds a core and the GIL for seconds, a decoder crash must not
    take the server down, and a job in flight can be given back at once on SIGTERM (a thread
    could only be asked to stop after its job). Started from a clean interpreter ("spawn"), since
    the parent runs server threads."""

    def __init__(self, store: Path, count: int, *, device: str = "auto", poll_seconds: float = POLL_S,
                 executor: tuple[str, dict] | None = None) -> None:
        """``executor``: (name, options) of an executor each process hands its jobs to (one process
        with ``("ray", {"address": ...})`` serves a whole cluster)."""
        import multiprocessing
        import os

        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // max(1, count))
        self.processes = [context.Process(target=_serve_queue, args=(str(store), device, threads, poll_seconds,
                                                                     executor),
                                          name=f"queue-worker-{n}", daemon=False) for n in range(count)]
        for process in self.processes:
            process.start()

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM each (its job goes back to the queue), wait; the exit codes."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout)
            if process.is_alive():  # pragma: no cover - a worker stuck in native code
                process.kill()
                process.join()
        return [process.exitcode for process in self.processes]
