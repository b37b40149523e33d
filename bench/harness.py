"""The benchmark harness: jobs, the paths that run them, timed runs alternated between paths, and
what is measured of each run. ``make bench`` (bench/bench.py), ``engine bench`` (bench/paths.py)
and the scaling curves (bench/scaling.py) all measure through it.

* **Jobs**: manifest lines parsed by the engine's own parser and made explicit (absolute input,
  seek, duration: a ``trim_end`` becomes a duration), so every path gets exactly the same request.
* **Paths**, one runner each, each giving the same run record:

  - ``engine``, ``cpu``, ``cuda``: ``engine.run_batch`` (``engine``: its default device; ``cpu``
    and ``cuda``: ``device=`` when ``run_batch`` accepts it);
  - ``ffmpeg``: the ffmpeg command users run (:func:`ffmpeg_command`), one process and one thread
    per job, as many in flight as the engine has workers;
  - ``ffmpeg-same-frames``: the same pipeline made to take exactly the frames on screen;
  - ``gifski``: gifski 1.7.1 on frames ffmpeg extracts (bench/gifski.py, installed on demand),
    the GIF jobs only.

* **Run record** (:func:`run_path`): ``wall_s``, ``cpu_s`` (this process and all its
  descendants), ``results`` (the engine's Result dicts; ffmpeg's in the same shape, with the
  process's own CPU and peak RSS under ``process``), ``done_at_s`` (when each result came),
  ``error``, ``memory`` (peaks; bench/process_tree.py), ``command`` (ffmpeg).
* **Timed runs** (:func:`run_alternated`): an untimed warm-up per path, then K timed runs
  alternated between paths (a, b, b, a, ...) so that a noisy stretch of a shared machine hits
  every path; only the last run's outputs are kept.
* **Measures**: :func:`summarize_run` and :func:`summarize_runs` (throughput, stage times,
  seeking, memory, bytes; best run, noise only ever adds time); :class:`Scorer` and
  :func:`quality` (PSNR against one common reference per job, bench/psnr.py, shared by every path).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

from bench import psnr
from bench.process_tree import MemorySampler, cpu_delta, cpu_snapshot, descendants

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
ENGINE_PATHS = ("cpu", "cuda")  # what `engine bench --devices` takes
BASELINES = ("ffmpeg", "gifski")  # what `engine bench --baseline` takes (gifski: the GIF jobs only)
STAGES = ("probe", "decode", "kernels", "encode", "write", "total")
ENGINE_ONLY = ("max_bytes", "fit", "pad_colour")
FFMPEG_WEBP_QUALITY = 75
"""libwebp_anim's quality as ffmpeg's baseline runs it (ffmpeg's default)."""
"""Manifest fields the engine paths are given as written (see :attr:`Job.engine_options`)."""

# --------------------------------------------------------------------------------------------
# jobs


@dataclass(frozen=True)
class Job:
    """One explicit request: ``input`` from ``seek`` for ``duration`` at ``fps``, as ``format``."""

    id: str
    input: Path  # absolute
    format: str
    fps: float
    seek: float
    duration: float
    width: int | None = None
    height: int | None = None
    as_written: dict | None = field(default=None, compare=False)  # the manifest line as given
    quality: int | None = None  # a baseline's quality setting instead of its default (ffmpeg WebP, gifski)

    @property
    def n_frames(self) -> int:
        return len(psnr.instants(self.seek, self.duration, self.fps))

    @property
    def line(self) -> dict:
        """The manifest line every path is given."""
        line = {"id": self.id, "input": str(self.input), "format": self.format, "fps": self.fps, "seek": self.seek,
                "duration": self.duration}
        if self.width is not None:
            line["width"] = self.width
        if self.height is not None:
            line["height"] = self.height
        line.update(self.engine_options)
        return line

    @property
    def engine_options(self) -> dict:
        """What only the engine can do, as the manifest asked: ``max_bytes``, ``fit``,
        ``pad_colour`` and ``seek: "auto"``. The engine paths get them; baselines run the plain
        job (ffmpeg and gifski have no such options)."""
        written = self.as_written or {}
        options = {k: written[k] for k in ENGINE_ONLY if k in written}
        if isinstance(written.get("seek"), str) and written["seek"].strip().lower() == "auto":
            options["seek"] = "auto"
        return options


def copies(job: Job, count: int, tag: str) -> list[Job]:
    """``count`` copies of ``job`` with ids ``<id>-<tag>0 ..``: a batch of distinct clips."""
    return [replace(job, id=f"{job.id}-{tag}{i}") for i in range(count)]


@dataclass
class Jobs:
    """The manifest's jobs, and the lines that are not a job (``{"id", "line", "error"}``)."""

    jobs: list[Job]
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
    """Parse ``manifest`` with the engine's own parser (relative inputs from ``input_root``, default
    the manifest's folder); a ``trim_end`` becomes a duration."""
    from animated_previews.engine import parse_manifest_lines

    manifest = Path(manifest)
    text = manifest.read_text(encoding="utf-8").splitlines()
    root = Path(input_root) if input_root is not None else manifest.resolve().parent
    jobs, invalid = [], []
    for entry in parse_manifest_lines(text, input_root=root):
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
        jobs.append(Job(id=spec.id, input=Path(spec.input).resolve(), format=spec.format, fps=float(spec.fps),
                        seek=float(spec.seek), duration=float(duration), width=spec.width, height=spec.height,
                        as_written=json.loads(text[entry.line - 1])))
    return Jobs(jobs, invalid)


def write_manifest(jobs: list[Job], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for job in jobs:
            f.write(json.dumps(job.line) + "\n")
    return path


def input_start(path: Path, origin: str) -> float:
    """Time zero of ``path`` for seeking: the container's start (as ``ffmpeg -ss``) or the video stream's."""
    with psnr.av.open(str(path)) as c:
        return float(psnr.time_origin(c, psnr.pick_video_stream(c), origin))


# --------------------------------------------------------------------------------------------
# which paths can run here


def run_batch_accepts_device() -> bool:
    from animated_previews.engine import run_batch

    try:
        return "device" in inspect.signature(run_batch).parameters
    except (TypeError, ValueError):
        return False


def path_availability(path: str) -> str | None:
    """None when ``path`` can run here, else ``"unavailable: <reason>"``."""
    if path in ("engine", "cpu"):
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
    if path in ("ffmpeg", "ffmpeg-same-frames"):
        return None if shutil.which("ffmpeg") else "unavailable: ffmpeg is not on PATH"
    if path == "gifski":
        if not shutil.which("ffmpeg"):
            return "unavailable: ffmpeg (which extracts gifski's frames) is not on PATH"
        binary, note = gifski_binary()
        return None if binary is not None else f"unavailable: {note}"
    return f"unavailable: unknown path {path!r}"


_GIFSKI: list = []


def gifski_binary() -> tuple[Path | None, str]:
    """gifski 1.7.1 (bench/gifski.py), installed on demand once per process: (binary, note)."""
    if not _GIFSKI:
        from bench import gifski

        _GIFSKI.append(gifski.ensure())
    return _GIFSKI[0]


def run_gifski(jobs: list[Job], out_dir: Path, *, workers: int) -> dict:
    """The GIF jobs among ``jobs`` through ffmpeg (PNG frames) + gifski, ``workers`` at a time; other
    formats are left out of the run (gifski makes GIFs only), so its record covers the GIF jobs."""
    from bench import gifski

    binary, _ = gifski_binary()
    sampler = MemorySampler()
    with sampler:
        run = gifski.run_gifski([j for j in jobs if j.format == "gif"], out_dir, workers=workers, binary=binary)
    run["memory"] = sampler.to_dict()
    return run


# --------------------------------------------------------------------------------------------
# the runners: one run of some jobs through one path


def _failed(job_id: str, message: str) -> dict:
    return {"id": job_id, "status": "failed", "output": None, "bytes": None, "error_code": None,
            "error_message": message, "timings": {}}


def node_executor(device: str, workers: int):
    """The executor ``engine run --device DEVICE --workers N`` would use when the device finds
    GPUs here (the GPU node, ``workers`` decode threads per GPU), else None (run_batch's process
    pool): the cuda path is measured as users run it. (Until 2026-12-04 it ran on the process
    pool, one CUDA context per worker, which no user's ``engine run`` does.)"""
    try:
        from animated_previews.engine.device import parse_device
        from animated_previews.engine.executors.gpu_node import GpuNodeExecutor, node_gpus
    except ImportError:  # an older checkout
        return None
    return GpuNodeExecutor(threads=workers) if node_gpus(parse_device(device)) else None


def run_engine(jobs: list[Job], out_dir: Path, *, workers: int, device: str | None = None) -> dict:
    """All ``jobs`` through ``engine.run_batch``; wall and CPU time, results, memory peaks.

    ``device`` is passed to run_batch only when it accepts it (None: run_batch's default)."""
    import animated_previews.engine as engine

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(jobs, out_dir / "bench-manifest.jsonl")
    kwargs = {}
    if device is not None and run_batch_accepts_device():
        kwargs["device"] = device
        executor = node_executor(device, workers)
        if executor is not None:
            kwargs["executor"] = executor
    # a forkserver left over from an earlier batch is a helper, not a worker: leave it out of HWM
    sampler = MemorySampler(gpu=(device != "cpu"), exclude=set(descendants()))
    results: list[dict] = []
    done_at: list[float | None] = []
    error = None
    cpu0 = cpu_snapshot()
    with sampler:
        t0 = time.perf_counter()

        def collect(result) -> None:
            done_at.append(time.perf_counter() - t0)
            results.append(result.to_dict())
            if len(results) == len(jobs):
                sampler.sample()  # workers still alive: their final high-water marks
            else:
                sampler.maybe_sample()

        try:
            for _ in engine.run_batch(engine.load_manifest(manifest), out_dir=out_dir, workers=workers,
                                      on_result=collect, **kwargs):
                pass
        except Exception as exc:  # noqa: BLE001 - the API promises results, not raises: record it
            error = f"run_batch raised {type(exc).__name__}: {exc}"
            seen = {r["id"] for r in results}
            missing = [_failed(job.id, error) for job in jobs if job.id not in seen]
            results += missing
            done_at += [None] * len(missing)
        wall = time.perf_counter() - t0
    cpu = cpu_delta(cpu0, cpu_snapshot())
    return {"wall_s": wall, "cpu_s": cpu, "results": results, "done_at_s": done_at, "error": error,
            "memory": sampler.to_dict(), "memory_series": sampler.series}


def ffmpeg_command(job: Job, out: Path, exact: bool, input_start: float) -> list[str]:
    """The ffmpeg CLI for one job, one thread for decode, filters and encode (one job per core).

    exact=False: the command users run (``-ss`` before ``-i``, ``-t``, ``fps``). ffmpeg's accurate
    seek drops the frame on screen at ``seek`` and ``fps`` (round=near) then takes the frame nearest
    each instant, up to one source frame later than the one on screen.
    exact=True: the same pipeline taking exactly the frame on screen at ``seek + k/fps``: decode
    from the keyframe with timestamps kept, ``fps=...:start_time=<seek>:round=up``, n frames.
    """
    if job.width and job.height:
        scale = f"scale={job.width}:{job.height}:flags=lanczos"
    elif job.width or job.height:
        scale = f"scale={job.width or -1}:{job.height or -1}:flags=lanczos"
    else:
        scale = None
    fps_q = Fraction(str(job.fps))
    fps_arg = f"{fps_q.numerator}/{fps_q.denominator}"
    if exact:
        start = input_start + job.seek
        fps_filter = f"fps=fps={fps_arg}:start_time={start!r}:round=up"
        head = ["-noaccurate_seek", "-copyts", "-ss", repr(job.seek), "-i", str(job.input)]
        tail = ["-frames:v", str(job.n_frames)]
    else:
        fps_filter = f"fps={fps_arg}"
        head = ["-ss", repr(job.seek), "-i", str(job.input)]
        tail = ["-t", repr(job.duration)]
    chain = ",".join(x for x in (fps_filter, scale) if x)
    if job.format == "gif":
        vf = f"{chain},split[a][b];[a]palettegen[p];[b][p]paletteuse"
        codec = []
    elif job.format == "webp":
        vf = chain
        codec = ["-c:v", "libwebp_anim", "-quality", str(FFMPEG_WEBP_QUALITY if job.quality is None else job.quality)]
    else:
        raise SystemExit(f"job {job.id}: format {job.format!r} is not gif or webp")
    return (["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1"]
            + head + tail + ["-an", "-sn", "-dn", "-filter_threads", "1", "-vf", vf]
            + codec + ["-threads", "1", "-loop", "0", str(out)])


def _run_process(cmd: list[str], batch_t0: float) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    t1 = time.perf_counter()
    return {"latency_s": t1 - t0, "done_at_s": t1 - batch_t0, "returncode": os.waitstatus_to_exitcode(status),
            "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
            "stderr": stderr.decode("utf-8", "replace")[-2000:]}


def run_ffmpeg(jobs: list[Job], out_dir: Path, *, workers: int, exact: bool = False,
               origin: str = "container") -> dict:
    """All ``jobs`` through the ffmpeg CLI, ``workers`` processes at a time, one thread each
    (``exact``: the command that takes exactly the frames on screen, seek counted from ``origin``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    starts: dict[Path, float] = {}
    for job in jobs if exact else ():
        if job.input not in starts:
            try:
                starts[job.input] = input_start(job.input, origin)
            except Exception:  # noqa: BLE001 - ffmpeg will report the bad input itself
                starts[job.input] = 0.0
    outs = [out_dir / f"{job.id}.{job.format}" for job in jobs]
    cmds = [ffmpeg_command(job, out, exact, starts.get(job.input, 0.0)) for job, out in zip(jobs, outs)]
    sampler = MemorySampler()
    cpu0 = cpu_snapshot()
    with sampler:
        t0 = time.perf_counter()

        def one(cmd: list[str]) -> dict:
            r = _run_process(cmd, t0)
            sampler.note_child_maxrss(r["maxrss_kib"])
            return r

        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(one, cmds))
        wall = time.perf_counter() - t0
    cpu = cpu_delta(cpu0, cpu_snapshot())
    results = []
    for job, out, r in zip(jobs, outs, runs):
        ok = r["returncode"] == 0 and out.exists() and out.stat().st_size > 0
        results.append({"id": job.id, "status": "success" if ok else "failed", "output": str(out),
                        "bytes": out.stat().st_size if out.exists() else None, "frames": job.n_frames if ok else None,
                        "timings": {"total": r["latency_s"]}, "source_frames_decoded": None,
                        "error_message": None if ok else (r["stderr"].strip() or f"exit {r['returncode']}"),
                        "process": {"cpu_s": r["cpu_s"], "maxrss_kib": r["maxrss_kib"]}})
    return {"wall_s": wall, "cpu_s": cpu, "results": results, "done_at_s": [r["done_at_s"] for r in runs],
            "error": None, "memory": sampler.to_dict(), "command": cmds[0] if cmds else None}


def run_path(path: str, jobs: list[Job], out_dir: Path, *, workers: int, origin: str = "container") -> dict:
    """One run of ``jobs`` through ``path``: its run record."""
    if path == "engine":
        return run_engine(jobs, out_dir, workers=workers)
    if path in ENGINE_PATHS:
        return run_engine(jobs, out_dir, workers=workers, device=path)
    if path in ("ffmpeg", "ffmpeg-same-frames"):
        return run_ffmpeg(jobs, out_dir, workers=workers, exact=path == "ffmpeg-same-frames", origin=origin)
    if path == "gifski":
        return run_gifski(jobs, out_dir, workers=workers)
    raise ValueError(f"unknown path {path!r}")


def run_alternated(paths: list[str], jobs: list[Job], *, warmup: list[Job], runs: int, workers: int, tmp: Path,
                   log: Callable[[str], None], origin: str = "container") -> dict[str, list[dict]]:
    """The ``warmup`` jobs untimed through each path, then ``runs`` timed runs of ``jobs`` through
    every path, alternated; the run records per path (only the last run's outputs stay on disk)."""
    for p in paths:
        if warmup:
            w = run_path(p, warmup, tmp / p / "warmup", workers=workers, origin=origin)
            first = summarize_run(w)["first_error"]
            log(f"{p}: warm-up, {len(warmup)} jobs in {w['wall_s']:.2f} s" + (f", FAILED: {first}" if first else ""))
    out: dict[str, list[dict]] = {p: [] for p in paths}
    for r in range(runs):
        for p in paths if r % 2 == 0 else list(reversed(paths)):
            where = tmp / p / f"run{r}"
            res = run_path(p, jobs, where, workers=workers, origin=origin)
            res.pop("memory_series", None)
            out[p].append(res)
            n = len(jobs)
            nfail = sum(1 for x in res["results"] if x.get("status") != "success")
            log(f"{p}: run {r + 1}/{runs}: {n} jobs in {res['wall_s']:.2f} s ({res['wall_s'] / n:.2f} s/job, "
                f"CPU {res['cpu_s'] / n:.2f} s/job)" + (f", {nfail} FAILED" if nfail else ""))
            if r < runs - 1:
                shutil.rmtree(where, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# what is measured of runs


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def succeeded(results: Iterable[dict]) -> list[dict]:
    return [r for r in results if r.get("status") == "success"]


def error_of(result: dict) -> str | None:
    """A failed result's error, ``"<code>: <message>"`` where the engine gave a code."""
    if result.get("status") == "success":
        return None
    code, message = result.get("error_code"), result.get("error_message")
    return f"{code}: {message}" if code else message


def stage_times(results: Iterable[dict], statistic: Callable = median) -> dict:
    """``statistic`` of each stage's seconds (``Result.timings``) over the succeeded results."""
    ok = succeeded(results)
    return {s: statistic([(r.get("timings") or {}).get(s) for r in ok]) for s in STAGES}


def summarize_run(run: dict) -> dict:
    """Throughput, seeking efficiency, stage times, bytes and memory of one run."""
    res = run["results"]
    ok = succeeded(res)
    wall = run["wall_s"]
    frames = sum(r.get("frames") or 0 for r in ok)
    decoded = [r.get("source_frames_decoded") for r in ok]
    src_per_out = (sum(decoded) / frames) if ok and frames and all(d is not None for d in decoded) else None
    return {
        "wall_s": wall, "cpu_s": run["cpu_s"], "clips": len(res), "succeeded": len(ok), "failed": len(res) - len(ok),
        "clips_per_s": len(ok) / wall if wall > 0 else None,
        "s_per_clip": wall / len(res) if res else None,
        "output_frames": frames,
        "output_frames_per_s": frames / wall if wall > 0 else None,
        "source_frames_decoded": sum(d for d in decoded if d is not None) if ok else None,
        "source_frames_per_output_frame": src_per_out,
        "stage_mean_s": stage_times(ok, mean), "stage_median_s": stage_times(ok, median),
        "bytes_total": sum(r.get("bytes") or 0 for r in ok), "bytes_mean": mean([r.get("bytes") for r in ok]),
        "memory": run["memory"],
        # where the jobs really ran (the engine falls back to the CPU when the GPU path cannot take a job)
        "devices_used": dict(sorted(Counter(str(r.get("device")) for r in ok if r.get("device")).items())),
        "first_error": run.get("error") or next((f"{r.get('id')}: {r.get('error_code') or ''} {r.get('error_message')}"
                                                 for r in res if r.get("status") != "success"), None),
    }


def summarize_runs(runs: list[dict]) -> dict:
    """The best run's summary (noise only ever adds time), the median wall, and over all runs:
    memory peaks, clip latency (``timings.total``), CPU seconds per clip and failures."""
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
    latencies = [(r.get("timings") or {}).get("total") for run in runs for r in succeeded(run["results"])]
    out["latency_median_s"] = median(latencies)
    out["latency_max_s"] = max((x for x in latencies if x is not None), default=None)
    out["cpu_s_per_clip_median"] = median([s["cpu_s"] / s["clips"] for s in sums if s["clips"]])
    out["failed_all_runs"] = sum(s["failed"] for s in sums)
    return out


class Scorer:
    """PSNR of outputs against the common reference of their job (bench/psnr.py: the source frame
    on screen at each instant, Lanczos-resized), decoded once per input and time span and shared
    by every path. ``sample`` and ``origin`` as in :func:`psnr.score` and :func:`psnr.decode_on_screen`."""

    def __init__(self, sample: str = "middle", origin: str = "container"):
        self.sample = sample
        self.origin = origin
        self._references: dict[tuple, psnr.SourceFrames] = {}

    def reference(self, job: Job) -> psnr.SourceFrames:
        key = (str(job.input), job.seek, job.duration, job.fps)
        if key not in self._references:
            self._references[key] = psnr.decode_on_screen(job.input, psnr.instants(job.seek, job.duration, job.fps),
                                                          self.origin)
        return self._references[key]

    def scores(self, pairs: Iterable[tuple[Job, dict]]) -> list[dict]:
        """:func:`psnr.score` of each succeeded result's output (plus its ``id`` and ``bytes``)."""
        out = []
        for job, result in pairs:
            if result.get("status") != "success" or not result.get("output"):
                continue
            path = Path(result["output"])
            if result.get("start") is not None and abs(result["start"] - job.seek) > 1e-6:
                job = replace(job, seek=float(result["start"]))  # seek "auto": scored where it started
            s = psnr.score(path, self.reference(job), job.fps, job.duration, (job.width, job.height), self.sample)
            out.append({**s, "id": result["id"], "bytes": path.stat().st_size})
        return out


def quality(scores: list[dict]) -> dict:
    """Bytes and PSNR over scored outputs: means, worst frame, every flag, one line per output."""
    if not scores:
        return {"scored": 0}
    return {
        "scored": len(scores),
        "bytes_mean": statistics.fmean(s["bytes"] for s in scores),
        "bytes_distinct": sorted({s["bytes"] for s in scores}),
        "psnr_mean_db": statistics.fmean(s["psnr_mean_db"] for s in scores),
        "psnr_min_db": min(s["psnr_min_db"] for s in scores),
        "psnr_pooled_db": statistics.fmean(s["psnr_pooled_db"] for s in scores),
        "flags": sorted({f for s in scores for f in s["flags"]}),
        "jobs": [{k: s[k] for k in ("id", "psnr_mean_db", "psnr_min_db", "bytes", "frames_stored", "frames_compared",
                                    "flags")} for s in scores],
    }


# --------------------------------------------------------------------------------------------
# the machine


def machine_info(workers: int) -> dict:
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "workers": workers,
        "loadavg_start": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
        info["ffmpeg_version"] = out.splitlines()[0]
    except (OSError, subprocess.CalledProcessError) as exc:
        info["ffmpeg_version"] = f"unavailable: {exc}"
    versions = {}
    for mod in ("torch", "av", "PIL", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - report, never fail on a version lookup
            versions[mod] = f"unavailable: {exc}"
    info["versions"] = versions
    try:
        info["git_commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                            text=True, check=True).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                                 "engine", "kernels"], capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
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
