"""What a user asks for: one animated image cut from one video.

A manifest line comes in one of two shapes, and both become the same frozen :class:`JobSpec`:

* snake_case fields: ``{"id", "input", "output", "format", "fps", "width", "height", "seek",
  "duration" | "trim_end"}``;
* the VOD template shape: ``{"id", "input", "output", "TemplateConfig": {"Format", "Fps", "Width",
  "Height", "TimeSpan": {"Seek", "Duration" | "End"}, "SetAsCover"}}``, where numbers may also
  be numeric strings, as the service's API sends them.

Validation here covers everything that can be judged without opening the video (the formats
allowed are those of the table in :mod:`engine.encode`); range checks against the video's length
live in :mod:`engine.timeline`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .encode import format_names
from .errors import EngineError, ErrorCode

FPS_RANGE = (1.0, 60.0)
MAX_SIDE = 4096
"""Largest output width or height; far above any preview size, low enough to bound memory."""

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SNAKE_FIELDS = {"id", "input", "output", "template", "format", "fps", "width", "height", "seek", "duration",
                 "trim_end", "set_as_cover"}
_VOD_TOP_FIELDS = {"id", "input", "output", "template", "TemplateConfig"}
_VOD_CONFIG_FIELDS = {"Format", "Fps", "Width", "Height", "TimeSpan", "SetAsCover"}
_VOD_SPAN_FIELDS = {"Seek", "Duration", "End"}


@dataclass(frozen=True)
class JobSpec:
    """One validated request: cut ``input`` from ``seek`` for ``duration`` (or up to ``trim_end``
    before the end), sample at ``fps`` and encode as ``format`` at ``width`` x ``height``
    (``None`` = derived from the source, keeping its display aspect ratio)."""

    id: str
    input: Path
    format: str
    fps: float
    seek: float = 0.0
    duration: float | None = None
    trim_end: float | None = None
    width: int | None = None
    height: int | None = None
    output: Path | None = None
    set_as_cover: bool = False

    def output_path(self, out_dir: Path) -> Path:
        """Where the image goes: ``output`` if given, else ``<out_dir>/<id>.<format>``."""
        return self.output if self.output is not None else out_dir / f"{self.id}.{self.format}"


def _fail(message: str) -> EngineError:
    return EngineError(ErrorCode.INVALID_PARAMETER, message)


def _number(value: Any, field: str, allowed: str = "") -> float:
    """Accept JSON numbers and numeric strings ("15", "2.5"); refuse booleans and NaN/inf."""
    wrong = _fail(f"{field} must be a number{allowed}, got {value!r}")
    if isinstance(value, bool):
        raise wrong
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise wrong from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise wrong
    if not math.isfinite(number):
        raise EngineError(
            ErrorCode.INVALID_TIME_RANGE if field in _TIME_FIELDS else ErrorCode.INVALID_PARAMETER,
            f"{field} must be a finite number, got {value!r}",
        )
    return number


_TIME_FIELDS = {"seek", "duration", "trim_end", "Seek", "Duration", "End"}


def _size(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    number = _number(value, field)
    if number != int(number) or not 1 <= number <= MAX_SIDE:
        raise _fail(f"{field} must be a whole number of pixels from 1 to {MAX_SIDE}, got {value!r}")
    return int(number)


def _time(value: Any, field: str, *, positive: bool) -> float | None:
    if value is None or value == "":
        return None
    number = _number(value, field)
    if number < 0 or (positive and number == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise EngineError(ErrorCode.INVALID_TIME_RANGE, f"{field} must be {bound} seconds, got {value!r}")
    return number


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail(f"{field} must be true or false, got {value!r}")


def _check_unknown(fields: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise _fail(f"unknown field(s) {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))}")


def _flatten_vod(line: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the VOD TemplateConfig shape into snake_case fields (values still unvalidated)."""
    _check_unknown(line, _VOD_TOP_FIELDS, "a TemplateConfig line")
    config = line["TemplateConfig"]
    if not isinstance(config, Mapping):
        raise _fail("TemplateConfig must be an object")
    _check_unknown(config, _VOD_CONFIG_FIELDS, "TemplateConfig")
    span = config.get("TimeSpan") or {}
    if not isinstance(span, Mapping):
        raise _fail("TemplateConfig.TimeSpan must be an object")
    _check_unknown(span, _VOD_SPAN_FIELDS, "TemplateConfig.TimeSpan")
    flat = {k: line[k] for k in ("id", "input", "output", "template") if k in line}
    for field, key in (("format", "Format"), ("fps", "Fps"), ("width", "Width"), ("height", "Height"),
                       ("set_as_cover", "SetAsCover")):
        if key in config:
            flat[field] = config[key]
    for field, key in (("seek", "Seek"), ("duration", "Duration"), ("trim_end", "End")):
        if key in span:
            flat[field] = span[key]
    return flat


