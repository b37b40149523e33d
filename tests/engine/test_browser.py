"""Browsers are the real clients: headless Chromium must load each output as an image.

Skipped when no Chromium is installed (Debian's `chromium` package; .ci/run installs it).
"""

from __future__ import annotations

import json

import pytest

import clipmaker
from clients import CHROMIUM, load_in_chromium
from animated_previews.engine import load_manifest, run_batch

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")


def test_chromium_loads_gif_and_webp_at_their_size(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=50, width=320, height=240)
    jobs = [{"id": "g", "input": str(clip), "format": "gif", "fps": 10, "width": 200, "duration": 1},
            {"id": "w", "input": str(clip), "format": "webp", "fps": 30, "width": 240, "height": 100, "duration": 1.5}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    out = tmp_path / "out"
    assert all(r.ok for r in run_batch(load_manifest(manifest), out, workers=2))
    assert load_in_chromium(out, ["g.gif", "w.webp"]) == {"g.gif": [200, 150], "w.webp": [240, 100]}
