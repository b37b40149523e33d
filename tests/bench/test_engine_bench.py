"""`engine bench`: a 1-job manifest through cpu (and ffmpeg), JSON with every promised field;
cuda is reported unavailable where torch sees no CUDA device, never as an error."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import harness, plots  # noqa: E402

STAGES = ("probe", "decode", "kernels", "encode", "write", "total")


@pytest.fixture(scope="module")
def one_job(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ebench")
    clip = clipmaker.make_clip(d / "c.mp4", fps=10, frames=30, width=160, height=120)
    m = d / "m.jsonl"
    m.write_text(json.dumps({"id": "one", "input": clip.name, "format": "gif", "fps": 5, "width": 80,
                             "seek": 1, "duration": 1}) + "\n")
    return m


def _run(tmp_path: Path, manifest: Path, *extra: str) -> tuple[int, dict, str]:
    res = CliRunner().invoke(main, ["bench", "--manifest", str(manifest), "--repeat", "1", "--name", "t",
                                    "--results-dir", str(tmp_path), *extra], catch_exceptions=False)
    return res.exit_code, json.loads((tmp_path / "t.json").read_text()), res.output


def _check_path(s: dict, n_frames: int) -> None:
    assert s["status"] == "ok"
    assert s["clips"] == 1 and s["succeeded"] == 1
    assert s["clips_per_s"] > 0 and s["output_frames_per_s"] > 0
    assert s["output_frames"] == n_frames
    assert set(STAGES) <= set(s["stage_mean_s"])
    assert s["memory"]["peak_worker_rss_mib"] > 10
    assert s["memory"]["peak_total_rss_mib"] >= s["memory"]["peak_worker_rss_mib"]
    assert "peak_gpu_mib" in s["memory"]
    assert s["bytes_mean"] > 0
    q = s["quality"]
    assert q["scored"] == 1 and 15 < q["psnr_mean_db"] <= 100


def test_cpu_and_cuda_paths(tmp_path, one_job):
    code, report, out = _run(tmp_path, one_job, "--devices", "cpu,cuda")
    assert code == 0, out
    cpu = report["paths"]["cpu"]
    _check_path(cpu, 5)
    assert all(cpu["stage_mean_s"][k] is not None for k in STAGES)
    assert 1 <= cpu["source_frames_per_output_frame"] < 10  # 1 s at 5 fps from a 10 fps clip: some frames skipped
    assert cpu["memory"]["peak_gpu_mib"] is None
    cuda = report["paths"]["cuda"]
    if harness.path_availability("cuda"):
        assert cuda == {"status": harness.path_availability("cuda")}
        assert cuda["status"].startswith("unavailable: ")
        assert "unavailable" in out
    assert report["machine"]["cpu_count"] >= 1 and report["config"]["jobs"] == 1
    assert (tmp_path / "t.png").exists() == plots.available()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_ffmpeg_baseline_is_scored_against_the_same_reference(tmp_path, one_job):
    code, report, out = _run(tmp_path, one_job, "--devices", "cpu", "--baseline", "ffmpeg", "--no-plot")
    assert code == 0, out
    ff = report["paths"]["ffmpeg"]
    _check_path(ff, 5)
    assert ff["source_frames_per_output_frame"] is None  # ffmpeg does not say
    assert ff["command"].startswith("ffmpeg ")
    assert list(report["paths"]) == ["cpu", "ffmpeg"]
    assert "ffmpeg" in out and not (tmp_path / "t.png").exists()


def test_max_bytes_and_seek_auto_reach_the_engine_and_get_a_line_of_their_own(tmp_path, one_job):
    clip = one_job.parent / "c.mp4"
    manifest = tmp_path / "options.jsonl"
    manifest.write_text(
        json.dumps({"id": "budget", "input": str(clip), "format": "gif", "fps": 5, "seek": 0, "duration": 2,
                    "max_bytes": 6000}) + "\n" +
        json.dumps({"id": "auto", "input": str(clip), "format": "webp", "fps": 5, "width": 80, "seek": "auto",
                    "duration": 1}) + "\n")
    code, report, out = _run(tmp_path, manifest, "--devices", "cpu", "--no-plot")
    assert code == 0, out
    assert report["config"]["engine_options"] == {"budget": {"max_bytes": 6000}, "auto": {"seek": "auto"}}
    results = {r["id"]: r for r in report["paths"]["cpu"]["results"]}
    assert results["budget"]["bytes"] <= 6000 and "budget" in results["budget"]["timings"]
    assert "autostart" in results["auto"]["timings"] and results["auto"]["start"] is not None
    table = out[out.index("Engine-only options"):]
    assert "budget" in table and "(within)" in table and "max_bytes 6000" in table
    assert "seek auto" in table and "auto " in table
    assert report["paths"]["cpu"]["quality"]["scored"] == 2  # the seek auto output scored from where it started


def test_bad_device_is_a_usage_error(tmp_path, one_job):
    res = CliRunner().invoke(main, ["bench", "--manifest", str(one_job), "--devices", "tpu"])
    assert res.exit_code == 2 and "--devices" in res.output


def test_plot_of_a_report_with_an_unavailable_path(tmp_path):
    if not plots.available():
        pytest.skip("matplotlib is not installed (the bench extra)")
    report = {"config": {"jobs": 1, "manifest": "m.jsonl"}, "machine": {},
              "paths": {"cpu": {"status": "ok", "clips_per_s": 2.0, "output_frames_per_s": 30.0,
                                "stage_mean_s": {"probe": 0.01, "decode": 0.2, "kernels": 0.1, "encode": 0.1,
                                                 "write": 0.0, "total": 0.41}},
                        "cuda": {"status": "unavailable: no CUDA device"}}}
    assert plots.plot_bench(report, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_cuda_job_fell_back_when_the_cpu_decoder_took_it():
    """Results name their decoder ("nvdec" or "pyav"), never "cuda"."""
    from bench.paths import fallbacks

    assert fallbacks("cuda", {"nvdec": 8}) == 0
    assert fallbacks("cuda", {"nvdec": 6, "pyav": 2}) == 2
    assert fallbacks("cpu", {"pyav": 8}) == 0


def test_the_cuda_path_runs_on_the_executor_engine_run_picks(monkeypatch):
    """The GPU node where the device finds GPUs (``--workers`` its decode threads per GPU), else
    run_batch's process pool, as ``engine run --device ...`` chooses."""
    from animated_previews.engine.executors import gpu_node

    monkeypatch.setattr(gpu_node, "visible_gpus", lambda: 0)
    assert harness.node_executor("cuda", 4) is None and harness.node_executor("cpu", 4) is None
    monkeypatch.setattr(gpu_node, "visible_gpus", lambda: 2)
    executor = harness.node_executor("cuda", 4)
    assert isinstance(executor, gpu_node.GpuNodeExecutor) and executor.threads == 4
    assert harness.node_executor("cpu", 4) is None
