"""A manifest line becomes a JobSpec, or an error that names the field and what is allowed."""

from pathlib import Path

import pytest

from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.manifest import parse_manifest_lines
from animated_previews.engine.spec import parse_job

ROOT = Path("/videos")


def job(**fields):
    base = {"input": "a.mp4", "format": "gif", "fps": 10, "seek": 1, "duration": 2}
    base.update(fields)
    return parse_job({k: v for k, v in base.items() if v is not None}, default_id="line-1", input_root=ROOT)


def error_of(**fields) -> EngineError:
    with pytest.raises(EngineError) as caught:
        job(**fields)
    return caught.value


def test_snake_case_line_becomes_a_spec_with_input_resolved_against_the_root():
    spec = job(id="intro", width=640)
    assert spec.id == "intro"
    assert spec.input == ROOT / "a.mp4"
    assert (spec.format, spec.fps, spec.seek, spec.duration, spec.width, spec.height) == ("gif", 10, 1, 2, 640, None)


def test_absolute_input_is_kept():
    assert job(input="/elsewhere/b.mkv").input == Path("/elsewhere/b.mkv")


def test_id_defaults_to_the_line_number():
    assert job().id == "line-1"


def test_vod_template_shape_with_numeric_strings_is_the_same_job():
    vod = parse_job(
        {"id": "v", "input": "a.mp4", "TemplateConfig": {
            "Format": "webp", "Fps": "15", "Width": "640", "Height": "360",
            "TimeSpan": {"Seek": "5", "Duration": "3"}, "SetAsCover": "true"}},
        default_id="x", input_root=ROOT)
    assert (vod.format, vod.fps, vod.width, vod.height, vod.seek, vod.duration) == ("webp", 15.0, 640, 360, 5.0, 3.0)
    assert vod.set_as_cover is True


def test_snake_case_lines_ask_for_a_cover_too():
    assert job(set_as_cover=True).set_as_cover is True and job().set_as_cover is False
    assert job(set_as_cover="false").set_as_cover is False
    assert error_of(set_as_cover="maybe").code is ErrorCode.INVALID_PARAMETER


def test_vod_end_is_trim_from_end():
    vod = parse_job({"input": "a.mp4", "TemplateConfig": {"Format": "gif", "Fps": 10, "TimeSpan": {"Seek": 1, "End": 4}}},
                    default_id="x", input_root=ROOT)
    assert vod.trim_end == 4.0 and vod.duration is None


@pytest.mark.parametrize("fps", [0, 0.5, 61, "fast", True, None])
def test_fps_outside_1_to_60_is_an_invalid_parameter_naming_the_range(fps):
    err = error_of(fps=fps)
    assert err.code is ErrorCode.INVALID_PARAMETER
    assert "fps" in err.message and "60" in err.message


@pytest.mark.parametrize("fmt", ["png", "GIFF", 3, None])
def test_unknown_format_is_refused(fmt):
    err = error_of(format=fmt)
    assert err.code is ErrorCode.INVALID_PARAMETER and "gif, webp" in err.message


def test_format_is_case_insensitive():
    assert job(format="WebP").format == "webp"


@pytest.mark.parametrize("width", [0, -5, 10.5, 5000, "wide"])
def test_bad_sizes_are_refused(width):
    err = error_of(width=width)
    assert err.code is ErrorCode.INVALID_PARAMETER and "width" in err.message


@pytest.mark.parametrize("fields", [{"seek": -1}, {"duration": 0}, {"duration": -2}, {"seek": float("nan")},
                                    {"duration": "inf"}, {"trim_end": -1, "duration": None}])
def test_bad_times_are_invalid_time_ranges(fields):
    assert error_of(**fields).code is ErrorCode.INVALID_TIME_RANGE


def test_duration_and_trim_end_together_are_ambiguous():
    err = error_of(trim_end=1)
    assert err.code is ErrorCode.INVALID_PARAMETER and "not both" in err.message


def test_neither_duration_nor_trim_end_is_refused():
    assert error_of(duration=None).code is ErrorCode.INVALID_PARAMETER


def test_unknown_fields_are_named():
    err = error_of(speed=2)
    assert err.code is ErrorCode.INVALID_PARAMETER and "speed" in err.message


def test_unknown_field_inside_template_config_is_named():
    with pytest.raises(EngineError, match="Colours"):
        parse_job({"input": "a", "TemplateConfig": {"Format": "gif", "Fps": 1, "Colours": 3,
                                                      "TimeSpan": {"Duration": 1}}}, default_id="x", input_root=ROOT)


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", " spaced", "x" * 200])
def test_ids_that_could_escape_the_output_folder_or_are_unwieldy_are_refused(bad_id):
    assert error_of(id=bad_id).code is ErrorCode.INVALID_PARAMETER


def test_output_extension_must_match_the_format():
    assert error_of(output="clip.webp").code is ErrorCode.INVALID_PARAMETER
    assert job(output="sub/clip.gif").output == Path("sub/clip.gif")


def test_manifest_reports_bad_lines_and_duplicates_without_stopping():
    lines = [
        '{"id": "a", "input": "x.mp4", "format": "gif", "fps": 10, "duration": 1}',
        "",
        "# a comment",
        "{not json",
        '{"id": "a", "input": "y.mp4", "format": "gif", "fps": 10, "duration": 1}',
        '{"id": "c", "input": "z.mp4", "format": "bmp", "fps": 10, "duration": 1}',
        '{"input": "w.mp4", "format": "webp", "fps": 10, "duration": 1}',
    ]
    entries = list(parse_manifest_lines(lines, input_root=ROOT))
    assert [(e.line, e.id, e.error.code.value if e.error else None) for e in entries] == [
        (1, "a", None),
        (4, "line-4", "InvalidParameter"),
        (5, "a", "InvalidParameter"),
        (6, "c", "InvalidParameter"),
        (7, "line-7", None),
    ]
    assert "not valid JSON" in entries[1].error.message
    assert "unique" in entries[2].error.message


def test_a_line_without_a_format_is_told_it_is_required_not_shown_none():
    with pytest.raises(EngineError, match=r"^InvalidParameter: format is required: one of gif, webp, avif$"):
        parse_job({"input": "a.mp4", "fps": 5, "duration": 1}, default_id="x", input_root=Path("."))


def test_a_snake_case_line_hears_its_own_field_names():
    with pytest.raises(EngineError, match="^InvalidParameter: set_as_cover must be true or false"):
        parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1, "set_as_cover": "yes"},
                  default_id="x", input_root=Path("."))
