"""Inputs that are not what they claim or not what is common: non-square pixels, a file whose
name lies about its container, an empty file, a clip shorter than one output frame."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

import clients
import clipmaker
from animated_previews.engine import load_manifest, run_batch


def run_one(tmp_path: Path, job: dict):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "j", **job}) + "\n")
    (result,) = run_batch(load_manifest(manifest), tmp_path / "out", workers=1)
    return result


def anamorphic_clip(path: Path) -> Path:
    """160x120 coded pixels, each twice as wide as tall: players show 320x120."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for i in range(10):
            frame = np.full((120, 160, 3), 40, np.uint8)
            frame[:, 70:90] = 220  # a bar in the middle
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_non_square_pixels_are_stretched_to_the_display_shape(tmp_path):
    r = run_one(tmp_path, {"input": str(anamorphic_clip(tmp_path / "ana.mp4")), "format": "gif", "fps": 5, "duration": 1})
    assert r.ok and (r.width, r.height) == (320, 120)
    frame = clients.pillow_frames(Path(r.output))[0][0]
    bright = np.flatnonzero(frame[60, :, 0] > 128)
    assert 130 <= bright.min() and bright.max() <= 190  # the bar stays in the middle, twice as wide


def test_one_side_given_follows_the_display_aspect_not_the_coded_one(tmp_path):
    r = run_one(tmp_path, {"input": str(anamorphic_clip(tmp_path / "ana.mp4")), "format": "webp", "fps": 5,
                           "width": 160, "duration": 1})
    assert (r.width, r.height) == (160, 60)


def test_a_webm_named_mp4_is_read_by_its_content(tmp_path):
    webm = clipmaker.make_clip(tmp_path / "real.webm", codec="vp9", fps=10, frames=10, width=160, height=120)
    liar = tmp_path / "liar.mp4"
    shutil.copy(webm, liar)
    r = run_one(tmp_path, {"input": str(liar), "format": "gif", "fps": 10, "seek": 0.3, "duration": 0.5})
    assert r.ok, r.error_message
    shown = clients.pillow_frames(Path(r.output))
    assert clipmaker.read_index(shown[0][0]) == 3


def test_an_empty_file_is_an_invalid_video_format(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    r = run_one(tmp_path, {"input": str(empty), "format": "gif", "fps": 10, "duration": 1})
    assert r.error_code == "InvalidVideoFormat" and r.error_message == "empty.mp4 is empty (0 bytes)"


def test_a_truncated_mp4_without_its_index_is_an_invalid_video_format(tmp_path):
    whole = clipmaker.make_clip(tmp_path / "whole.mp4", fps=25, frames=50, width=160, height=120)
    cut = clipmaker.make_truncated(whole, tmp_path / "cut.mp4", 0.5)  # moov atom at the end: lost
    r = run_one(tmp_path, {"input": str(cut), "format": "webp", "fps": 10, "duration": 1})
    assert r.error_code == "InvalidVideoFormat" and "cut.mp4" in r.error_message
    assert "without its index (no 'moov' box)" in r.error_message  # FFmpeg says only "Invalid data found"
    assert not (tmp_path / "out" / "j.webp").exists()


def test_random_bytes_named_mp4_are_not_taken_for_a_cut_off_mp4(tmp_path):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(bytes(range(256)) * 64)
    r = run_one(tmp_path, {"input": str(noise), "format": "gif", "fps": 10, "duration": 1})
    assert r.error_code == "InvalidVideoFormat" and "is not a readable media file" in r.error_message


def test_a_directory_is_not_an_input(tmp_path):
    r = run_one(tmp_path, {"input": str(tmp_path), "format": "gif", "fps": 10, "duration": 1})
    assert r.error_code == "InputNotFound"
