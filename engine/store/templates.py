"""Animated-image templates, as AddVodTemplate (TemplateType=DynamicImage) defines them.

A template is validated by the same rules as a manifest line (:func:`engine.spec.parse_job` on the
TemplateConfig shape), so a template the store accepts is a job the pipeline accepts, and the
error names the field and its allowed range. Only the name rule (4-64 characters, unique) is
checked here.

TemplateConfig comes as an object or a JSON string, in the flat shape of the feature's
documentation or the older nested one (``Video``/``Container``/``Clip``), with times as seconds or
``hh:mm:ss[.SSS]`` (see :mod:`engine.spec`). The store keeps the validated values, not the text, so
GetVodTemplate answers every template in the flat shape with times as seconds strings, whichever
shape and spelling created it. This engine's ``Fit`` (fill, contain, cover, pad) and ``PadColour``
(``#rrggbb``) are answered only when they are not the defaults (``Fit`` other than fill;
``PadColour`` with pad), so a template without them answers as the service's do. A template
whose ``TimeSpan.Seek`` is ``"auto"`` (the engine picks the liveliest span of ``Duration``) keeps
it as a flag (``seek_auto``) and answers ``"auto"`` again.
"""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
import uuid
from decimal import Decimal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import EngineError, ErrorCode
from ..spec import SEEK_AUTO, check_json, flat_template_config, load_template_config, parse_job
from .db import transaction

NAME_LENGTH = (4, 64)
TEMPLATE_TYPE = "DynamicImage"
_BODY_FIELDS = {"TemplateType", "Name", "TemplateConfig"}


@dataclass(frozen=True)
class Template:
    """A named recipe: format, fps, optional size, and a time span in Duration mode (``duration``
    seconds from ``seek``) or Trim mode (from ``seek`` to ``trim_end`` seconds before the end)."""

    id: str
    name: str
    format: str
    fps: float
    seek: float
    duration: float | None
    trim_end: float | None
    width: int | None = None
    height: int | None = None
    set_as_cover: bool = False
    fit: str = "fill"
    pad_colour: str | None = None
    max_bytes: int | None = None
    seek_auto: bool = False
    """``TimeSpan.Seek`` is ``"auto"`` (``seek`` is then 0)."""
    created: float = 0.0
    modified: float = 0.0

    @property
    def mode(self) -> str:
        return "Duration" if self.duration is not None else "Trim"

    def template_config(self) -> dict[str, Any]:
        """The TemplateConfig object, with numbers as strings as the service sends them."""
        span: dict[str, str] = {"Seek": SEEK_AUTO if self.seek_auto else seconds_text(self.seek)}
        if self.duration is not None:
            span["Duration"] = seconds_text(self.duration)
        else:
            span["End"] = seconds_text(self.trim_end)
        config: dict[str, Any] = {"Format": self.format, "Fps": seconds_text(self.fps)}  # exact, as times are
        if self.width is not None:
            config["Width"] = str(self.width)
        if self.height is not None:
            config["Height"] = str(self.height)
        config["TimeSpan"] = span
        config["SetAsCover"] = "true" if self.set_as_cover else "false"
        if self.fit != "fill":
            config["Fit"] = self.fit
        if self.pad_colour is not None:
            config["PadColour"] = self.pad_colour
        if self.max_bytes is not None:
            config["MaxBytes"] = str(self.max_bytes)
        return config

    def job_fields(self) -> dict[str, Any]:
        """What a job snapshots from its template when submitted (later edits do not change it).
        ``fit`` and ``pad_colour`` only when not the default (fill), ``max_bytes`` only when set,
        as older snapshots are. ``seek`` is ``"auto"`` for a template that chooses its start."""
        fields = {"format": self.format, "fps": self.fps, "seek": SEEK_AUTO if self.seek_auto else self.seek,
                  "duration": self.duration,
                  "trim_end": self.trim_end, "width": self.width, "height": self.height,
                  "set_as_cover": self.set_as_cover}
        if self.fit != "fill":
            fields.update(fit=self.fit, pad_colour=self.pad_colour)
        if self.max_bytes is not None:
            fields["max_bytes"] = self.max_bytes
        return fields


