"""``make gpu-check`` (bench/gpu_check.py): harmless without a GPU, and its report says what ran.

The stages themselves need a GPU; here they are faked (stage results, a stand-in process), so the
no-GPU exit, the budget logic, the parsers and the report are checked on any machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.gpu_check as gpu_check
from bench.gpu_check import GpuCheckReport, StageResult

REPO = Path(__file__).resolve().parents[2]


def test_without_a_driver_it_says_a_gpu_is_needed_and_exits_0(tmp_path):
    """No NVIDIA driver here (the CPU CI machines): the message, exit 0, nothing written."""
    if gpu_check.DRIVER_FILE.exists():
        pytest.skip("an NVIDIA driver is present: the check would run")
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--results-dir", str(tmp_path / "r")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpu-check needs an NVIDIA GPU that torch can use; none here: ")
    assert "Nothing was run." in done.stdout
    assert not (tmp_path / "r").exists()


def test_no_driver_in_sight_answers_without_asking_torch(tmp_path):
    def torch_probe():
        raise AssertionError("torch must not be asked when no driver is in sight")

    presence = gpu_check.gpu_presence(tmp_path / "absent", which=lambda name: None, torch_probe=torch_probe)
    assert not presence.present and presence.device is None
    assert presence.reason == f"no NVIDIA driver ({tmp_path / 'absent'} is absent and nvidia-smi is not on PATH)"


def test_a_driver_without_a_usable_gpu_is_reported_with_torchs_reason(tmp_path):
    driver = tmp_path / "version"
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06\n")
    presence = gpu_check.gpu_presence(driver, which=lambda name: None,
                                      torch_probe=lambda: (False, None, "torch 2.13.0 sees no CUDA device"))
    assert not presence.present and presence.reason == "torch 2.13.0 sees no CUDA device"


def test_a_gpu_is_named_as_torch_names_it(tmp_path):
    presence = gpu_check.gpu_presence(tmp_path / "absent", which=lambda name: "/usr/bin/nvidia-smi",
                                      torch_probe=lambda: (True, "NVIDIA H200", ""))
    assert presence.present and presence.device == "NVIDIA H200"


@pytest.mark.parametrize("name,want", [
    ("NVIDIA H200", "nvidia-h200"), ("NVIDIA H100 80GB HBM3", "nvidia-h100-80gb-hbm3"),
    ("Tesla T4", "tesla-t4"), ("  ", "gpu"),
])
def test_device_names_become_file_names(name, want):
    assert gpu_check.slug(name) == want


def test_the_stage_budgets_fit_in_five_minutes():
    assert sum(gpu_check.STAGE_BUDGETS.values()) <= gpu_check.BUDGET_S < 300
    assert list(gpu_check.STAGE_BUDGETS) == ["pytest", "doctor", "parity", "reuse", "processes", "bench"]


# -- the report ---------------------------------------------------------------------------------


def fake_report() -> GpuCheckReport:
    return GpuCheckReport(
        device="NVIDIA H200", started="2026-12-03 07:00:00 UTC", seconds=212.4, budget_s=285, python="3.12.3",
        stages=(
            StageResult("pytest", "failed", 80.2, 120, {"returncode": 1, "counts": {"passed": 19, "failed": 1, "skipped": 1},
                                                        "not_passed": ["FAILED tests/engine/test_gpu_parity.py::test_x - boom"]},
                        "FAILED tests/engine/test_gpu_parity.py::test_x - boom"),
            StageResult("doctor", "ok", 6.1, 30, {"torch": "2.11.0+cu130", "pynvvideocodec": "2.2.4",
                                                  "nvdec_codecs_source": "limits of cuda:0 (NVIDIA H200), asked with GetDecoderCaps",
                                                  "auto": {"device": "cuda:0", "backend": "nvdec"}}),
            StageResult("parity", "ok", 30.0, 45, {"clips": [
                {"clip": "h264-720p.mp4", "format": "gif", "gpu_decoder": "nvdec", "cpu_frames": 20, "gpu_frames": 20,
                 "same_shown": True, "cpu_to_source_db": 36.1, "gpu_to_source_db": 35.92, "psnr_db": 47.25, "notes": []},
                {"clip": "hevc10-240p.mp4", "format": "webp", "gpu_decoder": "pyav", "cpu_frames": 20, "gpu_frames": 20,
                 "same_shown": True, "psnr_db": None, "identical": True, "notes": ["fallback: nvdec does not decode 10-bit"]},
            ], "on_gpu": 1, "worst_psnr_db": 47.25}),
            StageResult("reuse", "ok", 12.0, 30, {"clip": "h264-1080p.mkv", "clips": 8, "seconds": [0.9] + [0.1] * 7,
                                                  "first_s": 0.9, "rest_median_s": 0.1, "rest_min_s": 0.095,
                                                  "first_over_rest": 9.0}),
            StageResult("processes", "ok", 30.5, 45, {"jobs": 24, "runs": [
                {"processes": 1, "wall_s": 14.2, "jobs": 24, "returncode": 0, "failed": 0, "decoded_by": {"nvdec": 24}},
                {"processes": 4, "wall_s": 6.1, "jobs": 24, "returncode": 0, "failed": 0, "decoded_by": {"nvdec": 24}}]}),
            StageResult("bench", "timeout", 60.0, 60, {}, "cpu: run 1 of 1 ..."),
        ),
    )


def test_the_markdown_names_the_device_and_every_stage():
    text = gpu_check.render_markdown(fake_report())
    assert text.startswith("# GPU check on NVIDIA H200\n")
    assert "212 s of a 285 s budget, Python 3.12.3" in text
    for row in ("| pytest | failed | 80.2 | 120 |", "| doctor | ok | 6.1 | 30 |", "| parity | ok | 30.0 | 45 |",
                "| reuse | ok | 12.0 | 30 |", "| bench | timeout | 60.0 | 60 |"):
        assert row in text
    assert "- 19 passed, 1 failed, 1 skipped" in text and "- FAILED tests/engine/test_gpu_parity.py::test_x - boom" in text
    assert "| h264-720p.mp4 | gif | nvdec | 20/20 | True | 36.10 | 35.92 | 47.25 |  |" in text
    assert "| hevc10-240p.mp4 | webp | pyav | 20/20 | True | - | - | identical | fallback: nvdec does not decode 10-bit |" in text
    assert "- first clip: 900.0 ms; the rest: median 100.0 ms, min 95.0 ms" in text and "9.00x" in text
    assert "## bench: timeout\n\nNo figures (timeout).\n\n```\ncpu: run 1 of 1 ...\n```" in text and "cpu: run 1 of 1 ..." in text
    assert '- auto: {"device": "cuda:0", "backend": "nvdec"}' in text
    assert "| 1 | 14.20 | 24 | 0 | nvdec 24 |" in text and "| 4 | 6.10 | 24 | 0 | nvdec 24 |" in text


def test_the_report_files_are_named_after_the_device(tmp_path):
    json_path, md_path = gpu_check.write_report(fake_report(), tmp_path)
    assert (json_path.name, md_path.name) == ("gpu-check-nvidia-h200.json", "gpu-check-nvidia-h200.md")
    data = json.loads(json_path.read_text())
    assert data["device"] == "NVIDIA H200" and [s["name"] for s in data["stages"]] == list(gpu_check.STAGE_BUDGETS)
    assert data["stages"][2]["summary"]["worst_psnr_db"] == 47.25
    assert md_path.read_text() == gpu_check.render_markdown(fake_report())


# -- parsers and the budget --------------------------------------------------------------------


def test_pytest_output_is_summarised():
    out = ("ss..F\nSKIPPED [1] tests/engine/test_gpu_parity.py:50: PyNvVideoCodec does not import here\n"
           "FAILED tests/engine/test_gpu_parity.py::test_y - AssertionError\n"
           "1 failed, 3 passed, 2 skipped in 41.20s\n")
    status, summary = gpu_check.parse_pytest(out, 1)
    assert status == "failed" and summary["counts"] == {"failed": 1, "passed": 3, "skipped": 2}
    assert summary["not_passed"] == ["SKIPPED [1] tests/engine/test_gpu_parity.py:50: PyNvVideoCodec does not import here",
                                     "FAILED tests/engine/test_gpu_parity.py::test_y - AssertionError"]


def test_a_stage_json_line_gives_its_status():
    status, summary = gpu_check.parse_json_last_line('making clips\n{"status": "failed", "on_gpu": 0}\n', 0)
    assert (status, summary) == ("failed", {"on_gpu": 0})
    assert gpu_check.parse_json_last_line('{"torch": "2.11"}\n', 0) == ("ok", {"torch": "2.11"})


def test_bench_json_keeps_the_per_path_figures():
    result = {"config": {"jobs": 8}, "paths": {
        "cpu": {"status": "ok", "clips_per_s": 2.5, "output_frames_per_s": 50.0, "failed": 0, "devices_used": {"pyav": 8},
                "memory": {"peak_gpu_mib": None}, "wall_s": 3.2, "bytes_total": 1},
        "cuda": {"status": "ok", "clips_per_s": 9.0, "failed": 0, "devices_used": {"nvdec": 8}, "memory": {"peak_gpu_mib": 812.0}}}}
    status, summary = gpu_check.parse_bench("log\n" + json.dumps(result) + "\n", 0)
    assert status == "ok" and summary["jobs"] == 8
    assert summary["paths"]["cuda"] == {"status": "ok", "clips_per_s": 9.0, "failed": 0, "devices_used": {"nvdec": 8},
                                        "peak_gpu_mib": 812.0}
    assert "bytes_total" not in summary["paths"]["cpu"]


def test_each_stage_gets_its_budget_or_what_is_left_and_late_stages_are_skipped(tmp_path, monkeypatch):
    """A fake clock: pytest uses its 90 s, doctor 20 s, parity gets the 30 s left of 140, and
    reuse, processes and bench, with 5 s left, are skipped rather than run late."""
    calls = []

    def fake_run(name, command, budget, env, parse):
        calls.append((name, budget, command))
        return StageResult(name, "timeout" if name == "pytest" else "ok", budget, budget)

    clock = iter([0.0, 0.0, 90.0, 110.0, 135.0, 135.0, 135.5, 136.0])
    monkeypatch.setattr(gpu_check, "run_command", fake_run)
    report = gpu_check.run_all(tmp_path, "NVIDIA H200", budget=140, log=lambda m: None, clock=lambda: next(clock))
    assert [(name, budget) for name, budget, _ in calls] == [("pytest", 90), ("doctor", 20), ("parity", 30)]
    assert calls[0][2][-len(gpu_check.GPU_TEST_FILES):] == list(gpu_check.GPU_TEST_FILES)
    assert calls[0][2][2:6] == ["pytest", "-m", "gpu", "-rs"] and calls[1][2][-2:] == ["doctor", "--json"]
    statuses = {s.name: s.status for s in report.stages}
    assert statuses == {"pytest": "timeout", "doctor": "ok", "parity": "ok", "reuse": "skipped", "processes": "skipped",
                        "bench": "skipped"}
    assert report.stages[3].detail == "time budget spent (5 s left)" and report.seconds == 136.0


def test_a_stage_over_budget_is_killed_with_its_children(tmp_path):
    """The stage starts a child (as pytest and engine bench start workers); both go at the timeout."""
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(c.pid)); print('started', flush=True); time.sleep(60)")
    result = gpu_check.run_command("slow", [sys.executable, "-c", code], 5, gpu_check.python_env(tmp_path),
                                   gpu_check.parse_json_last_line)
    assert result.status == "timeout" and result.budget_s == 5 and "started" in result.detail
    child = int(pid_file.read_text())

    def state() -> str:
        try:
            return Path(f"/proc/{child}/stat").read_text().split()[2]
        except FileNotFoundError:
            return "gone"

    for _ in range(100):  # SIGKILL is delivered asynchronously: wait for it to land (the child sleeps 60 s)
        if state() in ("gone", "Z", "X"):
            break
        time.sleep(0.1)
    assert state() in ("gone", "Z", "X")  # killed (a zombie until init reaps it)


@pytest.mark.parametrize("installed", [True, False])
def test_the_stages_import_the_package_even_when_it_is_not_installed(tmp_path, installed):
    """Without an installed animated_previews, python_env puts a shim first on PYTHONPATH whose
    engine/ is the checkout's; a child process then imports the checkout's modules through it
    (ahead of this venv's editable install) and the tests' helpers."""
    env = gpu_check.python_env(tmp_path, installed=lambda: installed)
    assert (tmp_path / "shim" / "animated_previews" / "engine").is_symlink() is (not installed)
    if installed:
        return
    code = "import animated_previews.engine.errors as e, clipmaker; print(e.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "shim" / "animated_previews" / "engine" / "errors.py")


def test_the_pytest_stage_runs_every_file_that_holds_gpu_tests():
    """A test marked ``gpu`` in a file the stage does not name would never run anywhere."""
    marked = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                    if re.search(r"^(@pytest\.mark\.gpu|pytestmark = pytest\.mark\.gpu)", p.read_text(), re.M))
    assert marked == sorted(gpu_check.GPU_TEST_FILES)


@pytest.mark.parametrize("cpu, gpu, good", [(36.1, 35.7, True), (36.1, 35.5, False), (None, 30.0, False), (36.1, None, True)])
def test_a_gpu_output_passes_parity_when_it_is_as_close_to_the_source_as_the_cpus(cpu, gpu, good):
    """Within PARITY_MARGIN_DB (0.5) of the CPU's PSNR to the source; None is a lossless match."""
    assert gpu_check._as_good({"cpu_to_source_db": cpu, "gpu_to_source_db": gpu}) is good


def test_the_processes_stage_runs_one_batch_per_setting_and_counts_what_came_back(tmp_path, monkeypatch):
    """On the CPU (``--device cpu`` for ``cuda``, so the runs go to the local executor and the
    processes setting reaches no GPU node): the batch, the settings timed, their results read back."""
    import clipmaker
    from animated_previews.engine.executors import gpu_node

    clip = clipmaker.make_clip(tmp_path / "h264-240p.mp4", fps=25, frames=50, gop=25)
    engine = gpu_check._engine
    monkeypatch.delenv(gpu_node.PROCESSES_ENV, raising=False)
    monkeypatch.setattr(gpu_node, "usable_cores", lambda: 16)  # the default the parent works out: 4
    monkeypatch.setattr(gpu_check, "_clips", lambda work: {"h264-240p.mp4": clip, "h264-1080p.mkv": tmp_path / "x.mkv"})
    monkeypatch.setattr(gpu_check, "_engine", lambda *args: engine(*("cpu" if a == "cuda" else a for a in args)))
    monkeypatch.setattr(gpu_check.os, "environ", {**os.environ, **gpu_check.python_env(tmp_path)})
    summary = gpu_check.stage_processes(tmp_path)
    jobs = 2 * len(gpu_check.PROCESSES_SEEKS)  # the mkv left out
    assert summary["status"] == "ok" and summary["jobs"] == jobs
    assert [run["processes"] for run in summary["runs"]] == [1, 4]
    assert all(run["jobs"] == jobs and run["failed"] == 0 and run["decoded_by"] == {"pyav": jobs} for run in summary["runs"])
