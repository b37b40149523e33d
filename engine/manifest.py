"""Reading a batch manifest: JSON Lines, one job per line.

Every non-blank line becomes a :class:`ManifestEntry`, either a valid :class:`JobSpec` or the
error that explains what is wrong with that line, so one bad line is reported as a failed job
and never stops the rest of the batch. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import EngineError, ErrorCode
from .result import Result
from .spec import JobSpec, TemplateLookup, parse_job


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


def parse_manifest_lines(lines: Iterator[str] | list[str], *, input_root: Path,
                         templates: TemplateLookup | None = None) -> Iterator[ManifestEntry]:
    """Parse manifest text line by line; duplicate ids after the first are errors. ``templates``
    resolves lines that name a stored template (``"template": "name or id"``)."""
    seen: set[str] = set()
    for number, text in enumerate(lines, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        default_id = f"line-{number}"
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield ManifestEntry(number, default_id, error=EngineError(
                ErrorCode.INVALID_PARAMETER, f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        job_id = _id_hint(obj, default_id)
        try:
            spec = parse_job(obj, default_id=default_id, input_root=input_root, templates=templates)
        except EngineError as exc:
            yield ManifestEntry(number, job_id, error=exc)
            continue
        if spec.id in seen:
            yield ManifestEntry(number, spec.id, error=EngineError(
                ErrorCode.INVALID_PARAMETER, f"id {spec.id!r} is used by an earlier line; ids must be unique"))
            continue
        seen.add(spec.id)
        yield ManifestEntry(number, spec.id, spec=spec)


def load_manifest(path: Path | str, *, input_root: Path | str | None = None,
                  templates: TemplateLookup | None = None) -> list[ManifestEntry]:
    """Read a manifest file. Relative inputs resolve against ``input_root`` or the manifest's folder;
    ``templates`` resolves template names (:meth:`engine.Engine.load_manifest` passes the store's).

    Raises :class:`EngineError` (``InputNotFound``) only when the manifest itself cannot be read.
    """
    path = Path(path)
    root = Path(input_root) if input_root is not None else path.resolve().parent
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"manifest {path} cannot be read: {exc}") from None
    return list(parse_manifest_lines(text.splitlines(), input_root=root, templates=templates))