def seconds_text(seconds: float) -> str:
    """A time (or any number: Fps too) as the shortest string that reads back as the same float:
    ``5`` -> "5", ``2.5`` -> "2.5", ``3723.456`` -> "3723.456", ``29.97002997`` -> "29.97002997"
    (never "3723.46", "29.97" or "1e+06", as ``:g``'s six significant digits would give for
    hh:mm:ss.SSS times, NTSC rates and long videos), so a template read back from GetVodTemplate
    and sent again, or updated one field at a time, is the same template."""
    text = format(Decimal(repr(float(seconds))), "f")  # repr: shortest round trip; "f": no exponent
    return text[:-2] if text.endswith(".0") else text


def _invalid(message: str) -> EngineError:
    return EngineError(ErrorCode.INVALID_PARAMETER, message)


_ID_SHAPE = re.compile(r"[0-9a-fA-F]{32}")
"""A VodTemplateId (uuid4 hex): a name of this shape is refused, so an id never reads as a name."""
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories a name may not hold: controls (newline, tab, NUL, DEL, C1), format
characters (bidi overrides, zero-width), lone surrogates, line and paragraph separators."""


def check_name(name: Any) -> str:
    """A template name: 4-64 characters once stripped, printable on one line, not id-shaped.

    Names are shown one a line (``engine template list``) and looked up beside ids
    (``template show|update|delete ID-or-name``), so a name with a newline or a control
    character, or one that is 32 hexadecimal digits (what a VodTemplateId is), is refused."""
    if not isinstance(name, str) or not NAME_LENGTH[0] <= len(name.strip()) <= NAME_LENGTH[1]:
        raise _invalid(f"Name must be {NAME_LENGTH[0]}-{NAME_LENGTH[1]} characters, got {name!r}")
    name = name.strip()
    if any(unicodedata.category(ch) in _UNPRINTABLE for ch in name):
        raise _invalid(f"Name must be printable on one line: no line breaks, control or format characters, "
                       f"got {name!r}")
    if _ID_SHAPE.fullmatch(name):
        raise _invalid(f"Name must not be 32 hexadecimal digits, the shape of a VodTemplateId (commands take "
                       f"either, so it would be ambiguous), got {name!r}")
    return name


def build_template(template_id: str, name: Any, config: Any, *, created: float, modified: float,
                   stored_name: bool = False) -> Template:
    """Validate ``name`` and a TemplateConfig (object or JSON string, flat or nested shape) into a
    :class:`Template`. ``stored_name``: ``name`` is the template's own, kept as it is (a store made
    before a name rule keeps working; only a new name must pass :func:`check_name`)."""
    name = name if stored_name else check_name(name)
    config = load_template_config(config)
    spec = parse_job({"input": "template", "TemplateConfig": dict(config)}, default_id="template", input_root=Path("."))
    return Template(id=template_id, name=name, format=spec.format, fps=spec.fps, seek=spec.seek,
                    duration=spec.duration, trim_end=spec.trim_end, width=spec.width, height=spec.height,
                    set_as_cover=spec.set_as_cover, fit=spec.fit, pad_colour=spec.pad_colour,
                    max_bytes=spec.max_bytes, seek_auto=spec.seek_auto, created=created, modified=modified)


def parse_body(body: Any) -> tuple[str, Any]:
    """The (Name, TemplateConfig) of an AddVodTemplate / UpdateVodTemplate body."""
    if not isinstance(body, Mapping):
        raise _invalid("the template body must be a JSON object")
    check_json(body, "the template body")  # nesting and text, before anything walks or quotes it
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise _invalid(f"unknown field(s) {', '.join(unknown)} in the template body; allowed: {', '.join(sorted(_BODY_FIELDS))}")
    if body.get("TemplateType", TEMPLATE_TYPE) != TEMPLATE_TYPE:
        raise _invalid(f"TemplateType must be {TEMPLATE_TYPE}, got {body.get('TemplateType')!r}")
    if "TemplateConfig" not in body:
        raise _invalid("the template body needs a TemplateConfig")
    return body.get("Name"), body["TemplateConfig"]


def _row(row: sqlite3.Row) -> Template:
    return Template(id=row["id"], name=row["name"], format=row["format"], fps=row["fps"], seek=row["seek"],
                    duration=row["duration"], trim_end=row["trim_end"], width=row["width"], height=row["height"],
                    set_as_cover=bool(row["set_as_cover"]), fit=row["fit"], pad_colour=row["pad_colour"],
                    max_bytes=row["max_bytes"], seek_auto=bool(row["seek_auto"]), created=row["created"],
                    modified=row["modified"])


def _name_taken(name: str) -> EngineError:
    return _invalid(f"a template named {name!r} already exists; names are unique")


def insert_template(conn: sqlite3.Connection, name: Any, config: Any) -> Template:
    now = time.time()
    template = build_template(uuid.uuid4().hex, name, config, created=now, modified=now)
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO templates (id, name, format, fps, width, height, seek, duration, trim_end, set_as_cover,"
                " fit, pad_colour, max_bytes, seek_auto, created, modified)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (template.id, template.name, template.format, template.fps, template.width, template.height,
                 template.seek, template.duration, template.trim_end, int(template.set_as_cover), template.fit,
                 template.pad_colour, template.max_bytes, int(template.seek_auto), now, now))
    except sqlite3.IntegrityError:
        raise _name_taken(template.name) from None
    return template


def get_template(conn: sqlite3.Connection, template_id: str) -> Template:
    row = conn.execute("SELECT * FROM templates WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
                       (template_id, template_id, template_id)).fetchone()  # an id wins over a name
    if row is None:
        raise EngineError(ErrorCode.TEMPLATE_NOT_FOUND, f"no template with id or name {template_id!r}")
    return _row(row)


def list_templates(conn: sqlite3.Connection) -> list[Template]:
    return [_row(r) for r in conn.execute("SELECT * FROM templates ORDER BY created, id")]


def merge_config(config: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the given TemplateConfig ``changes``; a new Duration drops End and vice versa,
    and a new Fit other than pad (or Fit removed) drops PadColour, which colours pad's bars only.

    Either may be in the nested shape: both are brought to the flat one first, so a partial
    update in the older shape changes the same fields (a field set to None is removed)."""
    config, changes = flat_template_config(config), flat_template_config(changes)
    merged = {k: v for k, v in config.items() if k != "TimeSpan"}
    span = dict(config.get("TimeSpan") or {})
    for key, value in changes.items():
        if key == "TimeSpan":
            for span_key, span_value in value.items():
                if span_key == "Duration":
                    span.pop("End", None)
                elif span_key == "End":
                    span.pop("Duration", None)
                span[span_key] = span_value
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if "Fit" in changes and "PadColour" not in changes and not (
            isinstance(changes["Fit"], str) and changes["Fit"].strip().lower() == "pad"):
        merged.pop("PadColour", None)
    merged["TimeSpan"] = span
    return merged


