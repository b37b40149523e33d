"""Manifest lines, hostile or near-valid, never stop a batch: every line ends as a ManifestEntry with
a JobSpec or an EngineError with a code (never an exception, never InternalError), at its own line
number. Generators and checks: bench/fuzz.py (``python -m bench.fuzz`` runs 100 000 cases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings

from animated_previews.engine.errors import ErrorCode
from animated_previews.engine.manifest import MAX_LINE_BYTES, load_manifest, parse_manifest_lines
from bench import fuzz


@settings(fuzz.SUITE, max_examples=150)
@given(fuzz.manifest_lines())
def test_every_manifest_line_ends_as_a_spec_or_a_coded_error(lines):
    out = fuzz.check_manifest_lines(lines)
    assert not out.problems, "\n".join(out.problems)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-manifest")


@settings(fuzz.SUITE, max_examples=60)
@given(drawn=fuzz.manifest_files())
def test_every_line_of_a_raw_manifest_file_keeps_its_number(folder, drawn):
    out = fuzz.check_manifest_file(folder, drawn)
    assert not out.problems, "\n".join(out.problems)


# -- what the fuzzing found, kept as plain regression tests ---------------------------------------------

GOOD = {"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}


def _one(text: str):
    [entry] = parse_manifest_lines([text], input_root=Path("/"))
    return entry


@pytest.mark.parametrize("text", [
    "1" * 5000,                                                   # past Python's 4300-digit int limit
    json.dumps(GOOD)[:-1] + ', "width": ' + "9" * 4400 + "}",
])
def test_a_number_past_pythons_digit_limit_fails_its_line_alone(text):
    entry = _one(text)
    assert entry.spec is None and entry.error.code is ErrorCode.INVALID_PARAMETER, entry


@pytest.mark.parametrize("field", ["fps", "width", "height", "seek", "duration"])
def test_an_integer_beyond_the_float_range_is_refused_not_an_internal_error(field):
    line = json.dumps({**GOOD, field: 10**400})
    entry = _one(line)
    assert entry.spec is None and entry.error.code in (ErrorCode.INVALID_PARAMETER, ErrorCode.INVALID_TIME_RANGE), entry
    assert "finite" in entry.error.message or "from" in entry.error.message


@pytest.mark.parametrize("clock", ["9" * 400 + ":00:00", "9" * 5000 + ":00:00"])
def test_a_clock_time_beyond_the_float_range_is_an_invalid_time_range(clock):
    entry = _one(json.dumps({**GOOD, "seek": clock}))
    assert entry.spec is None and entry.error.code is ErrorCode.INVALID_TIME_RANGE, entry


@pytest.mark.parametrize("extra", [1, 2, 5, 100])
def test_an_over_long_comment_line_is_skipped_whatever_its_length(tmp_path, extra):
    manifest = tmp_path / "m.jsonl"
    comment = b"# " + b"x" * (MAX_LINE_BYTES - 2 + extra)
    manifest.write_bytes(comment + b"\n" + json.dumps(GOOD).encode() + b"\n")
    [entry] = load_manifest(manifest, input_root=tmp_path)
    assert entry.line == 2 and entry.spec is not None


@pytest.mark.parametrize("field", ["input", "output"])
def test_a_path_in_the_home_folder_of_an_unknown_user_is_refused_not_an_internal_error(field):
    line = {**GOOD, field: "~nosuchuser-fuzz/a.gif"}
    entry = _one(json.dumps(line))
    assert entry.spec is None and entry.error.code is ErrorCode.INVALID_PARAMETER, entry
    assert "home folder of a user" in entry.error.message
