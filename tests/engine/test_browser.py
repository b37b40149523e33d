"""Browsers are the real clients: headless Chromium must load each output as an image.

Skipped when no Chromium is installed (Debian's `chromium` package; .ci/run installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import clipmaker
from animated_previews.engine import load_manifest, run_batch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")

PAGE = """<!doctype html><html><body><script>
const results = {};
const names = %s;
let pending = names.length;
for (const name of names) {
  const img = new Image();
  img.onload = () => { results[name] = [img.naturalWidth, img.naturalHeight]; done(); };
  img.onerror = () => { results[name] = "error"; done(); };
  img.src = name;
}
function done() { if (--pending === 0) { const p = document.createElement("pre"); p.id = "out";
  p.textContent = JSON.stringify(results); document.body.appendChild(p); } }
</script></body></html>"""


def load_in_chromium(folder: Path, names: list[str]) -> dict:
    page = folder / "page.html"
    page.write_text(PAGE % json.dumps(names))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={folder / 'profile'}", "--allow-file-access-from-files",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found, f"Chromium printed no result: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_chromium_loads_gif_and_webp_at_their_size(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=50, width=320, height=240)
    jobs = [{"id": "g", "input": str(clip), "format": "gif", "fps": 10, "width": 200, "duration": 1},
            {"id": "w", "input": str(clip), "format": "webp", "fps": 30, "width": 240, "height": 100, "duration": 1.5}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    out = tmp_path / "out"
    assert all(r.ok for r in run_batch(load_manifest(manifest), out, workers=2))
    assert load_in_chromium(out, ["g.gif", "w.webp"]) == {"g.gif": [200, 150], "w.webp": [240, 100]}