def update_template(conn: sqlite3.Connection, template_id: str, *, name: Any = None,
                    config: Mapping[str, Any] | str | None = None,
                    changes: Mapping[str, Any] | None = None) -> Template:
    """Replace the config (``config``: either shape, object or JSON string) or change some of its fields
    (``changes``); rename with ``name``."""
    with transaction(conn):
        current = get_template(conn, template_id)
        new_config = config if config is not None else merge_config(current.template_config(), changes or {})
        updated = build_template(current.id, current.name if name is None else name, new_config,
                                 created=current.created, modified=time.time(), stored_name=name is None)
        try:
            conn.execute(
                "UPDATE templates SET name = ?, format = ?, fps = ?, width = ?, height = ?, seek = ?, duration = ?,"
                " trim_end = ?, set_as_cover = ?, fit = ?, pad_colour = ?, max_bytes = ?, seek_auto = ?, modified = ?"
                " WHERE id = ?",
                (updated.name, updated.format, updated.fps, updated.width, updated.height, updated.seek,
                 updated.duration, updated.trim_end, int(updated.set_as_cover), updated.fit, updated.pad_colour,
                 updated.max_bytes, int(updated.seek_auto), updated.modified, updated.id))
        except sqlite3.IntegrityError:
            raise _name_taken(updated.name) from None
    return updated


def delete_template(conn: sqlite3.Connection, template_id: str) -> Template:
    """Remove a template. Jobs already submitted keep their snapshot of it and still run."""
    with transaction(conn):
        template = get_template(conn, template_id)
        conn.execute("DELETE FROM templates WHERE id = ?", (template.id,))
    return template


__all__ = ["Template", "build_template", "check_name", "delete_template", "get_template", "insert_template",
           "list_templates", "merge_config", "parse_body", "seconds_text", "update_template"]
