"""Fuzzing: hostile manifest lines, template bodies and API requests, counted by outcome.

The generators are hypothesis strategies (hypothesis is in the ``test`` extra). ``tests/fuzz`` runs a
few hundred cases of each in the suite, derandomized; this module runs N of them (default 100000,
split evenly over the kinds) and writes ``bench/results/NAME.{json,md}`` (NAME: ``fuzz``)::

    python -m bench.fuzz [--cases N] [--kinds manifest-lines,manifest-files,templates,api] [--name NAME]

Kinds (one case = one draw of the generator):

* ``manifest-lines``: 1-8 manifest lines (near-valid lines in every shape with one field made odd,
  arbitrary JSON, raw text, deep nesting, huge numbers, U+2028/U+0085, NUL, lone surrogates)
  through ``parse_manifest_lines``; each line is one item.
* ``manifest-files``: the same lines as raw bytes (invalid UTF-8, a BOM, CR LF, lines over 64 KiB)
  in a file read by ``load_manifest``; each line is one item.
* ``templates``: AddVodTemplate bodies (valid ones with one field made odd, in both TemplateConfig
  shapes, as objects or JSON strings, and arbitrary values) through ``Service.add_template_body``
  and ``Service.update_template(body=...)`` on a scratch store; each call is one item.
* ``api``: requests to a running ``engine serve`` (in-process, scratch store, one access key, one
  registered video): signed GET/POST with a fuzzed Action and parameters, signed with one common
  parameter made odd, unsigned, with a garbled signature, and raw HTTP (odd methods, paths,
  versions, Content-Length, bodies); each request is one item.

Every item ends in one outcome:

* ``ok``: taken (a JobSpec, a Template, a 2xx answer);
* ``refused <Code>``: refused with an error code (the EngineError's, or the API answer's Code and
  status);
* ``crashed <what>``: anything else: an exception escaping, an ``InternalError``, a 5xx answer to
  input, an answer without JSON or RequestId, a dropped or hung connection, a traceback logged
  by the server, a line reported under the wrong number, a store left unusable.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import platform
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"

SUITE = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
"""The settings of tests/fuzz: deterministic in CI (derandomize), no example database, no deadline
(a case may write a file or make a request); each test sets its own max_examples."""

# -- building blocks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as it is: numbers too long for ``json.dumps``, ``NaN``, ``1e400``, deep
    nesting (which ``json.dumps`` itself would refuse to write)."""

    text: str


