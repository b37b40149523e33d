"""``engine bench``: one manifest through several paths (cpu, cuda, ffmpeg), measured the same way.

The paths, runs and measures are bench/harness.py's: every path gets the manifest's jobs, an
untimed warm-up, then ``repeat`` timed runs of the whole manifest, alternated between paths. A
path that cannot run here is reported as ``unavailable: <reason>``, never as an error. Reported
per path (best run; every run's wall time is kept): clips/s and output frames/s, source frames
decoded per output frame, seconds per stage, peak RSS (worker / process tree), peak GPU memory
(cuda), output bytes and PSNR against the common reference. cli/bench.py is the command;
bench/report.py renders the table and writes the files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from bench import harness, report


def fallbacks(path: str, devices_used: dict[str, int]) -> int:
    """Jobs of the ``cuda`` path that another decoder than NVDEC took (a result's ``device`` names
    its decoder: "nvdec" or "pyav"); 0 for the other paths. (Until 2026-12-04 this asked for
    names starting with "cuda", which none has: an H200's all-NVDEC run read "some jobs fell back".)"""
    if path != "cuda":
        return 0
    return sum(count for decoder, count in devices_used.items() if decoder != "nvdec")


def run_bench(manifest: Path, *, devices: list[str], baselines: list[str], repeat: int = 3, warmup: int | None = None,
              workers: int | None = None, input_root: Path | None = None, psnr_jobs: int | None = None,
              keep_dir: Path | None = None, log: Callable[[str], None] = lambda m: None) -> dict:
    """Run ``manifest`` through every path in ``devices + baselines``; return the report dict."""
    from animated_previews.engine import default_workers

    workers = workers or default_workers()
    loaded = harness.load_jobs(manifest, input_root)
    jobs = loaded.jobs
    paths = list(dict.fromkeys([*devices, *baselines]))
    warmup = min(len(jobs), workers) if warmup is None else min(warmup, len(jobs))
    scored = len(jobs) if psnr_jobs is None else min(psnr_jobs, len(jobs))
    out: dict = {
        "kind": "engine-bench",
        "config": {"manifest": str(manifest), "jobs": len(jobs), "invalid_lines": loaded.invalid, "paths": paths,
                   "repeat": repeat, "warmup_jobs": warmup, "workers": workers, "psnr_jobs": scored,
                   "run_batch_accepts_device": harness.run_batch_accepts_device(),
                   "engine_options": {job.id: job.engine_options for job in jobs if job.engine_options}},
        "machine": harness.machine_info(workers),
        "paths": {},
    }
    available = []
    for p in paths:  # in the order asked for
        why = harness.path_availability(p)
        out["paths"][p] = {"status": why or "not run"}
        if why:
            log(f"{p}: {why}")
        else:
            available.append(p)
    if not jobs:
        for p in available:
            out["paths"][p] = {"status": "no valid jobs in the manifest"}
        return out
    scorer = harness.Scorer()
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        runs = harness.run_alternated(available, jobs, warmup=jobs[:warmup], runs=repeat, workers=workers,
                                      tmp=Path(tmp), log=log)
        for p in available:
            last = runs[p][-1]["results"]
            summary = harness.summarize_runs(runs[p])
            summary["status"] = "ok" if not summary["failed"] else f"{summary['failed']} of {summary['clips']} jobs failed"
            fell_back = fallbacks(p, summary["devices_used"])
            if fell_back:
                summary["status"] += f" ({fell_back} of {summary['clips']} jobs fell back to the CPU decoder)"
            if scored:
                log(f"{p}: scoring PSNR against the common reference ...")
            by_id = {r["id"]: r for r in last}
            summary["quality"] = harness.quality(scorer.scores((job, by_id[job.id]) for job in jobs[:scored]
                                                               if job.id in by_id))
            if runs[p][0].get("command"):
                summary["command"] = " ".join(runs[p][0]["command"])
            summary["results"] = last
            out["paths"][p] = summary
            if keep_dir is not None:
                report.keep_outputs(last, keep_dir / p)
    out["machine"]["loadavg_end"] = os.getloadavg()
    return out
