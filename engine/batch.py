"""Running a manifest: entries -> an executor -> Results, each appended to ``results.jsonl``.

:func:`run_batch` runs every entry and remembers nothing; the store's batch runs
(:meth:`engine.Service.run_batch`, :mod:`engine.vod.stored_batch`) skip what an earlier run did.
Both hand the jobs to an executor (:mod:`engine.executors`: the local process pool by default)
and write results through :class:`ResultsLog`.

``device`` ("auto", "cpu", "cuda", "cuda:N") is checked here, before any job runs, and handed to
the executor; each job then picks its path after probing its video (engine/device.py).

What a run must not overwrite: two lines naming one output (the second is refused, naming the
first: :func:`distinct_outputs`), and the results file must not be a symbolic link (never followed),
another file's hard link, or any file the run reads or writes (:func:`run_files`,
:func:`check_results_path`; ``engine run`` checks before anything runs).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, TextIO

from .device import DeviceRequest, parse_device
from .errors import EngineError, ErrorCode
from .executors import Executor, open_executor, refuse_in_worker_start_up
from .first_lines import FirstLines
from .manifest import ManifestEntry
from .output import resolve_output
from .result import Result

RESULTS_NAME = "results.jsonl"
STORE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""SQLite's files beside a store: overwriting one loses the store's latest transactions."""


def results_file(out_dir: Path | str, results_path: Path | str | None = None) -> Path:
    """Where a run's results go: ``results_path``, else ``<out_dir>/results.jsonl``."""
    return Path(results_path) if results_path else Path(out_dir) / RESULTS_NAME


class OutputClaims:
    """Which manifest line writes each output. A second line naming the same file is refused,
    naming the first (else one would overwrite the other on every run, and a store would redo one
    of them forever); so is a line whose output is the run's results file. Remembers 16 bytes a
    line (:class:`engine.first_lines.FirstLines`), so a long manifest costs little."""

    def __init__(self, results: Path | None = None) -> None:
        self._first = FirstLines()
        self._results = _identity(results)[0] if results is not None else None

    def claim(self, path: Path, line: int) -> EngineError | None:
        """None if line ``line`` may write ``path`` (resolved, as :func:`resolve_output` gives it)."""
        if str(path) == self._results:
            return EngineError(ErrorCode.INVALID_PARAMETER, f"output {path} is this run's results file")
        first = self._first.claim(str(path), line)
        if first is not None:
            return EngineError(ErrorCode.INVALID_PARAMETER, f"output {path} is already line {first}'s "
                               "output; give each line its own output")
        return None


def distinct_outputs(entries: Iterable[ManifestEntry], out_dir: Path,
                     results: Path | None = None) -> Iterator[ManifestEntry]:
    """``entries``, except that a line whose output an earlier line (or the results file) names
    becomes an error entry saying so (:class:`OutputClaims`)."""
    claims = OutputClaims(results)
    for entry in entries:
        if entry.spec is not None:
            try:
                path = resolve_output(entry.spec, out_dir)
            except EngineError:  # the job reports it
                yield entry
                continue
            error = claims.claim(path, entry.line)
            if error is not None:
                entry = dataclasses.replace(entry, spec=None, error=error)
        yield entry


