"""Run one manifest through several paths and measure each the same way (``engine bench``).

A *path* is a way of turning the manifest's jobs into images:

* ``cpu``, ``cuda``: the engine (``engine.run_batch``) on that device. ``run_batch`` gets
  ``device=`` when it accepts it; a device that cannot run here (no CUDA device, a CPU build of
  torch, a ``run_batch`` without ``device=``) is reported as ``unavailable: <reason>``, never as
  an error.
* ``ffmpeg``: the baseline, the ffmpeg command line users run (``bench.bench.ffmpeg_command``),
  one process per job, one thread each, as many in flight as the engine has workers.

Every path gets the same jobs, an untimed warm-up, then ``repeat`` timed runs of the whole
manifest, alternated between paths so that a noisy stretch of a shared machine hits all of them.
Reported per path (best run, all runs kept in the JSON):

* clips/s and output frames/s (batch wall time),
* source frames decoded per output frame (the engine's ``source_frames_decoded``; how well
  seeking works: 1.0 would mean every decoded frame was shown),
* seconds per stage per clip (probe, decode, kernels, encode, write, total, as the engine's
  ``Result.timings`` report them; on the GPU path the engine times its own GPU stages),
* peak RSS: the largest VmHWM of any worker process (engine) or ``ru_maxrss`` of any ffmpeg
  process, and the largest sum of resident memory of the bench and all its descendants seen
  while the batch ran,
* peak GPU memory (``nvidia-smi`` per process, cuda path only),
* output bytes and PSNR against one common reference (``bench/psnr.py``: the source frame on
  screen at each instant, Lanczos-resized), the same reference for every path.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
import shutil
import statistics
from collections import Counter
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import bench as _bench  # noqa: E402
from bench import psnr  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
ENGINE_PATHS = ("cpu", "cuda")
BASELINES = ("ffmpeg",)
STAGES = ("probe", "decode", "kernels", "encode", "write", "total")

# --------------------------------------------------------------------------------------------
# memory sampling of this process and its descendants


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def descendants(root: int | None = None) -> list[int]:
    """Pids of every live descendant of ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    seen, todo = [], [root]
    while todo:
        for child in _children(todo.pop()):
            if child not in seen:
                seen.append(child)
                todo.append(child)
    return seen


