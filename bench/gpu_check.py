"""``make gpu-check``: the project's own GPU verification, in under five minutes on one GPU.

A session lent a GPU runs this first (issue 14). On a machine without one it says so and exits 0
within seconds, without importing torch when no NVIDIA driver is in sight, so ``make gpu-check``
is safe anywhere. On a GPU, six stages run one after another, each in its own process on a time
budget (a stage that runs over is killed and reported as such; a stage with too little time left
is skipped, not run late):

1. ``pytest``   ``pytest -m gpu -rs`` on :data:`GPU_TEST_FILES` (the GPU-only checks).
2. ``doctor``   ``engine doctor --json``: versions, the PyNvVideoCodec import (and its fix), the
                codec limits GetDecoderCaps gives, what ``--device auto`` picks.
3. ``parity``   a few generated clips, each run as a job through ``--device cpu`` and
                ``--device cuda``: which decoder took the GPU job (or why it fell back), frame
                counts, and the PSNR between the two outputs' displayed frames.
4. ``reuse``    N clips decoded by NVDEC one after another in one process: the first clip (decoder
                created, CUDA warmed) against the rest (what reusing the decoder buys).
5. ``processes`` one batch through the GPU node with 1 process per GPU and with the default
                (``$ENGINE_GPU_PROCESSES``): wall seconds each.
6. ``bench``    ``engine bench --devices cpu,cuda`` on a small generated manifest.

The figures go to bench/results/gpu-check-<device>.json and .md, the device named as torch names
it (``torch.cuda.get_device_name``). Stages never raise into the report: a failure is a finding.

Runs from a checkout where ``animated_previews`` is not installed (the device machines' system
Python with torch, PyAV and PyNvVideoCodec, and no network): it then points a throw-away
``animated_previews`` package at the checkout's engine/, kernels/ and cli/.

    python -m bench.gpu_check [--results-dir DIR] [--budget SECONDS] [--keep-work]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
RESULTS_DIR = REPO / "bench" / "results"
DRIVER_FILE = Path("/proc/driver/nvidia/version")

BUDGET_S = 285
"""The whole run's budget: under five minutes with the start-up and the report."""
STAGE_BUDGETS: dict[str, int] = {"pytest": 90, "doctor": 20, "parity": 55, "reuse": 20, "processes": 55, "bench": 45}
"""Seconds each stage may take at most (they add up to :data:`BUDGET_S`). On an H200 (2026-12-04,
before the processes stage): pytest 45 s, doctor 8, parity 28 (it decodes every source frame
since), reuse 7.5, bench 22.6 (on the process pool then; the GPU node starts a CUDA context per
process now)."""
MIN_STAGE_S = 10
"""A stage with less time left than this is skipped."""
REUSE_CLIPS = 8
GPU_TEST_FILES = ("tests/engine/test_gif_quality.py", "tests/engine/test_gpu_parity.py", "tests/kernels/test_fit.py",
                  "tests/kernels/test_denoise.py", "tests/kernels/test_palette.py", "tests/kernels/test_resize.py")
"""The files holding tests marked ``gpu`` (tests/bench/test_gpu_check.py keeps this list whole)."""
PARITY_MARGIN_DB = 0.5
"""The bar tests/engine/test_gpu_parity.py sets (its own PARITY_MARGIN_DB): the GPU output's PSNR against the source frames at
most this far below the CPU output's (their PSNR to each other is reported, not judged: GIF
palettes follow small input differences chaotically; 33.4 dB apart on an H200 with the same frames
shown and bytes within 0.4%)."""


# --------------------------------------------------------------------------------------------
# Is there a GPU?
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuPresence:
    present: bool
    device: str | None
    """torch's name for cuda:0 when present."""
    reason: str
    """Why not, when absent."""


