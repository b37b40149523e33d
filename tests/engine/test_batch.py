"""`run_batch` end to end: the right frames at the right times in files real clients open,
and every bad job reported with a code while the rest of the batch goes on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import clients
import clipmaker
from animated_previews.engine import load_manifest, run_batch


def write_manifest(folder: Path, jobs: list[dict]) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return path


def run(folder: Path, jobs: list[dict], workers: int = 2):
    results = list(run_batch(load_manifest(write_manifest(folder, jobs)), folder / "out", workers=workers))
    return {r.id: r for r in results}


@pytest.fixture(scope="module")
def clip25(tmp_path_factory) -> Path:
    """4 s at 25 fps, 320x240, H.264, a keyframe every second."""
    return clipmaker.make_clip(tmp_path_factory.mktemp("src") / "clip.mp4", fps=25, frames=100, gop=25)


def shown(path: Path, fps: float, count: int) -> list[int]:
    """Index read from the frame a viewer shows at k/fps (mid-frame, to avoid edge rounding)."""
    frames = clients.pillow_frames(path)
    out = []
    for k in range(count):
        rgb = clients.displayed_frame_at(frames, (k + 0.5) / fps)
        out.append(clipmaker.read_index(rgb))
    return out


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_output_shows_the_source_frame_at_seek_plus_k_over_fps_and_lasts_the_duration(tmp_path, clip25, fmt):
    results = run(tmp_path, [{"id": "a", "input": str(clip25), "format": fmt, "fps": 10, "seek": 1.3, "duration": 1.5}])
    r = results["a"]
    assert r.ok, r.error_message
    assert (r.width, r.height, r.frames) == (320, 240, 15)
    assert shown(Path(r.output), 10, 15) == [math.floor((1.3 + k / 10) * 25 + 1e-6) for k in range(15)]
    frames = clients.pillow_frames(Path(r.output))
    assert abs(sum(d for _, d in frames) - 1500) <= 10
    assert r.bytes == Path(r.output).stat().st_size


def test_one_side_given_keeps_the_aspect_ratio(tmp_path, clip25):
    r = run(tmp_path, [{"id": "a", "input": str(clip25), "format": "gif", "fps": 5, "width": 160, "duration": 1}])["a"]
    assert (r.width, r.height) == (160, 120)
    assert clients.pillow_frames(Path(r.output))[0][0].shape == (120, 160, 3)


def test_gif_is_accepted_by_gifsicle_and_loops_forever(tmp_path, clip25):
    r = run(tmp_path, [{"id": "g", "input": str(clip25), "format": "gif", "fps": 20, "seek": 0, "duration": 1}])["g"]
    info = clients.gifsicle_info(Path(r.output))
    if info is None:
        pytest.skip("gifsicle is not installed")
    assert info["loop"] == 0 and (info["width"], info["height"]) == (320, 240)
    assert sum(info["delays_cs"]) == 100


def test_webp_is_accepted_by_webpmux_and_loops_forever(tmp_path, clip25):
    r = run(tmp_path, [{"id": "w", "input": str(clip25), "format": "webp", "fps": 20, "seek": 0, "duration": 1}])["w"]
    info = clients.webpmux_info(Path(r.output))
    if info is None:
        pytest.skip("webpmux is not installed")
    assert info["loop"] == 0 and (info["width"], info["height"]) == (320, 240)
    assert info["frames"] == 20 and sum(info["durations_ms"]) == 1000


def test_ffprobe_reads_the_gif(tmp_path, clip25):
    r = run(tmp_path, [{"id": "g", "input": str(clip25), "format": "gif", "fps": 10, "seek": 0, "duration": 1}])["g"]
    info = clients.ffprobe_info(Path(r.output))
    if info is None:
        pytest.skip("ffprobe is not installed")
    assert (info["width"], info["height"]) == (320, 240)


def test_bad_jobs_get_codes_and_the_rest_of_the_batch_still_runs(tmp_path, clip25):
    audio = clipmaker.make_audio_only(tmp_path / "sound.m4a")
    junk = clipmaker.make_not_media(tmp_path / "junk.mp4")
    jobs = [
        {"id": "missing", "input": "nope.mp4", "format": "gif", "fps": 10, "duration": 1},
        {"id": "audio", "input": str(audio), "format": "gif", "fps": 10, "duration": 1},
        {"id": "junk", "input": str(junk), "format": "webp", "fps": 10, "duration": 1},
        {"id": "late", "input": str(clip25), "format": "gif", "fps": 10, "seek": 4, "duration": 1},
        {"id": "trim", "input": str(clip25), "format": "gif", "fps": 10, "seek": 2, "trim_end": 2},
        {"id": "escape", "input": str(clip25), "format": "gif", "fps": 10, "duration": 1, "output": "../x.gif"},
        {"id": "fps", "input": str(clip25), "format": "gif", "fps": 99, "duration": 1},
        {"id": "good", "input": str(clip25), "format": "webp", "fps": 10, "seek": 3.5, "duration": 2},
    ]
    results = run(tmp_path, jobs)
    codes = {k: r.error_code for k, r in results.items()}
    assert codes == {
        "missing": "InputNotFound",
        "audio": "InvalidVideoFormat",
        "junk": "InvalidVideoFormat",
        "late": "InvalidTimeRange",
        "trim": "InvalidTimeRange",
        "escape": "InvalidParameter",
        "fps": "InvalidParameter",
        "good": None,
    }
    good = results["good"]
    assert good.ok and good.frames == 5 and any("clamped" in n for n in good.notes)
    assert "4.000" in results["late"].error_message  # the message says how long the video is
    # every job has a line in results.jsonl; no temporary or partial file is left behind
    lines = [json.loads(l) for l in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(l["id"] for l in lines) == sorted(results)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.webp", "results.jsonl"]


def test_a_rerun_replaces_outputs_whole(tmp_path, clip25):
    jobs = [{"id": "a", "input": str(clip25), "format": "gif", "fps": 10, "duration": 1}]
    first = run(tmp_path, jobs)["a"]
    second = run(tmp_path, jobs)["a"]
    assert first.output == second.output and Path(second.output).stat().st_size == second.bytes


def test_a_clip_too_big_to_hold_in_memory_is_refused_before_decoding(tmp_path, monkeypatch, clip25):
    from animated_previews.engine import job as engine_job

    # what a GIF of ten frames of 320x240 from this source needs
    monkeypatch.setattr(engine_job, "FRAME_MEMORY_BUDGET", engine_job.job_memory_estimate(
        palette=True, frames=10, distinct=10, width=320, height=240, source_width=320, source_height=240))
    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.spec import parse_job

    def job(**fields):
        return parse_job({"input": str(clip25), "format": "gif", **fields}, default_id="j", input_root=tmp_path)

    assert engine_job.run_job(job(fps=5, duration=1), tmp_path / "out", PyAVDecoder()).ok
    refused = engine_job.run_job(job(fps=25, duration=3), tmp_path / "out", PyAVDecoder())
    assert refused.error_code == "InvalidParameter" and "GiB" in refused.error_message and "320x240" in refused.error_message
    assert refused.timings.get("decode") is None
    # what counts is the output size: the same clip at a sixteenth of the area fits
    assert engine_job.run_job(job(fps=25, duration=3, width=80), tmp_path / "out", PyAVDecoder()).ok


def test_the_memory_bound_counts_a_rotated_source_at_its_upright_size(tmp_path, monkeypatch, rotated_clip):
    """Coded 320x240 but shown 240x320: asked 80 wide, its frames are 80x107, not 80x60. The bound
    is made before decoding (when the rotation is not yet known), so it takes the larger one."""
    from animated_previews.engine import job as engine_job
    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.spec import parse_job

    def frames_of(count, height):  # what a GIF of ``count`` frames of 80 x ``height`` from this source needs
        return engine_job.job_memory_estimate(palette=True, frames=count, distinct=count, width=80, height=height,
                                              source_width=320, source_height=240)

    monkeypatch.setattr(engine_job, "FRAME_MEMORY_BUDGET", frames_of(20, 100))  # 20 frames of 80x60 fit, of 80x107 not
    spec = parse_job({"input": str(rotated_clip), "format": "gif", "fps": 25, "duration": 0.8, "width": 80},
                     default_id="j", input_root=tmp_path)
    refused = engine_job.run_job(spec, tmp_path / "out", PyAVDecoder())
    assert refused.error_code == "InvalidParameter" and "80x107" in refused.error_message
    monkeypatch.setattr(engine_job, "FRAME_MEMORY_BUDGET", frames_of(25, 107))
    made = engine_job.run_job(spec, tmp_path / "out", PyAVDecoder())
    assert made.ok and (made.width, made.height) == (80, 107)