def _status_kib(pid: int, *keys: str) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in keys:
                    out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _gpu_memory_by_pid() -> dict[int, float] | None:
    """MiB of GPU memory per process, from nvidia-smi; None when there is no nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    usage: dict[int, float] = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            try:
                usage[int(parts[0])] = usage.get(int(parts[0]), 0.0) + float(parts[1])
            except ValueError:
                pass
    return usage


class MemorySampler:
    """Samples, every ``interval`` seconds and on demand, the resident memory of this process
    and of all its descendants (the engine's worker processes, ffmpeg processes).

    ``peak_child_hwm_kib``: the largest VmHWM (peak resident set) of any descendant;
    ``peak_total_kib``: the largest sum of VmRSS over this process and its descendants at one
    sample; ``series``: (seconds since start, total RSS KiB, worker processes alive) per sample.
    With ``gpu=True`` it also polls nvidia-smi (every ``gpu_interval`` s) for the GPU memory of
    this process tree (``peak_gpu_mib``)."""

    def __init__(self, interval: float = 0.2, gpu: bool = False, gpu_interval: float = 0.5,
                 exclude: set[int] | None = None):
        self.interval = interval
        self.gpu = gpu
        self.gpu_interval = gpu_interval
        self.exclude = set(exclude or ())  # long-lived helpers (e.g. a forkserver) to leave out of HWM
        self.peak_child_hwm_kib = 0
        self.peak_total_kib = 0
        self.peak_self_rss_kib = 0
        self.peak_gpu_mib: float | None = None
        self.series: list[tuple[float, int, int]] = []
        self._hwm_by_pid: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._last_gpu = -1e9

    def sample(self) -> None:
        with self._lock:
            now = time.perf_counter()
            self._last = now
            me = _status_kib(os.getpid(), "VmRSS").get("VmRSS", 0)
            total, alive = me, 0
            for pid in descendants():
                st = _status_kib(pid, "VmRSS", "VmHWM")
                total += st.get("VmRSS", 0)
                if pid in self.exclude:
                    continue
                alive += 1
                hwm = st.get("VmHWM", 0)
                if hwm > self._hwm_by_pid.get(pid, 0):
                    self._hwm_by_pid[pid] = hwm
                self.peak_child_hwm_kib = max(self.peak_child_hwm_kib, hwm)
            self.peak_self_rss_kib = max(self.peak_self_rss_kib, me)
            self.peak_total_kib = max(self.peak_total_kib, total)
            self.series.append((now - self._t0, total, alive))
            if self.gpu and now - self._last_gpu >= self.gpu_interval:
                self._last_gpu = now
                usage = _gpu_memory_by_pid()
                if usage is not None:
                    tree = {os.getpid(), *descendants()}
                    used = sum(v for pid, v in usage.items() if pid in tree)
                    self.peak_gpu_mib = max(self.peak_gpu_mib or 0.0, used)

    def maybe_sample(self) -> None:
        if time.perf_counter() - self._last >= self.interval:
            self.sample()

    def note_child_maxrss(self, kib: int | None) -> None:
        """A child that already ended (ffmpeg): its ru_maxrss from wait4."""
        if kib:
            with self._lock:
                self.peak_child_hwm_kib = max(self.peak_child_hwm_kib, int(kib))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "MemorySampler":
        self._t0 = time.perf_counter()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def to_dict(self) -> dict:
        mib = lambda k: round(k / 1024, 1)  # noqa: E731
        return {"peak_worker_rss_mib": mib(self.peak_child_hwm_kib), "peak_total_rss_mib": mib(self.peak_total_kib),
                "peak_bench_rss_mib": mib(self.peak_self_rss_kib),
                "peak_gpu_mib": None if self.peak_gpu_mib is None else round(self.peak_gpu_mib, 1),
                "samples": len(self.series)}


# --------------------------------------------------------------------------------------------
# jobs


@dataclass
class Jobs:
    """The manifest's jobs, made explicit (absolute input, seek and duration) so that every path
    gets exactly the same request; ``invalid`` holds lines the engine itself rejects."""

    jobs: list[_bench.Job]
    invalid: list[dict] = field(default_factory=list)


def _video_duration(path: Path) -> float:
    with psnr.av.open(str(path)) as c:
        stream = psnr.pick_video_stream(c)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if c.duration is not None:
            return c.duration / psnr.av.time_base
    raise ValueError(f"{path}: duration unknown")


def load_jobs(manifest: Path, input_root: Path | None = None) -> Jobs:
    """Parse ``manifest`` with the engine's own parser; a ``trim_end`` becomes a duration."""
    from animated_previews.engine import load_manifest

    jobs, invalid = [], []
    for entry in load_manifest(manifest, input_root=input_root):
        spec = entry.spec
        if spec is None:
            invalid.append({"id": entry.id, "line": entry.line,
                            "error": f"{entry.error.code.value}: {entry.error.message}" if entry.error else "invalid"})
            continue
        duration = spec.duration
        if duration is None:
            try:
                duration = max(0.0, _video_duration(spec.input) - spec.seek - (spec.trim_end or 0.0))
            except Exception as exc:  # noqa: BLE001 - a bad input is the job's failure, reported by the engine
                invalid.append({"id": spec.id, "line": entry.line, "error": f"cannot find the duration: {exc}"})
                continue
        line = {"id": spec.id, "input": str(Path(spec.input).resolve()), "format": spec.format, "fps": spec.fps,
                "seek": spec.seek, "duration": duration}
        if spec.width is not None:
            line["width"] = spec.width
        if spec.height is not None:
            line["height"] = spec.height
        jobs.append(_bench.Job(id=spec.id, line=line, input=Path(line["input"]), format=spec.format,
                               fps=float(spec.fps), seek=float(spec.seek), duration=float(duration),
                               width=spec.width, height=spec.height))
    return Jobs(jobs, invalid)


def write_manifest(jobs: list[_bench.Job], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for job in jobs:
            f.write(json.dumps(job.line) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# availability


def run_batch_accepts_device() -> bool:
    from animated_previews.engine import run_batch

    try:
        return "device" in inspect.signature(run_batch).parameters
    except (TypeError, ValueError):
        return False


def path_availability(path: str) -> str | None:
    """None when ``path`` can run here, else ``"unavailable: <reason>"``."""
    if path == "cpu":
        return None
    if path == "cuda":
        try:
            import torch
        except ImportError as exc:
            return f"unavailable: torch cannot be imported ({exc})"
        if not torch.cuda.is_available():
            build = torch.version.cuda
            why = (f"torch {torch.__version__} is a CPU-only build" if not build
                   else f"torch {torch.__version__} (CUDA {build}) sees no CUDA device")
            return f"unavailable: {why}"
        if not run_batch_accepts_device():
            return "unavailable: engine.run_batch has no device= argument in this checkout"
        return None
    if path == "ffmpeg":
        return None if shutil.which("ffmpeg") else "unavailable: ffmpeg is not on PATH"
    return f"unavailable: unknown path {path!r}"


# --------------------------------------------------------------------------------------------
# one run of the whole manifest through one path


def run_engine(jobs: list[_bench.Job], out_dir: Path, *, workers: int, device: str | None = None,
               on_result: Callable[[dict, float], None] | None = None, sample_interval: float = 0.2) -> dict:
    """All ``jobs`` through ``engine.run_batch``; wall and CPU time, results, memory peaks.

    ``device`` is passed to run_batch only when it accepts it (the CPU path of a checkout whose
    run_batch has no ``device=`` simply runs without)."""
    import animated_previews.engine as engine

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(jobs, out_dir / "bench-manifest.jsonl")
    kwargs = {}
    if device is not None and run_batch_accepts_device():
        kwargs["device"] = device
    # a forkserver left over from an earlier batch is a helper, not a worker: leave it out of HWM
    helpers = set(descendants())
    results: list[dict] = []
    done_at: list[float] = []
    total = len(jobs)
    sampler = MemorySampler(interval=sample_interval, gpu=(device == "cuda"), exclude=helpers)
    cpu0 = _bench.cpu_snapshot()
    error = None
    with sampler:
        t0 = time.perf_counter()

        def collect(result) -> None:
            now = time.perf_counter() - t0
            d = result.to_dict()
            results.append(d)
            done_at.append(now)
            if len(results) == total:
                sampler.sample()  # workers still alive: their final high-water marks
            else:
                sampler.maybe_sample()
            if on_result is not None:
                on_result(d, now)

        try:
            entries = engine.load_manifest(manifest)
            for _ in engine.run_batch(entries, out_dir=out_dir, workers=workers, on_result=collect, **kwargs):
                pass
        except Exception as exc:  # noqa: BLE001 - the API promises results, not raises: record it
            error = f"run_batch raised {type(exc).__name__}: {exc}"
        wall = time.perf_counter() - t0
    cpu = _bench.cpu_delta(cpu0, _bench.cpu_snapshot())
    return {"wall_s": wall, "cpu_s": cpu, "results": results, "done_at_s": done_at, "error": error,
            "memory": sampler.to_dict(), "memory_series": sampler.series}


def run_ffmpeg(jobs: list[_bench.Job], out_dir: Path, *, workers: int) -> dict:
    """All ``jobs`` through the ffmpeg CLI, ``workers`` processes at a time, one thread each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    starts = {}
    for job in jobs:
        if job.input not in starts:
            try:
                starts[job.input] = _bench.input_start_time(job.input, "container")
            except Exception:  # noqa: BLE001 - ffmpeg will report the bad input itself
                starts[job.input] = 0.0
    cmds = [(job, out_dir / f"{job.id}.{job.format}") for job in jobs]
    sampler = MemorySampler()
    cpu0 = _bench.cpu_snapshot()
    with sampler:
        t0 = time.perf_counter()

        def one(item):
            job, out = item
            r = _bench._run_ffmpeg(_bench.ffmpeg_command(job, out, False, starts[job.input]), t0)
            sampler.note_child_maxrss(r.get("maxrss_kib"))
            return job, out, r

        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(one, cmds))
        wall = time.perf_counter() - t0
    cpu = _bench.cpu_delta(cpu0, _bench.cpu_snapshot())
    results = []
    for job, out, r in runs:
        ok = r["returncode"] == 0 and out.exists() and out.stat().st_size > 0
        results.append({"id": job.id, "status": "success" if ok else "failed", "output": str(out),
                        "bytes": out.stat().st_size if out.exists() else None, "frames": job.n_frames if ok else None,
                        "timings": {"total": r["latency_s"]}, "source_frames_decoded": None,
                        "error_message": None if ok else (r["stderr"].strip() or f"exit {r['returncode']}")})
    return {"wall_s": wall, "cpu_s": cpu, "results": results, "error": None, "memory": sampler.to_dict(),
            "command": " ".join(_bench.ffmpeg_command(jobs[0], cmds[0][1], False, starts[jobs[0].input]))}


def run_path(path: str, jobs: list[_bench.Job], out_dir: Path, *, workers: int, **kw) -> dict:
    if path in ENGINE_PATHS:
        return run_engine(jobs, out_dir, workers=workers, device=path, **kw)
    if path == "ffmpeg":
        return run_ffmpeg(jobs, out_dir, workers=workers)
    raise ValueError(f"unknown path {path!r}")


# --------------------------------------------------------------------------------------------
# summaries


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def summarize_run(run: dict) -> dict:
    """Throughput, seeking efficiency and stage times of one run of the manifest."""
    res = run["results"]
    ok = [r for r in res if r.get("status") == "success"]
    wall = run["wall_s"]
    frames = sum(r.get("frames") or 0 for r in ok)
    decoded = [r.get("source_frames_decoded") for r in ok]
    src_per_out = (sum(decoded) / frames) if ok and frames and all(d is not None for d in decoded) else None
    stages_mean = {s: _mean([(r.get("timings") or {}).get(s) for r in ok]) for s in STAGES}
    stages_median = {s: _median([(r.get("timings") or {}).get(s) for r in ok]) for s in STAGES}
    return {
        "wall_s": wall, "cpu_s": run["cpu_s"], "clips": len(res), "succeeded": len(ok), "failed": len(res) - len(ok),
        "clips_per_s": len(ok) / wall if wall > 0 else None,
        "s_per_clip": wall / len(res) if res else None,
        "output_frames": frames,
        "output_frames_per_s": frames / wall if wall > 0 else None,
        "source_frames_decoded": sum(d for d in decoded if d is not None) if ok else None,
        "source_frames_per_output_frame": src_per_out,
        "stage_mean_s": stages_mean, "stage_median_s": stages_median,
        "bytes_total": sum(r.get("bytes") or 0 for r in ok), "bytes_mean": _mean([r.get("bytes") for r in ok]),
        "memory": run["memory"],
        # where the jobs really ran (the engine falls back to the CPU when the GPU path cannot take a job)
        "devices_used": dict(sorted(Counter(str(r.get("device")) for r in ok if r.get("device")).items())),
        "first_error": run.get("error") or next((f"{r.get('id')}: {r.get('error_code') or ''} {r.get('error_message')}"
                                                 for r in res if r.get("status") != "success"), None),
    }


def summarize_path(runs: list[dict]) -> dict:
    """Best run (noise only ever adds time) plus the median wall; memory peaks over all runs."""
    sums = [summarize_run(r) for r in runs]
    best = min(sums, key=lambda s: s["wall_s"])
    walls = [s["wall_s"] for s in sums]
    out = dict(best)
    out["runs"] = len(sums)
    out["wall_s_all"] = walls
    out["wall_s_median"] = statistics.median(walls)
    out["clips_per_s_median"] = best["succeeded"] / out["wall_s_median"] if out["wall_s_median"] else None
    out["memory"] = {
        k: max((s["memory"].get(k) or 0) for s in sums) if any(s["memory"].get(k) is not None for s in sums) else None
        for k in ("peak_worker_rss_mib", "peak_total_rss_mib", "peak_bench_rss_mib", "peak_gpu_mib")}
    return out


def score_path(jobs: list[_bench.Job], results: list[dict], references: dict, limit: int | None) -> dict:
    """PSNR of each output against the job's common reference (built once per job, shared)."""
    by_id = {r["id"]: r for r in results}
    per_job, flags = [], set()
    for job in jobs[: limit if limit is not None else len(jobs)]:
        r = by_id.get(job.id)
        if not r or r.get("status") != "success" or not r.get("output"):
            continue
        if job.id not in references:
            references[job.id] = psnr.decode_on_screen(job.input, psnr.instants(job.seek, job.duration, job.fps))
        s = psnr.score(Path(r["output"]), references[job.id], job.fps, job.duration, (job.width, job.height))
        flags.update(s["flags"])
        per_job.append({"id": job.id, "psnr_mean_db": s["psnr_mean_db"], "psnr_min_db": s["psnr_min_db"],
                        "bytes": Path(r["output"]).stat().st_size, "frames_stored": s["frames_stored"],
                        "frames_compared": s["frames_compared"], "flags": s["flags"]})
    if not per_job:
        return {"scored": 0}
    return {"scored": len(per_job), "psnr_mean_db": statistics.fmean(j["psnr_mean_db"] for j in per_job),
            "psnr_min_db": min(j["psnr_min_db"] for j in per_job),
            "bytes_mean": statistics.fmean(j["bytes"] for j in per_job), "flags": sorted(flags), "jobs": per_job}


# --------------------------------------------------------------------------------------------
# the whole benchmark


def machine_info(workers: int) -> dict:
    info = _bench.machine_info(workers)
    try:
        import torch

        info["torch_cuda_build"] = torch.version.cuda
        info["cuda_available"] = bool(torch.cuda.is_available())
        if info["cuda_available"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # noqa: BLE001 - report, never fail on a lookup
        info["cuda_available"] = f"unknown: {exc}"
    info["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return info


def run_bench(manifest: Path, *, devices: list[str], baselines: list[str], repeat: int = 3, warmup: int | None = None,
              workers: int | None = None, input_root: Path | None = None, psnr_jobs: int | None = None,
              keep_dir: Path | None = None, log: Callable[[str], None] = lambda m: None) -> dict:
    """Run ``manifest`` through every path in ``devices + baselines``; return the report dict."""
    from animated_previews.engine import default_workers

    workers = workers or default_workers()
    loaded = load_jobs(manifest, input_root)
    jobs = loaded.jobs
    paths = list(dict.fromkeys([*devices, *baselines]))
    warmup = min(len(jobs), workers) if warmup is None else min(warmup, len(jobs))
    report: dict = {
        "kind": "engine-bench",
        "config": {"manifest": str(manifest), "jobs": len(jobs), "invalid_lines": loaded.invalid, "paths": paths,
                   "repeat": repeat, "warmup_jobs": warmup, "workers": workers,
                   "psnr_jobs": len(jobs) if psnr_jobs is None else min(psnr_jobs, len(jobs)),
                   "run_batch_accepts_device": run_batch_accepts_device()},
        "machine": machine_info(workers),
        "paths": {},
    }
    available = []
    report["paths"] = {p: {"status": "not run"} for p in paths}  # keep the order asked for
    for p in paths:
        why = path_availability(p)
        if why:
            report["paths"][p] = {"status": why}
            log(f"{p}: {why}")
        else:
            available.append(p)
    if not jobs:
        for p in available:
            report["paths"][p] = {"status": "no valid jobs in the manifest"}
        return report
    runs: dict[str, list[dict]] = {p: [] for p in available}
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp_s:
        tmp = Path(tmp_s)
        for p in available:
            if warmup:
                w = run_path(p, jobs[:warmup], tmp / p / "warmup", workers=workers)
                log(f"{p}: warm-up, {warmup} jobs in {w['wall_s']:.2f} s")
        for r in range(repeat):
            order = available if r % 2 == 0 else list(reversed(available))
            for p in order:
                where = tmp / p / f"run{r}"
                res = run_path(p, jobs, where, workers=workers)
                res.pop("memory_series", None)
                runs[p].append(res)
                nfail = sum(1 for x in res["results"] if x.get("status") != "success")
                log(f"{p}: run {r + 1}/{repeat}: {len(jobs)} jobs in {res['wall_s']:.2f} s"
                    + (f", {nfail} failed" if nfail else ""))
                if r < repeat - 1:
                    shutil.rmtree(where, ignore_errors=True)
        references: dict = {}
        for p in available:
            summary = summarize_path(runs[p])
            summary["status"] = "ok" if not summary["failed"] else f"{summary['failed']} of {summary['clips']} jobs failed"
            if p == "cuda" and any(not d.startswith("cuda") for d in summary["devices_used"]):
                summary["status"] += f" (some jobs fell back: {summary['devices_used']})"
            if report["config"]["psnr_jobs"]:
                log(f"{p}: scoring PSNR against the common reference ...")
                summary["quality"] = score_path(jobs, runs[p][-1]["results"], references, report["config"]["psnr_jobs"])
            else:
                summary["quality"] = {"scored": 0}
            if p == "ffmpeg":
                summary["command"] = runs[p][0].get("command")
            summary["results"] = runs[p][-1]["results"]
            report["paths"][p] = summary
            if keep_dir is not None:
                dest = keep_dir / p
                dest.mkdir(parents=True, exist_ok=True)
                for x in runs[p][-1]["results"]:
                    if x.get("output") and Path(x["output"]).exists():
                        shutil.copy2(x["output"], dest / Path(x["output"]).name)
    report["machine"]["loadavg_end"] = os.getloadavg()
    return report


# --------------------------------------------------------------------------------------------
# the terminal table


def _f(x, fmt="{:.2f}"):
    return "–" if x is None else fmt.format(x)


def render_table(report: dict) -> str:
    cfg, m = report["config"], report["machine"]
    head = ["path", "status", "clips/s", "out fr/s", "src/out fr", "probe", "decode", "kernels", "encode", "write",
            "total", "peak RSS MiB", "peak GPU MiB", "bytes", "PSNR dB"]
    rows = []
    for p, s in report["paths"].items():
        if "clips_per_s" not in s:
            rows.append([p, s["status"]] + ["–"] * (len(head) - 2))
            continue
        st = s["stage_mean_s"]
        q = s.get("quality") or {}
        mem = s["memory"]
        rows.append([p, s["status"], _f(s["clips_per_s"]), _f(s["output_frames_per_s"], "{:.1f}"),
                     _f(s["source_frames_per_output_frame"]),
                     *[_f(st.get(k), "{:.3f}") for k in ("probe", "decode", "kernels", "encode", "write", "total")],
                     f"{_f(mem.get('peak_worker_rss_mib'), '{:.0f}')} / {_f(mem.get('peak_total_rss_mib'), '{:.0f}')}",
                     _f(mem.get("peak_gpu_mib"), "{:.0f}") if p == "cuda" else "n/a",
                     _f(s["bytes_mean"], "{:,.0f}"),
                     _f(q.get("psnr_mean_db")) + (f" ({q['psnr_min_db']:.1f})" if q.get("scored") else "")])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    lines = [
        f"engine bench: {cfg['jobs']} jobs from {cfg['manifest']}, {cfg['workers']} workers, "
        f"best of {cfg['repeat']} runs after a {cfg['warmup_jobs']}-job warm-up; "
        f"{m.get('cpu_model', '?')} ({m.get('cpus_usable')} CPUs)",
        fmt(head), fmt(["-" * w for w in widths]), *[fmt(r) for r in rows],
        "stages: mean seconds per clip as the engine times them (ffmpeg: total = process wall). "
        "peak RSS: largest worker process / whole process tree. src/out fr: source frames decoded per output frame. "
        "PSNR: mean (min) vs the common reference.",
    ]
    if cfg.get("invalid_lines"):
        lines.append(f"{len(cfg['invalid_lines'])} manifest lines rejected: {cfg['invalid_lines'][0]}")
    return "\n".join(lines)


def default_name() -> str:
    return "bench-" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def write_report(report: dict, name: str, results_dir: Path = RESULTS_DIR, plot: bool = True) -> dict[str, Path]:
    """bench/results/NAME.json (+ NAME.png when matplotlib is installed)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = {"json": results_dir / f"{name}.json"}
    out["json"].write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    if plot:
        from bench import plots

        png = results_dir / f"{name}.png"
        if plots.plot_bench(report, png):
            out["png"] = png
    return out
