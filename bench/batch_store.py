"""What the store costs a batch run, and what a re-run of a finished manifest costs.

    python -m bench.batch_store                 # 1000 one-frame jobs, 3 rounds
    python -m bench.batch_store --jobs 300 --rounds 2

Each round runs the same manifest three ways through the ``engine`` command, side by side:
``--no-store`` (every line, nothing remembered), a fresh store (every line, each one enlisted,
claimed and recorded with its event), and the same store again (every line answered from the
store, nothing decoded). Tiny jobs (one 64-pixel GIF frame) make the per-job bookkeeping as large
a share of the time as it can be. Best wall time of the rounds per way; the ratio is what the
store adds. Writes ``bench/results/batch-store.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def _engine() -> list[str]:
    script = Path(sys.executable).parent / "engine"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from animated_previews.cli.main import main; main()"]


def _run(args: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(_engine() + args + ["--json"], capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"engine {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout.splitlines()[-1])["summary"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO / "tests"))
    import clipmaker

    work = Path(tempfile.mkdtemp(prefix="bench-batch-store-"))
    try:
        clip = clipmaker.make_clip(work / "clip.mp4", fps=25, frames=50, width=160, height=90)
        manifest = work / "m.jsonl"
        manifest.write_text("".join(json.dumps({"id": f"j{i}", "input": str(clip), "format": "gif", "fps": 1,
                                                "width": 64, "seek": (i % 40) * 0.05, "duration": 1}) + "\n"
                                    for i in range(args.jobs)))
        common = ["run", "--batch", str(manifest), "--workers", str(args.workers)]
        walls: dict[str, list[float]] = {"no-store": [], "store, fresh": [], "store, re-run": []}
        for _ in range(args.rounds):
            for folder in ("o1", "o2"):
                shutil.rmtree(work / folder, ignore_errors=True)
            for stale in work.glob("s.db*"):
                stale.unlink()
            wall, summary = _run(common + ["--out-dir", str(work / "o1"), "--no-store"])
            assert summary["succeeded"] == args.jobs, summary
            walls["no-store"].append(wall)
            wall, summary = _run(common + ["--out-dir", str(work / "o2"), "--store", str(work / "s.db")])
            assert summary["succeeded"] == args.jobs and summary["reused"] == 0, summary
            walls["store, fresh"].append(wall)
            wall, summary = _run(common + ["--out-dir", str(work / "o2"), "--store", str(work / "s.db")])
            assert summary["reused"] == args.jobs, summary
            walls["store, re-run"].append(wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = {way: min(values) for way, values in walls.items()}
    report = {"jobs": args.jobs, "workers": args.workers, "rounds": args.rounds, "cpus": os.cpu_count(),
              "wall_s": walls, "best_s": best,
              "store_over_no_store": best["store, fresh"] / best["no-store"],
              "store_ms_per_job": 1000 * (best["store, fresh"] - best["no-store"]) / args.jobs,
              "rerun_ms_per_job": 1000 * best["store, re-run"] / args.jobs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch-store.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Batch runs with and without the store ({args.jobs} one-frame GIF jobs, {args.workers} workers, "
             f"best of {args.rounds} rounds)", "",
             "Written by `python -m bench.batch_store`. Wall time of the whole `engine run` (start-up included).", "",
             "| run | best wall s | every round, s | ms per job |", "|---|---|---|---|"]
    for way, values in walls.items():
        lines.append(f"| {way} | {best[way]:.2f} | {', '.join(f'{v:.2f}' for v in values)} | "
                     f"{1000 * best[way] / args.jobs:.1f} |")
    lines += ["", f"The store adds {report['store_ms_per_job']:+.2f} ms per job "
              f"({report['store_over_no_store']:.3f}x the wall time without it); a re-run of the finished manifest "
              f"answers each line in {report['rerun_ms_per_job']:.2f} ms."]
    (RESULTS / "batch-store.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
