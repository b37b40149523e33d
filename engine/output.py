"""Where outputs go and how they land: inside the output folder, written atomically.

An image is written to a temporary file in the destination folder, flushed to disk, then
renamed over the final name. A crash or a kill at any moment leaves either the previous file or
the complete new one under the final name, never a half-written image.

The inside-the-output-folder rule holds when the file is written, not only when the job was
planned: :func:`resolve_output` gives a path with no symbolic link in it, and :func:`write_atomic`
walks to its folder one component at a time without following links (a folder swapped for a link
to elsewhere after planning is an ``OutputError``), creates the temporary file and renames it
through that folder's descriptor, and checks again right before the rename that the path still
leads to the same folder.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .errors import EngineError, ErrorCode
from .spec import JobSpec

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_PATH", 0)
"""A folder, never through a symbolic link (O_PATH where there is one: no read permission needed)."""


def resolve_output(spec: JobSpec, out_dir: Path) -> Path:
    """The absolute output path of a job, with no symbolic link in it; it must lie inside ``out_dir``."""
    try:
        root = out_dir.resolve()
        path = spec.output_path(root)
        if not path.is_absolute():
            path = root / path
        path = path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop (RuntimeError before Python 3.13), a NUL
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"output {spec.output} is not a usable path: {exc}") from None
    if root not in path.parents:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"output {spec.output} must stay inside the output folder {root}")
    return path


def _open_folder(folder: Path, *, create: bool) -> int:
    """A descriptor of ``folder`` (absolute), reached from ``/`` one component at a time without
    following a symbolic link; missing folders are made when ``create``. Raises OSError (ENOTDIR
    or ELOOP for a link on the way)."""
    if not folder.is_absolute():
        raise OSError(f"{folder} is not an absolute path")
    fd = os.open("/", _DIR_FLAGS)
    try:
        for name in folder.parts[1:]:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _same_folder(folder: Path, fd: int) -> bool:
    """Whether ``folder``, walked again without following links, is still the folder ``fd`` holds."""
    try:
        again = _open_folder(folder, create=False)
    except OSError:
        return False
    try:
        first, second = os.fstat(fd), os.fstat(again)
        return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)
    finally:
        os.close(again)


_IN_PROGRESS: set[Path] = set()
"""The temporary files this process is writing now (:func:`write_atomic`), named before they are
created: what :func:`drop_writes_in_progress` deletes when the process must end mid-write."""


def drop_writes_in_progress() -> None:
    """Delete the temporary files this process is writing. For a worker about to end at once
    (``os._exit``: its run was killed, engine/executors/local.py): the run that takes its job over
    clears the job's temporary files when it starts it, but this worker may still be writing one
    for up to its watchdog's period after that (seen in CI: a ``.part`` left behind by a killed
    run's worker)."""
    for partial in list(_IN_PROGRESS):
        try:
            partial.unlink()
        except OSError:
            pass


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers only ever see the whole file.

    ``path`` is absolute and free of symbolic links (as :func:`resolve_output` gives it); a folder
    on the way that is, or became, a link is an ``OutputError`` and nothing is written."""
    path = Path(path)
    try:
        folder = _open_folder(path.parent, create=True)
    except OSError as exc:
        raise EngineError(ErrorCode.OUTPUT_ERROR, f"cannot write in {path.parent}: {exc.strerror or exc} (a folder on "
                          "the way that is a symbolic link is not followed)") from None
    temp = partial = None
    try:
        for _ in range(100):
            name = f".{path.name}.{secrets.token_hex(4)}.part"  # what remove_partial_files clears
            partial = path.parent / name
            _IN_PROGRESS.add(partial)  # before it exists: no moment when it is there unlisted
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                             0o600, dir_fd=folder)
            except FileExistsError:
                _IN_PROGRESS.discard(partial)
                continue
            temp = name
            break
        else:
            raise FileExistsError(f"no free temporary name beside {path}")
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if not _same_folder(path.parent, folder):
            raise EngineError(ErrorCode.OUTPUT_ERROR, f"cannot write {path}: {path.parent} was replaced while the job "
                              "ran (a symbolic link is not followed); nothing was written")
        os.replace(temp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        temp = None
    except OSError as exc:
        raise EngineError(ErrorCode.OUTPUT_ERROR, f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if temp is not None:
            try:
                os.unlink(temp, dir_fd=folder)
            except OSError:
                pass
        _IN_PROGRESS.discard(partial)
        os.close(folder)


def remove_partial_files(path: Path) -> None:
    """Delete the temporary files a killed writer of ``path`` left beside it (never the final name).

    Only for a job this process now holds: no one else may be writing ``path`` at the time."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.part"):
            stale.unlink(missing_ok=True)
