"""libwebp's methods on every WebP job of the previews library, at equal bytes: the measurement
behind the writer's choice of setting by the footage (engine/encode/webp.py ``chosen_setting``).

    python -m bench.webp_methods                      # bench/results/webp-methods.{md,json}
    python -m bench.webp_methods --only screen_text,film_grain_chaplin --name scratch

Each job's frames are made once by the engine's own pipeline (``engine.job.decode_job``: probe,
timeline, PyAV decode, fit, render; exactly what the job hands its encoder). Then, on one thread:
the writer at quality 45, method 1 (the default) gives the byte count; every other method is coded
at the highest quality whose file is at most those bytes (a binary search over 1-100); each file
is decoded by Pillow and scored against the frames it was made from at every instant
(``engine.render.decoded_error``, every pixel), so the table compares coding alone, not scaling.
It also gives each job's :func:`~animated_previews.engine.encode.webp.detail_spread` and the
setting the writer chooses, with that setting's bytes and dB. Time: one encode at the setting
found, over method 1's, in the same process; a ratio, not a benchmark of the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from . import make_library
from .harness import machine_info
from .job_time import job_spec
from .quality_library import load_library

KINDS = ("source", "resized")
METHODS = (0, 2, 3, 4)
"""The methods compared with the default's (1)."""
RESULTS = Path(__file__).resolve().parent / "results"


def _psnr(mse: float) -> float:
    return 99.0 if mse <= 0 else 10 * math.log10(255 ** 2 / mse)


def measure_job(spec, out_dir: Path) -> dict:
    """One job: its frames rendered once, then coded at method 1 and at each of :data:`METHODS`
    within method 1's bytes, and at the writer's own choice."""
    import torch

    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.encode import webp
    from animated_previews.engine.job import decode_job
    from animated_previews.engine.render import decoded_error
    from animated_previews.engine.spec import MAX_BYTES_RANGE

    torch.set_num_threads(1)
    # a budget nothing reaches keeps the decoded clip (RenderedJob.kept), which the scoring reads
    rendered = decode_job(dataclasses.replace(spec, max_bytes=MAX_BYTES_RANGE[1]), out_dir, PyAVDecoder())
    if not hasattr(rendered, "frames"):
        return {"id": spec.id, "error": rendered.error_message}
    frames, delays, clip = rendered.frames.rgb, list(rendered.timeline.delays), rendered.kept

    def code(quality: int, method: int) -> tuple[dict, bytes]:
        started = time.process_time()
        data = webp.encode_webp(frames, delays, quality=quality, method=method, threads=1)
        return {"quality": quality, "method": method, "bytes": len(data), "s": time.process_time() - started}, data

    def scored(found: tuple[dict, bytes]) -> dict:  # decoded and scored only once chosen
        return {**found[0], "db": _psnr(decoded_error(found[1], clip, delays, stride=1))}

    base = scored(code(webp.DEFAULT_QUALITY, webp.DEFAULT_METHOD))
    methods = {}
    for method in METHODS:
        low, high, best = 1, 100, None
        while low <= high:
            quality = (low + high) // 2
            found = code(quality, method)
            if found[0]["bytes"] <= base["bytes"]:
                best, low = found, quality + 1
            else:
                high = quality - 1
        methods[str(method)] = None if best is None else scored(best)
    quality, method = webp.chosen_setting(frames)
    return {"id": spec.id, "width": int(frames.shape[2]), "height": int(frames.shape[1]), "frames": len(frames),
            "spread": webp.detail_spread(frames), "chosen": scored(code(quality, method)), "method_1": base,
            "methods": methods}


def markdown(report: dict) -> str:
    """The per-job table (dB and time against method 1 at method 1's bytes) and the summary by
    which side of :data:`MIXED_DETAIL_SPREAD` a job falls."""
    spread_line = report["mixed_detail_spread"]
    lines = ["# libwebp's methods on the previews library's WebP jobs, at equal bytes", "",
             f"`{report['command']}` on {report['date']}, {report['machine'].get('cpu_model', '?')}, one thread, "
             f"engine at {(report['machine'].get('git_commit') or '?')[:7]}"
             f"{' (modified)' if report['machine'].get('git_dirty') else ''}. Each job's frames rendered once by the engine; method 1 at quality 45 gives the "
             "bytes; each other method at the highest quality within them (binary search); dB: PSNR of the decoded "
             "animation against the frames it was made from, at every instant and pixel; time: that one encode's CPU "
             f"seconds over method 1's. Spread: `detail_spread`; the writer codes at method "
             f"{report['mixed_detail_setting'][1]}, quality {report['mixed_detail_setting'][0]} from {spread_line}.",
             "", "| job | spread | method 1 q45: KB | dB | s | " + " | ".join(f"m{m} dB ± | m{m} time" for m in METHODS)
             + " | chosen | chosen KB | chosen dB |",
             "|---|---|---|---|---|" + "---|---|" * len(METHODS) + "---|---|---|"]
    for job in report["jobs"]:
        if "error" in job:
            lines.append(f"| {job['id']} | failed: {job['error']} |")
            continue
        base = job["method_1"]
        row = [job["id"], f"{job['spread']:.2f}", f"{base['bytes'] / 1000:.1f}", f"{base['db']:.2f}", f"{base['s']:.2f}"]
        for method in METHODS:
            found = job["methods"][str(method)]
            row += ["–", "–"] if found is None else [f"{found['db'] - base['db']:+.2f}", f"{found['s'] / base['s']:.2f}x"]
        chosen = job["chosen"]
        row += [f"q{chosen['quality']} m{chosen['method']}", f"{chosen['bytes'] / 1000:.1f}", f"{chosen['db']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Method 2 at method 1's bytes, by side of the line:", ""]
    for side, label in ((True, f"spread >= {spread_line}"), (False, f"spread < {spread_line}")):
        gains = [(job["methods"]["2"]["db"] - job["method_1"]["db"], job["spread"]) for job in report["jobs"]
                 if "error" not in job and job["methods"]["2"] is not None and (job["spread"] >= spread_line) == side]
        if gains:
            lines.append(f"- {label}: {len(gains)} jobs, {min(g for g, _ in gains):+.2f} to {max(g for g, _ in gains):+.2f} dB "
                         f"(spread {min(s for _, s in gains):.2f}-{max(s for _, s in gains):.2f})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.webp_methods", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--library", type=Path, default=make_library.DEFAULT_OUT)
    ap.add_argument("--only", help="comma-separated clips (default: every clip of the library)")
    ap.add_argument("--name", default="webp-methods", help="results file name, without extension")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    clips = load_library(args.library)
    if not clips:
        print(f"{args.library} has no previews library: run python -m bench.make_library --preset previews",
              file=sys.stderr)
        return 2
    names = args.only.split(",") if args.only else list(clips)
    from animated_previews.engine.encode import webp

    report = {"command": "python -m bench.webp_methods" + (f" --only {args.only}" if args.only else ""),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(1), "mixed_detail_spread": webp.MIXED_DETAIL_SPREAD,
              "mixed_detail_setting": list(webp.MIXED_DETAIL_SETTING), "jobs": []}
    with tempfile.TemporaryDirectory() as out:
        for name in names:
            for kind in KINDS:
                job = measure_job(job_spec(args.library, name, "webp", kind), Path(out))
                report["jobs"].append(job)
                if "error" not in job:
                    print(f"{job['id']}: spread {job['spread']:.2f}, m2 {job['methods']['2']['db'] - job['method_1']['db']:+.2f} dB",
                          flush=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.results_dir / f"{args.name}.md").write_text(markdown(report))
    print(f"wrote {args.results_dir / args.name}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
