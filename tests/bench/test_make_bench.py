"""`make bench` (bench/bench.py): a 1-job manifest through the engine and ffmpeg sides of the
shared harness, JSON and markdown with the committed files' shape; the harness's job model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import clipmaker

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import bench, harness  # noqa: E402


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mbench")
    clipmaker.make_clip(d / "c.mp4", fps=10, frames=30, width=160, height=120)
    return d


def test_jobs_are_the_engines_requests_made_explicit(clip_dir):
    m = clip_dir / "jobs.jsonl"
    m.write_text(json.dumps({"id": "t", "input": "c.mp4", "format": "gif", "fps": 5, "seek": 0.5, "trim_end": 1}) + "\n"
                 + json.dumps({"id": "bad", "input": "c.mp4", "format": "png", "fps": 5}) + "\n")
    loaded = harness.load_jobs(m)
    assert [b["id"] for b in loaded.invalid] == ["bad"]
    (job,) = loaded.jobs
    assert job.input == (clip_dir / "c.mp4").resolve() and job.as_written["trim_end"] == 1
    assert job.duration == pytest.approx(1.5) and job.n_frames == 8  # 3 s clip - 0.5 s seek - 1 s trim
    assert "trim_end" not in job.line and job.line["duration"] == job.duration
    assert [c.id for c in harness.copies(job, 2, "c")] == ["t-c0", "t-c1"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_engine_against_ffmpeg(tmp_path, clip_dir):
    m = clip_dir / "one.jsonl"
    m.write_text(json.dumps({"id": "one", "input": "c.mp4", "format": "webp", "fps": 5, "width": 80, "seek": 1,
                             "duration": 1}) + "\n")
    code = bench.main(["--jobs", str(m), "--corpus", str(clip_dir), "--repeat", "2", "--runs", "1", "--warmup", "0",
                       "--workers", "2", "--name", "t", "--results-dir", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["sides_order"] == ["engine", "ffmpeg", "ffmpeg-same-frames"]
    (job,) = report["jobs"]
    assert job["line"]["input"] == "c.mp4" and job["frames_expected"] == 5
    for side in ("engine", "ffmpeg"):
        s = job["sides"][side]
        t = s["timing"]
        assert t["clips_per_batch"] == 2 and t["runs"] == 1 and t["failed_clips"] == 0
        assert t["clips_per_s_best"] > 0 and t["cpu_s_per_clip_median"] > 0
        q = s["quality"]
        assert q["scored"] == 2 and 15 < q["psnr_mean_db"] <= 100 and q["frames_compared"] == 5
        (run,) = s["runs"]
        assert [c["id"] for c in sorted(run["clips"], key=lambda c: c["id"])] == ["one-c0", "one-c1"]
        assert run["memory"]["peak_worker_rss_mib"] > 0
    assert job["sides"]["ffmpeg"]["command"].startswith("ffmpeg ")
    assert set(job["sides"]["engine"]["stage_median_s"]) == set(harness.STAGES)
    exact = job["sides"]["ffmpeg-same-frames"]
    assert exact["timing"] is None and exact["single_latency_s"] > 0 and exact["quality"]["scored"] == 1
    assert job["ratios"]["throughput"] > 0 and job["ratios"]["psnr_diff_vs_exact_db"] is not None
    md = (tmp_path / "t.md").read_text()
    assert "| one | engine |" in md and "| one | ffmpeg-same-frames | untimed" in md and "Engine ÷ ffmpeg" in md
