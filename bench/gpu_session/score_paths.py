"""Each previews-library case's outputs from several paths scored against the same source frames,
as bench/quality_library.py scores them (PSNR of what a viewer sees, the better of the two
sampling conventions): is the GPU path's GIF as good as the CPU path's?

    python bench/gpu_session/score_paths.py OUT.jsonl cuda=/tmp/lib-cuda cpu=/tmp/lib-cpu

One JSON line per case and format, appended to OUT.jsonl (whole lines, flushed, so that shards
running side by side, ``SHARD=k/n``, can share the file and a run cut short keeps what it scored):
``{"case", "format", SIDE: {"psnr_mean_db", "bytes"}, ..., "seconds"}``. The library is
``.gpu-lib`` (bench/gpu_session/prepare.sh); cases whose clip or reference is absent are skipped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import psnr  # noqa: E402
from bench.quality_library import load_library, make_cases  # noqa: E402

LIBRARY = Path(".gpu-lib")


def main(argv: list[str], library: Path = LIBRARY) -> int:
    out = Path(argv[0])
    sides = {side: Path(folder) for side, folder in (arg.split("=", 1) for arg in argv[1:])}
    shard, shards = (int(x) for x in os.environ.get("SHARD", "0/1").split("/"))
    clips = {name: clip for name, clip in load_library(library).items()
             if (library / clip["file"]).exists() and (library / clip.get("reference_file", clip["file"])).exists()}
    for number, case in enumerate(make_cases(clips, library)):
        if number % shards != shard:
            continue
        started = time.perf_counter()
        job = case.gif
        times = psnr.instants(job.seek, job.duration, job.fps)
        refs = psnr.decode_conventions(case.reference, times, rotate=True, fps=job.fps)
        sized: dict[tuple[int, int], dict[str, psnr.SourceFrames]] = {}
        for fmt, fmt_job in (("gif", case.gif), ("webp", case.webp)):
            row: dict = {"case": f"{case.clip}-{case.kind}", "format": fmt}
            for side, folder in sides.items():
                path = folder / f"{case.clip}-{case.kind}-{fmt}.{fmt}"
                if not path.exists():
                    continue
                anim = psnr.decode_animation(path)
                if anim.size not in sized:
                    sized[anim.size] = {name: psnr.SourceFrames(psnr.resize_reference(src, anim.size), src.source_times,
                                                                src.notes) for name, src in refs.items()}
                size = (fmt_job.width, fmt_job.height) if fmt_job.width else case.size
                score = psnr.score_best(anim, sized[anim.size], fmt_job.fps, fmt_job.duration, size)
                row[side] = {"psnr_mean_db": round(score["psnr_mean_db"], 3), "bytes": path.stat().st_size}
            row["seconds"] = round(time.perf_counter() - started, 2)
            with out.open("a") as sink:
                sink.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
