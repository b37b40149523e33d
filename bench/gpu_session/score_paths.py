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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.quality_library import load_library, make_cases, score_case  # noqa: E402

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
        outputs, formats = {}, {}
        for fmt in ("gif", "webp"):
            for side, folder in sides.items():
                path = folder / f"{case.clip}-{case.kind}-{fmt}.{fmt}"
                if path.exists():
                    outputs[f"{side}-{fmt}"], formats[f"{side}-{fmt}"] = str(path), fmt
        scored = score_case(case, outputs, None, formats)  # the reference decoded once for both formats
        for fmt in ("gif", "webp"):
            row: dict = {"case": f"{case.clip}-{case.kind}", "format": fmt}
            for side in sides:
                if f"{side}-{fmt}" in scored["scores"]:
                    row[side] = {"psnr_mean_db": round(scored["scores"][f"{side}-{fmt}"]["psnr_mean_db"], 3),
                                 "bytes": Path(outputs[f"{side}-{fmt}"]).stat().st_size}
            row["seconds"] = round(scored["score_s"], 2)
            with out.open("a") as sink:
                sink.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
