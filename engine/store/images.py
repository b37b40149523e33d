"""Animated images made by finished jobs: one row per image, listed per video (ListDynamicImage).

Rows hold the image's file path; URLs are made when answering (:func:`engine.vod.shapes.image_url`),
so changing ``--base-url`` re-maps every image without touching the store. Deleting a row
(DeleteDynamicImage) also takes the cover away from the video it covered; the file itself is the
service's to remove, since the store touches no file but its own.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineError, ErrorCode


@dataclass(frozen=True)
class DynamicImage:
    """One animated image file and what it holds; ``duration`` (seconds) is None for images made
    before the store recorded it."""

    id: str
    video_id: str
    job_id: str
    path: Path
    format: str
    width: int
    height: int
    fps: float
    bytes: int
    created: float
    duration: float | None = None


def _row(row: sqlite3.Row) -> DynamicImage:
    return DynamicImage(id=row["id"], video_id=row["video_id"], job_id=row["job_id"], path=Path(row["path"]),
                        format=row["format"], width=row["width"], height=row["height"], fps=row["fps"],
                        bytes=row["bytes"], created=row["created"], duration=row["duration"])


def insert_image(conn: sqlite3.Connection, *, video_id: str, job_id: str, path: Path, format: str, width: int,
                 height: int, fps: float, size: int, image_id: str | None = None,
                 duration: float | None = None) -> DynamicImage:
    """Record a job's image; call inside the job's completing transaction. A job made again (a
    batch line redone) keeps its image's id, with the new file's details."""
    image = DynamicImage(id=image_id or uuid.uuid4().hex, video_id=video_id, job_id=job_id, path=Path(path), format=format,
                         width=width, height=height, fps=fps, bytes=size, created=time.time(), duration=duration)
    row = conn.execute(
        "INSERT INTO images (id, video_id, job_id, path, format, width, height, fps, bytes, created, duration)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET video_id = excluded.video_id,"
        " path = excluded.path, format = excluded.format, width = excluded.width, height = excluded.height,"
        " fps = excluded.fps, bytes = excluded.bytes, created = excluded.created, duration = excluded.duration"
        " RETURNING *",
        (image.id, image.video_id, image.job_id, str(image.path), image.format, image.width, image.height,
         image.fps, image.bytes, image.created, image.duration)).fetchone()
    return _row(row)


def forget_job_image(conn: sqlite3.Connection, job_id: str) -> None:
    """Drop the image an earlier try of this job made (it failed this time), and the cover that
    pointed to it; call inside the job's completing transaction."""
    for row in conn.execute("DELETE FROM images WHERE job_id = ? RETURNING id", (job_id,)).fetchall():
        conn.execute("UPDATE videos SET cover_image_id = NULL WHERE cover_image_id = ?", (row["id"],))


def delete_image(conn: sqlite3.Connection, image_id: str) -> DynamicImage:
    """Remove the image's row (DeleteDynamicImage); the video it covered has no cover after. Call
    inside a transaction. Raises DynamicImageNotFound for an unknown (or already deleted) id."""
    row = conn.execute("DELETE FROM images WHERE id = ? RETURNING *", (image_id,)).fetchone()
    if row is None:
        raise EngineError(ErrorCode.IMAGE_NOT_FOUND, f"no animated image with id {image_id!r}")
    conn.execute("UPDATE videos SET cover_image_id = NULL WHERE cover_image_id = ?", (image_id,))
    return _row(row)


def get_image(conn: sqlite3.Connection, image_id: str) -> DynamicImage | None:
    row = conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
    return None if row is None else _row(row)


def list_images(conn: sqlite3.Connection, video_id: str) -> list[DynamicImage]:
    return [_row(r) for r in conn.execute("SELECT * FROM images WHERE video_id = ? ORDER BY created, id", (video_id,))]
