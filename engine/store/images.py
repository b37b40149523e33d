"""Animated images made by finished jobs: one row per image, listed per video (ListDynamicImage).

Rows hold the image's file path; URLs are made when answering (:func:`engine.vod.shapes.image_url`),
so changing ``--base-url`` re-maps every image without touching the store.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DynamicImage:
    """One animated image file and what it holds."""

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


def _row(row: sqlite3.Row) -> DynamicImage:
    return DynamicImage(id=row["id"], video_id=row["video_id"], job_id=row["job_id"], path=Path(row["path"]),
                        format=row["format"], width=row["width"], height=row["height"], fps=row["fps"],
                        bytes=row["bytes"], created=row["created"])


def insert_image(conn: sqlite3.Connection, *, video_id: str, job_id: str, path: Path, format: str, width: int,
                 height: int, fps: float, size: int, image_id: str | None = None) -> DynamicImage:
    """Record a job's image; call inside the job's completing transaction. A job made again (a
    batch line redone) keeps its image's id, with the new file's details."""
    image = DynamicImage(id=image_id or uuid.uuid4().hex, video_id=video_id, job_id=job_id, path=Path(path), format=format,
                         width=width, height=height, fps=fps, bytes=size, created=time.time())
    row = conn.execute(
        "INSERT INTO images (id, video_id, job_id, path, format, width, height, fps, bytes, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET video_id = excluded.video_id,"
        " path = excluded.path, format = excluded.format, width = excluded.width, height = excluded.height,"
        " fps = excluded.fps, bytes = excluded.bytes, created = excluded.created RETURNING *",
        (image.id, image.video_id, image.job_id, str(image.path), image.format, image.width, image.height,
         image.fps, image.bytes, image.created)).fetchone()
    return _row(row)


def forget_job_image(conn: sqlite3.Connection, job_id: str) -> None:
    """Drop the image an earlier try of this job made (it failed this time), and the cover that
    pointed to it; call inside the job's completing transaction."""
    for row in conn.execute("DELETE FROM images WHERE job_id = ? RETURNING id", (job_id,)).fetchall():
        conn.execute("UPDATE videos SET cover_image_id = NULL WHERE cover_image_id = ?", (row["id"],))


def get_image(conn: sqlite3.Connection, image_id: str) -> DynamicImage | None:
    row = conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
    return None if row is None else _row(row)


def list_images(conn: sqlite3.Connection, video_id: str) -> list[DynamicImage]:
    return [_row(r) for r in conn.execute("SELECT * FROM images WHERE video_id = ? ORDER BY created, id", (video_id,))]
