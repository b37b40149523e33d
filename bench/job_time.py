"""One library job on one thread, timed stage by stage: where a change's seconds went.

    python -m bench.job_time animation_bbb gif resized             # best of 3, stage timings
    python -m bench.job_time hdr_pq_hevc10 webp source --repeat 5
    python -m bench.job_time portrait_rotated gif resized --profile  # + cProfile of the last run
    python -m bench.job_time animation_bbb gif resized --device cuda   # the GPU path (NVDEC, CUDA kernels)

The job is the previews library's (bench/make_library.py --preset previews: seek, duration and fps
from ``library.json``; ``resized`` at the library's resized size), run in this process through
``engine.job.run_job`` on the CPU decoder with torch on one thread, as one pool worker runs it.
The batch benchmark (bench/quality_library.py) measures jobs beside each other on a shared
machine, where a single pass moves by 20-40%; this is for A/B-ing a kernel change on one job:
run it before and after, alternately, and compare the best times and the stages that moved.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

from . import make_library
from .quality_library import load_library

DEFAULT_LIBRARY = make_library.DEFAULT_OUT


def job_spec(library: Path, clip: str, fmt: str, kind: str):
    """The library's job for ``clip`` as a JobSpec (``kind``: "source" or "resized")."""
    from animated_previews.engine.spec import JobSpec

    clips = load_library(library)
    if clip not in clips:
        raise SystemExit(f"no clip {clip!r} in {library} (clips: {', '.join(clips)})")
    entry = clips[clip]
    job = entry["job"]
    width = height = None
    if kind == "resized":
        width, height = entry["resized"]["width"], entry["resized"]["height"]
    return JobSpec(id=f"{clip}-{kind}-{fmt}", input=library / entry["file"], format=fmt, fps=job["fps"],
                   seek=job["seek"], duration=job["duration"], width=width, height=height)


def time_job(spec, repeat: int, profile: bool = False, sort: str = "tottime", device: str = "cpu") -> dict:
    """Run ``spec`` ``repeat`` times; the fastest run's wall time and stage timings, its bytes,
    every run's wall time, and (``profile``) the cProfile listing of the last run, sorted by
    ``sort`` (``tottime``: time in each function itself; ``cumulative``: with what it calls).
    ``device`` "cuda": the job as a GPU node runs it (NVDEC where it decodes the file, kernels on
    the GPU); the first run then pays for CUDA's and the decoder's start."""
    import torch

    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.job import run_job

    torch.set_num_threads(1)
    walls, best, listing = [], None, None
    with tempfile.TemporaryDirectory(prefix="job-time-") as out:
        for k in range(repeat):
            profiler = cProfile.Profile() if profile and k == repeat - 1 else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            result = run_job(spec, Path(out), PyAVDecoder(), device=device).to_dict()
            if profiler:
                profiler.disable()
            wall = time.perf_counter() - started
            walls.append(wall)
            if result.get("status") != "success":
                raise SystemExit(f"{spec.id}: {result.get('status')}: {result.get('error') or result}")
            if best is None or wall < best["wall_s"]:
                best = {"wall_s": wall, "timings": result.get("timings"), "bytes": result.get("bytes"),
                        "decoder": result.get("device")}
            if profiler:
                text = _ProfileText()
                pstats.Stats(profiler, stream=text).sort_stats(sort).print_stats(30)
                listing = text.value
    return {**best, "walls_s": walls, "profile": listing}


class _ProfileText:
    """A write-only text stream for pstats."""

    def __init__(self) -> None:
        self.value = ""

    def write(self, text: str) -> int:
        self.value += text
        return len(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.job_time", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("clip", help="a clip of the previews library (python -m bench.make_library --preset previews --list)")
    ap.add_argument("format", choices=("gif", "webp", "avif"))
    ap.add_argument("kind", choices=("source", "resized"))
    ap.add_argument("--repeat", type=int, default=3, help="runs; the fastest is reported")
    ap.add_argument("--profile", action="store_true", help="print cProfile's 30 costliest functions of the last run")
    ap.add_argument("--torch-kernels", action="store_true",
                    help="run the torch kernels where compiled loops would (kernels.compiled.ENABLED off): the A/B")
    ap.add_argument("--profile-sort", choices=("tottime", "cumulative"), default="tottime",
                    help="costliest by time in the function itself, or with what it calls (stages)")
    ap.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N: the GPU path (a GPU node's job)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat takes 1 or more")
    if not load_library(args.library):
        print(f"{args.library} has no previews library: run python -m bench.make_library --preset previews",
              file=sys.stderr)
        return 2
    spec = job_spec(args.library, args.clip, args.format, args.kind)
    from animated_previews.kernels import compiled

    enabled = compiled.ENABLED
    compiled.ENABLED = enabled and not args.torch_kernels
    try:
        report = time_job(spec, args.repeat, args.profile, args.profile_sort, args.device)
    finally:
        compiled.ENABLED = enabled  # main may be called in a process that goes on (the tests)
    if report["profile"]:
        print(report["profile"])
    stages = " ".join(f"{name} {seconds:.3f}" for name, seconds in (report["timings"] or {}).items())
    print(f"{spec.id} on {report['decoder']}: best {report['wall_s']:.3f} s of {len(report['walls_s'])} "
          f"({', '.join(f'{w:.3f}' for w in report['walls_s'])}); {stages}; {report['bytes']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
