"""MPEG-TS/PS files whose times jump back (recordings joined with ``cat``) play as one timeline:
each part after the one before, every instant one frame, as the ffmpeg command plays them."""

from __future__ import annotations

import os
import shutil
import subprocess
from array import array
from pathlib import Path

import pytest

import clipmaker
from animated_previews.engine.autostart import choose_start
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import probe
from animated_previews.engine.spec import parse_job
from animated_previews.engine import time_jumps
from animated_previews.engine.time_jumps import Joined, Placer, _part_starts

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")

FPS = 25
PART = 75  # frames in each recording: 3 s


def _recording(folder: Path, name: str, first: int, fmt: str, codec: str, frames: int = PART) -> Path:
    """``frames`` (3 s) whose frame k shows ``first + k``, its own clock from 0 (each muxer starts it afresh)."""
    made = clipmaker.make_clip(folder / f"{name}.mp4", codec=codec, fps=FPS, frames=frames, width=160, height=120,
                               gop=25, first_index=first)
    out = folder / f"{name}.{'ts' if fmt == 'mpegts' else 'mpg'}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(made), "-c", "copy", "-f", fmt, str(out)],
                   check=True)
    return out


def _joined(folder: Path, parts: int = 2, fmt: str = "mpegts", codec: str = "h264") -> Path:
    """``parts`` recordings of 3 s joined byte for byte: the times restart at each join."""
    joined = folder / f"joined.{'ts' if fmt == 'mpegts' else 'mpg'}"
    joined.write_bytes(b"".join(_recording(folder, f"part{p}", p * PART, fmt, codec).read_bytes()
                                for p in range(parts)))
    return joined


def _shown(path: Path, instants: list[float]) -> list[int]:
    clip = PyAVDecoder().decode_frames(probe(path), instants)
    frames = clip.frames.permute(0, 2, 3, 1).numpy()
    return [clipmaker.read_index(frames[i]) for i in clip.index.tolist()]


@needs_ffmpeg
@pytest.mark.parametrize("fmt, codec", [("mpegts", "h264"), ("mpegts", "mpeg2video"), ("mpeg", "mpeg2video")])
def test_joined_recordings_are_as_long_as_all_their_parts(tmp_path, fmt, codec):
    """FFmpeg's header length for joined 3 s recordings is 3 s (the last one's end less the first
    one's start); three parts are 9 s on the one timeline."""
    media = probe(_joined(tmp_path, 3, fmt, codec))
    assert media.duration == pytest.approx(9.0, abs=0.05)
    assert media.joined is not None and media.joined.jumps == 2


@needs_ffmpeg
def test_a_single_recording_is_not_taken_for_joined_ones(tmp_path, monkeypatch):
    """Nor is it scanned whole: the sample before the end lay before the last of the 16 in any
    file under about 1 MB, seemed to go back, and every small TS was demuxed to its end."""
    scans = []
    real = time_jumps._scan
    monkeypatch.setattr(time_jumps, "_scan", lambda *args: scans.append(1) or real(*args))
    media = probe(_recording(tmp_path, "one", 0, "mpegts", "h264"))
    assert media.joined is None and media.duration == pytest.approx(3.0, abs=0.05)
    assert scans == []


@needs_ffmpeg
@pytest.mark.parametrize("seek", [0.0, 1.0, 2.3, 2.4, 2.9, 3.0, 3.4, 5.0, 7.9])
def test_every_instant_shows_the_frame_of_its_own_part_whatever_the_seek(tmp_path, seek):
    """Seeks by time landed in whichever recording FFmpeg's search found (2.3 s showed the first,
    2.4 s the second), and a span ran on into the other recording's last frame (a sweep of
    broadcast files). Now seeks go by byte to the key frame before the span, on the one timeline."""
    path = _joined(tmp_path, 3)
    instants = [seek + k / 10 for k in range(12) if seek + k / 10 < 9.0]
    assert _shown(path, instants) == [int(t * FPS + 1e-6) for t in instants]


