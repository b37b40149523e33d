"""Which instants are sampled, how long each frame shows, and which time spans are refused."""

from fractions import Fraction
from pathlib import Path

import pytest

from animated_previews.engine.encode import get_format
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.probe import MediaInfo
from animated_previews.engine.spec import JobSpec
from animated_previews.engine.timeline import plan_timeline


def media(duration: float = 10.0) -> MediaInfo:
    return MediaInfo(path=Path("v.mp4"), container="mp4", stream_index=0, codec="h264", width=320, height=240,
                     pixel_format="yuv420p", sample_aspect_ratio=Fraction(1), fps=25.0, duration=duration,
                     duration_source="stream", start_time=0.0, video_streams=1)


def spec(**kw) -> JobSpec:
    base = dict(id="j", input=Path("v.mp4"), format="gif", fps=10.0, seek=1.0, duration=2.0)
    base.update(kw)
    return JobSpec(**base)


def test_frame_k_is_sampled_at_seek_plus_k_over_fps():
    tl = plan_timeline(spec(fps=15, seek=5, duration=3), media(30))
    assert tl.frame_count == 45
    assert tl.instants[0] == 5 and tl.instants[1] == pytest.approx(5 + 1 / 15) and tl.instants[-1] == pytest.approx(5 + 44 / 15)


@pytest.mark.parametrize("fmt,ticks", [("gif", 100), ("webp", 1000)])
@pytest.mark.parametrize("fps,duration", [(15, 3), (30, 2), (7, 1.3), (24, 2.05), (12, 0.97), (1, 5)])
def test_delays_add_up_to_the_requested_duration_within_10ms(fmt, ticks, fps, duration):
    tl = plan_timeline(spec(format=fmt, fps=fps, duration=duration), media(30))
    assert tl.frame_count == max(1, round(duration * fps))
    assert abs(sum(tl.delays) / ticks - duration) <= 0.010
    assert all(d >= 2 for d in tl.delays) if fmt == "gif" else all(d >= 1 for d in tl.delays)


@pytest.mark.parametrize("length", [8.0, 8.0 - 3e-7, 8.0 + 3e-7])
def test_a_length_off_by_microseconds_gives_the_frame_count_of_the_exact_one(length):
    """seek 7.5 s to the end at 15 fps is 7.5 frames, rounded to 8 (Python's round, half to even),
    whether the video's length comes out as 8 s or a few tenths of a microsecond either side."""
    tl = plan_timeline(spec(fps=15, seek=7.5, duration=2), media(length))
    assert tl.frame_count == 8


def test_gif_delays_spread_the_rounding_instead_of_accumulating_it():
    tl = plan_timeline(spec(fps=30, duration=1), media())
    assert sorted(set(tl.delays)) == [3, 4]  # 3.33 cs per frame: mostly 3, every third 4
    assert sum(tl.delays) == 100


def test_gif_above_50_fps_samples_at_50_and_says_so():
    tl = plan_timeline(spec(fps=60, duration=1), media())
    assert tl.fps == get_format("gif").max_fps == 50 and tl.frame_count == 50 and set(tl.delays) == {2}
    assert any("50" in note for note in tl.notes)


def test_webp_keeps_60_fps():
    tl = plan_timeline(spec(format="webp", fps=60, duration=1), media())
    assert tl.frame_count == 60 and sum(tl.delays) == 1000 and not tl.notes


def test_trim_mode_runs_to_that_many_seconds_before_the_end():
    tl = plan_timeline(spec(duration=None, trim_end=4, seek=1), media(9.6))
    assert tl.duration == pytest.approx(4.6) and tl.frame_count == 46


def test_end_past_the_video_is_clamped_with_a_note():
    tl = plan_timeline(spec(seek=8, duration=5), media(10))
    assert tl.duration == pytest.approx(2) and tl.frame_count == 20
    assert tl.notes and "clamped" in tl.notes[0]


@pytest.mark.parametrize("kw", [dict(seek=10), dict(seek=12), dict(seek=6, duration=None, trim_end=4),
                                dict(seek=0, duration=None, trim_end=11)])
def test_spans_that_leave_nothing_are_invalid_time_ranges(kw):
    with pytest.raises(EngineError) as caught:
        plan_timeline(spec(**kw), media(10))
    assert caught.value.code is ErrorCode.INVALID_TIME_RANGE
    assert "10.000" in caught.value.message  # tells the user how long the video is


def test_a_very_short_clip_still_gives_one_frame():
    tl = plan_timeline(spec(fps=1, duration=0.2), media())
    assert tl.frame_count == 1 and tl.delays == (20,)


def test_runaway_requests_are_refused_before_decoding():
    with pytest.raises(EngineError) as caught:
        plan_timeline(spec(format="webp", fps=60, duration=600), media(1000))
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
