"""Reading a batch manifest: JSON Lines, one job per line.

Every non-blank line becomes a :class:`ManifestEntry`, either a valid :class:`JobSpec` or the
error that explains what is wrong with that line, so one bad line is reported as a failed job
and never stops the rest of the batch. Blank lines and lines starting with ``#`` are skipped.

Lines end at ``"\\n"`` (or ``"\\r\\n"``) and nowhere else: U+2028, U+0085 and the other breaks
:meth:`str.splitlines` knows may stand raw inside a JSON string. A UTF-8 byte order mark at the
start is skipped. The manifest must be a regular file of at most :data:`MAX_MANIFEST_BYTES`, read
line by line; a line over :data:`MAX_LINE_BYTES`, not UTF-8, nested too deeply or naming a path
with a NUL fails alone.

A manifest is streamed, never held whole: :class:`Manifest` reads its file line by line each
time it is iterated (a run reads it twice: once to check it, once to run it), and what it
remembers across lines is a 16-byte digest a line (:class:`engine.first_lines.FirstLines`), so a
million-line manifest costs a batch run about as much memory as a thousand-line one.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from .errors import EngineError, ErrorCode
from .first_lines import FirstLines
from .result import Result
from .spec import JobSpec, TemplateLookup, parse_job, parse_json

MAX_MANIFEST_BYTES = 256 * 2**20
"""Largest manifest file: 256 MiB, over a million lines; bigger ones are refused before reading."""
MAX_LINE_BYTES = 64 * 2**10
"""Longest manifest line (its line end not counted): 64 KiB, far above any real job's few hundred
bytes; a longer line fails alone (InvalidParameter) and is never held whole in memory."""
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest line: its number (1-based), its job id, and the spec or the error."""

    line: int
    id: str
    spec: JobSpec | None = None
    error: EngineError | None = None

    def refusal(self) -> Result:
        """The failed Result of a line that is not a valid job (``spec`` is None)."""
        return Result.failure(self.id, self.error or EngineError(ErrorCode.INVALID_PARAMETER, "invalid manifest line"),
                              line=self.line)


def _id_hint(obj: object, default: str) -> str:
    if isinstance(obj, dict):
        value = obj.get("id")
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return default


def _entry(number: int, text: str, seen: FirstLines, input_root: Path,
           templates: TemplateLookup | None) -> ManifestEntry | None:
    """The entry of line ``number`` (None for a blank or comment line)."""
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    default_id = f"line-{number}"
    try:
        obj = parse_json(text, f"line {number}")
    except json.JSONDecodeError as exc:
        return ManifestEntry(number, default_id, error=EngineError(
            ErrorCode.INVALID_PARAMETER, f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})"))
    except EngineError as exc:
        return ManifestEntry(number, default_id, error=exc)
    job_id = _id_hint(obj, default_id)
    try:
        spec = parse_job(obj, default_id=default_id, input_root=input_root, templates=templates)
    except EngineError as exc:
        return ManifestEntry(number, job_id, error=exc)
    except Exception as exc:  # a bug: this line fails, the batch goes on (README: one bad line never stops it)
        return ManifestEntry(number, job_id, error=EngineError(
            ErrorCode.INTERNAL_ERROR, f"line {number} could not be read: {type(exc).__name__}: {exc}"))
    earlier = seen.claim(spec.id, number)
    if earlier is not None:
        return ManifestEntry(number, spec.id, error=EngineError(
            ErrorCode.INVALID_PARAMETER, f"id {spec.id!r} is used by an earlier line (line {earlier}); ids must be unique"))
    return ManifestEntry(number, spec.id, spec=spec)


def parse_manifest_lines(lines: Iterable[str], *, input_root: Path,
                         templates: TemplateLookup | None = None) -> Iterator[ManifestEntry]:
    """Parse manifest lines (already split; line ``n`` is the n-th item); duplicate ids after the
    first are errors. ``templates`` resolves lines that name a stored template (``"template":
    "name or id"``)."""
    seen = FirstLines()
    for number, text in enumerate(lines, start=1):
        entry = _entry(number, text, seen, input_root, templates)
        if entry is not None:
            yield entry


def _too_big(path: Path) -> EngineError:
    return EngineError(ErrorCode.INVALID_PARAMETER, f"manifest {path} is over {MAX_MANIFEST_BYTES // 2**20} MiB: "
                       "split it into several manifests")


