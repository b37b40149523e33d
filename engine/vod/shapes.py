"""The service's answers, with its PascalCase field names: one place builds every one of them.

GetVodTemplate, GetVideoInfo, the job state, ListDynamicImage and the DynamicImageComplete event
body are built here from the store's frozen records, so the store stays tables only and the faces
(the CLI, an HTTP API) print what they are given. Times are UTC as the service writes them
(``2026-11-24T08:52:00Z``); image URLs are made when answering (:func:`image_url`), so a changed
``base_url`` re-maps every stored image.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..store.access_keys import AccessKey
from ..store.images import DynamicImage
from ..store.jobs import Job
from ..store.templates import TEMPLATE_TYPE, Template
from ..store.videos import Video
from .urls import sign_url

EVENT_TYPE = "DynamicImageComplete"


def iso_time(seconds: float | None) -> str | None:
    """UTC time as the service writes it: ``2026-11-24T08:52:00Z``."""
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def image_url(path: Path, images_dir: Path, base_url: str | None, signing_key: str | None = None) -> str:
    """``base_url`` + the path below ``images_dir`` (percent-encoded), else a ``file://`` URL.
    With ``signing_key`` (the store's, set when ``engine serve`` serves the images), the URL
    carries an expiring ``auth_key`` (:mod:`engine.vod.urls`).

    A path outside ``images_dir`` (written by a worker with another ``--out-dir``) keeps its
    ``file://`` URL: there is no honest way to map it under the base."""
    path = Path(path)
    if base_url:
        try:
            relative = path.resolve().relative_to(Path(images_dir).resolve())
        except ValueError:
            return path.resolve().as_uri()
        url = base_url.rstrip("/") + "/" + quote(relative.as_posix())
        return sign_url(url, signing_key) if signing_key else url
    return path.resolve().as_uri()


def template_config(*, format: str | None = None, fps: float | str | None = None, width: int | str | None = None,
                    height: int | str | None = None, seek: float | str | None = None,
                    duration: float | str | None = None, trim_end: float | str | None = None,
                    set_as_cover: bool | None = None, fit: str | None = None,
                    pad_colour: str | None = None, max_bytes: int | str | None = None) -> dict[str, Any]:
    """A (partial) TemplateConfig from keyword fields; fields left None are left out. ``fit``,
    ``pad_colour`` and ``max_bytes`` are the config's ``Fit``, ``PadColour`` (fill, contain,
    cover, pad; ``#rrggbb``) and ``MaxBytes``."""
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
    for key, value in (("Fit", fit), ("PadColour", pad_colour), ("MaxBytes", max_bytes)):
        if value is not None:
            config[key] = value
    return config


def template_info(template: Template) -> dict[str, Any]:
    """What GetVodTemplate answers (one entry of ListVodTemplate's VodTemplateInfoList)."""
    return {
        "VodTemplateId": template.id,
        "Name": template.name,
        "TemplateType": TEMPLATE_TYPE,
        "TemplateConfig": template.template_config(),
        "CreationTime": iso_time(template.created),
        "ModifyTime": iso_time(template.modified),
    }


def video_info(video: Video, cover_url: str | None) -> dict[str, Any]:
    """GetVideoInfo's answer: ``{"Video": {...}}``, CoverURL included."""
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
        "CoverURL": cover_url,
        "CreationTime": iso_time(video.created),
    }}


def job_info(job: Job, image_url: str | None) -> dict[str, Any]:
    """A job's state and errors; a manifest line's job also names its input, line id and output."""
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
        "DynamicImageUrl": image_url,
        "CreationTime": iso_time(job.created),
        "StartTime": iso_time(job.started),
        "FinishTime": iso_time(job.finished),
        **batch,
    }


def image_info(image: DynamicImage, url: str) -> dict[str, Any]:
    """One entry of ListDynamicImage's DynamicImageList."""
    return {
        "DynamicImageId": image.id,
        "VideoId": image.video_id,
        "JobId": image.job_id,
        "URL": url,
        "FileURL": url,
        "Format": image.format,
        "Width": image.width,
        "Height": image.height,
        "Fps": image.fps,
        "Duration": image.duration,
        "FileSize": image.bytes,
        "CreationTime": iso_time(image.created),
    }


def dynamic_image_complete(*, job_id: str, video_id: str | None, status: str, url: str | None = None,
                           width: int | None = None, height: int | None = None, size: int | None = None,
                           format: str | None = None, fps: float | None = None, error_code: str | None = None,
                           error_message: str | None = None) -> dict[str, Any]:
    """The DynamicImageComplete event (the callback body); ``video_id`` is None for a manifest
    line whose input could not be probed.

    The flat fields are those of the feature's documentation; ``DynamicImageJobInfo`` repeats the
    job's part as the service's real event nests it (FileURL is the DynamicImageUrl), so receivers
    written against either shape read it unchanged."""
    return {
        "EventId": uuid.uuid4().hex,
        "EventType": EVENT_TYPE,
        "VideoId": video_id,
        "JobId": job_id,
        "DynamicImageUrl": url,
        "Width": width,
        "Height": height,
        "FileSize": size,
        "Format": format,
        "Status": status,
        "ErrorCode": error_code,
        "ErrorMessage": error_message,
        "EventTime": iso_time(time.time()),
        "DynamicImageJobInfo": {
            "JobId": job_id,
            "Status": status,
            "FileURL": url,
            "FileSize": size,
            "Fps": fps,
            "Width": width,
            "Height": height,
        },
    }


def message_callback(*, url: str | None, auth_switch: str, auth_key: str | None,
                     event_types: tuple[str, ...]) -> dict[str, Any]:
    """GetMessageCallback's MessageCallback: where events go and how the service's headers sign them."""
    return {
        "CallbackType": "HTTP",
        "CallbackURL": url,
        "AuthSwitch": auth_switch,
        "AuthKey": auth_key,
        "EventTypeList": ",".join(event_types),
    }


def access_key_info(key: AccessKey) -> dict[str, Any]:
    """One access key as ``engine keys list`` shows it: never its secret."""
    return {
        "AccessKeyId": key.id,
        "Status": "Active" if key.revoked is None else "Revoked",
        "CreationTime": iso_time(key.created),
        "RevokeTime": iso_time(key.revoked),
    }
