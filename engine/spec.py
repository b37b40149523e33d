"""What a user asks for: one animated image cut from one video.

A manifest line comes in one of two shapes, and both become the same frozen :class:`JobSpec`:

* snake_case fields: ``{"id", "input", "output", "format", "fps", "width", "height", "seek",
  "duration" | "trim_end", "fit", "pad_colour", "max_bytes"}`` (``seek`` may be ``"auto"``);
* the VOD template shape: ``{"id", "input", "output", "TemplateConfig": {...}}``, where numbers may
  also be numeric strings and ``TemplateConfig`` may be a JSON string, as the service's API sends
  them. The config itself comes in the service's two shapes, which mean the same thing:

  - flat, as the feature's documentation writes it: ``{"Format", "Fps", "Width", "Height",
    "TimeSpan": {"Seek", "Duration" | "End"}, "SetAsCover"}``, plus this engine's ``"Fit"``,
    ``"PadColour"`` (:data:`FIT_MODES`) and ``"MaxBytes"`` (at the top level in either shape);
  - nested, as older API clients send it: ``{"Video": {"Width", "Height", "Fps"}, "Container":
    {"Format"}, "Clip": {"TimeSpan": {"Seek", "Duration" | "End"}}, "SetAsCover"}``.

  One config uses one shape: mixing them, an unknown key at any level, or a non-object where an
  object belongs is an ``InvalidParameter`` naming the path (``TemplateConfig.Video.Fps``).
  Errors about a nested config's values name the nested path too; the flat shape and snake_case
  lines keep the snake_case names (``fps must be from 1 to 60``) that users already quote.

Times (``seek``, ``duration``, ``trim_end``; ``Seek``, ``Duration``, ``End``) are seconds, as a
number or a numeric string, or a clock string ``hh:mm:ss[.SSS]`` (:func:`parse_seconds`).
``seek`` (``Seek``) may also be ``"auto"`` (:data:`SEEK_AUTO`), with ``duration`` only: the job
starts where the liveliest span of that length is (:mod:`engine.autostart`, once the video is open).

Validation here covers everything that can be judged without opening the video (the formats
allowed are those of the table in :mod:`engine.encode`); range checks against the video's length
live in :mod:`engine.timeline`.
"""

from __future__ import annotations

import json
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

MAX_JSON_DEPTH = 32
"""Deepest nesting of objects and arrays a manifest line or template body may have. The deepest real
one is 4 (a line, its TemplateConfig, Clip, TimeSpan); deeper text is refused with InvalidParameter
before anything walks it (json and repr recurse, and Python's recursion limit would stop the batch)."""

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Ids are matched whole (``fullmatch``): ``$`` would let a trailing newline through."""
_SNAKE_FIELDS = {"id", "input", "output", "template", "format", "fps", "width", "height", "seek", "duration",
                 "trim_end", "set_as_cover", "fit", "pad_colour", "max_bytes"}
_VOD_TOP_FIELDS = {"id", "input", "output", "template", "TemplateConfig"}
_VOD_CONFIG_FIELDS = {"Format", "Fps", "Width", "Height", "TimeSpan", "SetAsCover", "Fit", "PadColour", "MaxBytes"}
_SHAPE_FREE_FIELDS = {"SetAsCover", "Fit", "PadColour", "MaxBytes"}
"""TemplateConfig fields that sit at its top level in either shape (Fit and PadColour are this
engine's own, beside the service's SetAsCover)."""

FIT_MODES = {"fill": "exactly width x height, stretched", "contain": "inside width x height, aspect kept",
             "cover": "exactly width x height, aspect kept, the overflow cropped around the centre",
             "pad": "exactly width x height, aspect kept, bars of pad_colour"}
"""How a picture goes into width x height when both are given (``fit``; the same modes as
:data:`animated_previews.kernels.fit.FIT_MODES`). ``fill`` is the default."""
_HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")
SEEK_AUTO = "auto"
"""The ``seek`` that asks the engine to choose the start (:attr:`JobSpec.seek_auto`)."""
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
    fit: str = "fill"
    """One of :data:`FIT_MODES`; anything but ``fill`` only with both width and height."""
    pad_colour: str | None = None
    """``#rrggbb`` (lower case) of the bars when ``fit`` is ``pad`` (default ``#000000``); None otherwise."""
    max_bytes: int | None = None
    """The image's largest size in bytes (:mod:`engine.byte_budget` gives up colours or quality,
    then frames, then size to meet it); None: no budget."""
    seek_auto: bool = False
    """``seek: "auto"``: the job replaces ``seek`` (0 until then) by the start of the video's
    liveliest ``duration`` seconds (:mod:`engine.autostart`), once the video is probed."""

    @property
    def pad_rgb(self) -> tuple[int, int, int]:
        """``pad_colour`` as (R, G, B) 0-255; black when there is none."""
        text = (self.pad_colour or "#000000").lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)

    def output_path(self, out_dir: Path) -> Path:
        """Where the image goes: ``output`` if given, else ``<out_dir>/<id>.<format>``."""
        return self.output if self.output is not None else out_dir / f"{self.id}.{self.format}"


