"""The VOD service's facade: templates, videos, jobs, animated images and events over one store.

It follows the service's four steps: create a template (AddVodTemplate), register videos and
submit jobs (SubmitDynamicImageJob), let workers make the images, then read the results
(DynamicImageComplete events, ListDynamicImage, GetVideoInfo's CoverURL)::

    from animated_previews.engine import Service

    with Service(store="previews.db") as service:
        template = service.add_template("social-preview", format="webp", fps=15, width=640, height=360,
                                        seek=5, duration=3)
        video = service.add_video("talk.mp4")
        job = service.submit(video.id, template.id)
        service.run_worker(until_empty=True)
        print(service.list_dynamic_images(video.id))

Each method is one action: it reads or writes the store (:mod:`engine.store`) and answers with
records or, for the ``*_info``/``list_*`` methods, the service's shapes (:mod:`engine.vod.shapes`).
The work itself lives beside it: :mod:`engine.vod.worker` (the queue), :mod:`engine.vod.stored_batch`
(manifests), :mod:`engine.vod.outcomes` (how a job ends), :mod:`engine.vod.delivery` (events out).
The faces (``cli/vod.py``, an HTTP API) only parse arguments and print what these methods return.
Files live beside the store unless told otherwise: images under ``images/``, the event log in
``events.jsonl``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..device import DeviceRequest
from ..errors import EngineError, ErrorCode
from ..executors import Executor
from ..manifest import Manifest, ManifestEntry
from ..probe import probe
from ..result import Result
from ..spec import parse_json
from ..store import transaction
from ..store import events as events_table
from ..store import outbox
from ..store import access_keys as keys_table
from ..store import nonces
from ..store.access_keys import AccessKey
from ..store.heartbeat import LEASE_S, POLL_S
from ..store.images import DynamicImage, delete_image, get_image, list_images
from ..store.jobs import Job, get_job, list_jobs, submit_job
from ..store.settings import (all_settings, check_callback_url, ensure_url_signing_key, get_setting, remove_setting_if,
                              parse_event_types, set_setting, subscribed_event_types)
from ..store.templates import (Template, build_template, delete_template, get_template, insert_template,
                                    list_templates, merge_config, parse_body, update_template)
from ..store.videos import Video, changed, find_video, get_video, list_videos, refresh, register_probed
from . import shapes
from .delivery import DRAIN_S, Delivery, DeliveryReport
from .media import resolve_media
from .site import Site
from .stored_batch import run_stored_batch
from .webhook import TIMEOUT_S
from .worker import WorkerReport, run_worker


class Service:
    """Templates, videos, jobs, images and events in the store at ``store``.

    ``images_dir``, ``events_path``, ``base_url``, ``callback_url`` and ``callback_secret``: see
    :class:`engine.vod.site.Site`. ``callback_timeout_s`` and ``retry_base_s``: see
    :class:`engine.vod.delivery.Delivery`.
    """

    def __init__(self, store: str | os.PathLike | None = None, *, images_dir: str | os.PathLike | None = None,
                 events_path: str | os.PathLike | None = None, base_url: str | None = None,
                 callback_url: str | None = None, callback_secret: str | None = None,
                 callback_timeout_s: float = TIMEOUT_S, retry_base_s: float = outbox.BACKOFF_BASE_S) -> None:
        if events_path is not None:
            _check_event_log(Path(events_path))  # a bad --events is told now, not after the jobs ran
        self.site = Site(store, images_dir=images_dir, events_path=events_path, base_url=base_url,
                         callback_url=callback_url, callback_secret=callback_secret)
        self.delivery = Delivery(self.site, timeout_s=callback_timeout_s, retry_base_s=retry_base_s)

    # -- where it lives ----------------------------------------------------------------------------
    @property
    def connection(self) -> sqlite3.Connection:
        return self.site.connection

    @property
    def store_path(self) -> Path:
        return self.site.store_path

    @property
    def images_dir(self) -> Path:
        return self.site.images_dir

    @property
    def events_path(self) -> Path:
        return self.site.events_path

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self.site.close()

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str | None:
        return self.site.base_url

    @property
    def callback_url(self) -> str | None:
        return self.site.callback_url

    @property
    def callback_secret(self) -> str | None:
        return self.site.callback_secret

    def set_setting(self, key: str, value: str | None) -> None:
        """Keep a setting (:data:`engine.store.settings.KEYS`) in the store (None removes it)."""
        set_setting(self.connection, key, value)

    def remove_setting_if(self, key: str, value: str) -> bool:
        """Remove a setting only while it holds ``value`` (atomic: another writer's newer value stays)."""
        return remove_setting_if(self.connection, key, value)

    def settings(self) -> dict[str, str]:
        """Every stored setting, keys included: a face that shows them masks SECRET_SETTING_KEYS."""
        return all_settings(self.connection)

    def url_signing_key(self) -> str:
        """The key image URLs are signed with (``auth_key`` tokens): the stored one, made at random
        on first use. Atomic, so servers starting together on one store share one key."""
        return ensure_url_signing_key(self.connection)

    # -- message callbacks (SetMessageCallback, GetMessageCallback, DeleteMessageCallback) --------
    def set_message_callback(self, url: str | None, *, auth_switch: str | bool | None = None,
                             auth_key: str | None = None,
                             event_types: str | Sequence[str] | None = None) -> dict[str, Any]:
        """Where events are POSTed (an http or https URL) and how: ``auth_switch`` "on" adds the
        service's X-VOD-TIMESTAMP / X-VOD-SIGNATURE headers signed with ``auth_key`` (at most 32
        characters); ``event_types`` (comma list or sequence) are the types POSTed. A None argument
        leaves that setting as it is. Everything is checked before anything is kept, so a refused
        call changes nothing; answers :meth:`message_callback`."""
        switch = ("on" if auth_switch else "off") if isinstance(auth_switch, bool) else auth_switch
        for name, value in (("CallbackURL", url), ("AuthSwitch", switch), ("AuthKey", auth_key)):
            if value is not None and not isinstance(value, str):
                raise EngineError(ErrorCode.INVALID_PARAMETER, f"{name} must be text, got {value!r}")
        if url is not None:
            check_callback_url(url)  # "" would otherwise mean "remove", as in set_setting
        if auth_key is not None and not 1 <= len(auth_key) <= MAX_AUTH_KEY_CHARS:
            raise EngineError(ErrorCode.INVALID_PARAMETER,
                              f"AuthKey must be 1-{MAX_AUTH_KEY_CHARS} characters, got {len(auth_key)}")
        types = None if event_types is None else ",".join(parse_event_types(event_types))
        conn = self.connection
        with transaction(conn):  # each value is checked as it is set; a refusal rolls back all of them
            for key, value in (("callback_url", url), ("callback_auth_switch", switch), ("callback_auth_key", auth_key),
                               ("callback_event_types", types)):
                if value is not None:
                    set_setting(conn, key, value)
            if get_setting(conn, "callback_auth_switch") == "on" and not get_setting(conn, "callback_auth_key"):
                raise EngineError(ErrorCode.INVALID_PARAMETER, "AuthSwitch on needs an AuthKey: the X-VOD-SIGNATURE "
                                  "header is md5(CallbackURL|timestamp|AuthKey)")
        return self.message_callback()

    def message_callback(self) -> dict[str, Any]:
        """GetMessageCallback's MessageCallback: CallbackType, CallbackURL, AuthSwitch, AuthKey,
        EventTypeList (the comma list; DynamicImageComplete when none was set)."""
        conn = self.connection
        return shapes.message_callback(url=self.callback_url, auth_switch=get_setting(conn, "callback_auth_switch") or "off",
                                       auth_key=get_setting(conn, "callback_auth_key"),
                                       event_types=subscribed_event_types(conn))

    def delete_message_callback(self) -> None:
        """Stop POSTing events (the log still gets them): forget the URL, AuthSwitch, AuthKey and
        event types. Events already queued for the old URL stay in the outbox."""
        with transaction(self.connection):
            for key in ("callback_url", "callback_auth_switch", "callback_auth_key", "callback_event_types"):
                set_setting(self.connection, key, None)

    # -- access keys (engine keys; signed requests to engine serve) -------------------------------
    def create_access_key(self) -> AccessKey:
        """A new AccessKeyId (``LTAI`` + 20 letters and digits) and its 30-character secret."""
        return keys_table.create_access_key(self.connection)

    def access_keys(self) -> list[AccessKey]:
        """Every key, revoked ones included, oldest first."""
        return keys_table.list_access_keys(self.connection)

    def revoke_access_key(self, key_id: str) -> AccessKey:
        """Stop ``key_id`` signing requests; AccessKeyNotFound for an unknown id."""
        return keys_table.revoke_access_key(self.connection, key_id)

    def access_key_info(self, key: AccessKey) -> dict[str, Any]:
        """AccessKeyId, Status (Active/Revoked), CreationTime, RevokeTime: never the secret."""
        return shapes.access_key_info(key)

    def access_key_secret(self, key_id: str) -> str | None:
        """The secret that checks a request signed as ``key_id``; None for an unknown or revoked key."""
        return keys_table.active_secret(self.connection, key_id)

    def use_nonce(self, key_id: str, nonce: str, ttl_s: float) -> bool:
        """True the first time ``nonce`` comes with ``key_id`` within ``ttl_s`` seconds, False for a
        replay; atomic across processes on the store, and expired nonces are pruned."""
        return nonces.use_nonce(self.connection, key_id, nonce, ttl_s)

    # -- templates (AddVodTemplate and friends) ----------------------------------------------------
    def add_template(self, name: str, **fields: Any) -> Template:
        """A template from keyword fields (format, fps, width, height, seek, duration | trim_end,
        set_as_cover). Raises EngineError naming the field and its allowed range."""
        return insert_template(self.connection, name, shapes.template_config(**fields))

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
            body_name, config = parse_body(body)  # TemplateType defaults there; a non-object is refused
            return update_template(self.connection, template_id, name=name or body_name, config=config)
        return update_template(self.connection, template_id, name=name, changes=shapes.template_config(**fields))

    def delete_template(self, template_id: str) -> Template:
        return delete_template(self.connection, template_id)

    def template_info(self, template: Template | str) -> dict[str, Any]:
        """GetVodTemplate's VodTemplate (by record, id or name)."""
        return shapes.template_info(self.template(template) if isinstance(template, str) else template)

    # -- videos ----------------------------------------------------------------------------------
    def add_video(self, path: str | os.PathLike, *, title: str | None = None) -> Video:
        """Register (and probe once) a video file; the same path again returns the same video. A
        file that is not a readable video is refused now (InputNotFound, InvalidVideoFormat), not
        when its first job runs. ``title`` defaults to the file's stem."""
        try:
            path = Path(path).expanduser()
        except RuntimeError:  # pathlib's answer to "~user/..." for a user this machine does not have
            raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"{path}: no user of that name on this machine, so no "
                              "such home folder") from None
        try:
            path = path.resolve()
        except (OSError, RuntimeError):  # a symbolic link loop (RuntimeError before Python 3.13)
            raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"{path}: a symbolic link loop, no file at its end") from None
        existing = find_video(self.connection, path)
        if existing is not None:
            return self._current(existing)
        source = _probe_source(path)
        with transaction(self.connection):  # another process may have registered it while we probed
            return register_probed(self.connection, path, source, title=_title(title))

    def register_media(self, items: Sequence[Mapping[str, Any]],
                       media_roots: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
        """RegisterMedia: each ``{"FileURL": ..., "Title": optional}`` becomes a video (probed as
        :meth:`add_video` does); answers ``[{"MediaId": VideoId, "FileURL": as given, "NewRegister"}]``.

        Only ``file://`` URLs and paths whose real file lies under one of ``media_roots`` are taken
        (see :mod:`engine.vod.media`; no roots, nothing is); anything else is Forbidden. All items
        are checked and probed before any is registered, so a refused request registers nothing."""
        conn = self.connection
        checked: list[tuple[str, Path, str | None]] = []
        for item in items:
            if not isinstance(item, Mapping):
                raise EngineError(ErrorCode.INVALID_PARAMETER, f'each media item must be {{"FileURL": ..., "Title": ...}}, '
                                  f"got {item!r}")
            checked.append((item.get("FileURL"), resolve_media(item.get("FileURL"), media_roots), _title(item.get("Title"))))
        sources = {path: _probe_source(path) for _, path, _ in checked if find_video(conn, path) is None}
        answers = []
        with transaction(conn):
            for file_url, path, title in checked:
                video = find_video(conn, path)
                new = video is None
                if video is None:
                    video = register_probed(conn, path, sources[path], title=title)
                answers.append({"MediaId": video.id, "FileURL": file_url, "NewRegister": new})
        return answers

    def video(self, video_id: str) -> Video:
        return get_video(self.connection, video_id)

    def videos(self) -> list[Video]:
        """Every registered video, its facts probed again where its file changed (see :meth:`video_info`)."""
        return [self._current(video) for video in list_videos(self.connection)]

    def video_info(self, video_id: str) -> dict[str, Any]:
        """GetVideoInfo's answer: ``{"Video": {...}}``, CoverURL included. The facts are those of
        the file as it is now: a file replaced or edited since it was probed (another size or
        modification time) is probed again first (:meth:`_current`)."""
        video = self._current(self.video(video_id))
        cover = get_image(self.connection, video.cover_image_id) if video.cover_image_id else None
        return shapes.video_info(video, self.image_url(cover) if cover else None)

    def _current(self, video: Video) -> Video:
        """``video`` with facts that match its file: probed again, and the row updated, when the
        file changed since its last probe. A file that is gone, or no longer reads as a video,
        keeps the facts of its last good probe (and is tried again at the next look)."""
        if not changed(video):
            return video
        try:
            source = _probe_source(video.path)
        except EngineError:
            return video
        with transaction(self.connection):
            return refresh(self.connection, video, source)

    # -- jobs (SubmitDynamicImageJob) ------------------------------------------------------------
    def submit(self, video_id: str, template_id: str, override_params: Mapping[str, Any] | str | None = None) -> Job:
        """Queue a job and return at once; the job keeps the template as it is now.

        ``override_params`` (SubmitDynamicImageJob's OverrideParams: TemplateConfig fields as an
        object or its JSON string, e.g. ``{"Fps": "5", "TimeSpan": {"Duration": "2"}}``) change this
        job only; the merged config must pass the template rules (InvalidParameter otherwise)."""
        video = self.video(video_id)
        template = self.template(template_id)
        fields = template.job_fields() if override_params in (None, "") else _overridden(template, override_params)
        return submit_job(self.connection, video.id, template.id, fields)

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
        return shapes.job_info(job, self.image_url(image) if image else None)

    def run_worker(self, *, until_empty: bool = False, lease_seconds: float = LEASE_S, poll_seconds: float = POLL_S,
                   max_jobs: int | None = None, worker_id: str | None = None,
                   stop: threading.Event | None = None, on_job: Callable[[Job], None] | None = None,
                   threads: int | None = None, device: str = "auto", executor: Executor | None = None) -> WorkerReport:
        """Process queued jobs (see :func:`engine.vod.worker.run_worker`); ``on_job`` gets each finished
        job; ``executor`` runs them elsewhere (Ray) instead of one at a time here."""
        return run_worker(self.site, self.delivery, until_empty=until_empty, lease_seconds=lease_seconds,
                          poll_seconds=poll_seconds, max_jobs=max_jobs, worker_id=worker_id, stop=stop,
                          threads=threads, device=device, executor=executor,
                          on_job=None if on_job is None else (lambda job: on_job(self.job(job.id))))

    # -- batch runs (engine run --batch) ------------------------------------------------------------
    def manifest(self, path: str | os.PathLike, *, input_root: str | os.PathLike | None = None) -> Manifest:
        """A manifest whose lines may name this store's templates (``"template": "name or id"``),
        streamed (:class:`engine.manifest.Manifest`). A StoreError while looking a template up is
        raised, not made that line's failure: the store failed, not the line, and a run on a
        failing store would only record less."""
        return Manifest(path, input_root=input_root, templates=lambda ref: self.template(ref).job_fields(),
                        fatal=frozenset({ErrorCode.STORE_ERROR}))

    def load_manifest(self, path: str | os.PathLike, *, input_root: str | os.PathLike | None = None) -> list[ManifestEntry]:
        """Every entry of :meth:`manifest`, in a list."""
        return list(self.manifest(path, input_root=input_root))

    def run_batch(self, entries: Iterable[ManifestEntry], out_dir: str | os.PathLike, *, workers: int | None = None,
                  device: str | DeviceRequest = "auto", retry_failed: bool = False, results_path: str | os.PathLike | None = None,
                  on_result: Callable[[Result], None] | None = None,
                  executor: Executor | None = None, drain_s: float = DRAIN_S,
                  on_drained: Callable[[DeliveryReport], None] | None = None) -> Iterator[Result]:
        """Run the manifest's lines that are not done yet; one Result per line, earlier runs' marked
        ``reused`` (see :mod:`engine.vod.stored_batch`). ``base_url`` maps paths below ``out_dir``.
        Callbacks are sent in the background; after the last line the run waits up to ``drain_s``
        seconds for its own, then ``on_drained`` gets the report (``pending``: still waiting)."""
        return run_stored_batch(self.site, self.delivery, entries, Path(out_dir), workers=workers, executor=executor,
                                device=device, retry_failed=retry_failed, results_path=results_path,
                                on_result=on_result, drain_s=drain_s, on_drained=on_drained)

    # -- images (ListDynamicImage) ---------------------------------------------------------------
    def image_url(self, image: DynamicImage) -> str:
        return shapes.image_url(image.path, self.images_dir, self.site.images_url, self.site.url_signing_key)

    def images(self, video_id: str) -> list[DynamicImage]:
        return list_images(self.connection, self.video(video_id).id)

    def image(self, image_id: str) -> DynamicImage:
        """One animated image by DynamicImageId; DynamicImageNotFound for an unknown id."""
        image = get_image(self.connection, image_id)
        if image is None:
            raise EngineError(ErrorCode.IMAGE_NOT_FOUND, f"no animated image with id {image_id!r}")
        return image

    def delete_image(self, image_id: str) -> DynamicImage:
        """DeleteDynamicImage: forget the image (a video it covered has no cover after), then remove
        its file. The row goes first: a crash between leaves a stray file, never a listed image
        whose file is gone. DynamicImageNotFound for an unknown id; OutputError if the file stays."""
        with transaction(self.connection):
            image = delete_image(self.connection, image_id)
        try:
            image.path.unlink(missing_ok=True)
        except OSError as exc:
            raise EngineError(ErrorCode.OUTPUT_ERROR, f"image {image_id} was forgotten but its file {image.path} "
                              f"could not be removed: {exc}") from None
        return image

    def image_info(self, image: DynamicImage) -> dict[str, Any]:
        return shapes.image_info(image, self.image_url(image))

    def list_dynamic_images(self, video_id: str) -> dict[str, Any]:
        """ListDynamicImage's answer: ``{"DynamicImageList": [...]}``, oldest first."""
        return {"DynamicImageList": [self.image_info(i) for i in self.images(video_id)]}

    # -- events (DynamicImageComplete) -----------------------------------------------------------
    def events(self, *, job_id: str | None = None) -> list[dict[str, Any]]:
        return events_table.list_events(self.connection, job_id=job_id)

    def pending_deliveries(self) -> list[dict[str, Any]]:
        return outbox.pending(self.connection)

    def given_up_deliveries(self) -> list[dict[str, Any]]:
        """Callbacks the outbox gave up on (a URL that is not http(s), or too many failed attempts),
        each with its reason (``last_error``); see :mod:`engine.store.outbox`."""
        return outbox.given_up(self.connection)

    def deliver_events(self, *, include_not_due: bool = False) -> DeliveryReport:
        """One delivery pass (see :meth:`engine.vod.delivery.Delivery.deliver`)."""
        return self.delivery.deliver(include_not_due=include_not_due)

    def flush_events(self, *, wait: float = 0.0) -> DeliveryReport:
        """Deliver every pending callback now; with ``wait`` seconds, keep retrying (with backoff)
        until none is pending or the time is up."""
        return self.delivery.flush(wait=wait)


MAX_AUTH_KEY_CHARS = 32
"""SetMessageCallback's AuthKey: up to 32 characters, as the service allows."""
MAX_TITLE_CHARS = 128
"""A video's Title: up to 128 characters, as the service allows."""


def _check_event_log(path: Path) -> None:
    """The event log can be appended to (its folder made if needed), or InvalidParameter naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"cannot write the event log {path} (--events): "
                          f"{exc.strerror or exc}; give a file in a folder this user can write") from None


def _probe_source(path: Path) -> dict[str, Any]:
    """What registering a video keeps from its probe (the shape of a Result's ``source``)."""
    media = probe(path)
    return {"width": media.display_width, "height": media.height, "fps": media.fps, "codec": media.codec,
            "duration": media.duration, "bytes": path.stat().st_size}


def _title(title: Any) -> str | None:
    """A checked Title, or None (the file's stem is used) when none is given."""
    if title is None or (isinstance(title, str) and not title.strip()):
        return None
    if not isinstance(title, str) or len(title.strip()) > MAX_TITLE_CHARS:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"Title must be text of at most {MAX_TITLE_CHARS} characters, "
                          f"got {title!r}")
    return title.strip()


def _overridden(template: Template, override_params: Mapping[str, Any] | str) -> dict[str, Any]:
    """The job fields of ``template`` with OverrideParams applied, validated by the template path
    itself (:func:`engine.store.templates.merge_config` then ``build_template``): a job can ask
    for nothing a template could not."""
    overrides: Any = override_params
    if isinstance(overrides, str):
        try:
            overrides = parse_json(overrides, "OverrideParams")  # nesting, digits and surrogates checked
        except json.JSONDecodeError as exc:
            raise EngineError(ErrorCode.INVALID_PARAMETER, f"OverrideParams is not valid JSON: {exc}") from None
    if not isinstance(overrides, Mapping):
        raise EngineError(ErrorCode.INVALID_PARAMETER, "OverrideParams must be an object of TemplateConfig fields "
                          f"(Format, Fps, Width, Height, TimeSpan, SetAsCover), got {override_params!r}")
    if "TimeSpan" in overrides and not isinstance(overrides["TimeSpan"], Mapping):
        raise EngineError(ErrorCode.INVALID_PARAMETER, "OverrideParams.TimeSpan must be an object "
                          f"({{Seek, Duration | End}}), got {overrides['TimeSpan']!r}")
    config = merge_config(template.template_config(), overrides)
    return build_template(template.id, template.name, config, created=template.created,
                          modified=template.modified, stored_name=True).job_fields()


def add_videos(service: Service, paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Video | EngineError]]:
    """Register several files; each comes back with its video or the error that refused it."""
    out: list[tuple[Path, Video | EngineError]] = []
    for path in paths:
        try:
            out.append((Path(path), service.add_video(path)))
        except EngineError as error:
            out.append((Path(path), error))
    return out
