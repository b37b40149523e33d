"""Scaling curves: how the engine's time per job moves with one quantity at a time.

    python -m bench.scaling                         # every curve (builds the library first if needed)
    python -m bench.scaling --curves seek,jobs      # some of them
    python -m bench.scaling --jobs-counts 100,1000  # a shorter jobs curve (points are run in the order given)

Curves (each point is a batch through ``engine.run_batch`` on the CPU path, measured by
``bench/harness.py``, after a warm-up batch):

* ``duration``: clip length 1-10 s (720p H.264 source, 320 wide GIF at 15 fps);
* ``width``: output width 160-1280 (1080p H.264 source, 3 s);
* ``resolution``: source 360p-4K (the same footage, H.264, GOP 2 s; 3 s, 320 wide);
* ``seek``: seek position 0-590 s in a 10-minute file (720p H.264, GOP 2 s; 2 s clips): time
  and source frames decoded per job must stay flat, or seeking does not work;
* ``jobs``: 100 -> 10 000 tiny jobs (one 64-pixel frame from a 160x90 clip): time per job and
  peak RSS (worker processes, the whole process tree) must stay flat.

Each curve is written to ``bench/results/scaling-<curve>.json`` and ``.png``, and
``bench/results/scaling.md`` is rebuilt from every ``scaling-*.json`` there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import harness, make_library, plots  # noqa: E402

CURVES = ("duration", "width", "resolution", "seek", "jobs")


def _job(jid: str, src: Path, *, seek: float, duration: float, width: int, fps: float = 15, fmt: str = "gif") -> harness.Job:
    return harness.Job(id=jid, input=src, format=fmt, fps=float(fps), seek=float(seek), duration=float(duration),
                       width=width)


def _lib(library: Path, variant: make_library.Variant) -> Path:
    path = library / variant.filename
    if not path.exists():
        raise SystemExit(f"{path} is missing: run python -m bench.make_library --out {library}")
    return path


def measure(jobs: list[harness.Job], workers: int, tmp: Path, tag: str, log) -> dict:
    """One batch of ``jobs`` through the CPU path; the point's numbers."""
    run = harness.run_engine(jobs, tmp / tag, workers=workers, device="cpu")
    s = harness.summarize_run(run)
    ok = harness.succeeded(run["results"])
    point = {
        "jobs": len(jobs), "failed": s["failed"], "first_error": s["first_error"], "wall_s": s["wall_s"],
        "cpu_s": s["cpu_s"], "cpu_s_per_job": s["cpu_s"] / len(jobs) if jobs else None, "s_per_job": s["s_per_clip"], "clips_per_s": s["clips_per_s"],
        "output_frames": s["output_frames"],
        "ms_per_output_frame": 1000 * s["wall_s"] / s["output_frames"] if s["output_frames"] else None,
        "latency_median_s": harness.median([(r.get("timings") or {}).get("total") for r in ok]),
        "stage_mean_s": s["stage_mean_s"],
        "source_frames_per_output_frame": s["source_frames_per_output_frame"],
        "source_frames_per_job": (s["source_frames_decoded"] / len(ok)) if ok and s["source_frames_decoded"] is not None else None,
        "peak_worker_rss_mib": run["memory"]["peak_worker_rss_mib"],
        "peak_total_rss_mib": run["memory"]["peak_total_rss_mib"],
        "peak_bench_rss_mib": run["memory"]["peak_bench_rss_mib"],
        "bytes_mean": s["bytes_mean"],
    }
    done = [d for d in run.get("done_at_s") or [] if d is not None]  # None: a job run_batch never answered
    if done:
        point["first_result_s"] = done[0]  # pool start-up + the first job: a fixed cost per batch
    if len(done) >= 20:
        # steady state: jobs per second once the pool runs (start-up excluded), and over the first
        # and the last tenth of the batch, to see whether a long batch slows down as it goes
        k = max(2, len(done) // 10)
        point["s_per_job_steady"] = (done[-1] - done[k - 1]) / (len(done) - k)
        point["s_per_job_first_tenth"] = (done[2 * k - 1] - done[k - 1]) / k
        point["s_per_job_last_tenth"] = (done[-1] - done[-k - 1]) / k
    series = run.get("memory_series") or []
    if series:  # RSS of the whole tree over the batch, thinned to <= 50 samples
        step = max(1, len(series) // 50)
        point["rss_series"] = [(round(t, 2), round(kib / 1024, 1), n) for t, kib, n in series[::step]]
    if point["failed"]:
        log(f"   {point['failed']} jobs FAILED: {point['first_error']}")
    return point


def curve_spec(name: str, library: Path, per_point: int, jobs_counts: list[int]) -> dict:
    """x values, x label and a function x -> jobs for one curve."""
    src = lambda h, d=12: _lib(library, make_library.Variant("bbb", h, "h264", d, 2))  # noqa: E731
    if name == "duration":
        s = src(720)
        return {"title": "time vs clip duration (720p H.264 source, 320w GIF @15 fps)", "x_label": "clip duration (s)",
                "xs": [1, 2, 4, 6, 8, 10], "source": s.name,
                "make": lambda x: [_job(f"d{x}-{i}", s, seek=1, duration=x, width=320) for i in range(per_point)],
                "right": {"key": "ms_per_output_frame", "label": "batch wall ÷ output frames", "y_label": "ms per output frame",
                          "title": "cost per output frame"}}
    if name == "width":
        s = src(1080)
        return {"title": "time vs output width (1080p H.264 source, 3 s GIF @15 fps)", "x_label": "output width (px)",
                "xs": [160, 320, 640, 960, 1280], "source": s.name,
                "make": lambda x: [_job(f"w{x}-{i}", s, seek=1, duration=3, width=x) for i in range(per_point)],
                "right": {"key": "bytes_mean", "scale": 1e-6, "label": "output size (mean)", "y_label": "MB",
                          "title": "output size"}}
    if name == "resolution":
        heights = [360, 720, 1080, 2160]
        return {"title": "time vs source resolution (H.264, GOP 2 s; 3 s, 320w GIF @15 fps)",
                "x_label": "source height (px)", "xs": heights, "source": [src(h).name for h in heights],
                "make": lambda x: [_job(f"r{x}-{i}", src(x), seek=1, duration=3, width=320) for i in range(per_point)],
                "right": {"key": "source_frames_per_output_frame", "label": "source frames decoded per output frame",
                          "y_label": "frames", "title": "decoding work (same footage, so it should not move)"}}
    if name == "seek":
        s = src(720, 600)
        return {"title": "time vs seek position (10-min 720p H.264, GOP 2 s; 2 s, 320w GIF)",
                "x_label": "seek (s into the file)", "xs": [0, 30, 60, 120, 240, 360, 480, 590], "source": s.name,
                "make": lambda x: [_job(f"s{x}-{i}", s, seek=x + 0.25 * i, duration=2, width=320)
                                   for i in range(per_point)],
                "right": {"key": "source_frames_per_job", "label": "source frames decoded per job",
                          "y_label": "frames", "title": "decoding work per job (flat: seeking works)"}}
    if name == "jobs":
        tiny = _lib(library, make_library.Variant("gen", 90, "h264", 2, 1))
        return {"title": "time per job vs number of jobs (1-frame 64w GIFs from a 160x90 clip)",
                "x_label": "jobs in the batch", "xs": jobs_counts, "x_log": True, "source": tiny.name,
                "make": lambda x: [_job(f"j{i}", tiny, seek=(i % 19) * 0.1, duration=1, fps=1, width=64)
                                   for i in range(x)],
                "right": {"key": "peak_total_rss_mib", "label": "peak RSS, whole process tree", "y_label": "MiB",
                          "title": "memory (flat: nothing accumulates)",
                          "extra": [{"key": "peak_worker_rss_mib", "label": "peak RSS, one worker (VmHWM)"},
                                    {"key": "peak_bench_rss_mib", "label": "peak RSS, the calling process",
                                     "colour": "#55a868"}]}}
    raise ValueError(f"unknown curve {name!r}")


def run_curve(name: str, library: Path, *, workers: int, per_point: int, jobs_counts: list[int], log,
              runs: int = 1) -> dict:
    spec = curve_spec(name, library, per_point, jobs_counts)
    curve = {"kind": "scaling", "curve": name, "title": spec["title"], "x_label": spec["x_label"],
             "x_log": spec.get("x_log", False), "right": spec["right"], "source": spec["source"],
             "config": {"workers": workers, "jobs_per_point": per_point if name != "jobs" else None, "path": "cpu",
                        "runs_per_point": runs,
                        "run_batch_accepts_device": harness.run_batch_accepts_device()},
             "machine": harness.machine_info(workers), "points": []}
    with tempfile.TemporaryDirectory(prefix=f"scaling-{name}-") as tmp_s:
        tmp = Path(tmp_s)
        first = spec["make"](spec["xs"][0])[:workers]
        harness.run_engine(first, tmp / "warmup", workers=workers, device="cpu")
        best: dict = {}
        for r in range(runs):  # rounds over all points, so a noisy stretch of the machine hits different points
            for x in spec["xs"]:
                point = measure(spec["make"](x), workers, tmp, f"x{x}-r{r}", log)
                point["x"] = x
                shutil.rmtree(tmp / f"x{x}-r{r}", ignore_errors=True)
                walls = best.get(x, {}).get("wall_s_all", []) + [point["wall_s"]]
                if x not in best or point["wall_s"] < best[x]["wall_s"]:
                    best[x] = point  # noise only ever adds time: keep the fastest batch
                best[x]["wall_s_all"] = walls
                log(f"   round {r + 1}/{runs}: {name} = {x}: {point['wall_s']:.2f} s")
        for x in sorted(spec["xs"]):  # measured in the order given (e.g. largest first), reported in order of x
            point = best[x]
            curve["points"].append(point)
            log(f"{name} = {x}: {point['jobs']} jobs, {point['wall_s']:.2f} s, {point['s_per_job']:.3f} s/job, "
                f"latency {point['latency_median_s'] or 0:.3f} s, src frames/job {point['source_frames_per_job'] or 0:.0f}, "
                f"peak RSS worker {point['peak_worker_rss_mib']:.0f} MiB / tree {point['peak_total_rss_mib']:.0f} MiB")
    curve["verdict"] = verdict(curve)
    curve["machine"]["loadavg_end"] = __import__("os").getloadavg()
    return curve


def _spread(vals: list[float]) -> float | None:
    vals = [v for v in vals if v]
    return max(vals) / min(vals) if vals else None


def _flat_verdict(steady: list[float], rss: list[float], last: dict, cpu: list[float | None]) -> str:
    """Flat means nothing grows with the number of jobs: neither the work per job nor the memory.
    The work per job is judged by CPU seconds per job where the curve has them (the wall time of a
    batch on a shared 2-core machine moves with the other tenants' load), else by wall time."""
    work = cpu if all(cpu) else steady
    grows_time = work[-1] > 1.25 * min(work)
    grows_rss = rss[-1] > 1.25 * rss[0]
    drifts = not all(cpu) and (last.get("s_per_job_last_tenth") or 0) > 1.25 * (
        last.get("s_per_job_first_tenth") or float("inf"))
    if not (grows_time or grows_rss or drifts):
        spread = max(steady) / min(steady)
        return (("CPU s/job " + ", ".join(f"{1000 * v:.1f}" for v in cpu) + " ms: " if all(cpu) else "")
                + "flat: neither the work per job nor memory grows with the number of jobs"
                + (f" (wall time per job varies {spread:.1f}x between batches with the machine's load)"
                   if spread > 1.25 else ""))
    return "NOT flat: " + ", ".join(w for w, bad in (("time per job grows", grows_time), ("memory grows", grows_rss),
                                                     ("a long batch slows down", drifts)) if bad)


def verdict(curve: dict) -> str:
    """One line that says what the curve shows, from its numbers."""
    pts = curve["points"]
    spj = [p["s_per_job"] for p in pts]
    name = curve["curve"]
    if name == "seek":
        frames = [p["source_frames_per_job"] for p in pts]
        cpu = [p.get("cpu_s_per_job") or p["cpu_s"] / p["jobs"] for p in pts]
        flat = _spread(frames) < 1.5 and (_spread(spj) < 1.5 or _spread(cpu) < 1.5)
        return (f"s/job from {min(spj):.3f} to {max(spj):.3f} s (max/min {_spread(spj):.2f}), CPU s/job "
                f"{min(cpu):.3f}-{max(cpu):.3f} (max/min {_spread(cpu):.2f}); source frames decoded per "
                f"job {min(frames):.0f}-{max(frames):.0f} at every position: "
                + ("flat, seeking works" if flat else "NOT flat"))
    if name == "jobs":
        rss = [p["peak_total_rss_mib"] for p in pts]
        wrk = [p["peak_worker_rss_mib"] for p in pts]
        steady = [p.get("s_per_job_steady") or p["s_per_job"] for p in pts]
        last = pts[-1]
        drift = (f"; in the {last['x']}-job batch the last tenth ran at {1000 * last['s_per_job_last_tenth']:.1f} ms/job "
                 f"vs {1000 * last['s_per_job_first_tenth']:.1f} in the second tenth"
                 if last.get("s_per_job_last_tenth") else "")
        return (f"steady s/job {', '.join(f'{v * 1000:.1f}' for v in steady)} ms for "
                f"{', '.join(str(p['x']) for p in pts)} jobs (batch wall ÷ jobs, start-up included: "
                f"{', '.join(f'{v * 1000:.1f}' for v in spj)} ms); peak worker RSS {min(wrk):.0f}-{max(wrk):.0f} MiB, "
                f"tree {min(rss):.0f}-{max(rss):.0f} MiB{drift}: "
                + _flat_verdict(steady, rss, last, [p.get("cpu_s_per_job") for p in pts]))
    xs = [p["x"] for p in pts]
    return (f"s/job {spj[0]:.3f} s at {xs[0]} -> {spj[-1]:.3f} s at {xs[-1]} "
            f"({spj[-1] / spj[0]:.2f}x for {xs[-1] / xs[0] if xs[0] else float('nan'):.1f}x)")


def write_curve(curve: dict, results_dir: Path = harness.RESULTS_DIR) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    js = results_dir / f"scaling-{curve['curve']}.json"
    js.write_text(json.dumps(curve, indent=1, default=str) + "\n", encoding="utf-8")
    out = [js]
    png = results_dir / f"scaling-{curve['curve']}.png"
    if plots.plot_curve(curve, png):
        out.append(png)
    return out


def render_markdown(results_dir: Path = harness.RESULTS_DIR) -> str:
    curves = {}
    for p in sorted(results_dir.glob("scaling-*.json")):
        c = json.loads(p.read_text())
        curves[c["curve"]] = c
    lines = ["# Scaling curves", "",
             "Made by `python -m bench.scaling` (bench/scaling.py); each curve's raw numbers are in "
             "`scaling-<curve>.json`, its plot in `scaling-<curve>.png`. CPU path, one batch per point after a "
             "warm-up batch. *s/job*: batch wall time ÷ jobs (the cost of a job when the workers run side by side); "
             "*latency*: one job's own `timings.total` (median); stages: mean seconds per job as the engine times them; "
             "*CPU s/job*: CPU seconds of the whole process tree ÷ jobs (less sensitive to other tenants than wall "
             "time). With `--runs R` each point is the fastest of R batches, taken in rounds over all points.",
             ""]
    for name in CURVES:
        c = curves.get(name)
        if not c:
            continue
        m = c["machine"]
        lines += [f"## {name}: {c['title']}", "",
                  f"{str(m.get('date'))[:16]} UTC, {m.get('cpu_model')} ({m.get('cpus_usable')} CPUs), "
                  f"{c['config']['workers']} workers, git {str(m.get('git_commit'))[:8]}, load "
                  f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_start', []))}. Source: "
                  f"{c['source'] if isinstance(c['source'], str) else ', '.join(c['source'])}.", "",
                  f"**{verdict(c)}**", "", *([f"Note: {c['notes']}", ""] if c.get("notes") else []), f"![{name}](scaling-{name}.png)", "",
                  f"| {c['x_label']} | jobs | s/job | CPU s/job | latency s | decode | kernels | encode | src frames/job "
                  "| src/out frame | peak RSS worker MiB | peak RSS tree MiB | bytes |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in c["points"]:
            st = p["stage_mean_s"]
            f = lambda v, fmt="{:.3f}": "–" if v is None else fmt.format(v)  # noqa: E731
            lines.append(f"| {p['x']} | {p['jobs']}{' (' + str(p['failed']) + ' failed)' if p['failed'] else ''} | "
                         f"{f(p['s_per_job'])} | {f(p.get('cpu_s_per_job'))} | {f(p['latency_median_s'])} | {f(st.get('decode'))} | "
                         f"{f(st.get('kernels'))} | {f(st.get('encode'))} | {f(p['source_frames_per_job'], '{:.0f}')} | "
                         f"{f(p['source_frames_per_output_frame'], '{:.2f}')} | {f(p['peak_worker_rss_mib'], '{:.0f}')} | "
                         f"{f(p['peak_total_rss_mib'], '{:.0f}')} | {f(p['bytes_mean'], '{:,.0f}')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--curves", default=",".join(CURVES), help="comma-separated subset of " + ",".join(CURVES))
    ap.add_argument("--library", type=Path, default=make_library.DEFAULT_OUT, help="the library folder")
    ap.add_argument("--corpus", type=Path, default=make_library.DEFAULT_CORPUS)
    ap.add_argument("--workers", type=int, default=None, help="engine workers [default: the cores there are]")
    ap.add_argument("--per-point", type=int, default=4, help="jobs per point (all curves but jobs)")
    ap.add_argument("--runs", type=int, default=3, help="batches per point, the fastest kept (jobs curve: 1)")
    ap.add_argument("--jobs-counts", default="100,1000,3000,10000", help="x values of the jobs curve")
    ap.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR)
    ap.add_argument("--no-build", action="store_true", help="do not build missing library files")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the PNGs and scaling.md from the scaling-*.json already there")
    args = ap.parse_args(argv)
    if args.replot:
        for p in sorted(args.results_dir.glob("scaling-*.json")):
            curve = json.loads(p.read_text())
            if curve.get("verdict") != verdict(curve):  # the verdict rule changed since the run
                curve["verdict"] = verdict(curve)
                p.write_text(json.dumps(curve, indent=1, default=str) + "\n", encoding="utf-8")
            plots.plot_curve(curve, p.with_suffix(".png"))
        (args.results_dir / "scaling.md").write_text(render_markdown(args.results_dir), encoding="utf-8")
        return 0
    from animated_previews.engine import default_workers

    curves = [c.strip() for c in args.curves.split(",") if c.strip()]
    bad = [c for c in curves if c not in CURVES]
    if bad:
        ap.error(f"--curves takes {', '.join(CURVES)}")
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if not args.no_build:
        make_library.build(make_library.preset("scaling"), args.library, args.corpus, log=log)
    workers = args.workers or default_workers()
    counts = [int(x) for x in args.jobs_counts.split(",") if x.strip()]
    for name in curves:
        log(f"== {name}")
        curve = run_curve(name, args.library, workers=workers, per_point=args.per_point, jobs_counts=counts, log=log,
                          runs=1 if name == "jobs" else args.runs)
        written = write_curve(curve, args.results_dir)
        log(f"   {curve['verdict']}\n   wrote {', '.join(str(p) for p in written)}")
    md = args.results_dir / "scaling.md"
    md.write_text(render_markdown(args.results_dir), encoding="utf-8")
    log(f"wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
