"""`make bench`: the engine against the ffmpeg CLI on the same jobs, same parallelism, same yardstick.

Run from the repository root::

    python -m bench.bench                      # bench/jobs/default.jsonl, 4 clips per job
    python bench/bench.py --repeat 8 --runs 3 --name my-change

Each job becomes a batch of R copies, timed through the ``engine`` and ``ffmpeg`` paths of
bench/harness.py (plus one untimed ``ffmpeg-same-frames`` clip), and is reported per side:
timing, bytes, PSNR, the engine ÷ ffmpeg ratios and the engine's stage times. See
bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/bench.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(REPO))

from bench import harness, psnr, report  # noqa: E402

DEFAULT_JOBS = REPO / "bench" / "jobs" / "default.jsonl"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
SIDES = ("engine", "ffmpeg")
EXACT = "ffmpeg-same-frames"


def load_jobs(path: Path, corpus: Path) -> list[harness.Job]:
    """The manifest's jobs; any line that is not a job, or whose input is missing, stops the bench."""
    loaded = harness.load_jobs(path, corpus)
    if loaded.invalid:
        bad = loaded.invalid[0]
        raise SystemExit(f"{path}:{bad['line']}: {bad['error']}")
    for job in loaded.jobs:
        if not job.input.exists():
            raise SystemExit(f"{path}: job {job.id}: input {job.input} does not exist (use --corpus DIR)")
    if not loaded.jobs:
        raise SystemExit(f"{path}: no jobs")
    return loaded.jobs


def side_report(side: str, job: harness.Job, runs: list[dict], scorer: harness.Scorer) -> dict:
    """One side of one job: timing over its runs, and the quality of the last run's copies."""
    last = runs[-1]["results"]
    scores = scorer.scores((job, r) for r in last)
    quality = harness.quality(scores)
    if scores:
        first = scores[0]
        quality.update({k: first[k] for k in ("frames_stored", "frames_compared", "total_duration_ms", "width",
                                              "height")}, first_output=first)
        if len(quality["bytes_distinct"]) > 1:
            quality["flags"].append(f"copies differ in size ({quality['bytes_distinct'][0]}.."
                                    f"{quality['bytes_distinct'][-1]} B)")
    data = {"timing": None if side == EXACT else timing(runs), "quality": quality,
            "runs": [run_rows(run) for run in runs],
            "first_error": next((harness.error_of(r) for r in last if r.get("status") != "success"), None)}
    if side == EXACT:
        data["single_latency_s"] = (last[0].get("timings") or {}).get("total")
    if side != "engine":
        data["command"] = " ".join(runs[0]["command"])
    if side == "engine":
        data["stage_median_s"] = harness.stage_times([r for run in runs for r in run["results"]])
        data["notes"] = sorted({n for r in last for n in r.get("notes") or []})
    return data


def timing(runs: list[dict]) -> dict:
    """The timing columns: per clip of a batch, best run [median run]."""
    s = harness.summarize_runs(runs)
    count = s["clips"]
    return {
        "clips_per_batch": count,
        "runs": s["runs"],
        "batch_wall_s": s["wall_s_all"],
        "s_per_clip_best": s["wall_s"] / count,
        "s_per_clip_median": s["wall_s_median"] / count,
        "clips_per_s_best": count / s["wall_s"],
        "clips_per_s_median": count / s["wall_s_median"],
        "latency_median_s": s["latency_median_s"],
        "latency_max_s": s["latency_max_s"],
        "cpu_s_per_clip_median": s["cpu_s_per_clip_median"],
        "failed_clips": s["failed_all_runs"],
    }


