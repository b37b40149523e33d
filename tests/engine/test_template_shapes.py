"""TemplateConfig in both of the service's shapes, and times as seconds or hh:mm:ss[.SSS].

The service's API sends TemplateConfig as a JSON string, in the flat shape of the feature's
documentation or in an older nested one; both must become the same job, and a config that is
neither (mixed, unknown keys, wrong types) must be refused naming the path of the field.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.manifest import parse_manifest_lines
from animated_previews.engine.spec import JobSpec, flat_template_config, parse_job, parse_seconds

ROOT = Path("/videos")

FLAT = {"Format": "webp", "Fps": "15", "Width": "640", "Height": "360",
        "TimeSpan": {"Seek": "5", "Duration": "3"}, "SetAsCover": "true"}
NESTED = {"Video": {"Width": "640", "Height": "360", "Fps": "15"}, "Container": {"Format": "webp"},
          "Clip": {"TimeSpan": {"Seek": "5", "Duration": "3"}}, "SetAsCover": "true"}


def vod(config: Any, **line: Any) -> JobSpec:
    return parse_job({"id": "v", "input": "a.mp4", "TemplateConfig": config, **line}, default_id="x", input_root=ROOT)


def vod_error(config: Any) -> EngineError:
    with pytest.raises(EngineError) as caught:
        vod(config)
    return caught.value


def nested(**changes: Any) -> dict[str, Any]:
    """NESTED with top-level keys replaced (a value of None removes the key)."""
    config = json.loads(json.dumps(NESTED))
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


# -- shapes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [FLAT, NESTED, json.dumps(FLAT), json.dumps(NESTED)],
                         ids=["flat", "nested", "flat-json-string", "nested-json-string"])
def test_both_shapes_object_or_json_string_are_the_same_job(config):
    spec = vod(config)
    assert spec == JobSpec(id="v", input=ROOT / "a.mp4", format="webp", fps=15.0, seek=5.0, duration=3.0,
                           width=640, height=360, set_as_cover=True)


def test_nested_trim_mode_and_partial_config():
    spec = vod({"Container": {"Format": "gif"}, "Video": {"Fps": 10}, "Clip": {"TimeSpan": {"Seek": 1, "End": 4}}})
    assert (spec.format, spec.fps, spec.seek, spec.duration, spec.trim_end, spec.width, spec.set_as_cover) == (
        "gif", 10.0, 1.0, None, 4.0, None, False)


def test_a_manifest_line_may_carry_a_nested_config_as_a_json_string():
    line = json.dumps({"id": "n", "input": "a.mp4", "TemplateConfig": json.dumps(NESTED)})
    [entry] = parse_manifest_lines([line], input_root=ROOT)
    assert entry.error is None and entry.spec == replace(vod(FLAT), id="n")


def test_a_nested_line_can_start_from_a_stored_template_and_override_it():
    stored = {"format": "gif", "fps": 5.0, "seek": 0.0, "duration": None, "trim_end": 2.0, "width": 80,
              "height": None, "set_as_cover": False}
    spec = parse_job({"input": "a.mp4", "template": "t", "TemplateConfig": {"Clip": {"TimeSpan": {"Duration": "1"}}}},
                     default_id="x", input_root=ROOT, templates=lambda ref: stored)
    assert (spec.format, spec.fps, spec.duration, spec.trim_end, spec.width) == ("gif", 5.0, 1.0, None, 80)


@pytest.mark.parametrize("config, paths", [
    ({**FLAT, "Video": {"Fps": "15"}}, ["TemplateConfig.Video", "TemplateConfig.Fps"]),
    (nested(TimeSpan={"Seek": "1"}), ["TemplateConfig.TimeSpan", "TemplateConfig.Clip"]),
    (nested(Format="gif"), ["TemplateConfig.Format", "TemplateConfig.Container"]),
])
def test_mixing_the_shapes_is_refused_naming_both(config, paths):
    err = vod_error(config)
    assert err.code is ErrorCode.INVALID_PARAMETER
    assert "mixes" in err.message and all(p in err.message for p in paths), err.message


@pytest.mark.parametrize("config, words", [
    (nested(Video={"Fps": "15", "Bitrate": "9"}), ["Bitrate", "TemplateConfig.Video", "Fps, Height, Width"]),
    (nested(Container={"Format": "gif", "Codec": "x"}), ["Codec", "TemplateConfig.Container", "Format"]),
    (nested(Clip={"TimeSpan": {"Duration": "1"}, "Speed": 2}), ["Speed", "TemplateConfig.Clip", "TimeSpan"]),
    (nested(Clip={"TimeSpan": {"Duration": "1", "Start": "0"}}), ["Start", "TemplateConfig.Clip.TimeSpan"]),
    (nested(Quality="9"), ["Quality", "TemplateConfig", "Clip, Container, Fit, MaxBytes, PadColour, SetAsCover, Video"]),
])
def test_unknown_keys_in_the_nested_shape_are_named_with_their_path(config, words):
    err = vod_error(config)
    assert err.code is ErrorCode.INVALID_PARAMETER
    assert all(w in err.message for w in words), err.message


@pytest.mark.parametrize("key, value, path", [
    ("Video", 15, "TemplateConfig.Video"),
    ("Video", None, "TemplateConfig.Video"),
    ("Container", "webp", "TemplateConfig.Container"),
    ("Clip", ["5", "3"], "TemplateConfig.Clip"),
    ("Clip", {"TimeSpan": "5-8"}, "TemplateConfig.Clip.TimeSpan"),
])
def test_non_objects_where_the_nested_shape_wants_objects_are_named(key, value, path):
    config = nested()
    config[key] = value
    err = vod_error(config)
    assert err.code is ErrorCode.INVALID_PARAMETER
    assert f"{path} must be an object" in err.message, err.message


@pytest.mark.parametrize("config", ["[1, 2]", "15", '"webp"', "null", 7, ["Format"]])
def test_a_config_that_is_not_an_object_is_refused(config):
    err = vod_error(config)
    assert err.code is ErrorCode.INVALID_PARAMETER and "TemplateConfig must be an object" in err.message


def test_a_config_string_that_is_not_json_is_refused():
    err = vod_error('{"Video": ')
    assert err.code is ErrorCode.INVALID_PARAMETER and "TemplateConfig is not valid JSON" in err.message


@pytest.mark.parametrize("change, code, words", [
    ({"Video": {"Fps": "90"}}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Video.Fps", "1", "60"]),
    ({"Video": {"Fps": "15", "Width": "0"}}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Video.Width", "4096"]),
    ({"Container": {"Format": "png"}}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Container.Format", "gif, webp"]),
    ({"Video": {}}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Video.Fps is required"]),
    ({"Clip": {"TimeSpan": {"Seek": "-1", "Duration": "3"}}}, ErrorCode.INVALID_TIME_RANGE,
     ["TemplateConfig.Clip.TimeSpan.Seek", "0 or more"]),
    ({"Clip": {"TimeSpan": {"Duration": "3", "End": "1"}}}, ErrorCode.INVALID_PARAMETER,
     ["TemplateConfig.Clip.TimeSpan.Duration", "TemplateConfig.Clip.TimeSpan.End", "not both"]),
    ({"Clip": {}}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Clip.TimeSpan.Duration"]),
    ({"SetAsCover": "maybe"}, ErrorCode.INVALID_PARAMETER, ["SetAsCover", "true or false"]),
])
def test_bad_values_in_the_nested_shape_name_their_path(change, code, words):
    err = vod_error(nested(**change))
    assert err.code is code
    assert all(w in err.message for w in words), err.message


def test_flat_shape_messages_keep_their_snake_case_names():
    err = vod_error({**FLAT, "Fps": "90"})
    assert err.message == "fps must be from 1 to 60, got '90'"


def test_flat_template_config_converts_the_nested_shape_and_keeps_nones():
    assert flat_template_config(NESTED) == FLAT
    assert flat_template_config(json.dumps(FLAT)) == FLAT
    assert flat_template_config({"Video": {"Width": None}}) == {"Width": None}
    assert flat_template_config({}) == {}


# -- times -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("00:00:05.5", 5.5), ("01:02:03", 3723.0), ("00:00:00.125", 0.125), ("0:1:5", 65.0),
    ("100:00:00", 360000.0), ("00:59:59.999", 3599.999), (" 00:00:01 ", 1.0), ("01:02:03.1", 3723.1),
    (5, 5.0), (2.5, 2.5), ("2.5", 2.5), (" 3 ", 3.0),
])
def test_times_are_seconds_or_clock_strings(text, seconds):
    assert parse_seconds(text, "seek") == seconds


@pytest.mark.parametrize("text", ["1:2:3:4", "00:61:00", "00:00:60", "-00:00:01", "+00:00:01", "00:00:xx",
                                  "01:30", ":00:05", "00:00:05.", "00:00:.5", "00:000:05", "1:2:3 4",
                                  "00:00:0\u0665", "00:00:05,5", "::"])
def test_malformed_clock_times_are_invalid_time_ranges_naming_field_and_forms(text):
    with pytest.raises(EngineError) as caught:
        parse_job({"input": "a.mp4", "format": "gif", "fps": 10, "seek": text, "duration": 1},
                  default_id="x", input_root=ROOT)
    err = caught.value
    assert err.code is ErrorCode.INVALID_TIME_RANGE
    assert err.message.startswith("seek must be") and "hh:mm:ss[.SSS]" in err.message and "seconds" in err.message
    assert repr(text) in err.message


@pytest.mark.parametrize("field", ["seek", "duration", "trim_end"])
def test_every_snake_case_time_field_takes_a_clock_string(field):
    line = {"input": "a.mp4", "format": "gif", "fps": 10, field: "00:01:00.5"}
    if field == "seek":
        line["duration"] = "00:00:02"
    spec = parse_job(line, default_id="x", input_root=ROOT)
    assert getattr(spec, field) == 60.5


def test_clock_times_in_both_config_shapes():
    flat = vod({**FLAT, "TimeSpan": {"Seek": "00:00:05.5", "End": "00:01:00"}})
    deep = vod(nested(Clip={"TimeSpan": {"Seek": "00:00:05.5", "End": "00:01:00"}}))
    assert (flat.seek, flat.trim_end, flat.duration) == (deep.seek, deep.trim_end, deep.duration) == (5.5, 60.0, None)


def test_a_malformed_time_in_the_nested_shape_names_its_path():
    err = vod_error(nested(Clip={"TimeSpan": {"Seek": "1:2:3:4", "Duration": "3"}}))
    assert err.code is ErrorCode.INVALID_TIME_RANGE
    assert err.message.startswith("TemplateConfig.Clip.TimeSpan.Seek must be") and "hh:mm:ss" in err.message


def test_zero_clock_duration_is_refused_like_zero_seconds():
    err = vod_error({**FLAT, "TimeSpan": {"Duration": "00:00:00"}})
    assert err.code is ErrorCode.INVALID_TIME_RANGE and "greater than 0" in err.message


def test_non_numeric_times_without_a_colon_keep_their_code_and_name_the_forms():
    with pytest.raises(EngineError) as caught:
        parse_job({"input": "a.mp4", "format": "gif", "fps": 10, "seek": "soon", "duration": 1},
                  default_id="x", input_root=ROOT)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert caught.value.message.startswith("seek must be a number") and "hh:mm:ss" in caught.value.message
