"""Where outputs go and how they land: inside the output folder, written atomically.

An image is written to a temporary file in the destination folder, flushed to disk, then
renamed over the final name. A crash or a kill at any moment leaves either the previous file or
the complete new one under the final name, never a half-written image.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import EngineError, ErrorCode
from .spec import JobSpec


def resolve_output(spec: JobSpec, out_dir: Path) -> Path:
    """The absolute output path of a job; it must lie inside ``out_dir``."""
    root = out_dir.resolve()
    path = spec.output_path(root)
    if not path.is_absolute():
        path = root / path
    path = path.resolve()
    if root not in path.parents:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"output {spec.output} must stay inside the output folder {root}")
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers only ever see the whole file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise EngineError(ErrorCode.OUTPUT_ERROR, f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise EngineError(ErrorCode.OUTPUT_ERROR, f"cannot write {path}: {exc.strerror or exc}") from None


def remove_partial_files(path: Path) -> None:
    """Delete the temporary files a killed writer of ``path`` left beside it (never the final name).

    Only for a job this process now holds: no one else may be writing ``path`` at the time."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.part"):
            stale.unlink(missing_ok=True)