def _fail(message: str) -> EngineError:
    return EngineError(ErrorCode.INVALID_PARAMETER, message)


MAX_BYTES_RANGE = (1024, 2**31 - 1)
"""``max_bytes`` from 1 KiB (a GIF's header and one small frame) to 2 GiB."""


def _max_bytes(value: Any, what: str) -> int | None:
    """A byte budget: a whole number (or numeric string, as the service's API sends numbers) in
    :data:`MAX_BYTES_RANGE`, or None."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else value
    number = None
    if isinstance(text, str) and re.fullmatch(r"[0-9]{1,12}", text):
        number = int(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        number = text
    elif isinstance(text, float) and text.is_integer():
        number = int(text)
    if number is None or not MAX_BYTES_RANGE[0] <= number <= MAX_BYTES_RANGE[1]:
        raise _fail(f"{what} must be a whole number of bytes from {MAX_BYTES_RANGE[0]} to {MAX_BYTES_RANGE[1]}, "
                    f"got {value!r}")
    return number


def check_json(value: Any, what: str) -> Any:
    """``value`` (parsed JSON: objects, arrays, strings, numbers) if it nests at most
    :data:`MAX_JSON_DEPTH` levels and every string (keys too) is valid Unicode; else an
    InvalidParameter naming ``what``. Iterative, so it never recurses itself.

    A lone surrogate (``"\\ud800"`` in JSON) is valid JSON but not text: the file system, SQLite
    and the UTF-8 results file all refuse it, each with an exception of its own."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise _fail(f"{what} holds a lone surrogate ({item[exc.start]!r}); text must be valid Unicode") from None
            continue
        if isinstance(item, Mapping):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _fail(f"{what} nests objects or arrays deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads(text)``, checked by :func:`check_json`. A text nested too deeply for the parser
    itself (RecursionError) is the same InvalidParameter; a syntax error stays a
    :class:`json.JSONDecodeError` for the caller to word."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _fail(f"{what} nests objects or arrays deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # not a syntax error: an integer past Python's digit limit (int_max_str_digits)
        raise _fail(f"{what} holds a number with too many digits to read (Python reads at most 4300)") from None
    return check_json(value, what)


def _path_text(value: Any, field: str, what: str) -> str:
    """A path as given in a line: a non-blank string the operating system can take (no NUL)."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{field} must be {what}")
    if "\0" in value:
        raise _fail(f"{field} must be {what}: it holds a NUL character, which no file name may")
    return value


def _expanded(text: str, field: str) -> Path:
    """``text`` as a path, ``~`` and ``~user`` expanded; a user this machine does not know is an
    InvalidParameter (pathlib raises RuntimeError for it)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise _fail(f"{field} {text!r} starts with the home folder of a user this machine does not have") from None


def _number(value: Any, field: str, allowed: str = "", *, is_time: bool = False) -> float:
    """Accept JSON numbers and numeric strings ("15", "2.5"); refuse booleans and NaN/inf.

    ``is_time`` makes a non-finite value an InvalidTimeRange (a time that can never be in range)
    rather than an InvalidParameter; it is a flag, not read from ``field``, because a nested
    config names its fields by path (``TemplateConfig.Clip.TimeSpan.Seek``)."""
    wrong = _fail(f"{field} must be a number{allowed}, got {value!r}")
    if isinstance(value, bool):
        raise wrong
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise wrong from None
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer past the float range: as infinite as "1e400"
            number = math.inf if value > 0 else -math.inf
    else:
        raise wrong
    if not math.isfinite(number):
        raise EngineError(
            ErrorCode.INVALID_TIME_RANGE if is_time else ErrorCode.INVALID_PARAMETER,
            f"{field} must be a finite number, got {value!r}",
        )
    return number


TIME_FORMS = ("seconds (a number or numeric string such as 5 or \"2.5\") or \"hh:mm:ss[.SSS]\" "
              "(hours any whole number, minutes and seconds 00-59, e.g. \"00:01:05.5\")")
"""The accepted ways to write a time, as error messages state them."""

_CLOCK = re.compile(r"(?P<h>[0-9]+):(?P<m>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:\.(?P<frac>[0-9]+))?")
"""``hh:mm:ss[.SSS]``: ASCII digits only (``\\d`` would take any script's digits), no sign.

Only the three-part form: a two-part ``"01:30"`` reads as mm:ss to ffmpeg and as hh:mm to most
people, and the service documents ``hh:mm:ss[.SSS]`` alone, so a two-part time is refused rather
than guessed. Minutes and seconds take one or two digits (``"0:1:5"`` is unambiguous)."""


def parse_seconds(value: Any, field: str) -> float:
    """A time in seconds from a number, a numeric string or an ``hh:mm:ss[.SSS]`` string.

    The service's API accepts both spellings for Seek/Duration/End, and configs copied from it
    use either. A string with a ``:`` is a clock time and must be well formed (minutes and seconds
    below 60, no sign, no fourth part): otherwise an InvalidTimeRange naming ``field`` and the
    accepted forms. Anything else is read as by :func:`_number`, with its messages. The sign and
    zero checks are left to the caller, which knows whether zero is allowed."""
    if isinstance(value, str) and ":" in value:
        match = _CLOCK.fullmatch(value.strip())
        if match is None or int(match["m"]) >= 60 or int(match["s"]) >= 60:
            raise EngineError(ErrorCode.INVALID_TIME_RANGE, f"{field} must be {TIME_FORMS}, got {value!r}")
        try:
            whole = int(match["h"]) * 3600 + int(match["m"]) * 60 + int(match["s"])
            # One decimal conversion of the whole text, so "01:02:03.1" is exactly float("3723.1").
            seconds = float(f"{whole}.{match['frac'] or '0'}")
        except ValueError:  # hours past Python's 4300-digit limit: far past the float range too
            seconds = math.inf
        if not math.isfinite(seconds):
            raise EngineError(ErrorCode.INVALID_TIME_RANGE, f"{field} must be a finite time, got {value!r}")
        return seconds
    return _number(value, field, " of seconds or an hh:mm:ss[.SSS] time", is_time=True)


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
    number = parse_seconds(value, field)
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


def _seek(fields: Mapping[str, Any], name: Callable[[str], str]) -> tuple[float, bool]:
    """(seek, seek_auto): a time, or ``"auto"`` (any case) with ``duration`` and no ``trim_end``:
    the choice needs a span of known length, which a Trim-mode span only has once the video is open."""
    value = fields.get("seek")
    if not (isinstance(value, str) and value.strip().lower() == SEEK_AUTO):
        return _time(value, name("seek"), positive=False) or 0.0, False
    if fields.get("trim_end") not in (None, ""):
        raise _fail(f"{name('seek')} \"auto\" chooses where a span of {name('duration')} seconds starts, so it "
                    f"needs {name('duration')}, not {name('trim_end')}; give {name('duration')}, or a {name('seek')} "
                    f"in seconds")
    if fields.get("duration") in (None, ""):
        raise _fail(f"{name('seek')} \"auto\" needs {name('duration')}: the length of the liveliest span to find "
                    f"(seconds)")
    return 0.0, True


def _fit(fields: Mapping[str, Any], name: Callable[[str], str], *, both_sides: bool) -> tuple[str, str | None]:
    """(fit, pad_colour) of a line: the mode (default ``fill``), and ``#rrggbb`` for ``pad``
    (default black), else None. A mode other than ``fill`` needs both sides; a pad_colour needs
    ``pad``."""
    value = fields.get("fit")
    mode = "fill" if value is None or value == "" else value.strip().lower() if isinstance(value, str) else value
    if not isinstance(mode, str) or mode not in FIT_MODES:
        allowed = "; ".join(f"{key} ({meaning})" for key, meaning in FIT_MODES.items())
        raise _fail(f"{name('fit')} must be one of {', '.join(FIT_MODES)}, got {value!r}: {allowed}")
    if mode != "fill" and not both_sides:
        raise _fail(f"{name('fit')} {mode} needs both {name('width')} and {name('height')}: with one side or none the "
                    f"output keeps the source's aspect ratio anyway, so there is nothing to fit into; give both, or "
                    f"leave {name('fit')} out")
    colour = fields.get("pad_colour")
    if colour is None or colour == "":
        return mode, "#000000" if mode == "pad" else None
    match = _HEX_COLOUR.fullmatch(colour.strip()) if isinstance(colour, str) else None
    if match is None:
        raise _fail(f"{name('pad_colour')} must be a colour as #rrggbb or rrggbb (six hex digits, e.g. #000000 for "
                    f"black, #ffffff for white), got {colour!r}")
    if mode != "pad":
        raise _fail(f"{name('pad_colour')} colours the bars of {name('fit')} pad, but {name('fit')} is {mode}; set "
                    f"{name('fit')} to pad or leave {name('pad_colour')} out")
    return mode, "#" + match[1].lower()


def _check_unknown(fields: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise _fail(f"unknown field(s) {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))}")


# -- TemplateConfig: the flat and the nested shape ---------------------------------------------------

_NESTED_CONFIG_FIELDS = {"Video", "Container", "Clip", *_SHAPE_FREE_FIELDS}
_NESTED_OBJECT_FIELDS = {"Video": {"Width", "Height", "Fps"}, "Container": {"Format"}, "Clip": {"TimeSpan"}}
_SHAPES = ("flat {Format, Fps, Width, Height, TimeSpan: {Seek, Duration | End}, SetAsCover, Fit, PadColour} or "
           "nested {Video: {Width, Height, Fps}, Container: {Format}, Clip: {TimeSpan: {Seek, Duration | End}}, "
           "SetAsCover, Fit, PadColour, MaxBytes}")

_FLAT_LABELS = {"set_as_cover": "SetAsCover"}
"""Field -> the name its messages use in a flat TemplateConfig (others: the field)."""
_NESTED_LABELS = {
    "format": "TemplateConfig.Container.Format", "fps": "TemplateConfig.Video.Fps",
    "width": "TemplateConfig.Video.Width", "height": "TemplateConfig.Video.Height",
    "seek": "TemplateConfig.Clip.TimeSpan.Seek", "duration": "TemplateConfig.Clip.TimeSpan.Duration",
    "trim_end": "TemplateConfig.Clip.TimeSpan.End", "set_as_cover": "SetAsCover", "fit": "Fit", "pad_colour": "PadColour",
    "max_bytes": "MaxBytes",
}
_VOD_FLAT_LABELS = {**_FLAT_LABELS, "fit": "Fit", "pad_colour": "PadColour", "max_bytes": "MaxBytes"}
"""A flat TemplateConfig's: this engine's own fields by their TemplateConfig names."""


def load_template_config(config: Any) -> Mapping[str, Any]:
    """A TemplateConfig as given: an object, or the JSON string of one (the service's API sends a
    string). Its shape is checked by :func:`flat_template_config`."""
    if isinstance(config, str):
        try:
            config = parse_json(config, "TemplateConfig")
        except json.JSONDecodeError as exc:
            raise _fail(f"TemplateConfig is not valid JSON: {exc}") from None
    if not isinstance(config, Mapping):
        raise _fail("TemplateConfig must be an object")
    return config


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{path} must be an object, got {value!r}")
    return value


def _is_nested(config: Mapping[str, Any]) -> bool:
    """Which shape ``config`` is in: nested if it has any nested-only key. Raises for a config with
    keys of both shapes, naming them: guessing which one was meant would silently drop fields."""
    nested = sorted(set(config) & set(_NESTED_OBJECT_FIELDS))
    flat = sorted(set(config) & (_VOD_CONFIG_FIELDS - _SHAPE_FREE_FIELDS))
    if nested and flat:
        raise _fail(
            f"TemplateConfig mixes the flat shape ({', '.join('TemplateConfig.' + k for k in flat)}) with the nested "
            f"shape ({', '.join('TemplateConfig.' + k for k in nested)}); use one: {_SHAPES}")
    if not nested:
        return False
    _check_unknown(config, _NESTED_CONFIG_FIELDS, "TemplateConfig")
    return True


def flat_template_config(config: Any) -> dict[str, Any]:
    """``config`` (either shape, object or JSON string) in the flat shape, values untouched.

    The flat shape is what the store keeps and what GetVodTemplate answers, so both shapes meet
    here; values (None included, which template updates use to remove a field) are validated
    later by :func:`parse_job`."""
    config = load_template_config(config)
    if not _is_nested(config):
        _check_unknown(config, _VOD_CONFIG_FIELDS, "TemplateConfig")
        flat = dict(config)
        if "TimeSpan" in flat:
            span = flat["TimeSpan"] or {}  # a null or empty TimeSpan has always meant "none given"
            if not isinstance(span, Mapping):
                raise _fail("TemplateConfig.TimeSpan must be an object")
            _check_unknown(span, _VOD_SPAN_FIELDS, "TemplateConfig.TimeSpan")
            flat["TimeSpan"] = dict(span)
        return flat
    flat = {}
    for key, inner in _NESTED_OBJECT_FIELDS.items():
        if key not in config:
            continue
        path = f"TemplateConfig.{key}"
        part = _object(config[key], path)
        _check_unknown(part, inner, path)
        if key != "Clip":
            flat.update(part)
        elif "TimeSpan" in part:
            span = _object(part["TimeSpan"], f"{path}.TimeSpan")
            _check_unknown(span, _VOD_SPAN_FIELDS, f"{path}.TimeSpan")
            flat["TimeSpan"] = dict(span)
    for key in sorted(_SHAPE_FREE_FIELDS & set(config)):
        flat[key] = config[key]
    return flat


def _flatten_vod(line: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn the VOD TemplateConfig shape into snake_case fields (values still unvalidated), with
    the names that messages about them should use (the nested path for a nested config)."""
    _check_unknown(line, _VOD_TOP_FIELDS, "a TemplateConfig line")
    config = load_template_config(line["TemplateConfig"])
    labels = _NESTED_LABELS if _is_nested(config) else _VOD_FLAT_LABELS
    config = flat_template_config(config)
    span = config.get("TimeSpan") or {}
    flat = {k: line[k] for k in ("id", "input", "output", "template") if k in line}
    for field, key in (("format", "Format"), ("fps", "Fps"), ("width", "Width"), ("height", "Height"),
                       ("set_as_cover", "SetAsCover"), ("fit", "Fit"), ("pad_colour", "PadColour"),
                       ("max_bytes", "MaxBytes")):
        if key in config:
            flat[field] = config[key]
    for field, key in (("seek", "Seek"), ("duration", "Duration"), ("trim_end", "End")):
        if key in span:
            flat[field] = span[key]
    return flat, labels


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
    fit = fields.get("fit")
    if fit is not None and not (isinstance(fit, str) and fit.strip().lower() == "pad"):
        merged.pop("pad_colour", None)  # the template's bars go with its pad, not with the line's other fit
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
    check_json(line, "the line")
    if "TemplateConfig" in line:
        fields, labels = _flatten_vod(line)
    else:
        _check_unknown(line, _SNAKE_FIELDS, "the manifest line")
        fields, labels = dict(line), {}  # a snake_case line: messages name fields as it wrote them

    def name(field: str) -> str:
        """How messages name ``field``: as the line wrote it for a nested config, else snake_case."""
        return labels.get(field, field)
    if "template" in fields:
        fields = _apply_template(fields, templates)

    job_id = fields.get("id", default_id)
    if isinstance(job_id, (int, float)) and not isinstance(job_id, bool):
        job_id = str(job_id)
    if not isinstance(job_id, str) or not _ID_PATTERN.fullmatch(job_id):
        raise _fail(
            f"id must be 1-128 characters of letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), got {job_id!r}"
        )

    raw_input = _path_text(fields.get("input"), "input", "the path of a video file")
    input_path = _expanded(raw_input, "input")
    if not input_path.is_absolute():
        input_path = input_root / input_path

    fmt = fields.get("format")
    fmt = fmt.strip().lower() if isinstance(fmt, str) else fmt
    if fmt is None:
        raise _fail(f"{name('format')} is required: one of {', '.join(format_names())}")
    if fmt not in format_names():  # the format table (engine.encode) is the one list of formats
        raise _fail(f"{name('format')} must be one of {', '.join(format_names())}, got {fields.get('format')!r}")

    if fields.get("fps") is None:
        raise _fail(f"{name('fps')} is required: frames per second from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    fps = _number(fields["fps"], name("fps"), f" from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise _fail(f"{name('fps')} must be from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}, got {fields['fps']!r}")

    seek, seek_auto = _seek(fields, name)
    duration = _time(fields.get("duration"), name("duration"), positive=True)
    trim_end = _time(fields.get("trim_end"), name("trim_end"), positive=False)
    if duration is not None and trim_end is not None:
        raise _fail(f"give either {name('duration')} (seconds from {name('seek')}) or {name('trim_end')} (seconds cut "
                    f"from the end), not both")
    if duration is None and trim_end is None:
        raise _fail(f"give {name('duration')} (seconds from {name('seek')}) or {name('trim_end')} (seconds cut from "
                    f"the end of the video)")

    output = fields.get("output")
    output_path = None
    if output is not None:
        output = _path_text(output, "output", "a file path")
        output_path = _expanded(output, "output")
        if output_path.suffix.lower() != f".{fmt}":
            raise _fail(f"output {output!r} must end in .{fmt} to match format {fmt}")

    width, height = _size(fields.get("width"), name("width")), _size(fields.get("height"), name("height"))
    fit, pad_colour = _fit(fields, name, both_sides=bool(width and height))

    return JobSpec(
        id=job_id,
        input=input_path,
        format=fmt,
        fps=fps,
        seek=seek,
        duration=duration,
        trim_end=trim_end,
        width=width,
        height=height,
        output=output_path,
        set_as_cover=_bool(fields.get("set_as_cover", False), name("set_as_cover")),
        fit=fit,
        pad_colour=pad_colour,
        max_bytes=_max_bytes(fields.get("max_bytes"), name("max_bytes")),
        seek_auto=seek_auto,
    )
