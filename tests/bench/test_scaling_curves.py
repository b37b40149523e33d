"""bench/scaling.py: a (tiny) jobs curve end to end: points, verdict, JSON, markdown, plot."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import make_library, plots, scaling  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")


def test_tiny_jobs_curve(tmp_path):
    lib = tmp_path / "lib"
    make_library.build([make_library.Variant("gen", 90, "h264", 2, 1)], lib)
    curve = scaling.run_curve("jobs", lib, workers=2, per_point=1, jobs_counts=[3, 6], log=lambda m: None)
    assert [p["x"] for p in curve["points"]] == [3, 6]
    for p in curve["points"]:
        assert p["jobs"] == p["x"] and p["failed"] == 0
        assert p["output_frames"] == p["jobs"]  # one frame each
        assert p["s_per_job"] > 0 and p["peak_worker_rss_mib"] > 10
        assert p["source_frames_per_job"] >= 1
    assert "s/job" in curve["verdict"]
    written = scaling.write_curve(curve, tmp_path)
    assert json.loads((tmp_path / "scaling-jobs.json").read_text())["curve"] == "jobs"
    assert (tmp_path / "scaling-jobs.png" in written) == plots.available()
    md = scaling.render_markdown(tmp_path)
    assert "## jobs" in md and "| 6 | 6 |" in md
