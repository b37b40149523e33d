"""The VOD-style API: templates, videos, jobs, animated images and events over one store.

It follows the service's four steps: create a template (AddVodTemplate), register videos and
submit jobs (SubmitDynamicImageJob), let workers make the images, then read the results
(DynamicImageComplete events, ListDynamicImage, GetVideoInfo's CoverURL)::

    from engine import Engine

    with Engine(store="previews.db") as engine:
        template = engine.add_template("social-preview", format="webp", fps=15, width=640, height=360,
                                       seek=5, duration=3)
        video = engine.add_video("talk.mp4")
        job = engine.submit(video.id, template.id)
        engine.run_worker(until_empty=True)
        print(engine.list_dynamic_images(video.id))

The ``engine`` command's VOD groups (``cli/vod.py``) only parse arguments and print what these
methods return. Files live beside the store unless told otherwise: images under ``images/``,
the event log in ``events.jsonl``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from engine.device import DeviceRequest
from engine.errors import EngineError
from engine.manifest import ManifestEntry, load_manifest
from engine.result import Result
from engine.store import default_store_path, open_store, transaction
from engine.store import events as events_table
from engine.store import outbox
from engine.store.images import DynamicImage, get_image, image_url, list_images
from engine.store.jobs import Job, get_job, list_jobs, submit_job
from engine.store.settings import all_settings, get_setting, set_setting
from engine.store.templates import (Template, delete_template, get_template, insert_template, iso_time,
                                    list_templates, parse_body, update_template)
from engine.store.videos import Video, get_video, list_videos, register_video
from engine.store.webhook import SECRET_ENV, TIMEOUT_S, DeliveryFailed, post_event
from engine.stored_batch import run_stored_batch
from engine.worker import LEASE_S, POLL_S, WorkerReport, run_worker


@dataclass(frozen=True)
class DeliveryReport:
    """What one pass over the outbox did, and what is still waiting."""

    delivered: int
    failed: int
    pending: int


def template_config(*, format: str | None = None, fps: float | str | None = None, width: int | str | None = None,
                    height: int | str | None = None, seek: float | str | None = None,
                    duration: float | str | None = None, trim_end: float | str | None = None,
                    set_as_cover: bool | None = None) -> dict[str, Any]:
    """A (partial) TemplateConfig from keyword fields; fields left None are left out."""
    config: dict[str, Any] = {}
    for key, value in (("Format", format), ("Fps", fps), ("Width", width), ("Height", height)):
        if value is not None:
            config[key] = value
    span = {key: value for key, value in (("Seek", seek), ("Duration", duration), ("End", trim_end))
            if value is not None}
    if span:
        config["TimeSpan"] = span
    if set_as_cover is not None:
        config["SetAsCover"] = "true" if set_as_cover else "false"
    return config


class Engine:
    """Templates, videos, jobs, images and events in the store at ``store``.

    ``images_dir`` (default: ``images/`` beside the store) is where workers write; ``events_path``
    (default: ``events.jsonl`` beside the store) is the event log. ``base_url``, ``callback_url``
    and ``callback_secret`` override the store's settings (``set_setting``); the secret also comes
    from ``$ENGINE_CALLBACK_SECRET``.
    """

    def __init__(self, store: str | os.PathLike | None = None, *, images_dir: str | os.PathLike | None = None,
                 events_path: str | os.PathLike | None = None, base_url: str | None = None,
                 callback_url: str | None = None, callback_secret: str | None = None,
                 callback_timeout_s: float = TIMEOUT_S, retry_base_s: float = outbox.BACKOFF_BASE_S) -> None:
        self.store_path = Path(store).expanduser() if store is not None else default_store_path()
        self.connection = open_store(self.store_path)
        self.images_dir = Path(images_dir) if images_dir is not None else self.store_path.parent / "images"
        self.events_path = Path(events_path) if events_path is not None else self.store_path.parent / "events.jsonl"
        self._base_url = base_url
        self._callback_url = callback_url
        self._callback_secret = callback_secret
        self.callback_timeout_s = callback_timeout_s
        self.retry_base_s = retry_base_s

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str | None:
        return self._base_url or get_setting(self.connection, "base_url")

    @property
    def callback_url(self) -> str | None:
        return self._callback_url or get_setting(self.connection, "callback_url")

    @property
    def callback_secret(self) -> str | None:
        return self._callback_secret or os.environ.get(SECRET_ENV) or get_setting(self.connection, "callback_secret")

    def set_setting(self, key: str, value: str | None) -> None:
        """Keep ``callback_url``, ``callback_secret`` or ``base_url`` in the store (None removes it)."""
        set_setting(self.connection, key, value)

    def settings(self) -> dict[str, str]:
        return all_settings(self.connection)

    # -- templates (AddVodTemplate and friends) ----------------------------------------------------
    def add_template(self, name: str, **fields: Any) -> Template:
        """A template from keyword fields (format, fps, width, height, seek, duration | trim_end,
        set_as_cover). Raises EngineError naming the field and its allowed range."""
        return insert_template(self.connection, name, template_config(**fields))

    def add_template_body(self, body: Mapping[str, Any]) -> Template:
        """A template from an AddVodTemplate body (TemplateType=DynamicImage, Name, TemplateConfig)."""
        name, config = parse_body(body)
        return insert_template(self.connection, name, config)

    def template(self, template_id: str) -> Template:
        """By VodTemplateId (or by name)."""
        return get_template(self.connection, template_id)

    def templates(self) -> list[Template]:
        return list_templates(self.connection)

    def update_template(self, template_id: str, *, name: str | None = None, body: Mapping[str, Any] | None = None,
                        **fields: Any) -> Template:
        """Change some fields (keywords as for :meth:`add_template`), or replace the whole config with an
        UpdateVodTemplate ``body``. A new ``duration`` switches to Duration mode, ``trim_end`` to Trim mode."""
        if body is not None:
            body_name, config = parse_body({"TemplateType": "DynamicImage", **body})
            return update_template(self.connection, template_id, name=name or body_name, config=config)
        return update_template(self.connection, template_id, name=name, changes=template_config(**fields))

    def delete_template(self, template_id: str) -> Template:
        return delete_template(self.connection, template_id)

    # -- videos ----------------------------------------------------------------------------------
    def add_video(self, path: str | os.PathLike) -> Video:
        """Register (and probe once) a video file; the same path again returns the same video."""
        return register_video(self.connection, Path(path))

    def video(self, video_id: str) -> Video:
        return get_video(self.connection, video_id)

    def videos(self) -> list[Video]:
        return list_videos(self.connection)

    def video_info(self, video_id: str) -> dict[str, Any]:
        """GetVideoInfo's answer: ``{"Video": {...}}``, CoverURL included."""
        video = self.video(video_id)
        cover = get_image(self.connection, video.cover_image_id) if video.cover_image_id else None
        return {"Video": {
            "VideoId": video.id,
            "Title": video.title,
            "FilePath": str(video.path),
            "Size": video.size,
            "Duration": video.duration,
            "Width": video.width,
            "Height": video.height,
            "Fps": video.fps,
            "Codec": video.codec,
            "Status": "Normal",
            "CoverURL": self.image_url(cover) if cover else None,
            "CreationTime": iso_time(video.created),
        }}

    # -- jobs (SubmitDynamicImageJob) ------------------------------------------------------------
    def submit(self, video_id: str, template_id: str) -> Job:
        """Queue a job and return at once; the job keeps the template as it is now."""
        video = self.video(video_id)
        template = self.template(template_id)
        return submit_job(self.connection, video.id, template.id, template.job_fields())

    def job(self, job_id: str) -> Job:
        return get_job(self.connection, job_id)

    def jobs(self, *, state: str | None = None, video_id: str | None = None, kind: str | None = None,
             last: int | None = None) -> list[Job]:
        """Jobs, oldest first; ``kind`` "batch" (manifest lines) or "submitted", ``last`` N newest."""
        return list_jobs(self.connection, state=state, video_id=video_id, kind=kind, last=last)

    def job_info(self, job: Job | str) -> dict[str, Any]:
        """A job's state and errors, with the service's field names."""
        job = self.job(job) if isinstance(job, str) else job
        image = get_image(self.connection, job.image_id) if job.image_id else None
        batch = {"Input": job.input, "ManifestId": job.name, "Output": job.output} if job.batch_key else {}
        return {
            "JobId": job.id,
            "VideoId": job.video_id,
            "TemplateId": job.template_id,
            "State": job.state,
            "Attempts": job.attempts,
            "Worker": job.worker,
            "ErrorCode": job.error_code,
            "ErrorMessage": job.error_message,
            "DynamicImageId": job.image_id,
            "DynamicImageUrl": self.image_url(image) if image else None,
            "CreationTime": iso_time(job.created),
            "StartTime": iso_time(job.started),
            "FinishTime": iso_time(job.finished),
            **batch,
        }

    def run_worker(self, *, until_empty: bool = False, lease_seconds: float = LEASE_S, poll_seconds: float = POLL_S,
                   max_jobs: int | None = None, worker_id: str | None = None,
                   stop: threading.Event | None = None, on_job: Callable[[Job], None] | None = None,
                   threads: int | None = None, device: str = "auto") -> WorkerReport:
        """Process queued jobs (see :func:`engine.worker.run_worker`); ``on_job`` gets each finished job."""
        return run_worker(self, until_empty=until_empty, lease_seconds=lease_seconds, poll_seconds=poll_seconds,
                          max_jobs=max_jobs, worker_id=worker_id, stop=stop, threads=threads, device=device,
                          on_job=None if on_job is None else (lambda job: on_job(self.job(job.id))))

    # -- batch runs (engine run --batch) ------------------------------------------------------------
    def load_manifest(self, path: str | os.PathLike, *, input_root: str | os.PathLike | None = None) -> list[ManifestEntry]:
        """A manifest whose lines may name this store's templates (``"template": "name or id"``)."""
        return load_manifest(path, input_root=input_root, templates=lambda ref: self.template(ref).job_fields())

    def run_batch(self, entries: Iterable[ManifestEntry], out_dir: str | os.PathLike, *, workers: int | None = None,
                  device: str | DeviceRequest = "auto", retry_failed: bool = False, results_path: str | os.PathLike | None = None,
                  on_result: Callable[[Result], None] | None = None) -> Iterator[Result]:
        """Run the manifest's lines that are not done yet; one Result per line, earlier runs' marked
        ``reused`` (see :mod:`engine.stored_batch`). ``base_url`` maps paths below ``out_dir``."""
        return run_stored_batch(self, entries, Path(out_dir), workers=workers, device=device,
                                retry_failed=retry_failed, results_path=results_path, on_result=on_result)

    # -- images (ListDynamicImage) ---------------------------------------------------------------
    def image_url(self, image: DynamicImage) -> str:
        return image_url(image.path, self.images_dir, self.base_url)

    def images(self, video_id: str) -> list[DynamicImage]:
        return list_images(self.connection, self.video(video_id).id)

    def image_info(self, image: DynamicImage) -> dict[str, Any]:
        return {
            "DynamicImageId": image.id,
            "VideoId": image.video_id,
            "JobId": image.job_id,
            "URL": self.image_url(image),
            "Format": image.format,
            "Width": image.width,
            "Height": image.height,
            "Fps": image.fps,
            "FileSize": image.bytes,
            "CreationTime": iso_time(image.created),
        }

    def list_dynamic_images(self, video_id: str) -> dict[str, Any]:
        """ListDynamicImage's answer: ``{"DynamicImageList": [...]}``, oldest first."""
        return {"DynamicImageList": [self.image_info(i) for i in self.images(video_id)]}

    # -- events (DynamicImageComplete) -----------------------------------------------------------
    def events(self, *, job_id: str | None = None) -> list[dict[str, Any]]:
        return events_table.list_events(self.connection, job_id=job_id)

    def pending_deliveries(self) -> list[dict[str, Any]]:
        return outbox.pending(self.connection)

    def deliver_events(self, *, include_not_due: bool = False) -> DeliveryReport:
        """Copy new events to the log, then try each callback that is due (every pending one with
        ``include_not_due``) once; failures are rescheduled with backoff. After a receiver fails, its
        other events wait for the next pass, so a receiver that hangs delays a worker by one timeout."""
        events_table.append_to_log(self.connection, self.events_path)
        delivered = failed = 0
        secret = self.callback_secret
        unreachable: set[str] = set()
        for item in outbox.claim_due(self.connection, include_not_due=include_not_due):
            if item.url in unreachable:  # one failure per receiver per pass: a dead one costs one timeout
                outbox.release(self.connection, item.event_id)
                continue
            try:
                post_event(item.url, item.body.encode(), item.event_id, secret, timeout=self.callback_timeout_s)
            except DeliveryFailed as exc:
                with transaction(self.connection):
                    outbox.mark_failed(self.connection, item.event_id, str(exc), base=self.retry_base_s)
                failed += 1
                unreachable.add(item.url)
            else:
                with transaction(self.connection):
                    outbox.mark_delivered(self.connection, item.event_id)
                delivered += 1
        return DeliveryReport(delivered=delivered, failed=failed, pending=len(outbox.pending(self.connection)))

    def flush_events(self, *, wait: float = 0.0) -> DeliveryReport:
        """Deliver every pending callback now; with ``wait`` seconds, keep retrying (with backoff)
        until none is pending or the time is up."""
        deadline = time.monotonic() + wait
        report = self.deliver_events(include_not_due=True)
        delivered, failed = report.delivered, report.failed
        while report.pending and time.monotonic() < deadline:
            due = outbox.next_due(self.connection)
            pause = max(0.0, (due or time.time()) - time.time())
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline and pause > 0:
                break
            report = self.deliver_events()
            delivered, failed = delivered + report.delivered, failed + report.failed
        return DeliveryReport(delivered=delivered, failed=failed, pending=report.pending)


def add_videos(engine: Engine, paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Video | EngineError]]:
    """Register several files; each comes back with its video or the error that refused it."""
    out: list[tuple[Path, Video | EngineError]] = []
    for path in paths:
        try:
            out.append((Path(path), engine.add_video(path)))
        except EngineError as error:
            out.append((Path(path), error))
    return out