def gpu_presence(driver_file: Path = DRIVER_FILE, which: Callable[[str], str | None] = shutil.which,
                 torch_probe: Callable[[], tuple[bool, str | None, str]] | None = None) -> GpuPresence:
    """Whether this machine has a CUDA GPU that torch can use. Without an NVIDIA driver in sight
    (no /proc/driver/nvidia/version, no nvidia-smi) torch is not even imported: the answer is
    immediate."""
    if not driver_file.exists() and which("nvidia-smi") is None:
        return GpuPresence(False, None, f"no NVIDIA driver ({driver_file} is absent and nvidia-smi is not on PATH)")
    available, name, reason = (torch_probe or _torch_probe)()
    return GpuPresence(available, name, reason)


def _torch_probe() -> tuple[bool, str | None, str]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken torch is a finding
        return False, None, f"torch does not import ({type(exc).__name__}: {exc})"
    try:
        if not torch.cuda.is_available():
            return False, None, f"torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda})"
        return True, torch.cuda.get_device_name(0), ""
    except Exception as exc:  # noqa: BLE001
        return False, None, f"torch.cuda raised {type(exc).__name__}: {exc}"


def slug(name: str) -> str:
    """A file-name-safe form of a device name: "NVIDIA H200 NVL" -> "nvidia-h200-nvl"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageResult:
    """One stage: how it ended, how long it took, and what it found."""

    name: str
    status: str
    """"ok", "failed" (ran, found a failure or exited non-zero), "timeout", "skipped" or "error"."""
    seconds: float
    budget_s: float
    summary: dict[str, Any] = field(default_factory=dict)
    """The stage's figures (see each stage)."""
    detail: str = ""
    """The last lines of its output when it did not end "ok", or why it was skipped."""


