"""Sending an image file as a CDN origin would: ETag, Cache-Control, conditional GETs, byte ranges.

Images are written once under a name nobody reuses (the job's id), so they can be cached hard; a
player or a CDN fetching a large animation in pieces asks for byte ranges (RFC 9110: one range
served as 206, an unsatisfiable one 416, several ranges answered with the whole file, which the
RFC allows).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

CONTENT_TYPES = {".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".png": "image/png"}
CACHE_CONTROL = "public, max-age=3600"
"""Shorter than a signed link's life (a day), so a cache never outlives the link it was fetched by."""
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class FileAnswer:
    """What to send: status, headers, and which bytes of the file (``start``..``end`` inclusive)."""

    status: int
    headers: dict[str, str]
    start: int = 0
    end: int = -1

    @property
    def length(self) -> int:
        return max(0, self.end - self.start + 1)


def answer_for(path: Path, range_header: str | None, if_none_match: str | None) -> FileAnswer:
    """The answer to a GET of ``path`` (which exists) given the request's Range and If-None-Match."""
    stat = path.stat()
    size = stat.st_size
    etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
    headers = {"Content-Type": CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"),
               "ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes",
               "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")] + ["*"]:
        return FileAnswer(304, headers)
    match = _RANGE.match((range_header or "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.group(1), match.group(2)
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:  # a suffix: the last N bytes
            start, end = max(0, size - int(last)), size - 1
        if start >= size or start > end:
            return FileAnswer(416, {**headers, "Content-Range": f"bytes */{size}", "Content-Length": "0"})
        return FileAnswer(206, {**headers, "Content-Range": f"bytes {start}-{end}/{size}",
                                "Content-Length": str(end - start + 1)}, start, end)
    return FileAnswer(200, {**headers, "Content-Length": str(size)}, 0, size - 1)


def read_span(path: Path, answer: FileAnswer, chunk: int = 1 << 16):
    """The answer's bytes, in chunks (images may be tens of MB)."""
    with open(path, "rb") as f:
        f.seek(answer.start)
        left = answer.length
        while left > 0:
            data = f.read(min(chunk, left))
            if not data:
                return
            left -= len(data)
            yield data


def inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a regular file inside ``root`` once symlinks are resolved; None for
    ``..``, absolute or NUL-carrying paths and anything that leads outside."""
    if "\x00" in relative or relative.startswith("/") or any(part in ("..", "") for part in relative.split("/")):
        return None
    try:
        root = root.resolve()
        candidate = (root / relative).resolve()
    except (OSError, RuntimeError):  # a symbolic link loop (RuntimeError before Python 3.13)
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate if os.access(candidate, os.R_OK) else None
