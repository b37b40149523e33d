"""How a job ends in the store: one transaction per finished job.

A finished job's state, its image row (and the video's cover with SetAsCover), its
DynamicImageComplete event and the event's outbox row are written together, after the image was
renamed into place: a process killed at any moment leaves either all of it or nothing (and the job
is run again). Queue jobs (``engine worker``) and manifest lines (``engine run --batch``) end the
same way here; :func:`publish` is the one place an event is stored and queued for the callback,
with the HMAC key in effect for the process that ended the job (its ``--callback-secret``, its
environment's or the store's), so every later attempt is signed with that key.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Callable

from ..manifest import ManifestEntry
from ..result import Result
from ..spec import JobSpec
from ..store import transaction
from ..store.batch_jobs import BatchLine, attach, finish_line
from ..store.events import insert_event
from ..store.images import forget_job_image, insert_image
from ..store.jobs import Job, fail_abandoned, finish_job
from ..store.outbox import enqueue
from ..store.settings import subscribed_event_types
from ..store.videos import register_probed, set_cover
from .shapes import dynamic_image_complete, image_url
from .site import Site


def publish(conn: sqlite3.Connection, event: dict[str, Any], callback_url: str | None,
            secret: str | None = None) -> str | None:
    """Store ``event`` and, when a callback is configured and subscribes to the event's type
    (EventTypeList, SetMessageCallback), queue it for delivery, to be signed with ``secret``.
    Every event is stored (and so logged) either way: unsubscribing silences the callback, not the
    record. Call inside the transaction that ends its job. Returns the event's id when it was
    queued for the callback, else None."""
    insert_event(conn, event)
    if callback_url and event["EventType"] in subscribed_event_types(conn):
        enqueue(conn, event["EventId"], callback_url, secret)
        return event["EventId"]
    return None


def _hand_over(on_queued: Callable[[str | None], None] | None, event_id: str | None) -> None:
    """Tell the sender (:class:`engine.vod.delivery.Courier`) about an event, once it is committed."""
    if on_queued is not None:
        on_queued(event_id)


def record_queued_job(site: Site, job: Job, worker: str, spec: JobSpec, result: Result, *,
                      on_queued: Callable[[str | None], None] | None = None) -> bool:
    """End a submitted job: state, image, cover, event; False (nothing written) if ``worker`` lost
    the job to another worker meanwhile. ``on_queued`` gets the event's id (None when it went to
    the log only) after the transaction."""
    conn = site.connection
    callback = site.callback_url
    secret = site.callback_secret if callback else None
    with transaction(conn):
        if result.ok:
            image_id = uuid.uuid4().hex
            if not finish_job(conn, job.id, worker, image_id=image_id):
                return False
            image = insert_image(conn, video_id=job.video_id, job_id=job.id, path=Path(result.output),
                                 format=spec.format, width=result.width, height=result.height, fps=result.fps,
                                 size=result.bytes, image_id=image_id, duration=result.duration)
            if spec.set_as_cover:
                set_cover(conn, job.video_id, image.id)
            event = dynamic_image_complete(
                job_id=job.id, video_id=job.video_id, status="success",
                url=image_url(image.path, site.images_dir, site.images_url, site.url_signing_key), width=image.width, height=image.height,
                size=image.bytes, format=image.format, fps=image.fps)
        else:
            if not finish_job(conn, job.id, worker, error_code=result.error_code, error_message=result.error_message):
                return False
            event = dynamic_image_complete(job_id=job.id, video_id=job.video_id, status="failed", format=spec.format,
                                           error_code=result.error_code, error_message=result.error_message)
        queued = publish(conn, event, callback, secret)
    _hand_over(on_queued, queued)
    return True


def fail_abandoned_jobs(site: Site, *, on_queued: Callable[[str | None], None] | None = None) -> int:
    """Fail the queue's jobs whose workers kept dying on them, each with its event; how many."""
    conn = site.connection
    callback = site.callback_url
    secret = site.callback_secret if callback else None
    with transaction(conn):
        jobs = fail_abandoned(conn)
        queued = [publish(conn, dynamic_image_complete(
            job_id=job.id, video_id=job.video_id, status="failed", format=job.spec["format"],
            error_code=job.error_code, error_message=job.error_message), callback, secret) for job in jobs]
    for event_id in queued:
        _hand_over(on_queued, event_id)
    return len(jobs)


def record_line(site: Site, job: Job, entry: ManifestEntry, line: BatchLine, worker: str, result: Result,
                out_dir: Path, *, on_queued: Callable[[str | None], None] | None = None) -> Result:
    """End a manifest line's job: its Result, its input registered as a video (from the job's own
    probe), its image (and cover) and its event; a run that lost the job records nothing and says
    so in the Result's notes. ``site.base_url`` maps paths below ``out_dir`` to URLs.
    ``on_queued`` gets the event's id (None when it went to the log only) after the transaction."""
    result = dataclasses.replace(result, job_id=job.id)
    conn = site.connection
    callback = site.callback_url
    secret = site.callback_secret if callback else None
    with transaction(conn):
        if finish_line(conn, line.key, worker, result) is None:
            return dataclasses.replace(result, notes=result.notes + (
                "not recorded: another run took this job over (this run's lease had run out)",))
        video = register_probed(conn, line.input, result.source) if result.source else None
        video_id = video.id if video else None
        image = None
        if result.ok and video is not None:
            image = insert_image(conn, video_id=video.id, job_id=job.id, path=Path(result.output),
                                 format=result.format, width=result.width, height=result.height, fps=result.fps,
                                 size=result.bytes, duration=result.duration)
            if entry.spec is not None and entry.spec.set_as_cover:
                set_cover(conn, video.id, image.id)
        else:
            forget_job_image(conn, job.id)
        attach(conn, job.id, video_id=video_id, image_id=image.id if image else None)
        if result.ok:
            event = dynamic_image_complete(
                job_id=job.id, video_id=video_id, status="success",
                url=image_url(Path(result.output), out_dir, site.base_url, site.url_signing_key), width=result.width,
                height=result.height, size=result.bytes, format=result.format, fps=result.fps)
        else:
            event = dynamic_image_complete(job_id=job.id, video_id=video_id, status="failed", format=result.format,
                                           error_code=result.error_code, error_message=result.error_message)
        event.update(Input=str(line.input), ManifestId=line.name)
        queued = publish(conn, event, callback, secret)
    _hand_over(on_queued, queued)
    return result
