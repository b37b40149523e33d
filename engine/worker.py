"""The store's worker: claim a queued job, make its image, record the outcome and its event.

Several workers (processes, on one machine) may share a store: each claim is atomic, each job
is held under a lease that a heartbeat thread renews while the job runs, and a job whose worker
died is claimed again once its lease has run out. The image is written atomically (temp file +
rename) under its final name before the job is marked done, and the job's state, image record,
cover, event and outbox row are written in one transaction: a kill at any moment leaves either
nothing (the job is retried) or all of it.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.decode import Decoder
from engine.device import parse_device
from engine.output import remove_partial_files
from engine.result import Result
from engine.spec import JobSpec
from engine.store import transaction
from engine.store.events import insert_event, make_event
from engine.store.heartbeat import Heartbeat
from engine.store.images import image_url, insert_image
from engine.store.jobs import Job, claim_job, fail_abandoned, finish_job, new_worker_id, release_job, renew_lease
from engine.store.outbox import enqueue
from engine.store.videos import get_video, set_cover

if TYPE_CHECKING:
    from engine.vod import Engine

LEASE_S = 60.0
"""How long a claim holds without renewal; the heartbeat renews it every third of that."""
POLL_S = 1.0


def make_decoder(threads: int = 1) -> Decoder:
    """The CPU decoder every stored job falls back to; the GPU path is chosen per job by run_job."""
    from engine.decode.pyav import PyAVDecoder

    return PyAVDecoder(threads=threads)


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


def run_job(*args: Any, **kwargs: Any) -> Result:
    """:func:`engine.job.run_job`, imported on first use so that commands that never run a job
    (``engine jobs list``...) do not pay for loading torch."""
    from engine.job import run_job as run

    return run(*args, **kwargs)


def job_spec(job: Job, video_path: Path, output: Path) -> JobSpec:
    """The pipeline's request for a stored job: its template snapshot applied to its video."""
    s = job.spec
    return JobSpec(id=job.id, input=video_path, format=s["format"], fps=s["fps"], seek=s["seek"],
                   duration=s["duration"], trim_end=s["trim_end"], width=s["width"], height=s["height"],
                   output=output, set_as_cover=s["set_as_cover"])


def _record(engine: "Engine", job: Job, worker: str, spec: JobSpec, result: Result) -> bool:
    """Write the outcome, image, cover, event and outbox row at once; False if the lease was lost."""
    conn = engine.connection
    callback = engine.callback_url
    with transaction(conn):
        if result.ok:
            image_id = uuid.uuid4().hex
            if not finish_job(conn, job.id, worker, image_id=image_id):
                return False
            image = insert_image(conn, video_id=job.video_id, job_id=job.id, path=Path(result.output),
                                 format=spec.format, width=result.width, height=result.height, fps=result.fps,
                                 size=result.bytes, image_id=image_id)
            if spec.set_as_cover:
                set_cover(conn, job.video_id, image.id)
            event = make_event(job_id=job.id, video_id=job.video_id, status="success",
                               url=image_url(image.path, engine.images_dir, engine.base_url), width=image.width,
                               height=image.height, size=image.bytes, format=image.format)
        else:
            if not finish_job(conn, job.id, worker, error_code=result.error_code, error_message=result.error_message):
                return False
            event = make_event(job_id=job.id, video_id=job.video_id, status="failed", format=spec.format,
                               error_code=result.error_code, error_message=result.error_message)
        insert_event(conn, event)
        if callback:
            enqueue(conn, event["EventId"], callback)
    return True


def _fail_abandoned(engine: "Engine") -> int:
    conn = engine.connection
    with transaction(conn):
        jobs = fail_abandoned(conn)
        for job in jobs:
            event = make_event(job_id=job.id, video_id=job.video_id, status="failed", format=job.spec["format"],
                               error_code=job.error_code, error_message=job.error_message)
            insert_event(conn, event)
            if engine.callback_url:
                enqueue(conn, event["EventId"], engine.callback_url)
    return len(jobs)


def run_worker(engine: "Engine", *, until_empty: bool = False, lease_seconds: float = LEASE_S,
               poll_seconds: float = POLL_S, max_jobs: int | None = None, worker_id: str | None = None,
               stop: threading.Event | None = None, on_job: Callable[[Job], None] | None = None,
               threads: int | None = None, device: str = "auto") -> WorkerReport:
    """Process queued jobs until none is left (``until_empty``), ``max_jobs`` are done, or ``stop``.

    ``device`` is the ``--device`` request ("auto", "cpu", "cuda", "cuda:N"), as for ``engine run``.

    Events go to the log and due callbacks are delivered before the first job and after each one.
    ``threads`` caps torch's and the decoder's threads in this process: with N workers on a
    machine, cores // N each keeps them from fighting over the cores (as ``engine run`` does).
    """
    worker = worker_id or new_worker_id()
    request = parse_device(device)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    decoder = make_decoder(threads or 1)
    succeeded = failed = delivered = 0
    delivered += engine.deliver_events().delivered
    while not (stop is not None and stop.is_set()):
        if max_jobs is not None and succeeded + failed >= max_jobs:
            break
        failed += _fail_abandoned(engine)
        job = claim_job(engine.connection, worker, lease_seconds)
        if job is None:
            if until_empty:
                break
            (stop or threading.Event()).wait(poll_seconds)
            delivered += engine.deliver_events().delivered
            continue
        try:  # from the claim on: a Ctrl-C or SIGTERM anywhere gives the job back at once
            video = get_video(engine.connection, job.video_id)
            output = engine.images_dir.resolve() / job.video_id / f"{job.id}.{job.spec['format']}"
            spec = job_spec(job, video.path, output)
            remove_partial_files(output)
            with Heartbeat(engine.store_path, lambda conn: renew_lease(conn, job.id, worker, lease_seconds),
                           lease_seconds, name=f"lease-{job.id}"):
                result = run_job(spec, engine.images_dir.resolve(), decoder, device=request)
        except KeyboardInterrupt:
            release_job(engine.connection, job.id, worker)
            raise
        if _record(engine, job, worker, spec, result):
            succeeded += result.ok
            failed += not result.ok
        if on_job is not None:
            on_job(job)
        delivered += engine.deliver_events().delivered
    delivered += engine.deliver_events().delivered
    return WorkerReport(worker=worker, succeeded=succeeded, failed=failed, events_delivered=delivered)
