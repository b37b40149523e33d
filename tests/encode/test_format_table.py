"""The format table is the one seam for output formats: what it says about GIF and WebP, and how a
format added to it (here a throwaway "ppm8") is validated, timed, rendered and written end to end
without any other part of the engine knowing its name."""

from __future__ import annotations

import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest

from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.encode import FORMATS, Format, Frames, IndexedFrames, format_names, get_format, register_format
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import MediaInfo, probe
from animated_previews.engine.spec import JobSpec, parse_job
from animated_previews.engine.timeline import plan_timeline

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- what the table says about the formats every user has -------------------------------------

def test_gif_counts_centiseconds_plays_at_most_50_fps_and_never_shows_a_frame_under_2_cs():
    gif = get_format("gif")
    assert (gif.ticks_per_second, gif.max_fps, gif.min_delay) == (100, 50, 2)
    assert gif.palette_colours == 255  # 256 minus the transparent slot of delta frames
    assert "2 cs" in gif.max_fps_reason


def test_webp_counts_milliseconds_plays_up_to_60_fps_and_any_whole_millisecond():
    webp = get_format("webp")
    assert (webp.ticks_per_second, webp.max_fps, webp.min_delay) == (1000, 60, 1)
    assert webp.palette_colours is None  # its encoder takes RGB frames


def test_the_table_lists_gif_then_webp():
    assert format_names()[:2] == ("gif", "webp")


