"""bench/gpu_session/: what one device call runs. The call itself needs the GPU machine; here, the
scripts parse and the scorer scores two paths' outputs of a library case against the source."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from animated_previews.engine import load_manifest, run_batch
from bench.gpu_session import score_paths
from test_quality_library import _tiny_library, needs_ffmpeg

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["prepare.sh", "run.sh"])
def test_the_scripts_are_valid_bash(script):
    done = subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu_session" / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@needs_ffmpeg
def test_each_paths_outputs_are_scored_against_the_source_one_line_a_case_and_format(tmp_path):
    lib = _tiny_library(tmp_path)
    for side in ("cuda", "cpu"):  # here both from the CPU path: the same files, so the same scores
        list(run_batch(load_manifest(lib / "previews.jsonl"), tmp_path / side, workers=1, device="cpu"))
    out = tmp_path / "scores.jsonl"
    assert score_paths.main([str(out), f"cuda={tmp_path / 'cuda'}", f"cpu={tmp_path / 'cpu'}"], library=lib) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["case"], r["format"]) for r in rows] == [("pixel_life-source", "gif"), ("pixel_life-source", "webp"),
                                                      ("pixel_life-resized", "gif"), ("pixel_life-resized", "webp")]
    for row in rows:
        assert row["cuda"] == row["cpu"] and 10 < row["cpu"]["psnr_mean_db"] < 80 and row["cpu"]["bytes"] > 0  # a score, not 0 or inf
