"""The Ray executor against the local pool, side by side in one run (issue 12's measurements).

Run from the repository root (needs `pip install .[ray]`)::

    python -m bench.ray_executor [--jobs 1000] [--actors 1,2,4] [--lines 10000,100000] [--memory-only]

* per-job overhead: ``--jobs`` one-frame GIF jobs (a 160x120 clip) through the local pool (2
  workers) and through Ray (2 actors, outputs written by the actors, then returned as bytes);
  seconds per job each, and Ray's difference to the pool;
* throughput as actors are added: the same jobs on 1, 2, 4 actors of one local Ray instance
  (this machine has 2 cores: past 2 they share them);
* the driver's peak memory (ru_maxrss) for manifests of each ``--lines`` size whose jobs end at
  once (inputs that do not exist: each line still goes to a worker and back): without the store on
  Ray, and with the store on the local pool. Flat: the peak barely moves as the manifest grows.
  ``--memory-only`` re-measures these rows alone, keeping the other figures of the last run.

Writes ``bench/results/NAME.{json,md}``. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def _manifest(folder: Path, clip: Path, jobs: int, name: str = "m.jsonl") -> Path:
    path = folder / name
    with open(path, "w") as f:
        for n in range(jobs):
            f.write(json.dumps({"id": f"j{n}", "input": str(clip), "format": "gif", "fps": 1, "duration": 0.04}) + "\n")
    return path


def _timed(manifest: Path, out: Path, executor) -> tuple[float, int]:
    from animated_previews.engine import load_manifest, run_batch

    started = time.perf_counter()
    results = list(run_batch(load_manifest(manifest), out, executor=executor, device="cpu", workers=2))
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return seconds, sum(r.ok for r in results)


def _driver_memory(lines: int, folder: Path, *, executor: str = "ray", stored: bool = False) -> dict:
    """Peak RSS of a run of a ``lines``-line manifest whose jobs end at once (inputs that do not
    exist: each line still goes to a worker and back, and with ``stored`` into the store), in a
    fresh process so the peak is this run's alone."""
    manifest, out = folder / f"lines-{lines}.jsonl", folder / f"lines-out-{executor}-{stored}"
    if not manifest.exists():
        with open(manifest, "w") as f:
            for n in range(lines):
                f.write(json.dumps({"id": f"l{n}", "input": f"/nonexistent/x{n}.mp4", "format": "gif", "fps": 1,
                                    "duration": 1}) + "\n")
    make = "RayExecutor(actors=2)" if executor == "ray" else "open_executor('local', workers=2)"
    if stored:
        run = (f"s = Service(store={str(folder / f'store-{lines}.db')!r})\n"
               f"n = sum(1 for _ in s.run_batch(s.manifest(m), out, executor={make}, device='cpu', drain_s=0))\n")
    else:
        run = f"n = sum(1 for _ in run_batch(Manifest(m), out, executor={make}, device='cpu'))\n"
    code = (
        "import json, resource, time\n"
        "from animated_previews.engine import Manifest, Service, open_executor, run_batch\n"
        "from animated_previews.engine.executors.ray import RayExecutor\n"
        f"m, out = {str(manifest)!r}, {str(out)!r}\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n" + run +
        "print(json.dumps({'lines': n, 'seconds': round(time.perf_counter() - t, 1), 'rss_before_mib': round(before / 1024), "
        "'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return {"executor": executor, "stored": stored, **json.loads(done.stdout.strip().splitlines()[-1])}


MEMORY_RUNS = {"ray": (False, "ray"), "store": (True, "local")}
"""``--memory-runs`` names: without the store on Ray, with the store on the local pool."""


def _memory_rows(sizes: list[int], folder: Path, runs: str = "ray,store") -> list[dict]:
    """The driver's peak for each manifest size, with and without the store: flat means the
    peak hardly moves as the manifest grows tenfold."""
    rows = []
    for stored, executor in (MEMORY_RUNS[name] for name in runs.split(",")):
        for lines in sizes:
            rows.append(_driver_memory(lines, folder, executor=executor, stored=stored))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--actors", default="1,2,4")
    parser.add_argument("--lines", default="10000,100000",
                        help="manifest sizes for the driver-memory rows (comma-separated)")
    parser.add_argument("--memory-only", action="store_true", help="only the driver-memory rows")
    parser.add_argument("--memory-runs", default="ray,store", help="which driver-memory rows: ray, store or both")
    parser.add_argument("--name", default="ray-executor")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    import clipmaker
    import ray

    from animated_previews.engine import open_executor
    from animated_previews.engine.executors.ray import RayExecutor

    folder = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    try:
        clip = clipmaker.make_clip(folder / "c.mp4", fps=25, frames=10, width=160, height=120)
        manifest = _manifest(folder, clip, args.jobs)
        report: dict = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                                    "ray": ray.__version__}, "jobs": args.jobs}
        if args.memory_only:
            earlier = RESULTS / "ray-executor.json"  # the last full run's timings
            previous = json.loads(earlier.read_text()) if earlier.exists() else {}
            report.update({k: previous[k] for k in ("overhead", "actors", "jobs", "timed_at") if k in previous})
            report["timings_reused"] = True
            report["driver_memory"] = _memory_rows([int(n) for n in args.lines.split(",")], folder, args.memory_runs)
            return _write(args, report)
        report["timed_at"] = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
        local = _timed(manifest, folder / "out", open_executor("local", workers=2))
        ray.init(num_cpus=max(int(a) for a in args.actors.split(",")), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        shared = _timed(manifest, folder / "out", RayExecutor(actors=2))
        returned = _timed(manifest, folder / "out", RayExecutor(actors=2, output="bytes"))
        local_again = _timed(manifest, folder / "out", open_executor("local", workers=2))
        best_local = min(local[0], local_again[0])
        report["overhead"] = {
            "local_pool_2_workers_s_per_job": round(best_local / args.jobs, 4),
            "ray_2_actors_shared_s_per_job": round(shared[0] / args.jobs, 4),
            "ray_2_actors_bytes_s_per_job": round(returned[0] / args.jobs, 4),
            "ray_minus_local_ms_per_job": round((shared[0] - best_local) / args.jobs * 1000, 2),
            "succeeded": [local[1], shared[1], returned[1], local_again[1]],
        }
        report["actors"] = []
        for count in (int(a) for a in args.actors.split(",")):
            seconds, ok = _timed(manifest, folder / "out", RayExecutor(actors=count))
            report["actors"].append({"actors": count, "jobs_per_s": round(args.jobs / seconds, 1), "succeeded": ok})
        ray.shutdown()
        report["driver_memory"] = _memory_rows([int(n) for n in args.lines.split(",")], folder, args.memory_runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _write(args, report)


def _write(args: argparse.Namespace, report: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    o = report.get("overhead", {})
    lines = [f"# Ray executor vs the local pool ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"`python -m bench.ray_executor --jobs {args.jobs} --actors {args.actors} --lines {args.lines}`; "
             f"{report['machine']['cpus']} CPUs, Ray {report['machine']['ray']}; one-frame GIF jobs of a 160x120 clip."
             + (f" The timing rows are from the run of {report.get('timed_at', 'an earlier run')} (`--memory-only` "
                "re-measured the memory rows alone)." if report.get("timings_reused") else ""), "",
             "| path | s/job |", "|---|---|",
             f"| local pool, 2 workers (best of two, before and after) | {o.get('local_pool_2_workers_s_per_job')} |",
             f"| Ray, 2 actors, actors write (shared) | {o.get('ray_2_actors_shared_s_per_job')} |",
             f"| Ray, 2 actors, images returned as bytes | {o.get('ray_2_actors_bytes_s_per_job')} |", "",
             f"Ray's overhead: {o.get('ray_minus_local_ms_per_job')} ms per job.", "",
             "| actors | jobs/s |", "|---|---|"] + [f"| {a['actors']} | {a['jobs_per_s']} |" for a in report.get("actors", [])] + [
             "", "Driver peak RSS, manifests whose jobs end at once (inputs that do not exist):", "",
             "| run | lines | peak RSS MiB | before the run MiB | seconds |", "|---|---|---|---|---|"] + [
             f"| {'store, local pool' if m.get('stored') else 'no store, Ray 2 actors'} | {m.get('lines')} | "
             f"{m.get('peak_rss_mib')} | {m.get('rss_before_mib')} | {m.get('seconds')} |" if "error" not in m
             else f"| failed: {m['error'][-200:]!r} | | | | |" for m in report["driver_memory"]]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