@dataclass(frozen=True)
class GpuCheckReport:
    device: str
    started: str
    seconds: float
    budget_s: float
    python: str
    stages: tuple[StageResult, ...]

    @property
    def slug(self) -> str:
        return slug(self.device)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def render_markdown(report: GpuCheckReport) -> str:
    """The report as Markdown: a table of stages, then each stage's figures."""
    lines = [f"# GPU check on {report.device}", "",
             f"{report.started}, {report.seconds:.0f} s of a {report.budget_s:.0f} s budget, Python {report.python}.",
             "Made by `make gpu-check` (bench/gpu_check.py).", "",
             "| stage | status | seconds | budget s |", "|---|---|---|---|"]
    for stage in report.stages:
        lines.append(f"| {stage.name} | {stage.status} | {stage.seconds:.1f} | {stage.budget_s:.0f} |")
    for stage in report.stages:
        lines += ["", f"## {stage.name}: {stage.status}", ""]
        if stage.summary:
            lines += _STAGE_RENDERERS.get(stage.name, _render_plain)(stage.summary)
        else:
            lines.append(f"No figures ({stage.status}).")
        if stage.detail:
            lines += ["", "```", stage.detail.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _render_plain(summary: dict[str, Any]) -> list[str]:
    return [f"- {key}: {_fmt(value) if not isinstance(value, (dict, list)) else json.dumps(value)}"
            for key, value in summary.items()]


def _render_pytest(summary: dict[str, Any]) -> list[str]:
    counts = summary.get("counts", {})
    lines = [f"- {', '.join(f'{n} {k}' for k, n in counts.items()) or 'no summary line'}"]
    lines += [f"- {line}" for line in summary.get("not_passed", [])]
    return lines


def _render_doctor(summary: dict[str, Any]) -> list[str]:
    keys = ("torch", "torch_cuda", "driver", "video_libraries", "pynvvideocodec", "pynvvideocodec_error", "pynvvideocodec_advice",
            "nvdec_codecs_source", "auto")
    return [f"- {key}: {json.dumps(summary[key]) if isinstance(summary.get(key), (dict, list)) else summary.get(key)}"
            for key in keys if key in summary]


def _render_parity(summary: dict[str, Any]) -> list[str]:
    lines = [f"PSNR of each output's displayed frames against the source frames they show (bar: the GPU's at most "
             f"{PARITY_MARGIN_DB:g} dB below the CPU's), and between the two outputs.", "",
             "| clip | format | GPU job decoded by | frames cpu/gpu | same frames shown | CPU to source dB | GPU to source dB "
             "| CPU to GPU dB | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in summary.get("clips", []):
        lines.append(f"| {row.get('clip')} | {row.get('format')} | {row.get('gpu_decoder')} | "
                     f"{row.get('cpu_frames')}/{row.get('gpu_frames')} | {_fmt(row.get('same_shown'))} | "
                     f"{_fmt(row.get('cpu_to_source_db'))} | {_fmt(row.get('gpu_to_source_db'))} | "
                     f"{'identical' if row.get('identical') else _fmt(row.get('psnr_db'))} | {'; '.join(row.get('notes', [])) or row.get('error', '')} |")
    return lines


def _render_reuse(summary: dict[str, Any]) -> list[str]:
    if "first_s" not in summary:
        return _render_plain(summary)
    return [f"- {summary.get('clips')} clips of {summary.get('clip')}, decoded one after another in one process",
            f"- first clip: {summary['first_s'] * 1000:.1f} ms; the rest: median {summary['rest_median_s'] * 1000:.1f} ms, "
            f"min {summary['rest_min_s'] * 1000:.1f} ms",
            f"- first / rest median: {_fmt(summary.get('first_over_rest'))}x"]


def _render_bench(summary: dict[str, Any]) -> list[str]:
    lines = [f"`engine bench --devices cpu,cuda --repeat 1 --workers 4` on {summary.get('jobs')} generated jobs.", "",
             "| path | status | clips/s | output frames/s | failed | jobs ran on | peak GPU MiB |",
             "|---|---|---|---|---|---|---|"]
    for path, row in summary.get("paths", {}).items():
        used = ", ".join(f"{k} {v}" for k, v in (row.get("devices_used") or {}).items()) or "-"
        lines.append(f"| {path} | {row.get('status', '-')} | {_fmt(row.get('clips_per_s'))} | "
                     f"{_fmt(row.get('output_frames_per_s'))} | {_fmt(row.get('failed'))} | {used} | "
                     f"{_fmt(row.get('peak_gpu_mib'), 0)} |")
    return lines


def _render_processes(summary: dict[str, Any]) -> list[str]:
    lines = [f"`engine run --device cuda` (the GPU node) on {summary.get('jobs')} generated jobs, by processes per GPU "
             "(`$ENGINE_GPU_PROCESSES`), one run each.", "",
             "| processes per GPU | wall s | jobs | failed | decoded by |", "|---|---|---|---|---|"]
    for run in summary.get("runs", []):
        used = ", ".join(f"{k} {v}" for k, v in (run.get("decoded_by") or {}).items()) or "-"
        lines.append(f"| {run.get('processes')} | {_fmt(run.get('wall_s'))} | {run.get('jobs')} | {run.get('failed')} | {used} |")
    return lines


_STAGE_RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "pytest": _render_pytest, "doctor": _render_doctor, "parity": _render_parity, "reuse": _render_reuse,
    "processes": _render_processes, "bench": _render_bench,
}


def write_report(report: GpuCheckReport, results_dir: Path) -> tuple[Path, Path]:
    """bench/results/gpu-check-<device>.json and .md."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / f"gpu-check-{report.slug}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path


# --------------------------------------------------------------------------------------------
# Running the stages
# --------------------------------------------------------------------------------------------


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _installed() -> bool:
    try:
        import animated_previews.engine  # noqa: F401
    except ImportError:
        return False
    return True


def python_env(work: Path, installed: Callable[[], bool] = _installed) -> dict[str, str]:
    """The environment for the stages' processes: the checkout's tests/ on the path, and
    ``animated_previews`` importable even where it is not installed (a shim package whose
    engine/, kernels/ and cli/ are links to the checkout's)."""
    env = dict(os.environ)
    extra = [str(REPO), str(TESTS)]
    if not installed():
        shim = work / "shim"
        package = shim / "animated_previews"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text('"""The checkout\'s engine/, kernels/ and cli/ (bench/gpu_check.py)."""\n')
        for name in ("engine", "kernels", "cli"):
            link = package / name
            if not link.exists():
                link.symlink_to(REPO / name, target_is_directory=True)
        extra.insert(0, str(shim))
    env["PYTHONPATH"] = os.pathsep.join(extra + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _engine(*args: str) -> list[str]:
    """``engine ARGS`` through this Python (no console script needed)."""
    return [sys.executable, "-c", "from animated_previews.cli.main import main; main()", *args]


def run_command(name: str, command: list[str], budget: float, env: dict[str, str],
                parse: Callable[[str, int], tuple[str, dict[str, Any]]]) -> StageResult:
    """Run one stage's process on its budget; ``parse(stdout, returncode)`` -> (status, summary)."""
    started = time.monotonic()
    try:
        # Its own process group: on timeout the stage's workers (pytest's, engine bench's) go too,
        # instead of holding the GPU through the stages after it.
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
    except OSError as exc:
        return StageResult(name, "error", time.monotonic() - started, budget, {}, f"{type(exc).__name__}: {exc}")
    try:
        stdout, stderr = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        return StageResult(name, "timeout", time.monotonic() - started, budget, {}, _tail((stdout or "") + "\n" + (stderr or "")))
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    seconds = time.monotonic() - started
    try:
        status, summary = parse(done.stdout, done.returncode)
    except Exception as exc:  # noqa: BLE001 - an unreadable answer is a finding
        status, summary = "error", {"parse_error": f"{type(exc).__name__}: {exc}"}
    # What the figures do not say: the output other than the JSON line, and stderr.
    prose = "\n".join(line for line in done.stdout.splitlines() if not line.lstrip().startswith("{"))
    detail = "" if status == "ok" else _tail(prose + "\n" + done.stderr)
    return StageResult(name, status, seconds, budget, summary, detail)


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the stage's process group (it was started in a session of its own)."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|deselected|warnings?)")


def parse_pytest(stdout: str, returncode: int) -> tuple[str, dict[str, Any]]:
    """Counts from pytest's last summary line, and its -rs/-rf lines (what did not pass, and why)."""
    summary_lines = [line for line in stdout.splitlines() if _PYTEST_COUNT.search(line) and " in " in line]
    counts = {kind: int(n) for n, kind in _PYTEST_COUNT.findall(summary_lines[-1])} if summary_lines else {}
    not_passed = [line.strip() for line in stdout.splitlines()
                  if line.startswith(("SKIPPED", "FAILED", "ERROR", "XFAIL", "XPASS"))]
    status = "ok" if returncode == 0 else "failed"
    return status, {"returncode": returncode, "counts": counts, "not_passed": not_passed[:40]}


def parse_json_last_line(stdout: str, returncode: int) -> tuple[str, dict[str, Any]]:
    """A stage that prints its figures as a JSON object on its last line."""
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    status = summary.pop("status", None) or ("ok" if returncode == 0 else "failed")
    return status, summary


def parse_bench(stdout: str, returncode: int) -> tuple[str, dict[str, Any]]:
    """``engine bench --json``: the per-path throughput and failures."""
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    paths = {}
    for name, stats in result.get("paths", {}).items():
        paths[name] = {key: stats.get(key) for key in
                       ("status", "clips_per_s", "output_frames_per_s", "failed", "devices_used", "wall_s",
                        "stage_median_s") if key in stats}
        paths[name]["peak_gpu_mib"] = (stats.get("memory") or {}).get("peak_gpu_mib")
    return ("ok" if returncode == 0 else "failed"), {"returncode": returncode, "paths": paths,
                                                     "jobs": result.get("config", {}).get("jobs")}


def run_all(work: Path, device: str, budget: float = BUDGET_S, log: Callable[[str], None] = print,
            budgets: dict[str, int] | None = None, clock: Callable[[], float] = time.monotonic) -> GpuCheckReport:
    """Every stage in order, each on min(its budget, what is left of ``budget``); a stage with
    less than :data:`MIN_STAGE_S` left is skipped."""
    env = python_env(work)
    started_wall = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = clock()
    budgets = budgets or STAGE_BUDGETS
    stage_python = [sys.executable, "-m", "bench.gpu_check", "--work", str(work), "--stage"]
    commands: dict[str, tuple[list[str], Callable[[str, int], tuple[str, dict[str, Any]]]]] = {
        "pytest": ([sys.executable, "-m", "pytest", "-m", "gpu", "-rs", "-rf", "-q", "-p", "no:cacheprovider",
                    *GPU_TEST_FILES], parse_pytest),
        "doctor": (_engine("doctor", "--json"), parse_json_last_line),
        "parity": (stage_python + ["parity"], parse_json_last_line),
        "reuse": (stage_python + ["reuse"], parse_json_last_line),
        "processes": (stage_python + ["processes"], parse_json_last_line),
        "bench": (stage_python + ["bench"], parse_bench),
    }
    stages: list[StageResult] = []
    for name, (command, parse) in commands.items():
        elapsed = clock() - t0
        left = budget - elapsed
        limit = min(budgets.get(name, 30), left)
        if limit < MIN_STAGE_S:
            stages.append(StageResult(name, "skipped", 0.0, max(limit, 0.0), {}, f"time budget spent ({left:.0f} s left)"))
            log(f"[{elapsed:5.0f}s] {name}: skipped, {left:.0f} s left")
            continue
        log(f"[{elapsed:5.0f}s] {name} (up to {limit:.0f} s)")
        result = run_command(name, command, limit, env, parse)
        stages.append(result)
        log(f"        {name}: {result.status} in {result.seconds:.1f} s")
    return GpuCheckReport(device, started_wall, clock() - t0, budget, sys.version.split()[0], tuple(stages))


# --------------------------------------------------------------------------------------------
# The stages that run in this module (each in its own process: --stage NAME)
# --------------------------------------------------------------------------------------------


def _clips(work: Path) -> dict[str, Path]:
    """The generated clips the parity, reuse and bench stages share (made once, on the CPU)."""
    sys.path.insert(0, str(TESTS))
    import clipmaker

    clips = work / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    made = {
        "h264-240p.mp4": dict(fps=25, frames=75, gop=25, width=320, height=240),
        "h264-720p.mp4": dict(fps=25, frames=75, gop=25, width=1280, height=720),
        "h264-1080p.mp4": dict(fps=30, frames=90, gop=30, width=1920, height=1080),
        # B-frames in Matroska: no decode timestamps to check NVDEC's numbering with, so the CPU path
        "h264-1080p.mkv": dict(fps=30, frames=90, gop=30, width=1920, height=1080, container="matroska"),
    }
    out = {}
    for name, kwargs in made.items():
        path = clips / name
        if not path.exists():
            clipmaker.make_clip(path, **kwargs)
        out[name] = path
    if clipmaker.variant_available("hevc-10bit"):
        path = clips / "hevc10-240p.mp4"
        if not path.exists():
            clipmaker.make_clip(path, **{**clipmaker.VARIANTS["hevc-10bit"], "fps": 25, "frames": 75})
        out[path.name] = path
    return out


def stage_parity(work: Path) -> dict[str, Any]:
    """Each clip as a GIF and a WebP job on --device cpu and --device cuda: which decoder took
    the GPU job, frame counts, each output's PSNR against the source frames it shows, and the
    PSNR between the two outputs."""
    import numpy as np

    import clients
    import clipmaker
    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.job import run_job
    from animated_previews.engine.spec import parse_job

    rows = []
    worst = math.inf
    for name, path in _clips(work).items():
        source = clipmaker.source_frames(path)
        for fmt in ("gif", "webp"):
            fields = {"fps": 10, "seek": 0.5, "duration": 2, **({"width": 640} if "240p" not in name else {})}
            spec = parse_job({"id": f"{path.stem}-{fmt}", "input": str(path), "format": fmt, **fields},
                             default_id="p", input_root=path.parent)
            row: dict[str, Any] = {"clip": name, "format": fmt}
            try:
                cpu = run_job(spec, work / "parity" / "cpu", PyAVDecoder(), device="cpu")
                gpu = run_job(spec, work / "parity" / "gpu", PyAVDecoder(), device="cuda")
                row.update(gpu_decoder=gpu.device, cpu_frames=cpu.frames, gpu_frames=gpu.frames,
                           notes=list(gpu.notes), ok=bool(cpu.ok and gpu.ok))
                if cpu.ok and gpu.ok:
                    shown_a = clients.shown_at_instants(cpu.output, cpu.frames, 10)
                    shown_b = clients.shown_at_instants(gpu.output, gpu.frames, 10)
                    row["same_shown"] = [clipmaker.read_index(f) for f in shown_a] == [clipmaker.read_index(f) for f in shown_b]
                    for side, shown in (("cpu", shown_a), ("gpu", shown_b)):
                        value = clipmaker.psnr_to_source(shown, source)
                        row[f"{side}_to_source_db"] = None if math.isinf(value) else round(value, 2)
                    if len(shown_a) == len(shown_b):
                        value = clipmaker.psnr(np.stack(shown_a), np.stack(shown_b))
                        row["identical"] = math.isinf(value)
                        row["psnr_db"] = None if math.isinf(value) else round(value, 2)  # JSON has no infinity
                        if gpu.device == "nvdec":
                            worst = min(worst, value)
            except Exception as exc:  # noqa: BLE001 - one clip's failure is a row, not the end of the stage
                row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    on_gpu = [r for r in rows if r.get("gpu_decoder") == "nvdec"]
    good = bool(on_gpu) and all(r.get("same_shown") and (r.get("identical") or _as_good(r)) for r in on_gpu)
    return {"status": "ok" if good else "failed", "clips": rows, "on_gpu": len(on_gpu),
            "worst_psnr_db": None if math.isinf(worst) else round(worst, 2)}


def _as_good(row: dict[str, Any]) -> bool:
    """The GPU output at most PARITY_MARGIN_DB further from the source than the CPU's (None: lossless)."""
    cpu, gpu = row.get("cpu_to_source_db"), row.get("gpu_to_source_db")
    return gpu is None or (cpu is not None and gpu >= cpu - PARITY_MARGIN_DB)


def stage_reuse(work: Path, clips: int = REUSE_CLIPS) -> dict[str, Any]:
    """NVDEC decodes ``clips`` 3 s clips one after another in one process (one adapter, as a
    worker does): the first against the rest shows what creating the decoder and warming CUDA
    cost, and what the adapter's decoder reuse saves."""
    import torch

    from animated_previews.engine.decode import open_decoder
    from animated_previews.engine.probe import probe

    path = _clips(work)["h264-1080p.mp4"]
    media = probe(path)
    decoder = open_decoder("nvdec", device="cuda:0")  # the seam a worker uses
    instants = [k / 10 for k in range(30)]
    times = []
    for _ in range(clips):
        started = time.perf_counter()
        decoder.decode_frames(media, instants)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    rest = times[1:]
    return {"clip": path.name, "clips": clips, "seconds": times, "first_s": times[0],
            "rest_median_s": statistics.median(rest), "rest_min_s": min(rest),
            "first_over_rest": times[0] / statistics.median(rest) if statistics.median(rest) > 0 else None}


PROCESSES_SEEKS = (0.1, 0.6, 1.1)
"""Where the processes stage's jobs start in each generated clip (a GIF and a WebP job at each)."""


def stage_processes(work: Path) -> dict[str, Any]:
    """The same batch through ``engine run --device cuda`` (the GPU node) with one process per GPU
    and with :func:`~engine.executors.gpu_node.default_processes` (at least 2; ``$ENGINE_GPU_PROCESSES``
    when set): wall seconds for each, the decoders that took the jobs, failures. One run each, the
    one process first (its start-up is the smaller)."""
    from animated_previews.engine.executors.gpu_node import PROCESSES_ENV, default_processes

    clips = {name: path for name, path in _clips(work).items() if not name.endswith(".mkv")}
    manifest = work / "processes.jsonl"
    lines = [{"id": f"{path.stem}-{fmt}-{seek}", "input": str(path), "format": fmt, "fps": 10, "seek": seek,
              "duration": 1.5, **({"width": 640} if "240p" not in name else {})}
             for name, path in clips.items() for fmt in ("gif", "webp") for seek in PROCESSES_SEEKS]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = {k: v for k, v in os.environ.items() if k != PROCESSES_ENV}
    runs = []
    for processes in (1, max(2, default_processes(1))):
        out = work / f"processes-{processes}"
        command = _engine("run", "--batch", str(manifest), "--out-dir", str(out), "--no-store", "--device", "cuda",
                          "--results", str(out / "results.jsonl"))
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**env, PROCESSES_ENV: str(processes)})
        wall = time.perf_counter() - started
        results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()] if (out / "results.jsonl").exists() else []
        used: dict[str, int] = {}
        for result in results:
            used[str(result.get("device"))] = used.get(str(result.get("device")), 0) + 1
        runs.append({"processes": processes, "wall_s": round(wall, 2), "jobs": len(results), "returncode": done.returncode,
                     "failed": sum(r.get("status") != "success" for r in results), "decoded_by": used})
    good = all(run["returncode"] == 0 and run["jobs"] == len(lines) for run in runs)
    return {"status": "ok" if good else "failed", "jobs": len(lines), "runs": runs}