def _read_lines(handle: BinaryIO, path: Path) -> Iterator[tuple[int, str | EngineError]]:
    """(number, text) for every line of ``handle``, split at b"\\n" only, or (number, error) for
    a line that is too long or not UTF-8 (an over-long comment line is skipped). Raises EngineError
    once the file passes :data:`MAX_MANIFEST_BYTES` (it may grow while being read)."""
    limit = MAX_LINE_BYTES + len(_BOM) + len(b"\r\n")
    total = 0
    for number in itertools.count(1):
        raw = handle.readline(limit)
        if not raw:
            return
        total += len(raw)
        cut = len(raw) == limit and not raw.endswith(b"\n")
        if cut:  # too long: the rest is skipped unread
            tail = raw
            while tail and not tail.endswith(b"\n"):
                if total > MAX_MANIFEST_BYTES:
                    raise _too_big(path)
                tail = handle.readline(2**20)
                total += len(tail)
        if total > MAX_MANIFEST_BYTES:
            raise _too_big(path)
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
        if cut or len(raw) > MAX_LINE_BYTES:
            if raw.lstrip().startswith(b"#"):  # a comment, however long (the cut ones and those a few bytes over)
                continue
            yield number, EngineError(ErrorCode.INVALID_PARAMETER, f"line {number} is longer than "
                                      f"{MAX_LINE_BYTES} bytes; a job takes a few hundred")
            continue
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, EngineError(ErrorCode.INVALID_PARAMETER, f"line {number} is not UTF-8 text (byte "
                                      f"0x{raw[exc.start]:02x} at byte {exc.start + 1})")


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _folder_of(path: Path) -> Path:
    """The folder relative inputs are read from: the manifest's own, links followed; where they
    cannot be (a link loop, refused when the manifest is opened), the folder it was named in."""
    try:
        return path.resolve().parent
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop, before Python 3.13
        return path.absolute().parent


def _open_manifest(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file within :data:`MAX_MANIFEST_BYTES`.

    Opened without blocking, so a FIFO is refused at once rather than waited on, and checked on
    the open file (fstat), so what is read is what was checked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"manifest {path} does not exist") from None
    except OSError as exc:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"manifest {path} cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
            raise EngineError(ErrorCode.INVALID_PARAMETER, f"manifest {path} is {kind}, not a regular file: give a "
                              "file of JSON Lines")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise _too_big(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Manifest:
    """A manifest file, read line by line each time it is iterated (see the module docstring).

    Relative inputs resolve against ``input_root`` or the manifest's folder; ``templates``
    resolves template names (:meth:`engine.Service.load_manifest` passes the store's). Iterating
    raises :class:`EngineError` only when the manifest itself cannot be read: ``InputNotFound``
    when it does not exist, ``InvalidParameter`` when it is not a regular file (a directory, a
    FIFO, ``/dev/zero``), is over :data:`MAX_MANIFEST_BYTES` or fails to read. Bad lines are
    entries with their error, except those whose code is in ``fatal``: failures that are not the
    line's (the store failing while a template is looked up), raised as they come. :meth:`check`
    opens the file once, so that a run refuses an unreadable manifest before anything else.
    """

    def __init__(self, path: Path | str, *, input_root: Path | str | None = None,
                 templates: TemplateLookup | None = None, fatal: frozenset[ErrorCode] = frozenset()) -> None:
        self.path = Path(path)
        self.input_root = Path(input_root) if input_root is not None else _folder_of(self.path)
        self.templates = templates
        self.fatal = fatal

    def check(self) -> None:
        """Raise the EngineError iterating would raise first, if the file cannot be opened."""
        _open_manifest(self.path).close()

    def __iter__(self) -> Iterator[ManifestEntry]:
        seen = FirstLines()
        with _open_manifest(self.path) as handle:
            try:
                for number, text in _read_lines(handle, self.path):
                    if isinstance(text, EngineError):
                        yield ManifestEntry(number, f"line-{number}", error=text)
                        continue
                    entry = _entry(number, text, seen, self.input_root, self.templates)
                    if entry is not None and entry.error is not None and entry.error.code in self.fatal:
                        raise entry.error
                    if entry is not None:
                        yield entry
            except OSError as exc:
                raise EngineError(ErrorCode.INVALID_PARAMETER,
                                  f"manifest {self.path} cannot be read: {exc.strerror or exc}") from None


def load_manifest(path: Path | str, *, input_root: Path | str | None = None,
                  templates: TemplateLookup | None = None) -> list[ManifestEntry]:
    """Every entry of a manifest file, in a list (:class:`Manifest` streams them instead: what a
    run of a long manifest uses); raises as iterating a :class:`Manifest` does."""
    return list(Manifest(path, input_root=input_root, templates=templates))
