"""The layers keep their promises (README "Layout"): what each part may import, checked as it runs.

The import graph itself (no cycles, no arrow the design forbids, imports inside functions
included) is checked by the design's own tool, ``../shared/tools/arch_check.py``, when the shared
folder is beside the checkout (CI has it). What a static graph cannot show is checked by running:
a batch without a store loads no store or service module, and the command line starts without
torch or PyNvVideoCodec.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCH_CHECK = REPO_ROOT.parent / "shared" / "tools" / "arch_check.py"


def _run_python(code: str, cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not ARCH_CHECK.exists(), reason="../shared/tools/arch_check.py is not beside this checkout")
def test_the_import_graph_has_no_cycle_and_no_forbidden_arrow():
    done = subprocess.run([sys.executable, str(ARCH_CHECK), str(REPO_ROOT)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout
    assert "0 cycles, 0 forbidden arrows" in done.stdout


def test_a_batch_without_a_store_loads_no_store_or_service_module(tmp_path, h264_clip):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "input": str(h264_clip), "format": "gif", "fps": 5, "duration": 1}))
    shown = _run_python(f"""
        import json, sys
        from animated_previews.engine import load_manifest, run_batch
        results = list(run_batch(load_manifest({str(manifest)!r}), {str(tmp_path / 'out')!r}, workers=1))
        loaded = sorted(m for m in sys.modules if m.startswith(("animated_previews.engine.store",
                                                                "animated_previews.engine.vod")) or m == "sqlite3")
        print(json.dumps({{"ok": [r.ok for r in results], "loaded": loaded}}))
    """, tmp_path)
    assert shown == {"ok": [True], "loaded": []}


def test_the_command_line_starts_without_torch_or_pynvvideocodec(tmp_path):
    shown = _run_python("""
        import json, sys
        import animated_previews.cli.main
        print(json.dumps(sorted(m for m in ("torch", "PyNvVideoCodec", "PIL") if m in sys.modules)))
    """, tmp_path)
    assert shown == []
