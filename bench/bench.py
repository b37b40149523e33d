"""Benchmark: the engine against the ffmpeg CLI on the same jobs, same parallelism, same yardstick.

Run from the repository root::

    python -m bench.bench                      # bench/jobs/default.jsonl, 4 clips per job
    python bench/bench.py --repeat 8 --runs 3 --name my-change

See bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/bench.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(REPO))

from bench import psnr  # noqa: E402

DEFAULT_JOBS = REPO / "bench" / "jobs" / "default.jsonl"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
RESULTS_DIR = REPO / "bench" / "results"
SIDES = ("engine", "ffmpeg")


# --------------------------------------------------------------------------------------------
# jobs


@dataclass
class Job:
    id: str
    line: dict  # the manifest line as given (input still as written)
    input: Path  # resolved
    format: str
    fps: float
    seek: float
    duration: float
    width: int | None
    height: int | None

    @property
    def n_frames(self) -> int:
        return len(psnr.instants(self.seek, self.duration, self.fps))


def load_jobs(path: Path, corpus: Path) -> list[Job]:
    jobs = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        line = json.loads(text)
        missing = [k for k in ("id", "input", "format", "fps", "duration") if k not in line]
        if missing:
            raise SystemExit(f"{path}:{number}: the benchmark needs {', '.join(missing)} on every job")
        src = Path(line["input"])
        if not src.is_absolute():
            src = corpus / src
        if not src.exists():
            raise SystemExit(f"{path}:{number}: input {src} does not exist (use --corpus DIR)")
        jobs.append(Job(
            id=str(line["id"]), line=line, input=src.resolve(), format=str(line["format"]).lower(),
            fps=float(line["fps"]), seek=float(line.get("seek", 0) or 0), duration=float(line["duration"]),
            width=int(line["width"]) if line.get("width") is not None else None,
            height=int(line["height"]) if line.get("height") is not None else None,
        ))
    if not jobs:
        raise SystemExit(f"{path}: no jobs")
    return jobs


def clip_ids(job: Job, count: int, tag: str) -> list[str]:
    return [f"{job.id}-{tag}{i}" for i in range(count)]


# --------------------------------------------------------------------------------------------
# CPU accounting (self + children, including worker processes that are not our direct children)

_CLK = os.sysconf("SC_CLK_TCK")


def _descendant_cpu() -> dict[int, float]:
    """utime+stime+cutime+cstime (s) of every live descendant of this process, by pid."""
    parent_of, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        pid = int(entry)
        parent_of[pid] = int(fields[1])
        cpu[pid] = sum(int(x) for x in fields[11:15]) / _CLK
    me = os.getpid()
    out = {}
    for pid in cpu:
        p, seen = parent_of.get(pid), 0
        while p and p != me and seen < 64:
            p, seen = parent_of.get(p), seen + 1
        if p == me:
            out[pid] = cpu[pid]
    return out


def cpu_snapshot() -> tuple[float, dict[int, float]]:
    self_t = os.times()
    return self_t.user + self_t.system + self_t.children_user + self_t.children_system, _descendant_cpu()


def cpu_delta(start: tuple[float, dict[int, float]], end: tuple[float, dict[int, float]]) -> float:
    """CPU seconds spent by this process and all its descendants between two snapshots: reaped
    children count through os.times(), live ones (and what they reaped) through /proc."""
    total = end[0] - start[0]
    for pid, value in end[1].items():
        total += value - start[1].get(pid, 0.0)
    for pid, value in start[1].items():
        if pid not in end[1]:
            total -= value  # gone since: its whole total is now in a parent's reaped-children time
    return total


# --------------------------------------------------------------------------------------------
# the two sides


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
        codec = ["-c:v", "libwebp_anim", "-quality", "75"]
    else:
        raise SystemExit(f"job {job.id}: format {job.format!r} is not gif or webp")
    return (["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1"]
            + head + tail + ["-an", "-sn", "-dn", "-filter_threads", "1", "-vf", vf]
            + codec + ["-threads", "1", "-loop", "0", str(out)])


def _run_ffmpeg(cmd: list[str], batch_t0: float) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    t1 = time.perf_counter()
    return {"latency_s": t1 - t0, "done_at_s": t1 - batch_t0, "returncode": proc.returncode,
            "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
            "stderr": stderr.decode("utf-8", "replace")[-2000:]}


def run_ffmpeg_batch(job: Job, count: int, workers: int, out_dir: Path, *, exact: bool,
                     input_start: float, tag: str = "c") -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = clip_ids(job, count, tag)
    outs = [out_dir / f"{i}.{job.format}" for i in ids]
    cmds = [ffmpeg_command(job, o, exact, input_start) for o in outs]
    cpu0 = cpu_snapshot()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = list(pool.map(lambda c: _run_ffmpeg(c, t0), cmds))
    wall = time.perf_counter() - t0
    cpu = cpu_delta(cpu0, cpu_snapshot())
    clips = []
    for cid, out, r in zip(ids, outs, runs):
        ok = r["returncode"] == 0 and out.exists() and out.stat().st_size > 0
        clips.append({"id": cid, "status": "success" if ok else "failed", "output": str(out),
                      "bytes": out.stat().st_size if out.exists() else None,
                      "latency_s": r["latency_s"], "done_at_s": r["done_at_s"], "cpu_s": r["cpu_s"],
                      "maxrss_kib": r["maxrss_kib"],
                      "error": None if ok else (r["stderr"].strip() or f"exit {r['returncode']}")})
    return {"wall_s": wall, "cpu_s": cpu, "clips": clips, "command": cmds[0]}


def run_engine_batch(engine, job: Job, count: int, workers: int, out_dir: Path, tag: str = "c") -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "bench-manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for cid in clip_ids(job, count, tag):
            f.write(json.dumps({**job.line, "id": cid, "input": str(job.input)}) + "\n")
    ids = clip_ids(job, count, tag)
    clips = []
    cpu0 = cpu_snapshot()
    t0 = time.perf_counter()
    try:
        entries = engine.load_manifest(manifest)
        for result in engine.run_batch(entries, out_dir=out_dir, workers=workers):
            done = time.perf_counter() - t0
            d = result.to_dict()
            timings = d.get("timings") or {}
            clips.append({"id": d.get("id"), "status": d.get("status"), "output": d.get("output"),
                          "bytes": d.get("bytes"), "latency_s": timings.get("total"), "done_at_s": done,
                          "error": None if d.get("status") == "success"
                          else f"{d.get('error_code')}: {d.get('error_message')}",
                          "result": d})
    except Exception as exc:  # noqa: BLE001 - the API promises results, not raises; record and go on
        error = f"run_batch raised {type(exc).__name__}: {exc}"
        seen = {c["id"] for c in clips}
        clips += [{"id": cid, "status": "failed", "output": None, "bytes": None, "latency_s": None,
                   "done_at_s": None, "error": error, "result": {}} for cid in ids if cid not in seen]
    wall = time.perf_counter() - t0
    cpu = cpu_delta(cpu0, cpu_snapshot())
    return {"wall_s": wall, "cpu_s": cpu, "clips": clips}


# --------------------------------------------------------------------------------------------
# statistics


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize_timing(runs: list[dict], count: int) -> dict:
    walls = [r["wall_s"] for r in runs]
    best = min(walls)
    med = statistics.median(walls)
    lat = [c["latency_s"] for r in runs for c in r["clips"] if c["status"] == "success"]
    cpu = [r["cpu_s"] / count for r in runs]
    failed = sum(1 for r in runs for c in r["clips"] if c["status"] != "success")
    return {
        "clips_per_batch": count,
        "runs": len(runs),
        "batch_wall_s": walls,
        "s_per_clip_best": best / count,
        "s_per_clip_median": med / count,
        "clips_per_s_best": count / best,
        "clips_per_s_median": count / med,
        "latency_median_s": _median(lat),
        "latency_max_s": max(lat) if lat else None,
        "cpu_s_per_clip_median": _median(cpu),
        "failed_clips": failed,
    }


def score_outputs(job: Job, clips: list[dict], source: psnr.SourceFrames, sample: str) -> dict:
    scores = []
    for c in clips:
        if c["status"] != "success" or not c.get("output"):
            continue
        s = psnr.score(Path(c["output"]), source, job.fps, job.duration, (job.width, job.height), sample)
        s["bytes"] = Path(c["output"]).stat().st_size
        s["id"] = c["id"]
        scores.append(s)
    if not scores:
        return {"scored": 0}
    first = scores[0]
    sizes = sorted({s["bytes"] for s in scores})
    flags = sorted({f for s in scores for f in s["flags"]})
    if len(sizes) > 1:
        flags.append(f"copies differ in size ({sizes[0]}..{sizes[-1]} B)")
    return {
        "scored": len(scores),
        "bytes_mean": statistics.mean(s["bytes"] for s in scores),
        "bytes_distinct": sizes,
        "psnr_mean_db": statistics.mean(s["psnr_mean_db"] for s in scores),
        "psnr_min_db": min(s["psnr_min_db"] for s in scores),
        "psnr_pooled_db": statistics.mean(s["psnr_pooled_db"] for s in scores),
        "frames_stored": first["frames_stored"],
        "frames_compared": first["frames_compared"],
        "total_duration_ms": first["total_duration_ms"],
        "width": first["width"],
        "height": first["height"],
        "flags": flags,
        "first_output": {k: v for k, v in first.items()},
    }


# --------------------------------------------------------------------------------------------
# environment


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
    return info


def input_start_time(path: Path, origin: str) -> float:
    with psnr.av.open(str(path)) as c:
        return float(psnr.time_origin(c, psnr.pick_video_stream(c), origin))


# --------------------------------------------------------------------------------------------
# report


def _f(x, fmt="{:.2f}", none="–"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _bytes(x):
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} MB"
    return f"{x / 1e3:.0f} KB"


def render_markdown(report: dict) -> str:
    m = report["machine"]
    cfg = report["config"]
    lines = [
        f"# Benchmark `{cfg['name']}`",
        "",
        f"{m['date']} on {m.get('cpu_model', '?')} ({m['cpus_usable']} usable CPUs), load at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}; {m['ffmpeg_version']}; torch {m['versions']['torch']}, "
        f"av {m['versions']['av']}, pillow {m['versions']['PIL']}.",
        f"Jobs `{cfg['jobs']}`, {cfg['repeat']} clips per job per batch, {cfg['workers']} workers on both sides "
        f"(ffmpeg: {cfg['workers']} processes, one thread each), {cfg['runs']} timed runs per side, alternated; "
        f"times are the best run [median run]. PSNR: mean over displayed frames vs the common reference "
        f"(sampled at the {cfg['sample']} of each output frame's slot; seek counted from the "
        f"{cfg['time_origin']}'s start).",
        "",
        "| job | side | s/clip (batch wall ÷ clips) | clip latency (median) | clips/s | CPU s/clip | bytes "
        "| PSNR dB mean (min) | frames | duration ms | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for j in report["jobs"]:
        for side in report["sides_order"]:
            s = j["sides"].get(side)
            if s is None:
                continue
            t = s.get("timing")
            q = s.get("quality") or {}
            flags = list(q.get("flags", []))
            if t and t["failed_clips"]:
                flags.insert(0, f"{t['failed_clips']} clips FAILED: {s.get('first_error')}")
            if t and t["failed_clips"] == t["runs"] * t["clips_per_batch"]:
                timing_cells = ("all failed", "–", "–", "–")
            elif not t:
                timing_cells = ("untimed (1 clip: " + _f(s.get("single_latency_s")) + " s)", "–", "–", "–")
            else:
                timing_cells = (
                    f"{_f(t['s_per_clip_best'])} [{_f(t['s_per_clip_median'])}]",
                    f"{_f(t['latency_median_s'])}",
                    f"{_f(t['clips_per_s_best'], '{:.3f}')}",
                    f"{_f(t['cpu_s_per_clip_median'])}",
                )
            psnr_cell = (f"{_f(q.get('psnr_mean_db'))} ({_f(q.get('psnr_min_db'))})" if q.get("scored") else "–")
            dur = q.get("total_duration_ms")
            lines.append(
                f"| {j['id']} | {side} | " + " | ".join(timing_cells) + f" | {_bytes(q.get('bytes_mean'))} | "
                f"{psnr_cell} | {q.get('frames_stored', '–')}/{j['frames_expected']} | "
                f"{_f(dur, '{:.0f}')}/{j['duration_ms']:.0f} | {'; '.join(flags) or 'ok'} |")
    ratios = [(j["id"], j.get("ratios") or {}) for j in report["jobs"]]
    if any(r for _, r in ratios):
        lines += [
            "",
            "Engine ÷ ffmpeg (throughput > 1: engine faster; bytes < 1: engine smaller; PSNR > 0: engine closer "
            "to the source). *same frames*: against ffmpeg made to take exactly the frames on screen.",
            "",
            "| job | throughput (clips/s) | CPU s/clip | bytes | PSNR dB | bytes (same frames) | PSNR dB (same frames) |",
            "|---|---|---|---|---|---|---|",
        ]
        for jid, r in ratios:
            if not r:
                continue
            lines.append(
                f"| {jid} | {_f(r.get('throughput'), '{:.2f}×')} | {_f(r.get('cpu'), '{:.2f}×')} | "
                f"{_f(r.get('bytes'), '{:.2f}×')} | {_f(r.get('psnr_diff_db'), '{:+.2f}')} | "
                f"{_f(r.get('bytes_vs_exact'), '{:.2f}×')} | {_f(r.get('psnr_diff_vs_exact_db'), '{:+.2f}')} |")
    stages = [(j["id"], j["sides"]["engine"].get("stage_median_s")) for j in report["jobs"]
              if "engine" in j["sides"] and any(v is not None for v in
                                                (j["sides"]["engine"].get("stage_median_s") or {}).values())]
    if stages:
        names = ["probe", "decode", "kernels", "encode", "write", "total"]
        lines += ["", "Engine stage times per clip (median, seconds, as the engine reports them):", "",
                  "| job | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for jid, st in stages:
            lines.append(f"| {jid} | " + " | ".join(_f(st.get(n), "{:.3f}") for n in names) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--jobs", type=Path, default=DEFAULT_JOBS, help="job manifest (JSON Lines)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder that relative inputs resolve against")
    ap.add_argument("--repeat", type=int, default=4, help="clips per job in each batch (copies of the job)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="jobs in flight on each side (engine workers = concurrent ffmpeg processes)")
    ap.add_argument("--runs", type=int, default=2, help="timed batches per side per job, sides alternated")
    ap.add_argument("--warmup", type=int, default=1, help="untimed clips per side per job before timing")
    ap.add_argument("--sides", default="engine,ffmpeg", help="comma-separated subset of engine,ffmpeg")
    ap.add_argument("--no-exact", action="store_true",
                    help="skip the extra untimed ffmpeg run that takes exactly the frames on screen")
    ap.add_argument("--sample", choices=("middle", "start"), default="middle",
                    help="where in each output frame's slot the displayed frame is looked at for PSNR")
    ap.add_argument("--time-origin", choices=("container", "stream"), default="container",
                    help="time zero for seek: the container's start (as ffmpeg -ss) or the video stream's first frame")
    ap.add_argument("--name", default=None, help="result files: bench/results/NAME.{json,md} (default: date-time)")
    ap.add_argument("--keep-outputs", action="store_true", help="keep the outputs under bench/results/NAME-outputs/")
    args = ap.parse_args(argv)
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    bad = [s for s in args.sides if s not in SIDES]
    if bad or not args.sides:
        ap.error(f"--sides takes engine and/or ffmpeg, got {args.sides}")
    if args.repeat < 1 or args.runs < 1 or args.workers < 1 or args.warmup < 0:
        ap.error("--repeat, --runs and --workers must be >= 1, --warmup >= 0")
    if args.name is None:
        args.name = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if shutil.which("ffmpeg") is None and "ffmpeg" in args.sides:
        raise SystemExit("ffmpeg is not on PATH (apt-get install ffmpeg), or run with --sides engine")
    engine = None
    if "engine" in args.sides:
        try:
            import animated_previews.engine as engine_mod
            engine_mod.run_batch, engine_mod.load_manifest  # noqa: B018 - fail early if missing
            engine = engine_mod
        except (ImportError, AttributeError) as exc:
            raise SystemExit(f"cannot import engine.run_batch/load_manifest ({exc}); run with --sides ffmpeg") from None
    corpus = args.corpus.resolve()
    jobs = load_jobs(args.jobs, corpus)
    workers = args.workers
    report = {
        "config": {"name": args.name, "jobs": str(args.jobs), "corpus": str(corpus), "repeat": args.repeat,
                   "workers": workers, "runs": args.runs, "warmup": args.warmup, "sides": args.sides,
                   "exact": not args.no_exact, "sample": args.sample, "time_origin": args.time_origin,
                   "psnr": {"cap_db": psnr.PSNR_CAP_DB, "duration_tolerance_ms": psnr.DURATION_TOLERANCE_MS}},
        "machine": machine_info(workers),
        "sides_order": [s for s in ("engine", "ffmpeg", "ffmpeg-same-frames")
                        if s in args.sides or (s == "ffmpeg-same-frames" and not args.no_exact)],
        "jobs": [],
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    keep_dir = RESULTS_DIR / f"{args.name}-outputs" if args.keep_outputs else None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_s:
        tmp = Path(tmp_s)
        for job in jobs:
            log(f"== {job.id}: {job.format} {job.width}x{job.height} @ {job.fps:g} fps, seek {job.seek:g} s, "
                f"{job.duration:g} s from {job.input.name}; {args.repeat} clips x {args.runs} runs per side")
            start = input_start_time(job.input, args.time_origin)
            jrep = {"id": job.id, "line": job.line, "input": str(job.input), "frames_expected": job.n_frames,
                    "duration_ms": 1000 * job.duration, "input_start_s": start, "sides": {}}

            def side_batch(side: str, count: int, tag: str, where: Path) -> dict:
                if side == "engine":
                    return run_engine_batch(engine, job, count, workers, where, tag)
                return run_ffmpeg_batch(job, count, workers, where, exact=False, input_start=start, tag=tag)

            for side in args.sides:
                if args.warmup:
                    w = side_batch(side, args.warmup, "w", tmp / job.id / side / "warmup")
                    bad = [c for c in w["clips"] if c["status"] != "success"]
                    log(f"   warm-up {side}: {w['wall_s']:.2f} s" + (f", FAILED: {bad[0]['error']}" if bad else ""))
            runs: dict[str, list[dict]] = {s: [] for s in args.sides}
            for r in range(args.runs):
                order = args.sides if r % 2 == 0 else list(reversed(args.sides))
                for side in order:
                    where = tmp / job.id / side / f"run{r}"
                    res = side_batch(side, args.repeat, "c", where)
                    runs[side].append(res)
                    nfail = sum(1 for c in res["clips"] if c["status"] != "success")
                    log(f"   run {r + 1}/{args.runs} {side:>6}: {res['wall_s']:6.2f} s for {args.repeat} clips "
                        f"({res['wall_s'] / args.repeat:.2f} s/clip, CPU {res['cpu_s'] / args.repeat:.2f} s/clip)"
                        + (f", {nfail} FAILED" if nfail else ""))
                    if r < args.runs - 1:
                        shutil.rmtree(where, ignore_errors=True)  # keep only the last run's outputs
            log("   scoring against the reference ...")
            source = psnr.decode_on_screen(job.input, psnr.instants(job.seek, job.duration, job.fps),
                                           args.time_origin)
            jrep["reference"] = {"source_times_s": source.source_times, "notes": source.notes}
            for side in args.sides:
                last = runs[side][-1]
                failed = [c for c in last["clips"] if c["status"] != "success"]
                sdata = {
                    "timing": summarize_timing(runs[side], args.repeat),
                    "quality": score_outputs(job, last["clips"], source, args.sample),
                    "runs": [{k: v for k, v in run.items()} for run in runs[side]],
                    "first_error": failed[0]["error"] if failed else None,
                }
                if side == "ffmpeg":
                    sdata["command"] = " ".join(runs[side][0]["command"])
                if side == "engine":
                    stage = {}
                    for name in ("probe", "decode", "kernels", "encode", "write", "total"):
                        stage[name] = _median([c["result"].get("timings", {}).get(name)
                                               for run in runs[side] for c in run["clips"]
                                               if c["status"] == "success"])
                    sdata["stage_median_s"] = stage
                    sdata["notes"] = sorted({n for c in last["clips"] for n in c["result"].get("notes") or []})
                jrep["sides"][side] = sdata
            if not args.no_exact:
                ex = run_ffmpeg_batch(job, 1, 1, tmp / job.id / "ffmpeg-same-frames", exact=True,
                                      input_start=start, tag="x")
                jrep["sides"]["ffmpeg-same-frames"] = {
                    "timing": None, "single_latency_s": ex["clips"][0]["latency_s"],
                    "quality": score_outputs(job, ex["clips"], source, args.sample),
                    "command": " ".join(ex["command"]), "runs": [ex],
                    "first_error": ex["clips"][0]["error"],
                }
            sides = jrep["sides"]
            complete = all(not (sides[x].get("timing") or {}).get("failed_clips") for x in sides)
            if "engine" in sides and "ffmpeg" in sides and complete:
                e, f = sides["engine"], sides["ffmpeg"]
                eq, fq = e["quality"], f["quality"]
                xq = (sides.get("ffmpeg-same-frames") or {}).get("quality") or {}
                et, ft = e["timing"], f["timing"]

                def ratio(a, b):
                    return a / b if a is not None and b else None

                def diff(a, b):
                    return a - b if a is not None and b is not None else None

                jrep["ratios"] = {
                    "throughput": ratio(et["clips_per_s_best"], ft["clips_per_s_best"]),
                    "throughput_median": ratio(et["clips_per_s_median"], ft["clips_per_s_median"]),
                    "cpu": ratio(et["cpu_s_per_clip_median"], ft["cpu_s_per_clip_median"]),
                    "bytes": ratio(eq.get("bytes_mean"), fq.get("bytes_mean")),
                    "psnr_diff_db": diff(eq.get("psnr_mean_db"), fq.get("psnr_mean_db")),
                    "bytes_vs_exact": ratio(eq.get("bytes_mean"), xq.get("bytes_mean")),
                    "psnr_diff_vs_exact_db": diff(eq.get("psnr_mean_db"), xq.get("psnr_mean_db")),
                }
            if keep_dir is not None:
                dest = keep_dir / job.id
                dest.mkdir(parents=True, exist_ok=True)
                for side, sdata in sides.items():
                    for c in sdata["runs"][-1]["clips"][:1]:
                        if c.get("output") and Path(c["output"]).exists():
                            shutil.copy2(c["output"], dest / f"{side}{Path(c['output']).suffix}")
            report["jobs"].append(jrep)
    report["machine"]["loadavg_end"] = os.getloadavg()
    md = render_markdown(report)
    json_path = RESULTS_DIR / f"{args.name}.json"
    md_path = RESULTS_DIR / f"{args.name}.md"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    md_path.write_text(md, encoding="utf-8")
    print(md)
    log(f"wrote {json_path.relative_to(REPO)} and {md_path.relative_to(REPO)}")
    failed = sum((j["sides"][s].get("timing") or {}).get("failed_clips", 0) for j in report["jobs"] for s in j["sides"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
