"""Registered videos: one row per file path, with what GetVideoInfo reports.

The row keeps what a probe found (title, size, duration, display size, frame rate, codec) and the
file's modification time then; the store opens no video, so the caller probes (the service when
registering, a batch job as it runs) and hands the facts in. A path registered twice answers its
existing VideoId, so scripts can re-run ``engine video add`` safely.

A file replaced or edited under its registered path keeps its VideoId, but not its old facts:
:func:`changed` tells (size or mtime differ from the row's), the caller probes again and
:func:`refresh` writes the new facts (GetVideoInfo does; so does a batch job that probed it).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import EngineError, ErrorCode


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
    mtime_ns: int | None = None
    """The file's modification time when it was probed (None: registered by an older engine)."""


def _row(row: sqlite3.Row) -> Video:
    return Video(id=row["id"], path=Path(row["path"]), title=row["title"], size=row["size"],
                 duration=row["duration"], width=row["width"], height=row["height"], fps=row["fps"],
                 codec=row["codec"], created=row["created"], cover_image_id=row["cover_image_id"],
                 mtime_ns=row["mtime_ns"])


def file_state(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` as it is now: (size, mtime in ns), or None when it cannot be seen."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def changed(video: Video) -> bool:
    """Whether the file at the video's path is not the one its facts were probed from (another
    size or modification time). A file that is gone is not "changed": nothing newer can be known."""
    now = file_state(video.path)
    return now is not None and now != (video.size, video.mtime_ns)


def find_video(conn: sqlite3.Connection, path: Path) -> Video | None:
    """The video registered at ``path`` (resolved), or None."""
    row = conn.execute("SELECT * FROM videos WHERE path = ?", (str(Path(path).expanduser().resolve()),)).fetchone()
    return None if row is None else _row(row)


def _mtime_ns(path: Path, size: int) -> int | None:
    """The file's mtime, when the file is still the size that was probed (else None: unknown)."""
    now = file_state(path)
    return now[1] if now is not None and now[0] == size else None


def register_probed(conn: sqlite3.Connection, path: Path, source: Mapping[str, Any], *,
                    title: str | None = None) -> Video:
    """Store a video a job has already probed (``source`` as in a Result: width, height, fps,
    codec, duration, bytes), or return the one registered at that path (its title unchanged; its
    facts refreshed from ``source`` when the file changed since they were probed). ``title``
    defaults to the file's stem. Call inside a transaction."""
    path = Path(path).expanduser().resolve()
    existing = find_video(conn, path)
    if existing is not None:
        return refresh(conn, existing, source) if changed(existing) else existing
    size = int(source["bytes"])
    video = Video(id=uuid.uuid4().hex, path=path, title=title or path.stem, size=size,
                  duration=round(float(source["duration"]), 3), width=int(source["width"]),
                  height=int(source["height"]), fps=source.get("fps"), codec=str(source["codec"]), created=time.time(),
                  mtime_ns=_mtime_ns(path, size))
    conn.execute(
        "INSERT INTO videos (id, path, title, size, duration, width, height, fps, codec, created, mtime_ns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (video.id, str(video.path), video.title, video.size, video.duration, video.width, video.height,
         video.fps, video.codec, video.created, video.mtime_ns))
    return video


def refresh(conn: sqlite3.Connection, video: Video, source: Mapping[str, Any]) -> Video:
    """Replace a video's facts with a new probe of its file (``source`` as for :func:`register_probed`);
    its id, title, cover and images stay. Call inside a transaction."""
    size = int(source["bytes"])
    row = conn.execute(
        "UPDATE videos SET size = ?, duration = ?, width = ?, height = ?, fps = ?, codec = ?, mtime_ns = ?"
        " WHERE id = ? RETURNING *",
        (size, round(float(source["duration"]), 3), int(source["width"]), int(source["height"]), source.get("fps"),
         str(source["codec"]), _mtime_ns(video.path, size), video.id)).fetchone()
    return video if row is None else _row(row)


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