def stage_bench(work: Path) -> None:
    """``engine bench --devices cpu,cuda`` on a small manifest of the generated clips; prints its
    JSON report (the parent keeps the per-path figures)."""
    clips = _clips(work)
    manifest = work / "bench.jsonl"
    lines = []
    for name, path in clips.items():
        for fmt in ("gif", "webp"):
            lines.append({"id": f"{path.stem}-{fmt}", "input": str(path), "format": fmt, "fps": 10,
                          "seek": 0.5, "duration": 2, **({"width": 640} if "240p" not in name else {})})
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # 4 workers: 4 CPU processes on the cpu path; on the cuda path the GPU node (as `engine run
    # --device cuda` runs it) with 4 decode threads for the GPU, shared by its processes (each of
    # them starts a CUDA context), so that start-up fits the stage's budget.
    command = _engine("bench", "--manifest", str(manifest), "--devices", "cpu,cuda", "--repeat", "1", "--workers", "4",
                      "--psnr-jobs", "0", "--no-plot", "--json", "--name", "gpu-check-bench",
                      "--results-dir", str(work / "bench-results"))
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.exit(done.returncode)


def _run_stage(name: str, work: Path) -> None:
    if name == "bench":
        stage_bench(work)
        return
    stage = {"parity": stage_parity, "reuse": stage_reuse, "processes": stage_processes}[name]
    try:
        summary = stage(work)
    except Exception as exc:  # noqa: BLE001 - reported as the stage's finding
        summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(summary, default=str), flush=True)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


NO_GPU_MESSAGE = "gpu-check needs an NVIDIA GPU that torch can use; none here: {reason}. Nothing was run."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for all stages together")
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=("parity", "reuse", "bench"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--keep-work", action="store_true", help="keep the generated clips and outputs")
    args = parser.parse_args(argv)
    if args.stage:
        _run_stage(args.stage, args.work)
        return 0
    presence = gpu_presence()
    if not presence.present:
        print(NO_GPU_MESSAGE.format(reason=presence.reason))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    print(f"gpu-check on {presence.device}: stages {', '.join(STAGE_BUDGETS)} within {args.budget:.0f} s; work in {work}")
    try:
        report = run_all(work, presence.device or "cuda:0", args.budget)
    finally:
        if not args.keep_work and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    json_path, md_path = write_report(report, args.results_dir)
    print(render_markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
