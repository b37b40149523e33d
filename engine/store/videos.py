"""Registered videos: a file path probed once at registration, answered like GetVideoInfo.

Registering probes the file (a file that is not a readable video is refused then, not at job time)
and keeps what GetVideoInfo reports: title, size, duration, display size, frame rate, codec. A path
registered twice answers its existing VideoId, so scripts can re-run ``engine video add`` safely.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from engine.errors import EngineError, ErrorCode
from engine.probe import probe
from engine.store.db import transaction


@dataclass(frozen=True)
class Video:
    """A registered video file; ``cover_image_id`` is the animated image set as its cover."""

    id: str
    path: Path
    title: str
    size: int
    duration: float
    width: int
    height: int
    fps: float | None
    codec: str
    created: float
    cover_image_id: str | None = None


def _row(row: sqlite3.Row) -> Video:
    return Video(id=row["id"], path=Path(row["path"]), title=row["title"], size=row["size"],
                 duration=row["duration"], width=row["width"], height=row["height"], fps=row["fps"],
                 codec=row["codec"], created=row["created"], cover_image_id=row["cover_image_id"])


def register_video(conn: sqlite3.Connection, path: Path) -> Video:
    """Probe ``path`` and store it; an already registered path returns its existing record."""
    path = Path(path).expanduser().resolve()
    existing = conn.execute("SELECT * FROM videos WHERE path = ?", (str(path),)).fetchone()
    if existing is not None:
        return _row(existing)
    media = probe(path)  # raises InputNotFound / InvalidVideoFormat with a message for the user
    source = {"width": media.display_width, "height": media.height, "fps": media.fps, "codec": media.codec,
              "duration": media.duration, "bytes": path.stat().st_size}
    with transaction(conn):  # another process may have registered it while we probed
        return register_probed(conn, path, source)


def register_probed(conn: sqlite3.Connection, path: Path, source: Mapping[str, Any]) -> Video:
    """Store a video a job has already probed (``source`` as in a Result: width, height, fps,
    codec, duration, bytes), or return the one registered at that path. Call inside a transaction."""
    path = Path(path).expanduser().resolve()
    existing = conn.execute("SELECT * FROM videos WHERE path = ?", (str(path),)).fetchone()
    if existing is not None:
        return _row(existing)
    video = Video(id=uuid.uuid4().hex, path=path, title=path.stem, size=int(source["bytes"]),
                  duration=round(float(source["duration"]), 3), width=int(source["width"]),
                  height=int(source["height"]), fps=source.get("fps"), codec=str(source["codec"]), created=time.time())
    conn.execute(
        "INSERT INTO videos (id, path, title, size, duration, width, height, fps, codec, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (video.id, str(video.path), video.title, video.size, video.duration, video.width, video.height,
         video.fps, video.codec, video.created))
    return video


def get_video(conn: sqlite3.Connection, video_id: str) -> Video:
    row = conn.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
    if row is None:
        raise EngineError(ErrorCode.VIDEO_NOT_FOUND, f"no video with id {video_id!r}; register it with `engine video add PATH`")
    return _row(row)


def list_videos(conn: sqlite3.Connection) -> list[Video]:
    return [_row(r) for r in conn.execute("SELECT * FROM videos ORDER BY created, id")]


def set_cover(conn: sqlite3.Connection, video_id: str, image_id: str) -> None:
    """Make ``image_id`` the video's cover; call inside the job's completing transaction."""
    conn.execute("UPDATE videos SET cover_image_id = ? WHERE id = ?", (image_id, video_id))