def test_importing_the_table_and_the_spec_loads_neither_numpy_nor_pillow():
    # The spec (and so the command line) imports the table at start-up; the encoders' heavy
    # libraries wait for the first encode. The ``engine`` package's own __init__ (the batch API it
    # re-exports) is stood in for by a bare package, so only the table and the spec are measured.
    code = ("import sys, types; root = types.ModuleType('animated_previews'); root.__path__ = []; "
            "engine = types.ModuleType('animated_previews.engine'); "
            f"engine.__path__ = [{str(REPO_ROOT / 'engine')!r}]; "
            "sys.modules.update({'animated_previews': root, 'animated_previews.engine': engine}); "
            "import animated_previews.engine.encode, animated_previews.engine.spec; "
            "print(sorted(m for m in ('numpy', 'PIL', 'torch') if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


# --- an unknown format ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bmp", "ppm8", "", None])
def test_an_unknown_format_is_an_invalid_parameter_naming_the_allowed_ones(name):
    with pytest.raises(EngineError) as caught:
        get_format(name)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert caught.value.message == f"format must be one of gif, webp, avif, got {name!r}"


def test_a_manifest_naming_an_unknown_format_is_refused_with_the_allowed_list(tmp_path):
    with pytest.raises(EngineError) as caught:
        parse_job({"input": "a.mp4", "format": "ppm8", "fps": 10, "duration": 1}, default_id="a", input_root=tmp_path)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert caught.value.message == "format must be one of gif, webp, avif, got 'ppm8'"


# --- a new format: one encoder and one entry --------------------------------------------------

PPM8_HEADER = struct.Struct("<4sIIII")
"""magic, frame count, width, height, palette size; then the delays (uint32 each), each frame's
palette (RGB bytes) and the frames' indices (one byte a pixel)."""


def encode_ppm8(frames: Frames, delays: Sequence[int]) -> bytes:
    """A format simple enough to read back exactly: a header, the delays, the palette, the indices."""
    assert isinstance(frames, IndexedFrames)
    count, height, width = frames.indices.shape
    palettes = np.broadcast_to(frames.palette, (count, *frames.palette.shape[-2:]))  # one per frame
    return (PPM8_HEADER.pack(b"PPM8", count, width, height, palettes.shape[1])
            + struct.pack(f"<{count}I", *delays) + np.ascontiguousarray(palettes).tobytes()
            + np.ascontiguousarray(frames.indices).tobytes())


def parse_ppm8(data: bytes) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(delays, palettes [N, K, 3], indices [N, H, W]) of a ppm8 file; every byte accounted for."""
    magic, count, width, height, colours = PPM8_HEADER.unpack_from(data)
    assert magic == b"PPM8"
    offset = PPM8_HEADER.size
    delays = list(struct.unpack_from(f"<{count}I", data, offset))
    offset += 4 * count
    palette = np.frombuffer(data, np.uint8, count * colours * 3, offset).reshape(count, colours, 3)
    offset += count * colours * 3
    indices = np.frombuffer(data, np.uint8, count * height * width, offset).reshape(count, height, width)
    assert offset + indices.size == len(data)
    return delays, palette, indices


PPM8 = Format(
    name="ppm8",
    ticks_per_second=25,  # a 40 ms clock: neither GIF's nor WebP's
    max_fps=12.5,  # two ticks a frame
    max_fps_reason="ppm8 frames last at least two 40 ms ticks",
    min_delay=2,
    palette_colours=8,
    encode=encode_ppm8,
)


@pytest.fixture
def ppm8() -> Iterator[Format]:
    """ppm8 in the table for one test, and out of it afterwards, whatever the test did."""
    fmt = register_format(PPM8)
    try:
        yield fmt
    finally:
        del FORMATS[fmt.name]


def test_a_registered_format_is_a_format_manifests_may_name(ppm8, tmp_path):
    spec = parse_job({"id": "p", "input": "a.mp4", "format": "PPM8", "fps": 10, "duration": 1},
                     default_id="x", input_root=tmp_path)
    assert spec.format == "ppm8" and spec.output_path(tmp_path) == tmp_path / "p.ppm8"
    with pytest.raises(EngineError) as caught:
        parse_job({"input": "a.mp4", "format": "bmp", "fps": 10, "duration": 1}, default_id="x", input_root=tmp_path)
    assert caught.value.message == "format must be one of gif, webp, avif, ppm8, got 'bmp'"


def test_a_format_name_is_taken_once_and_must_work_as_a_file_extension(ppm8):
    with pytest.raises(ValueError, match="already registered"):
        register_format(PPM8)
    with pytest.raises(ValueError, match="lower-case"):
        register_format(Format("Ppm.9", 25, 12.5, "", 2, None, encode_ppm8))


def test_the_timeline_takes_the_clock_the_rate_cap_and_the_shortest_delay_from_the_entry(ppm8):
    media = MediaInfo(path=Path("v.mp4"), container="mp4", stream_index=0, codec="h264", width=320, height=240,
                      pixel_format="yuv420p", sample_aspect_ratio=Fraction(1), fps=25.0, duration=10.0,
                      duration_source="stream", start_time=0.0, video_streams=1)
    capped = plan_timeline(JobSpec(id="j", input=Path("v.mp4"), format="ppm8", fps=15.0, duration=1.2), media)
    assert capped.fps == 12.5 and capped.frame_count == 15 and capped.tick == 1 / 25
    assert capped.delays == (2,) * 15
    assert capped.notes == ("fps 15 lowered to 12.5: ppm8 frames last at least two 40 ms ticks",)
    # 0.521 s at 12.5 fps is 7 frames, the last one shown from tick 12 to tick round(13.025) = 13:
    # one tick, below the entry's min_delay, so it is raised to two.
    short_end = plan_timeline(JobSpec(id="j", input=Path("v.mp4"), format="ppm8", fps=12.5, duration=0.521), media)
    assert short_end.delays == (2,) * 7


def test_a_registered_format_runs_end_to_end_through_run_job(ppm8, tmp_path, h264_clip):
    spec = parse_job({"id": "clip", "input": str(h264_clip), "format": "ppm8", "fps": 15, "seek": 0.2,
                      "duration": 1.2, "width": 64}, default_id="x", input_root=tmp_path)
    timeline = plan_timeline(spec, probe(h264_clip))

    result = run_job(spec, tmp_path / "out", PyAVDecoder())

    assert result.ok, result.error_message
    assert Path(result.output) == tmp_path / "out" / "clip.ppm8"
    delays, palette, indices = parse_ppm8(Path(result.output).read_bytes())
    assert indices.shape == (timeline.frame_count, 48, 64) == (result.frames, result.height, result.width)
    assert delays == list(timeline.delays) and min(delays) >= ppm8.min_delay
    assert result.duration == pytest.approx(sum(delays) / ppm8.ticks_per_second) == pytest.approx(1.2)
    assert 1 <= palette.shape[1] <= ppm8.palette_colours and int(indices.max()) < palette.shape[1]  # no KEEP
    assert result.fps == 12.5 and "fps 15 lowered to 12.5: ppm8 frames last at least two 40 ms ticks" in result.notes
