"""The example manifest over the real corpus: a correct image or a clear error for every line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import clients
from animated_previews.engine import load_manifest, run_batch

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def example_results(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus-out")
    results = list(run_batch(load_manifest(corpus / "manifest.example.jsonl"), out, workers=2))
    return {r.id: r for r in results}


def test_every_line_of_the_example_manifest_ends_as_an_image_or_a_clear_error(example_results):
    outcome = {k: r.error_code or "ok" for k, r in example_results.items()}
    assert outcome == {
        "bbb-gif": "ok", "bbb-webp": "ok", "chaplin-trim": "ok", "nasa-webp": "ok", "av1": "ok",
        "audio-only": "InvalidVideoFormat", "past-end": "InvalidTimeRange", "vod-shaped": "ok",
    }
    assert "audio" in example_results["audio-only"].error_message


@pytest.mark.parametrize("job,size,frames,duration", [
    ("bbb-gif", (640, 360), 45, 3.0),
    ("bbb-webp", (640, 360), 45, 3.0),
    ("vod-shaped", (640, 360), 45, 3.0),
    ("chaplin-trim", (320, 180), 46, 4.64),  # 9.64 s video, seek 1, trim 4 -> 4.64 s at 10 fps
    ("nasa-webp", (480, 270), 36, 3.0),  # the larger of the two video streams
    ("av1", (640, 360), 50, 2.0),
])
def test_outputs_have_the_asked_size_frames_and_duration_as_pillow_sees_them(example_results, job, size, frames, duration):
    r = example_results[job]
    assert (r.width, r.height, r.frames) == (*size, frames)
    shown = clients.pillow_frames(Path(r.output))
    assert shown[0][0].shape == (size[1], size[0], 3)
    assert abs(sum(d for _, d in shown) / 1000 - duration) <= 0.010


def test_seeking_into_the_long_clip_skips_what_comes_before_the_keyframe(example_results):
    # bbb has keyframes at 0.46 s and 5.80 s: a clip at 5-8 s decodes from 0.46 s, never from 0
    assert example_results["bbb-gif"].source_frames_decoded < 8.0 * 24


def test_vp9_without_a_container_duration_is_measured(corpus, tmp_path):
    line = {"id": "v", "input": str(corpus / "vp9_no_duration.webm"), "format": "gif", "fps": 5, "seek": 3, "trim_end": 1}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    (r,) = run_batch(load_manifest(manifest), tmp_path / "out", workers=1)
    assert r.ok, r.error_message
    assert r.frames == round((4.938 - 1 - 3) * 5)


def test_ten_bit_h264_gives_normal_colours(corpus, tmp_path):
    line = {"id": "t", "input": str(corpus / "h264_10bits.mp4"), "format": "webp", "fps": 10, "duration": 0.5}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    (r,) = run_batch(load_manifest(manifest), tmp_path / "out", workers=1)
    assert r.ok, r.error_message
    frame = clients.pillow_frames(Path(r.output))[0][0]
    assert 20 < frame.mean() < 235  # not the black/green garbage of a misread 10-bit plane