@needs_ffmpeg
def test_a_job_across_the_join_shows_both_parts_in_order_and_says_why(tmp_path):
    path = _joined(tmp_path, 2)
    spec = parse_job({"id": "j", "input": str(path), "format": "gif", "fps": 10, "seek": 2.0, "trim_end": 0.001},
                     default_id="j", input_root=tmp_path)
    result = run_job(spec, tmp_path / "out", PyAVDecoder())
    assert result.ok, result.error_message
    assert result.frames == 40  # 2.0 .. 5.999 s at 10 fps: the second recording counts
    assert any("times jump back 1 time(s)" in note and "6.000 s in all" in note for note in result.notes), result.notes


@needs_ffmpeg
def test_seek_auto_on_joined_recordings_finds_the_lively_one(tmp_path):
    """A still recording joined to a lively one: the sampling pass seeks by byte to the key frames
    of the one timeline (a seek by time there lands in either recording), so the lively second
    recording is found; FFmpeg's header said the file was 3 s long, the first part's length."""
    ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"]
    still, lively = tmp_path / "still.ts", tmp_path / "lively.ts"
    subprocess.run([*ffmpeg, "smptebars=size=160x120:rate=25:duration=6", "-c:v", "mpeg2video", str(still)], check=True)
    subprocess.run([*ffmpeg, "testsrc2=size=160x120:rate=25:duration=6", "-c:v", "mpeg2video", str(lively)], check=True)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(still.read_bytes() + lively.read_bytes())
    media = probe(joined)
    assert media.joined is not None and media.duration == pytest.approx(12.0, abs=0.05)
    choice = choose_start(media, 2.0)
    assert 6.0 - 1e-6 <= choice.seek <= 10.0 and "liveliest 2 s" in choice.note, choice.note


def _times(*runs: tuple[float, float]) -> array:
    """Decoding times at 25 fps: each run from its first to its last second."""
    return array("d", [t0 + k / FPS for t0, t1 in runs for k in range(round((t1 - t0) * FPS) + 1)])


def test_one_damaged_time_starts_no_part_whether_too_low_or_too_high():
    clean = _times((0.0, 4.0))
    for wild in (0.0, 90.0):
        damaged = array("d", clean)
        damaged[50] = wild
        assert _part_starts(damaged) == []
    assert _part_starts(_times((0.0, 4.0), (0.0, 4.0), (1.0, 2.0))) == [101, 202]


def test_the_decoder_moves_to_the_next_part_only_where_it_starts():
    joined = Joined(shifts=(0.0, 3.0), firsts=(0.0, 0.0), keys=(), length=6.0)
    place = Placer(joined)
    assert [place(t) for t in (2.8, 2.9, 1.5, 2.96)] == [2.8, 2.9, 1.5, 2.96]  # 1.5: a damaged time, same part
    assert [place(t) for t in (0.0, 0.04)] == [3.0, 3.04]  # back to where part 1 starts


@needs_ffmpeg
def test_a_joined_file_is_scanned_once_per_process_until_it_changes(tmp_path, monkeypatch):
    """Every job on a file probes it; the whole-stream scan (seconds for hours) is kept."""
    path = _joined(tmp_path, 2)
    scans = []
    real = time_jumps._scan
    monkeypatch.setattr(time_jumps, "_scan", lambda *args: scans.append(1) or real(*args))
    assert probe(path).duration == probe(path).duration == pytest.approx(6.0, abs=0.05)
    assert len(scans) == 1  # the path is this test's own: no earlier scan of it
    path.write_bytes(path.read_bytes())  # rewritten: a new modification time
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert probe(path).joined is not None and len(scans) == 2


@needs_ffmpeg
def test_a_short_last_recording_is_found_too(tmp_path):
    """16 samples spread over 12 s of recording fall 0.75 s apart: a 0.4 s recording joined at the
    end lies after the last of them (missed: 12.0 s long); the sample just before the end finds it."""
    long, short = (_recording(tmp_path, name, first, "mpegts", "h264", frames)
                   for name, first, frames in (("long", 0, 300), ("short", 300, 10)))
    joined = tmp_path / "joined.ts"
    joined.write_bytes(long.read_bytes() + short.read_bytes())
    media = probe(joined)
    assert media.joined is not None and media.duration == pytest.approx(12.4, abs=0.05)
    assert _shown(joined, [11.9, 12.0, 12.2, 12.36]) == [297, 300, 305, 309]