def run_rows(run: dict) -> dict:
    """A run as the JSON keeps it: wall, CPU, memory, and one row per clip."""
    clips = []
    for r, done in zip(run["results"], run["done_at_s"]):
        clips.append({"id": r.get("id"), "status": r.get("status"), "output": r.get("output"), "bytes": r.get("bytes"),
                      "latency_s": (r.get("timings") or {}).get("total"), "done_at_s": done,
                      "error": harness.error_of(r),
                      # ffmpeg: its process's CPU and peak RSS; engine: the whole Result
                      **(r["process"] if "process" in r else {"result": r})})
    row = {"wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "clips": clips, "memory": run["memory"]}
    if run.get("command"):
        row["command"] = run["command"]
    return row


def ratios(sides: dict) -> dict | None:
    """Engine ÷ ffmpeg, when both sides ran with no failure."""
    complete = all(not (sides[x].get("timing") or {}).get("failed_clips") for x in sides)
    if "engine" not in sides or "ffmpeg" not in sides or not complete:
        return None
    e, f = sides["engine"], sides["ffmpeg"]
    eq, fq = e["quality"], f["quality"]
    xq = (sides.get(EXACT) or {}).get("quality") or {}
    et, ft = e["timing"], f["timing"]

    def ratio(a, b):
        return a / b if a is not None and b else None

    def diff(a, b):
        return a - b if a is not None and b is not None else None

    return {
        "throughput": ratio(et["clips_per_s_best"], ft["clips_per_s_best"]),
        "throughput_median": ratio(et["clips_per_s_median"], ft["clips_per_s_median"]),
        "cpu": ratio(et["cpu_s_per_clip_median"], ft["cpu_s_per_clip_median"]),
        "bytes": ratio(eq.get("bytes_mean"), fq.get("bytes_mean")),
        "psnr_diff_db": diff(eq.get("psnr_mean_db"), fq.get("psnr_mean_db")),
        "bytes_vs_exact": ratio(eq.get("bytes_mean"), xq.get("bytes_mean")),
        "psnr_diff_vs_exact_db": diff(eq.get("psnr_mean_db"), xq.get("psnr_mean_db")),
    }


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
    ap.add_argument("--name", default=None, help="result files: RESULTS_DIR/NAME.{json,md} (default: date-time)")
    ap.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR, help="folder for the result files")
    ap.add_argument("--keep-outputs", action="store_true", help="keep the outputs under RESULTS_DIR/NAME-outputs/")
    args = ap.parse_args(argv)
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    bad = [s for s in args.sides if s not in SIDES]
    if bad or not args.sides:
        ap.error(f"--sides takes engine and/or ffmpeg, got {args.sides}")
    if args.repeat < 1 or args.runs < 1 or args.workers < 1 or args.warmup < 0:
        ap.error("--repeat, --runs and --workers must be >= 1, --warmup >= 0")
    if args.name is None:
        args.name = report.default_name()
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if shutil.which("ffmpeg") is None and ("ffmpeg" in args.sides or not args.no_exact):
        raise SystemExit("ffmpeg is not on PATH (apt-get install ffmpeg), or run with --sides engine --no-exact")
    try:
        import animated_previews.engine  # noqa: F401 - its manifest parser reads the jobs, its run_batch is a side
    except ImportError as exc:
        raise SystemExit(f"cannot import the engine ({exc}): install it (make install)") from None
    corpus = args.corpus.resolve()
    jobs = load_jobs(args.jobs, corpus)
    out = {
        "config": {"name": args.name, "jobs": str(args.jobs), "corpus": str(corpus), "repeat": args.repeat,
                   "workers": args.workers, "runs": args.runs, "warmup": args.warmup, "sides": args.sides,
                   "exact": not args.no_exact, "sample": args.sample, "time_origin": args.time_origin,
                   "psnr": {"cap_db": psnr.PSNR_CAP_DB, "duration_tolerance_ms": psnr.DURATION_TOLERANCE_MS}},
        "machine": harness.machine_info(args.workers),
        "sides_order": [s for s in (*SIDES, EXACT) if s in args.sides or (s == EXACT and not args.no_exact)],
        "jobs": [],
    }
    scorer = harness.Scorer(args.sample, args.time_origin)
    keep_dir = args.results_dir / f"{args.name}-outputs" if args.keep_outputs else None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_s:
        for job in jobs:
            tmp = Path(tmp_s) / job.id
            log(f"== {job.id}: {job.format} {job.width}x{job.height} @ {job.fps:g} fps, seek {job.seek:g} s, "
                f"{job.duration:g} s from {job.input.name}; {args.repeat} clips x {args.runs} runs per side")
            runs = harness.run_alternated(args.sides, harness.copies(job, args.repeat, "c"),
                                          warmup=harness.copies(job, args.warmup, "w"), runs=args.runs,
                                          workers=args.workers, tmp=tmp, log=lambda m: log("   " + m),
                                          origin=args.time_origin)
            if not args.no_exact:
                runs[EXACT] = [harness.run_path(EXACT, harness.copies(job, 1, "x"), tmp / EXACT, workers=1,
                                                origin=args.time_origin)]
            log("   scoring against the reference ...")
            source = scorer.reference(job)
            sides = {side: side_report(side, job, side_runs, scorer) for side, side_runs in runs.items()}
            jrep = {"id": job.id, "line": job.as_written, "input": str(job.input), "frames_expected": job.n_frames,
                    "duration_ms": 1000 * job.duration,
                    "input_start_s": harness.input_start(job.input, args.time_origin), "sides": sides,
                    "reference": {"source_times_s": source.source_times, "notes": source.notes}}
            if (r := ratios(sides)) is not None:
                jrep["ratios"] = r
            if keep_dir is not None:
                for side, side_runs in runs.items():
                    report.keep_outputs(side_runs[-1]["results"][:1], keep_dir / job.id, stem=side)
            out["jobs"].append(jrep)
    out["machine"]["loadavg_end"] = os.getloadavg()
    md = report.render_markdown(out)
    written = report.write_results(out, args.name, args.results_dir, markdown=md)
    print(md)
    log("wrote " + " and ".join(str(p) for p in written.values()))
    failed = sum((j["sides"][s].get("timing") or {}).get("failed_clips", 0) for j in out["jobs"] for s in j["sides"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