def dumps(value: Any, *, ensure_ascii: bool = False) -> str:
    """JSON text of ``value`` with every :class:`Raw` written as is (raw U+2028 etc. unless
    ``ensure_ascii``; NaN and Infinity as Python writes them)."""
    raws: list[str] = []

    def swap(item: Any) -> Any:
        if isinstance(item, Raw):
            raws.append(item.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(item, dict):
            return {key: swap(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [swap(inner) for inner in item]
        return item

    text = json.dumps(swap(value), ensure_ascii=ensure_ascii, allow_nan=True)
    for index, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{index}\\u0000"', raw, 1)
    return text


def plain(value: Any) -> Any:
    """``value`` as a Python object (what a JSON parser would give): a :class:`Raw` is parsed, or
    kept as its text when no parser takes it (deeper than the recursion limit, over 4300 digits)."""
    if isinstance(value, Raw):
        try:
            return json.loads(value.text)
        except (ValueError, RecursionError):
            return value.text
    if isinstance(value, dict):
        return {key: plain(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(inner) for inner in value]
    return value


SPECIAL_CHARS = [
    "\u2028", "\u2029", "\x85", "\x00", "\ud800", "\udfff", "\ufeff", "\x1c", "\x1e", "\r", "\n", "\t", "\x7f",
    "\x1b", "\u202e", "\u200b", "\xa0", "é", "\U0001f600", "\\", '"', "'", "/", "..", "%00", ":", "#", "&", "=",
    "?", "+", "%", " ", "\u0661", "\uff11",
]
"""Characters that broke or could break something: line breaks Python's ``splitlines`` knows, NUL,
lone surrogates, a BOM, controls, bidi overrides, quotes, URL syntax, non-ASCII digits."""

NUMERIC_LIKE = [
    "NaN", "nan", "-nan", "inf", "-Infinity", "Infinity", "1e400", "-1e400", "1e-400", "-0", "0", "0x10",
    "1_000", " 15 ", "15\x00", "\u0661\u0665", "15.", ".5", "+5", "--5", "1e2", "5e-324", "2.5e1",
    "00:00:01.5", "99:59:59", "1:2:3", "01:30", "-00:00:01", "00:60:00", "00:00:60", "00:00:01.",
    "00:00:01." + "9" * 400, "9" * 400 + ":00:00", "9" * 5000 + ":00:00", "1" * 400, "1" * 5000,
    "true", "false", "null", "TRUE", "", " ", "gif", "webp", "GIF", " webp ", "png", "avif",
]
"""Strings a number field may be given: NaN-like, infinite, other digit systems, clock times
(valid, malformed, huge), hex, underscores, and words."""

ODD_NUMBERS: list[Any] = [
    0, -1, 1, 59, 60, 61, 4096, 4097, 2**31, 2**63, -2**63 - 1, 2**64, 10**18, 10**308, 10**309, 10**400,
    -10**400, 10**4299, 1e308, -1e308, 5e-324, -0.0, 0.5, 59.9999, 60.0000001, 1e-9, float("nan"), float("inf"),
    float("-inf"),
]
"""Numbers at and past every limit: ranges, 64-bit edges, the float range, the 4300-digit limit."""

RAW_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-0", "1" * 4301, "1" * 5000, "-" + "9" * 4400,
    "0." + "0" * 5000 + "1", "1e99999999999", "1E+400",
]
"""JSON number tokens no ``json.dumps`` writes: beyond the float range, past Python's 4300-digit
integer limit, NaN."""


def _deep_text(depth: int, opener: str) -> Raw:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return Raw(opener * depth + "1" + closer * depth)


def _deep_python(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


@functools.lru_cache(maxsize=None)  # strategies are built once: building one costs more than drawing
def hostile_text(*, long: bool = True, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Text that breaks parsers: special characters, numeric-looking words, long runs, any text.
    ``surrogates=False`` leaves out lone surrogates (which no client can send as UTF-8)."""
    specials = [c for c in SPECIAL_CHARS if surrogates or not 0xD800 <= ord(c[0]) <= 0xDFFF]
    parts = [
        st.text(max_size=24),
        st.lists(st.one_of(st.sampled_from(specials), st.characters()), min_size=1, max_size=12).map("".join),
        st.sampled_from(NUMERIC_LIKE),
    ]
    if long:
        runs = ["a", "1", "é", "\u2028", "/", "#", " ", "\x00"] + (["\ud800"] if surrogates else [])
        parts.append(st.tuples(st.sampled_from(runs), st.sampled_from([200, 1000, 4096, 20000, 65530, 70000])).map(
            lambda t: t[0] * t[1]))
    return st.one_of(*parts)


@functools.lru_cache(maxsize=None)
def odd_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(ODD_NUMBERS), hostile_text(),
    )


@functools.lru_cache(maxsize=None)
def odd_values(*, raw: bool = True) -> st.SearchStrategy[Any]:
    """A value for any field: odd scalars, small lists and objects of them, deep nesting, and (when
    ``raw``: text contexts) raw tokens."""
    keys = st.one_of(st.sampled_from(["id", "input", "fps", "Format", "TimeSpan", "Seek", "Video", "a", ""]),
                     hostile_text(long=False))
    parts = [
        st.recursive(odd_scalars(), lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                           st.dictionaries(keys, kids, max_size=3)), max_leaves=6),
        st.tuples(st.sampled_from([31, 32, 33, 40, 200]), st.sampled_from(["list", "dict"])).map(
            lambda t: _deep_python(*t)),
    ]
    if raw:
        parts.append(st.sampled_from(RAW_TOKENS).map(Raw))
        parts.append(st.tuples(st.sampled_from([33, 500, 5000, 100_000]), st.sampled_from(["[", '{"a":'])).map(
            lambda t: _deep_text(*t)))
    return st.one_of(*parts)


# -- near-valid values: a valid line or template with one part made odd ---------------------------------

KNOWN_TEMPLATE = "fuzz-known-template"
"""A template the manifest fuzz's lookup knows (any other name is TemplateNotFound)."""


@functools.lru_cache(maxsize=None)
@st.composite
def flat_config(draw: Callable) -> dict[str, Any]:
    """A valid TemplateConfig in the flat shape (numbers as numbers or strings, times as seconds or
    clock strings)."""
    number = lambda lo, hi: st.one_of(st.integers(lo, hi), st.integers(lo, hi).map(str))  # noqa: E731
    config: dict[str, Any] = {"Format": draw(st.sampled_from(["gif", "webp", "GIF", " webp "])),
                              "Fps": draw(st.one_of(number(1, 60), st.sampled_from([29.97002997, "12.5", 1.0])))}
    for side in ("Width", "Height"):
        if draw(st.booleans()):
            config[side] = draw(number(1, 4096))
    span: dict[str, Any] = {}
    if draw(st.booleans()):
        span["Seek"] = draw(st.sampled_from([0, 1, "2.5", "00:00:01.5", "0:0:3", 1234567]))
    if draw(st.booleans()):
        span["Duration"] = draw(st.sampled_from([1, "2", 0.5, "00:00:02", "3.25"]))
    else:
        span["End"] = draw(st.sampled_from([0, 1, "0.5", "00:00:00.250"]))
    config["TimeSpan"] = span
    if draw(st.booleans()):
        config["SetAsCover"] = draw(st.sampled_from([True, False, "true", "false"]))
    return config


def nested_config(flat: dict[str, Any]) -> dict[str, Any]:
    """The same config in the older nested shape (Video/Container/Clip)."""
    nested: dict[str, Any] = {"Container": {"Format": flat["Format"]},
                              "Video": {k: flat[k] for k in ("Width", "Height", "Fps") if k in flat},
                              "Clip": {"TimeSpan": flat["TimeSpan"]}}
    if "SetAsCover" in flat:
        nested["SetAsCover"] = flat["SetAsCover"]
    return nested


@functools.lru_cache(maxsize=None)
@st.composite
def valid_config(draw: Callable) -> dict[str, Any]:
    flat = draw(flat_config())
    return nested_config(flat) if draw(st.booleans()) else flat


@functools.lru_cache(maxsize=None)
@st.composite
def valid_line(draw: Callable) -> dict[str, Any]:
    """A valid manifest line (without its id) in one of the shapes: snake_case, TemplateConfig (flat
    or nested, object or string), or naming a stored template."""
    line: dict[str, Any] = {"input": draw(st.sampled_from(["clip.mp4", "/videos/a b.mp4", "dir/\u00fc.webm",
                                                            "../x.mov", "~/v.mp4", "~nosuchuser/v.mp4"]))}
    shape = draw(st.sampled_from(["snake", "config", "config-string", "template"]))
    if shape == "template":
        line["template"] = KNOWN_TEMPLATE
        if draw(st.booleans()):
            line["duration"] = 1
    elif shape == "snake":
        flat = draw(flat_config())
        line.update({"format": flat["Format"], "fps": flat["Fps"]})
        line.update({k.lower(): flat[k] for k in ("Width", "Height") if k in flat})
        span = flat["TimeSpan"]
        line.update({{"Seek": "seek", "Duration": "duration", "End": "trim_end"}[k]: v for k, v in span.items()})
        if "SetAsCover" in flat:
            line["set_as_cover"] = flat["SetAsCover"]
    else:
        line["TemplateConfig"] = draw(valid_config())
    if draw(st.booleans()):
        fmt = str(line.get("format", line.get("TemplateConfig", {}).get("Format", "gif"))).strip().lower()
        line["output"] = f"sub/out.{fmt}"
    return line


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (tuple of keys) in ``value``'s objects, containers included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix + (key,)
            yield from _paths(inner, prefix + (key,))


def _mutated(value: dict[str, Any], path: tuple, how: str, new: Any) -> dict[str, Any]:
    """A copy of ``value`` with the field at ``path`` replaced by ``new``, deleted, or given a
    sibling ``new`` key."""
    value = json.loads(json.dumps(value))  # a deep copy (the valid parts are plain JSON)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if how == "replace":
        parent[path[-1]] = new
    elif how == "delete":
        parent.pop(path[-1], None)
    else:
        parent[new if isinstance(new, str) else "unknown"] = 1
    return value


@functools.lru_cache(maxsize=None)
@st.composite
def near_valid(draw: Callable, base: st.SearchStrategy[dict[str, Any]], *, raw: bool = True,
               extra_paths: tuple = ()) -> tuple[dict[str, Any], tuple | None]:
    """A valid object from ``base`` with one field (any depth) replaced by an odd value, deleted,
    or given an unknown sibling; or left valid (one draw in five). Returns it and the path changed."""
    value = draw(base)
    if draw(st.integers(0, 4)) == 0:
        return value, None
    paths = [*_paths(value), *extra_paths]
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    new = draw(odd_values(raw=raw)) if how != "add" else draw(st.one_of(hostile_text(long=False), st.just("x")))
    return _mutated(value, path, how, new), path


# -- manifest lines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineCase:
    """One manifest line before it is numbered: a JSON object (its id set from its line number
    unless ``keep_id``), or ``text`` as is. ``splice`` puts raw characters into the rendered text."""

    value: Any = None
    text: str | None = None
    keep_id: bool = False
    config_as_string: bool = False
    splice: tuple[int, str] | None = None
    ensure_ascii: bool = False

    def id_for(self, number: int) -> str | None:
        """The id this line should be reported under (when it can be read at all)."""
        return None if self.keep_id or self.text is not None or self.splice is not None else f"fz-{number}"

    def render(self, number: int) -> str:
        if self.text is not None:
            return self.text
        value = self.value
        if isinstance(value, dict) and not self.keep_id:
            value = {"id": f"fz-{number}", **value}
        if self.config_as_string and isinstance(value, dict) and isinstance(value.get("TemplateConfig"), dict):
            value = {**value, "TemplateConfig": dumps(value["TemplateConfig"], ensure_ascii=self.ensure_ascii)}
        text = dumps(value, ensure_ascii=self.ensure_ascii)
        if self.splice is not None:
            at, chars = self.splice
            at = at % (len(text) + 1)
            text = text[:at] + chars + text[at:]
        return text


@functools.lru_cache(maxsize=None)
@st.composite
def manifest_line(draw: Callable) -> LineCase:
    kind = draw(st.sampled_from(["near-valid"] * 6 + ["in-string", "splice", "arbitrary", "text", "blank"]))
    if kind in ("near-valid", "in-string", "splice"):
        value, path = draw(near_valid(valid_line(), extra_paths=(("id",),)))
        keep_id = path is not None and path[0] == "id"
        if keep_id and "id" not in value:
            value = {**value}  # deleted: the line gets the default id line-N
        splice = None
        if kind == "in-string":  # a raw line break or control inside a JSON string: valid JSON or not
            value = {**value, "input": "a" + draw(st.sampled_from(SPECIAL_CHARS)) + "b.mp4"}
        elif kind == "splice":
            splice = (draw(st.integers(0, 400)), draw(st.sampled_from(SPECIAL_CHARS + ['"', "}", "{", ",", "\\u"])))
        return LineCase(value=value, keep_id=keep_id, config_as_string=draw(st.booleans()), splice=splice,
                        ensure_ascii=draw(st.booleans()))
    if kind == "arbitrary":
        return LineCase(value=draw(odd_values()), keep_id=True)
    if kind == "text":
        return LineCase(text=draw(hostile_text()).replace("\n", " "))
    return LineCase(text=draw(st.sampled_from(["", "   ", "\t", "# a comment", "  # indented", "#", "\u2028",
                                               "\x85", "\ufeff", "\x1c", "\r"])))


@functools.lru_cache(maxsize=None)
def manifest_lines() -> st.SearchStrategy[list[LineCase]]:
    return st.lists(manifest_line(), min_size=1, max_size=8)


@dataclass
class Outcomes:
    """Outcomes of the items of one case, and what went wrong, for tests to print."""

    items: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, outcome: str, detail: str = "") -> None:
        self.items.append(outcome)
        if outcome.startswith("crashed"):
            self.problems.append(f"{outcome}: {detail}"[:2000])

    def crash(self, what: str, detail: str = "") -> None:
        self.add(f"crashed {what}", detail)


def _engine():
    from animated_previews.engine.errors import EngineError, ErrorCode
    return EngineError, ErrorCode


def _error_outcome(error: Any) -> str:
    EngineError, ErrorCode = _engine()
    code = getattr(getattr(error, "code", None), "value", None)
    if not isinstance(error, EngineError) or not isinstance(error.code, ErrorCode):
        return f"crashed {type(error).__name__}"
    if error.code is ErrorCode.INTERNAL_ERROR:
        return "crashed InternalError"
    return f"refused {code}"


def template_lookup(reference: str) -> dict[str, Any]:
    """The manifest fuzz's stored templates: only :data:`KNOWN_TEMPLATE`."""
    EngineError, ErrorCode = _engine()
    if reference != KNOWN_TEMPLATE:
        raise EngineError(ErrorCode.TEMPLATE_NOT_FOUND, f"no template {reference!r}")
    return {"format": "gif", "fps": 10.0, "seek": 0.0, "duration": None, "trim_end": 0.5, "width": 160,
            "height": None, "set_as_cover": False}


def _check_entries(out: Outcomes, entries: list, expected: dict[int, str | None], where: str) -> None:
    """Every entry is a spec or an EngineError with a code, under the right line number and id."""
    numbers = [entry.line for entry in entries]
    if numbers != sorted(expected):
        out.crash("wrong-line-numbers", f"{where}: entries at lines {numbers}, expected {sorted(expected)}")
    for entry in entries:
        if (entry.spec is None) == (entry.error is None):
            out.crash("no-spec-or-error", f"{where}: line {entry.line}: {entry!r}")
            continue
        outcome = "ok" if entry.spec is not None else _error_outcome(entry.error)
        out.add(outcome, f"{where}: line {entry.line}: {entry.error!r}")
        want = expected.get(entry.line)
        if want is not None and entry.id not in (want, f"line-{entry.line}"):
            out.crash("wrong-id", f"{where}: line {entry.line} answered as {entry.id!r}, expected {want!r}")


def _blank_or_comment(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith("#")


def check_manifest_lines(cases: list[LineCase]) -> Outcomes:
    """``parse_manifest_lines`` over the rendered lines: never raises; one entry per non-blank,
    non-comment line, at its number."""
    from animated_previews.engine.manifest import parse_manifest_lines
    out = Outcomes()
    lines = [case.render(number) for number, case in enumerate(cases, start=1)]
    expected = {n: case.id_for(n) for n, (case, text) in enumerate(zip(cases, lines), start=1)
                if not _blank_or_comment(text)}
    try:
        entries = list(parse_manifest_lines(lines, input_root=Path("/fuzz"), templates=template_lookup))
    except BaseException as exc:  # noqa: BLE001 - what escapes is the finding
        out.crash(type(exc).__name__, f"parse_manifest_lines raised {exc!r:.500}")
        return out
    _check_entries(out, entries, expected, "parse_manifest_lines")
    return out


# -- manifest files (raw bytes) -----------------------------------------------------------------------

BAD_UTF8 = [b"\xff", b"\xc3(", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80", b"\xfe\xff"]


@dataclass(frozen=True)
class ByteLine:
    """One manifest line as bytes: a rendered :class:`LineCase`, damaged or padded as drawn."""

    case: LineCase
    bad: bytes | None = None
    bad_at: int = 0
    pad_to: int | None = None
    bom: bool = False
    crlf: bool = False

    def render(self, number: int) -> tuple[bytes, str | None]:
        text = self.case.render(number)
        data = text.encode("utf-8", "surrogatepass").replace(b"\n", b" ")
        want = self.case.id_for(number)
        if self.bad is not None:
            at = self.bad_at % (len(data) + 1)
            data = data[:at] + self.bad + data[at:]
            want = None
        if self.pad_to is not None:  # a line of about 64 KiB: the padding keeps it a JSON object when it was one
            pad = max(0, self.pad_to - len(data))
            data = data[:-1] + b' ' * pad + data[-1:] if data.endswith(b"}") else data + b" " * pad
        if self.bom:
            data = b"\xef\xbb\xbf" + data
        return data + (b"\r\n" if self.crlf else b"\n"), want


@functools.lru_cache(maxsize=None)
@st.composite
def byte_line(draw: Callable) -> ByteLine:
    case = draw(manifest_line())
    bad = draw(st.one_of(st.none(), st.none(), st.sampled_from(BAD_UTF8)))
    pad_to = draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from(
        [65530, 65535, 65536, 65537, 65538, 65540, 65541, 65542, 70000])))
    return ByteLine(case, bad=bad, bad_at=draw(st.integers(0, 300)), pad_to=pad_to,
                    bom=draw(st.integers(0, 9)) == 0, crlf=draw(st.booleans()))


@functools.lru_cache(maxsize=None)
def manifest_files() -> st.SearchStrategy[tuple[list[ByteLine], bool]]:
    """Lines, and whether the file ends with a line end."""
    return st.tuples(st.lists(byte_line(), min_size=1, max_size=6), st.booleans())


def expected_from_bytes(lines: list[bytes], wants: list[str | None]) -> dict[int, str | None]:
    """Which lines the README says become entries: every line but blank and comment ones (a
    line over 64 KiB is an entry unless it is a comment), numbered from 1, a BOM skipped on line 1."""
    from animated_previews.engine.manifest import MAX_LINE_BYTES
    expected: dict[int, str | None] = {}
    for number, (data, want) in enumerate(zip(lines, wants), start=1):
        if number == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        data = data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data
        if len(data) > MAX_LINE_BYTES:
            if not data.lstrip().startswith(b"#"):
                expected[number] = None
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            expected[number] = None
            continue
        if not _blank_or_comment(text):
            expected[number] = want
    return expected


def check_manifest_file(folder: Path, drawn: tuple[list[ByteLine], bool]) -> Outcomes:
    """``load_manifest`` on a file of raw bytes: never raises for a line; entries at their numbers."""
    from animated_previews.engine.manifest import load_manifest
    byte_lines, final_newline = drawn
    out = Outcomes()
    rendered = [line.render(number) for number, line in enumerate(byte_lines, start=1)]
    datas = [data for data, _ in rendered]
    if not final_newline:
        datas[-1] = datas[-1].rstrip(b"\r\n")
    for number, data in enumerate(datas[1:], start=2):  # a BOM mid-file is not skipped: that line's id is off
        if data.startswith(b"\xef\xbb\xbf"):
            rendered[number - 1] = (data, None)
    path = folder / "manifest.jsonl"
    path.write_bytes(b"".join(datas))
    expected = expected_from_bytes(datas, [want for _, want in rendered])
    try:
        entries = load_manifest(path, input_root=folder, templates=template_lookup)
    except BaseException as exc:  # noqa: BLE001
        out.crash(type(exc).__name__, f"load_manifest raised {exc!r:.500}")
        return out
    _check_entries(out, entries, expected, "load_manifest")
    return out


# -- template bodies ----------------------------------------------------------------------------------

UNIQUE_NAME = "\x00unique-name\x00"
"""Stands for a fresh template name (filled in by :func:`check_template_body`)."""


@functools.lru_cache(maxsize=None)
@st.composite
def valid_body(draw: Callable) -> dict[str, Any]:
    body: dict[str, Any] = {"Name": UNIQUE_NAME, "TemplateConfig": draw(valid_config())}
    if draw(st.booleans()):
        body["TemplateType"] = "DynamicImage"
    return body


@functools.lru_cache(maxsize=None)
@st.composite
def template_body(draw: Callable) -> Any:
    """An AddVodTemplate body as JSON gives it: valid with one part odd (its TemplateConfig an
    object or a JSON string), or any value."""
    kind = draw(st.sampled_from(["near-valid"] * 5 + ["name", "arbitrary"]))
    if kind == "arbitrary":
        return plain(draw(odd_values()))
    if kind == "name":
        body = draw(valid_body())
        body["Name"] = draw(st.one_of(hostile_text(), odd_values(raw=False),
                                      st.sampled_from(["abc", "abcd", "a" * 64, "a" * 65, "0" * 32, "f" * 32,
                                                       " name with spaces ", "line\nbreak", "bidi\u202e"])))
        return body
    body, _ = draw(near_valid(valid_body()))
    if isinstance(body.get("TemplateConfig"), (dict, list)) and draw(st.booleans()):
        body["TemplateConfig"] = dumps(body["TemplateConfig"], ensure_ascii=draw(st.booleans()))
    return plain(body)


def _fill_name(body: Any, name: str) -> Any:
    if isinstance(body, dict) and body.get("Name") == UNIQUE_NAME:
        return {**body, "Name": name}
    return body


@dataclass
class TemplateTarget:
    """A scratch store with one template that updates aim at."""

    service: Any
    target_id: str
    counter: int = 0


@contextlib.contextmanager
def template_target(folder: Path) -> Iterator[TemplateTarget]:
    from animated_previews.engine.vod import Service
    with Service(folder / "store.db") as service:
        target = service.add_template("fuzz-update-target", format="gif", fps=10, seek=0, duration=1)
        yield TemplateTarget(service, target.id)


def check_template_body(target: TemplateTarget, body: Any) -> Outcomes:
    """AddVodTemplate and UpdateVodTemplate with ``body``: a Template or an EngineError; the store
    still answers afterwards, and a template taken reads back as it was answered."""
    from animated_previews.engine.store.templates import Template
    service = target.service
    out = Outcomes()
    for action in ("add", "update"):
        target.counter += 1
        filled = _fill_name(body, f"fuzz {action} {target.counter}")
        try:
            if action == "add":
                template = service.add_template_body(filled)
            else:
                template = service.update_template(target.target_id, body=filled)
        except BaseException as exc:  # noqa: BLE001
            out.add(_error_outcome(exc), f"{action}: {exc!r:.500}")
            continue
        if not isinstance(template, Template):
            out.crash("not-a-template", f"{action} answered {template!r:.300}")
            continue
        try:
            back = service.template(template.id)
            info = service.template_info(back)
        except BaseException as exc:  # noqa: BLE001
            out.crash(f"unreadable-{type(exc).__name__}", f"{action}: reading back {template.id}: {exc!r:.500}")
            continue
        if back != template:
            out.crash("read-back-differs", f"{action}: answered {template!r}, stored {back!r}")
        else:
            out.add("ok")
        json.dumps(info)
        if action == "add":  # removed again: the store stays small (and DeleteVodTemplate is exercised)
            try:
                service.delete_template(template.id)
            except BaseException as exc:  # noqa: BLE001
                out.crash(f"undeletable-{type(exc).__name__}", f"deleting {template.id}: {exc!r:.500}")
    try:  # the store still answers
        service.template(target.target_id)
        if target.counter % 200 < 2:
            service.templates()
    except BaseException as exc:  # noqa: BLE001
        out.crash(f"store-unusable-{type(exc).__name__}", repr(exc)[:500])
    return out


# -- API requests ---------------------------------------------------------------------------------------

VIDEO = "\x00video\x00"
TEMPLATE = "\x00template\x00"
CLIP_URL = "\x00clip-url\x00"
"""Stand for the target's real video id, template id and the clip's file:// URL."""

ACTION_NAMES = ["AddVodTemplate", "UpdateVodTemplate", "GetVodTemplate", "ListVodTemplate", "DeleteVodTemplate",
                "RegisterMedia", "GetVideoInfo", "SubmitDynamicImageJob", "ListDynamicImage", "DeleteDynamicImage",
                "SetMessageCallback", "GetMessageCallback", "DeleteMessageCallback"]
PARAMS_BY_ACTION = {
    "AddVodTemplate": ["Name", "TemplateConfig", "TemplateType"],
    "UpdateVodTemplate": ["VodTemplateId", "Name", "TemplateConfig"],
    "GetVodTemplate": ["VodTemplateId"], "ListVodTemplate": ["TemplateType"], "DeleteVodTemplate": ["VodTemplateId"],
    "RegisterMedia": ["RegisterMetadatas"], "GetVideoInfo": ["VideoId"],
    "SubmitDynamicImageJob": ["VideoId", "DynamicImageTemplateId", "OverrideParams"],
    "ListDynamicImage": ["VideoId"], "DeleteDynamicImage": ["VideoId", "DynamicImageIds"],
    "SetMessageCallback": ["CallbackURL", "CallbackType", "AuthSwitch", "AuthKey", "EventTypeList"],
    "GetMessageCallback": [], "DeleteMessageCallback": [],
}
COMMON = ["Format", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"]
URLS = ["http://127.0.0.1:9/hook", "https://example.invalid/x", "file:///etc/passwd", "data:,x", "http//127.0.0.1/",
        "ftp://x/", "gopher://x/", "http://user:pw@h/", "http://[::1]:80/", "http://" + "a" * 5000, "http:///x",
        "HTTP://H/", "http://h:99999/", "http://h/\x00", " http://h/ "]


@functools.lru_cache(maxsize=None)
def _first(strategy: st.SearchStrategy[tuple]) -> st.SearchStrategy[Any]:
    return strategy.map(lambda t: t[0])


@functools.lru_cache(maxsize=None)
def _json_param(config: st.SearchStrategy[Any], text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(config.map(dumps), config.map(dumps), odd_values().map(dumps), text)


@functools.lru_cache(maxsize=None)
@st.composite
def _param_value(draw: Callable, name: str) -> str:
    text = hostile_text(surrogates=draw(st.integers(0, 9)) == 0)
    if name in ("VideoId", "VodTemplateId", "DynamicImageTemplateId"):
        return draw(st.one_of(st.sampled_from([VIDEO, TEMPLATE, VIDEO, TEMPLATE, "", " ", "0" * 32]), text))
    if name == "TemplateConfig":
        return draw(_json_param(_first(near_valid(valid_config())), text))
    if name == "OverrideParams":
        return draw(_json_param(_first(near_valid(flat_config())), text))
    if name == "RegisterMetadatas":
        item = st.fixed_dictionaries({"FileURL": st.one_of(st.sampled_from(
            [CLIP_URL, "file:///etc/passwd", "/dev/zero", "file:///nonexistent.mp4", "media/../../x", "",
             "~nosuchuser/x.mp4", "~/x.mp4", "file://otherhost/x.mp4", "file:///x.mp4?q=1"]),
            hostile_text(long=False))}, optional={"Title": hostile_text(long=False)})
        return draw(_json_param(st.lists(st.one_of(item, odd_values(raw=False)), max_size=3), text))
    if name == "CallbackURL":
        return draw(st.one_of(st.sampled_from(URLS), text))
    if name == "AuthSwitch":
        return draw(st.one_of(st.sampled_from(["on", "off", "ON", ""]), text))
    if name in ("Name", "AuthKey"):
        return draw(st.one_of(st.just(UNIQUE_NAME), text))
    return draw(text)


@dataclass(frozen=True)
class ApiCase:
    """One request: ``mode`` says how it is made (signed GET/POST, a common parameter made odd,
    unsigned, a garbled signature, or raw bytes over a socket)."""

    mode: str
    params: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""
    half_close: bool = True


RAW_METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "get", "G\x00T",
               "\u00e9"]
RAW_TARGETS = ["/", "/?Action=ListVodTemplate", "/images/x.gif", "/images/../../etc/passwd?auth_key=1-2-0-abc",
               "/gallery", "/gallery?auth_key=%ff", "*", "http://h/", "/" + "a" * 9000, "/%ff%fe", "/?%zz=1&&=&a",
               "//", "/images/", "/?Signature=%00", ""]
RAW_VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "HTTP/0.9", "", "HTTP/9999999999999.1"]
RAW_HEADERS = [
    "Content-Length: -1", "Content-Length: abc", "Content-Length: 1e3", "Content-Length: 99999999999999999999",
    "Content-Length: 0", "Content-Length: 5", "Content-Length:  3 ", "Content-Length: 3", "Content-Length: ５",
    "Content-Type: application/x-www-form-urlencoded", "Content-Type: multipart/form-data; boundary=x",
    "Content-Type: \x00", "Transfer-Encoding: chunked", "Range: bytes=0-", "Range: bytes=-1", "Range: bytes=5-1",
    "Range: bytes=a-b", "Range: bytes=0-1,2-3", "If-None-Match: *", "Expect: 100-continue", "Connection: close",
    "X-Long: " + "a" * 70000, "no colon here", ": empty name", "Host: \u00e9",
]


@functools.lru_cache(maxsize=None)
@st.composite
def raw_request(draw: Callable) -> ApiCase:
    method = draw(st.sampled_from(["GET", "POST", "HEAD"]) if draw(st.integers(0, 3)) else
                  st.one_of(st.sampled_from(RAW_METHODS), st.text(max_size=8)))
    link = st.tuples(st.sampled_from(["/gallery", "/images/x.gif", "/images/a/../b.webp"]),
                     st.one_of(st.sampled_from(["99999999999", "1", "\u00b2", "\u0661\u0662" * 6, "9" * 5000]),
                               hostile_text(long=False)),
                     hostile_text(long=False), st.one_of(st.just("0" * 32), hostile_text(long=False))).map(
        lambda t: f"{t[0]}?auth_key=" + quote(f"{t[1]}-{t[2]}-0-{t[3]}".encode("utf-8", "surrogatepass")))
    target = draw(st.one_of(st.sampled_from(RAW_TARGETS), hostile_text(long=False), link))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]) if draw(st.integers(0, 3)) else
                   st.sampled_from(RAW_VERSIONS))
    headers = draw(st.lists(st.sampled_from(RAW_HEADERS), max_size=3))
    body = draw(st.one_of(st.just(b""), st.binary(max_size=64), st.sampled_from(
        [b"Action=ListVodTemplate", b"\xff\xfe=\xff", b"a=%ff&b", b"=" * 100])))
    line = f"{method} {target} {version}".rstrip() if version else f"{method} {target}"
    head = "\r\n".join([line, *headers]).encode("utf-8", "surrogatepass")
    # Without a half-close the server waits for a body a Content-Length announces: a client's wait,
    # not a fault; so a request that is not half-closed announces no more than it sends.
    half_close = draw(st.booleans())
    if not half_close:
        lengths = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-length")]
        numeric = [x for x in lengths if x.isascii() and x.isdigit()]
        if any(int(x) > len(body) for x in numeric):
            half_close = True
    return ApiCase("raw", raw=head + b"\r\n\r\n" + body, half_close=half_close)


@functools.lru_cache(maxsize=None)
@st.composite
def api_case(draw: Callable) -> ApiCase:
    mode = draw(st.sampled_from(["signed-get"] * 4 + ["signed-post"] * 2 + ["odd-common", "unsigned", "garbled",
                                                                            "raw", "raw"]))
    if mode == "raw":
        return draw(raw_request())
    odd_names = hostile_text(long=False, surrogates=draw(st.integers(0, 9)) == 0)
    action = draw(st.sampled_from(ACTION_NAMES) if draw(st.integers(0, 5)) else odd_names)
    names = list(PARAMS_BY_ACTION.get(action, []))
    names = [n for n in names if draw(st.integers(0, 5)) > 0]  # now and then one is left out
    known = sorted({p for ps in PARAMS_BY_ACTION.values() for p in ps})
    names += draw(st.lists(st.one_of(st.sampled_from(known), odd_names), max_size=2))
    params = {"Action": action}
    for name in names:
        params[name] = draw(_param_value(name))
    if mode == "odd-common":
        params["\x00odd-common\x00"] = draw(st.sampled_from(COMMON))
        params["\x00odd-value\x00"] = draw(hostile_text(long=False))
    return ApiCase(mode, params=params)


@dataclass
class ApiTarget:
    """A running server on a scratch store, with what requests aim at, and what went wrong inside it."""

    server: Any
    key_id: str
    secret: str
    video_id: str
    clip: Path
    template_id: str = ""
    errors: list[str] = field(default_factory=list)
    counter: int = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def refresh_template(self) -> None:
        """(Re)make the template requests aim at (a fuzzed DeleteVodTemplate may have removed it)."""
        from animated_previews.engine.vod import Service
        with Service(self.server.store_path) as service:
            try:
                self.template_id = service.template("fuzz-api-target").id
            except Exception:  # noqa: BLE001 - not there: make it
                self.template_id = service.add_template("fuzz-api-target", format="gif", fps=5, width=64, seek=0,
                                                        duration=1).id


class _Recorder(logging.Handler):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(self.format(record)[-3000:])


@contextlib.contextmanager
def watch_server(server: Any, errors: list[str]) -> Iterator[None]:
    """Record what the server logs at ERROR (a 500's traceback) and every exception a request
    handler let out (socketserver prints those and drops the connection)."""
    recorder = _Recorder(errors)
    recorder.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("animated_previews.engine.api")
    logger.addHandler(recorder)
    original = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        import traceback
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client hung up first: no fault of the server's
            return
        errors.append(traceback.format_exc()[-3000:])

    server.handle_error = handle_error
    try:
        yield
    finally:
        server.handle_error = original
        logger.removeHandler(recorder)


@contextlib.contextmanager
def api_target(folder: Path, clip: Path | None = None) -> Iterator[ApiTarget]:
    """A server like ``engine serve``'s (tests/api/conftest.py's ``running``) on a store in ``folder``."""
    from animated_previews.engine.api import ApiServer, ServeConfig
    from animated_previews.engine.sample import write_sample_video
    from animated_previews.engine.vod import Service
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    if clip is None:
        clip = write_sample_video(media / "clip.mp4", seconds=1.0, width=160, height=90)
    store = folder / "store" / "store.db"
    with Service(store) as service:
        key = service.create_access_key()
        video = service.add_video(clip)
    server = ApiServer(("127.0.0.1", 0), ServeConfig(store=store, media_roots=(media, clip.parent)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    target = ApiTarget(server, key.id, key.secret, video.id, clip)
    target.refresh_template()
    try:
        with watch_server(server, target.errors):
            yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _fill(target: ApiTarget, text: str) -> str:
    target.counter += 1
    return (text.replace(VIDEO, target.video_id).replace(TEMPLATE, target.template_id)
            .replace(CLIP_URL, target.clip.resolve().as_uri()).replace(UNIQUE_NAME, f"fuzz api {target.counter}"))


def _encode(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="-_.~")


def request_params(target: ApiTarget, case: ApiCase) -> tuple[str, dict[str, str]]:
    """The method and the parameters (signed as the mode says) of an action request."""
    from animated_previews.engine.api.signature import sign
    method = "POST" if case.mode == "signed-post" else "GET"
    params = {_fill(target, k): _fill(target, v) for k, v in case.params.items()
              if k not in ("\x00odd-common\x00", "\x00odd-value\x00")}
    if case.mode == "unsigned":
        return method, {**params, "AccessKeyId": target.key_id}
    common = {"Format": "JSON", "Version": "2017-03-21", "AccessKeyId": target.key_id,
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
              "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if case.mode == "odd-common":
        common[case.params["\x00odd-common\x00"]] = case.params["\x00odd-value\x00"]
    signed = {**common, **params}
    try:
        signed["Signature"] = sign(target.secret, method, signed)
    except UnicodeEncodeError:  # a lone surrogate cannot be signed as text: the server gets a wrong one
        signed["Signature"] = "unsignable"
    if case.mode == "garbled":
        signed["Signature"] = signed["Signature"][::-1]
    return method, signed


def _final(data: bytes) -> bytes:
    """``data`` without the interim answers in front (``100 Continue`` to an ``Expect`` header)."""
    while data.startswith(b"HTTP/1.") and data[9:10] == b"1" and b"\r\n\r\n" in data:
        data = data.partition(b"\r\n\r\n")[2]
    return data


def _read_answer(sock: socket.socket, deadline: float, *, head: bool = False) -> bytes:
    """One HTTP answer (headers and Content-Length bytes; headers alone for a HEAD), or what came
    before the connection closed or the deadline passed."""
    chunks = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        data = _final(b"".join(chunks))
        headers, sep, body = data.partition(b"\r\n\r\n")
        if sep:  # a whole answer: headers and Content-Length bytes
            length = next((int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")[1:]
                           if line.lower().startswith(b"content-length:")), None)
            if head or (length is not None and len(body) >= length):
                break
    return _final(b"".join(chunks))


def _judge_answer(out: Outcomes, data: bytes, what: str, *, needs_json: bool,
                  head: bool = False) -> tuple[int, Any]:
    """Parse one HTTP answer: a status below 500 and, where ``needs_json``, a JSON body with a
    RequestId (and a Code when refused). An answer to a HEAD has no body (what follows it answers
    the next request on the connection). Returns (status, body or None); status 0 if none came."""
    if not data:
        out.crash("no-answer", f"{what}: the connection closed (or hung) with no answer")
        return 0, None
    if not data.startswith(b"HTTP/"):
        # A request line the server could not read is answered as HTTP/0.9 (the version it assumes
        # until it reads one): the body alone, no status line. It must still be the JSON refusal.
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and all(isinstance(answer.get(k), str) for k in ("RequestId", "Code")):
            out.add(f"refused HTTP/0.9 {answer['Code']}")
            return 400, answer
        out.crash("not-http", f"{what}: answered {data[:200]!r}")
        return 0, None
    headers, _, body = data.partition(b"\r\n\r\n")
    length = next((line.split(b":", 1)[1].strip() for line in headers.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), b"")
    if head:
        body, needs_json = b"", False
    elif length.isdigit():
        body = body[:int(length)]  # what follows is the answer to a next request on the connection
    status_line = headers.split(b"\r\n", 1)[0].split(b" ")
    try:
        status = int(status_line[1])
    except (IndexError, ValueError):
        out.crash("not-http", f"{what}: answered {data[:200]!r}")
        return 0, None
    answer = None
    if needs_json or (b"application/json" in headers.lower() and body):
        try:
            answer = json.loads(body)
        except ValueError:
            out.crash("not-json", f"{what}: {status} {body[:300]!r}")
            return status, None
        if not isinstance(answer, dict) or not isinstance(answer.get("RequestId"), str):
            out.crash("no-request-id", f"{what}: {status} {answer!r:.300}")
            return status, answer
        if status >= 300 and not isinstance(answer.get("Code"), str):
            out.crash("no-code", f"{what}: {status} {answer!r:.300}")
            return status, answer
    if status >= 500:
        out.crash(f"status-{status}", f"{what}: {status} {body[:500]!r}")
    elif status < 300:
        out.add("ok")
    else:
        out.add(f"refused {status} {answer.get('Code') if isinstance(answer, dict) else 'http'}")
    return status, answer


def _exchange(target: ApiTarget, payload: bytes, *, half_close: bool, head: bool = False,
              timeout: float = 10.0) -> bytes:
    with socket.create_connection(target.address, timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (and close) before reading everything: read what it said
        return _read_answer(sock, time.monotonic() + timeout, head=head)


def check_api_request(target: ApiTarget, case: ApiCase) -> Outcomes:
    """Send one request; judge the answer; look for a traceback the server logged meanwhile."""
    out = Outcomes()
    before = len(target.errors)
    if case.mode == "raw":
        parts = case.raw.split(b"\r\n", 1)[0].split()
        head = parts[:1] == [b"HEAD"]
        data = _exchange(target, case.raw, half_close=case.half_close, head=head)
        path = parts[1] if len(parts) > 1 else b""
        if not data and head and parts[2:] == [b"HTTP/0.9"]:
            out.add("ok (HEAD over HTTP/0.9: no headers, no body, nothing to send)")
        else:  # every answer of this server is JSON with a RequestId, but images and the gallery page
            _judge_answer(out, data, f"raw {case.raw[:300]!r}", head=head,
                          needs_json=not path.startswith((b"/images/", b"/gallery")))
    else:
        method, params = request_params(target, case)
        query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())
        if method == "GET":
            payload = f"GET /?{query} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n".encode()
        else:
            body = query.encode()
            payload = (f"POST / HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Type: application/"
                       f"x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        data = _exchange(target, payload, half_close=False)
        status, answer = _judge_answer(out, data, f"{case.mode} {params!r:.1500}", needs_json=True)
        if status == 200 and params.get("Action") == "DeleteVodTemplate":
            target.refresh_template()
    if len(target.errors) > before:
        out.crash("server-traceback", "\n".join(target.errors[before:])[-3000:])
    return out


# -- running N cases ----------------------------------------------------------------------------------

KINDS = ("manifest-lines", "manifest-files", "templates", "api")


@dataclass
class KindResult:
    kind: str
    cases: int = 0
    items: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _kind_context(kind: str, folder: Path) -> Iterator[tuple[st.SearchStrategy[Any], Callable[[Any], Outcomes]]]:
    if kind == "manifest-lines":
        yield manifest_lines(), check_manifest_lines
    elif kind == "manifest-files":
        yield manifest_files(), lambda drawn: check_manifest_file(folder, drawn)
    elif kind == "templates":
        with template_target(folder) as target:
            yield template_body(), lambda body: check_template_body(target, body)
    else:
        with api_target(folder) as target:
            yield api_case(), lambda case: check_api_request(target, case)


def run_kind(kind: str, cases: int, *, batch: int = 1000, first_seed: int = 0,
             progress: Callable[[str], None] = lambda _: None) -> KindResult:
    """``cases`` draws of ``kind``'s generator, in batches of ``batch`` (one hypothesis run each,
    seeded ``first_seed``, ``first_seed + 1``...: the same command draws the same cases)."""
    result = KindResult(kind)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{kind}-") as tmp, \
            _kind_context(kind, Path(tmp)) as (strategy, check):
        run = 0
        while result.cases < cases:
            todo = min(batch, cases - result.cases)

            @seed(first_seed + run)
            @settings(max_examples=todo, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck), derandomize=False)
            @given(strategy)
            def one(drawn: Any) -> None:
                if result.cases >= cases:
                    return
                outcomes = check(drawn)
                result.cases += 1
                result.items += len(outcomes.items)
                result.outcomes.update(outcomes.items)
                for problem in outcomes.problems:
                    if len(result.crashes) < 20:
                        result.crashes.append(problem)

            before = result.cases
            one()
            run += 1
            if result.cases == before:  # the generator gave nothing new
                break
            progress(f"{kind}: {result.cases}/{cases} cases, {time.perf_counter() - start:.0f} s")
    result.seconds = time.perf_counter() - start
    return result


def _git_commit() -> str | None:
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return None


def write_results(results: list[KindResult], *, name: str, requested: int, results_dir: Path,
                  command: str, wall: float, jobs: int) -> tuple[Path, Path]:
    import hypothesis
    total_cases = sum(r.cases for r in results)
    total_items = sum(r.items for r in results)
    crashed = sum(n for r in results for o, n in r.outcomes.items() if o.startswith("crashed"))
    record = {
        "name": name, "command": command, "requested_cases": requested, "cases": total_cases, "items": total_items,
        "crashed": crashed, "seconds": round(sum(r.seconds for r in results), 1), "wall_seconds": round(wall, 1),
        "jobs": jobs,
        "kinds": [{"kind": r.kind, "cases": r.cases, "items": r.items, "seconds": round(r.seconds, 1),
                   "outcomes": dict(sorted(r.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
                   "crash_examples": r.crashes} for r in results],
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "hypothesis": hypothesis.__version__},
        "git_commit": _git_commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{name}.json"
    json_path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    md_path = results_dir / f"{name}.md"
    md_path.write_text(markdown(record))
    return json_path, md_path


def markdown(record: dict) -> str:
    """The results page of a run's JSON record (``python -c "from bench import fuzz; ..."`` can
    redo it from the JSON alone)."""
    machine = record["machine"]
    lines = [
        "# Fuzzing: hostile inputs, counted by outcome", "",
        f"`{record['command']}`: {record['cases']} cases ({record['items']} items) in {record['wall_seconds']} s of "
        f"wall time ({record['seconds']} s summed over the kinds, {record['jobs']} side by side), "
        f"{record['date']}, Python {machine['python']}, hypothesis {machine['hypothesis']}, "
        f"{machine['cpus']} CPUs. **Crashed: {record['crashed']}.**", "",
        "An item is one manifest line, one template call (add or update) or one HTTP request; `ok` is taken, "
        "`refused X` refused with code X (for the API: HTTP status and Code), `crashed` anything else (an "
        "exception, an InternalError, a 5xx for input, an answer without JSON/RequestId, no answer, a server "
        "traceback, a line under the wrong number). Generators and checks: `bench/fuzz.py`; the suite runs "
        "the same ones in `tests/fuzz/`.", "",
        "| kind | cases | items | seconds | ok | refused | crashed |", "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def count(kind: dict, prefix: str) -> int:
        return sum(n for o, n in kind["outcomes"].items() if o.startswith(prefix))

    for kind in record["kinds"]:
        lines.append(f"| {kind['kind']} | {kind['cases']} | {kind['items']} | {kind['seconds']:.0f} | "
                     f"{count(kind, 'ok')} | {count(kind, 'refused')} | {count(kind, 'crashed')} |")
    for kind in record["kinds"]:
        lines += ["", f"## {kind['kind']}", "", "| outcome | items |", "|---|---:|"]
        lines += [f"| {o} | {n} |" for o, n in kind["outcomes"].items()]
        if kind["crash_examples"]:
            lines += ["", "First crashes:", ""] + [f"- `{c[:300]!r}`" for c in kind["crash_examples"][:5]]
    return "\n".join(lines) + "\n"


def _run_kind_quietly(kind: str, cases: int, batch: int, first_seed: int) -> KindResult:
    """:func:`run_kind` in a pool process: the server's own log recorded, not printed."""
    logging.getLogger("animated_previews.engine.api").propagate = False
    return run_kind(kind, cases, batch=batch, first_seed=first_seed,
                    progress=lambda text: print(text, file=sys.stderr, flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all, split evenly over the kinds")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma list of {', '.join(KINDS)}")
    parser.add_argument("--batch", type=int, default=1000, help="cases per hypothesis run (each with its own seed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run")
    parser.add_argument("--jobs", type=int, default=1, help="kinds run side by side, one process each")
    parser.add_argument("--name", default="fuzz")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}")
    share, extra = divmod(args.cases, len(kinds))
    counts = {kind: share + (1 if index < extra else 0) for index, kind in enumerate(kinds)}
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {kind: pool.submit(_run_kind_quietly, kind, counts[kind], args.batch, args.seed) for kind in kinds}
        results = []
        for kind in kinds:
            r = futures[kind].result()
            results.append(r)
            print(f"{kind}: {r.cases} cases, {r.items} items, {r.seconds:.0f} s: {dict(r.outcomes.most_common(6))}",
                  flush=True)
    wall = time.perf_counter() - started
    command = "python -m bench.fuzz " + " ".join(argv if argv is not None else sys.argv[1:])
    json_path, md_path = write_results(results, name=args.name, requested=args.cases, results_dir=args.results_dir,
                                       command=command.strip(), wall=wall, jobs=args.jobs)
    print(f"wrote {json_path} and {md_path}")
    return 1 if any(o.startswith("crashed") for r in results for o in r.outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