def _identity(path: Path | str) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) if it exists): two names are one file if either matches."""
    try:
        resolved = os.path.realpath(path)
    except (OSError, ValueError):
        return str(path), None
    try:
        info = os.stat(resolved)
    except (OSError, ValueError):
        return resolved, None
    return resolved, (info.st_dev, info.st_ino)


def run_files(entries: Iterable[ManifestEntry], out_dir: Path | str, *, manifest: Path | str | None = None,
              store: Path | str | None = None, events: Path | str | None = None) -> Iterator[tuple[str, Path]]:
    """What a batch run reads or writes besides its results, as (what to call it, path): the
    manifest, the store and its side files, the event log, then every line's input and output.
    A stream, read as ``entries`` is: a long manifest is never held whole."""
    if manifest is not None:
        yield "the manifest", Path(manifest)
    if store is not None:
        yield "the store", Path(store)
        for suffix in STORE_SIDE_FILES:
            yield f"the store's {suffix[1:]} file", Path(f"{store}{suffix}")
    if events is not None:
        yield "the event log", Path(events)
    for entry in entries:
        if entry.spec is None:
            continue
        yield f"line {entry.line}'s input", entry.spec.input
        try:
            yield f"line {entry.line}'s output", resolve_output(entry.spec, Path(out_dir))
        except EngineError:
            pass


def refuse_overlaps(guarded: Mapping[str, Path | str], others: Iterable[tuple[str, Path]]) -> None:
    """EngineError(InvalidParameter) when a file the run writes from the start (``guarded``: what
    to call it in messages, e.g. "--results FILE" -> its path) is another of them, or one of
    ``others`` (:func:`run_files`): the same resolved path, or the same file by another name.
    ``others`` is read once, so it may be a stream over a long manifest."""
    marks = [(what, *_identity(path)) for what, path in guarded.items()]
    for at, (what, resolved, inode) in enumerate(marks):
        for other_what, other_resolved, other_inode in marks[at + 1:]:
            if resolved == other_resolved or (inode is not None and inode == other_inode):
                raise _overwrites(what, other_what, Path(other_resolved))
    for name, other in others:
        other_resolved, other_inode = _identity(other)
        for what, resolved, inode in marks:
            if resolved == other_resolved or (inode is not None and inode == other_inode):
                raise _overwrites(what, name, other)


def refuse_overlap(what: str, path: Path | str, others: Mapping[str, Path] | Iterable[tuple[str, Path]]) -> None:
    """:func:`refuse_overlaps` for one file: ``path``, called ``what`` in messages ("--results FILE")."""
    refuse_overlaps({what: path}, others.items() if isinstance(others, Mapping) else others)


def _overwrites(what: str, name: str, other: Path) -> EngineError:
    return EngineError(ErrorCode.INVALID_PARAMETER, f"{what} is {name} ({other}): the run would overwrite it; "
                       "give another path")


def _refuse_kind(path: Path, info: os.stat_result) -> None:
    """A results file may be a regular file with no other name, or a character device (/dev/null)."""
    if stat.S_ISLNK(info.st_mode):
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"results file {path} is a symbolic link: it is not followed "
                          "(the run would overwrite the file it points to); remove the link or give another --results")
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"results file {path} has other hard links: the run would "
                          "overwrite them too; remove it or give another --results")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISCHR(info.st_mode)):
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"results file {path} is not a regular file; give another "
                          "--results")


def check_results_kind(path: Path | str) -> None:
    """Refuse (EngineError, InvalidParameter) a results file that is a symbolic link, has other
    hard links or is not a regular file (a character device such as /dev/null is taken)."""
    path = Path(path)
    try:
        _refuse_kind(path, os.lstat(path))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"results file {path} cannot be used: {exc}") from None


def check_results_path(path: Path | str, others: Mapping[str, Path] | Iterable[tuple[str, Path]], *,
                       what: str | None = None) -> None:
    """Refuse (EngineError, InvalidParameter) a results file that :func:`check_results_kind`
    refuses or that is one of ``others`` (:func:`run_files`). ``what`` names it in messages."""
    check_results_kind(path)
    refuse_overlap(what or f"results file {path}", path, others)


def _open_results(path: Path) -> TextIO:
    """``path`` truncated and opened for writing, never through a symbolic link (the last
    component is opened with O_NOFOLLOW: no window between a check and the open)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _refuse_kind(path, os.lstat(path))
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            raise EngineError(ErrorCode.INVALID_PARAMETER, f"results file {path} is not a regular file; give "
                              "another --results") from None
        raise
    try:
        info = os.fstat(fd)
        _refuse_kind(path, info)
        if stat.S_ISREG(info.st_mode):
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def run_batch(
    entries: Iterable[ManifestEntry],
    out_dir: Path | str,
    *,
    workers: int | None = None,
    results_path: Path | str | None = None,
    on_result: Callable[[Result], None] | None = None,
    device: str | DeviceRequest = "auto",
    executor: Executor | None = None,
) -> Iterator[Result]:
    """Run every entry; yield one :class:`Result` per entry, in completion order.

    Entries that failed validation become failed results at once, and so does a line naming an
    output an earlier line names (:func:`distinct_outputs`). Results are appended to
    ``results_path`` (default ``<out_dir>/results.jsonl``, truncated first; see :class:`ResultsLog`)
    as they come.
    ``device`` is the --device request; an invalid one raises EngineError(InvalidParameter) when
    iteration starts, before any job runs. ``executor`` runs the jobs (default: the local
    process pool with ``workers`` processes). This runs every entry, remembering nothing: the
    store's batch runs (:meth:`engine.Service.run_batch`) skip what an earlier run did.
    """
    refuse_in_worker_start_up()
    request = parse_device(device)
    executor = executor or open_executor("local", workers=workers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = results_file(out_dir, results_path)
    with ResultsLog(results, on_result) as log:
        for result in executor.run(distinct_outputs(entries, out_dir, results), out_dir, request):
            yield log.emit(result)


class ResultsLog:
    """``results.jsonl``: truncated when opened, one line per result, flushed as each comes.

    Raises EngineError(InvalidParameter) for a path that is a symbolic link (not followed), has
    other hard links, or is not a regular file (a character device such as /dev/null is taken)."""

    def __init__(self, path: Path, on_result: Callable[[Result], None] | None = None) -> None:
        self.path = path
        self._on_result = on_result
        self._file = _open_results(path)

    def emit(self, result: Result) -> Result:
        self._file.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()
        if self._on_result is not None:
            self._on_result(result)
        return result

    def __enter__(self) -> "ResultsLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