TemplateLookup = Callable[[str], Mapping[str, Any]]
"""Name or id of a stored template -> its fields (format, fps, width, height, seek, duration,
trim_end, set_as_cover); raises EngineError(TemplateNotFound) for an unknown one."""


def _apply_template(fields: dict[str, Any], templates: TemplateLookup | None) -> dict[str, Any]:
    """A line naming ``"template"`` starts from that template's fields; its own fields win.

    The time span is one choice: a line giving ``duration`` drops the template's ``trim_end`` and
    the other way round, so a Trim-mode template can be used for a Duration-mode line."""
    reference = fields.pop("template")
    if not isinstance(reference, str) or not reference.strip():
        raise _fail(f"template must be the name or id of a stored template, got {reference!r}")
    if templates is None:
        raise _fail("template names a stored template: run with a store (engine run does, unless --no-store)")
    merged = {k: v for k, v in templates(reference.strip()).items() if v is not None}
    if fields.get("duration") is not None:
        merged.pop("trim_end", None)
    if fields.get("trim_end") is not None:
        merged.pop("duration", None)
    merged.update(fields)
    return merged


def parse_job(line: Mapping[str, Any], *, default_id: str, input_root: Path,
              templates: TemplateLookup | None = None) -> JobSpec:
    """Validate one manifest object and build its :class:`JobSpec`.

    ``default_id`` names the job when the line has no ``id``; relative ``input`` paths resolve
    against ``input_root``; a ``"template"`` field is looked up with ``templates``. Raises
    :class:`EngineError` saying which field is wrong and what is allowed.
    """
    if not isinstance(line, Mapping):
        raise _fail("a manifest line must be a JSON object")
    if "TemplateConfig" in line:
        fields = _flatten_vod(line)
    else:
        _check_unknown(line, _SNAKE_FIELDS, "the manifest line")
        fields = dict(line)
    if "template" in fields:
        fields = _apply_template(fields, templates)

    job_id = fields.get("id", default_id)
    if isinstance(job_id, (int, float)) and not isinstance(job_id, bool):
        job_id = str(job_id)
    if not isinstance(job_id, str) or not _ID_PATTERN.match(job_id):
        raise _fail(
            f"id must be 1-128 characters of letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), got {job_id!r}"
        )

    raw_input = fields.get("input")
    if not isinstance(raw_input, str) or not raw_input.strip():
        raise _fail("input must be the path of a video file")
    input_path = Path(raw_input).expanduser()
    if not input_path.is_absolute():
        input_path = input_root / input_path

    fmt = fields.get("format")
    fmt = fmt.strip().lower() if isinstance(fmt, str) else fmt
    if fmt not in format_names():  # the format table (engine.encode) is the one list of formats
        raise _fail(f"format must be one of {', '.join(format_names())}, got {fields.get('format')!r}")

    if fields.get("fps") is None:
        raise _fail(f"fps is required: frames per second from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    fps = _number(fields["fps"], "fps", f" from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise _fail(f"fps must be from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}, got {fields['fps']!r}")

    seek = _time(fields.get("seek"), "seek", positive=False) or 0.0
    duration = _time(fields.get("duration"), "duration", positive=True)
    trim_end = _time(fields.get("trim_end"), "trim_end", positive=False)
    if duration is not None and trim_end is not None:
        raise _fail("give either duration (seconds from seek) or trim_end (seconds cut from the end), not both")
    if duration is None and trim_end is None:
        raise _fail("give duration (seconds from seek) or trim_end (seconds cut from the end of the video)")

    output = fields.get("output")
    output_path = None
    if output is not None:
        if not isinstance(output, str) or not output.strip():
            raise _fail("output must be a file path")
        output_path = Path(output).expanduser()
        if output_path.suffix.lower() != f".{fmt}":
            raise _fail(f"output {output!r} must end in .{fmt} to match format {fmt}")

    return JobSpec(
        id=job_id,
        input=input_path,
        format=fmt,
        fps=fps,
        seek=seek,
        duration=duration,
        trim_end=trim_end,
        width=_size(fields.get("width"), "width"),
        height=_size(fields.get("height"), "height"),
        output=output_path,
        set_as_cover=_bool(fields.get("set_as_cover", False), "SetAsCover"),
    )
