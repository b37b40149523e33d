"""bench/make_library.py makes the variants it names: codec, size, length (looped), GOP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import make_library  # noqa: E402
from bench.make_library import Variant  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="needs the ffmpeg and ffprobe commands")

ENCODER = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1|libaom-av1"}


def _has_encoder(codec: str) -> bool:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return any(f" {e} " in out for e in ENCODER[codec].split("|"))


@pytest.mark.parametrize("codec", make_library.CODECS)
def test_tiny_variant_has_its_codec_size_length_and_gop(tmp_path, codec):
    if not _has_encoder(codec):
        pytest.skip(f"this ffmpeg cannot encode {codec}")
    v = Variant("gen", 72, codec, 3, 1)
    index = make_library.build([v], tmp_path)
    path = tmp_path / v.filename
    info = make_library.probe(path)
    assert info["codec"] == codec
    assert (info["width"], info["height"]) == (128, 72)
    assert info["duration"] == pytest.approx(3, abs=0.1)
    assert make_library.keyframe_times(path) == pytest.approx([0, 1, 2], abs=0.05)
    assert index["variants"][v.name]["probe"]["codec"] == codec
    assert v.filename.endswith(".webm" if codec == "vp9" else ".mp4")


def test_gop_and_rebuild_and_gitignore(tmp_path):
    v = Variant("gen", 72, "h264", 4, 2)
    make_library.build([v], tmp_path)
    path = tmp_path / v.filename
    assert make_library.keyframe_times(path) == pytest.approx([0, 2], abs=0.05)
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"  # never committed
    before = path.stat().st_mtime_ns
    make_library.build([v], tmp_path)  # already there: kept
    assert path.stat().st_mtime_ns == before


@pytest.mark.corpus
def test_corpus_footage_is_scaled_and_looped(tmp_path):
    corpus = REPO.parent / "shared" / "corpus"
    v = Variant("chaplin", 72, "h264", 12, 1)  # the source lasts 9.6 s: looped to 12 s
    make_library.build([v], tmp_path, corpus)
    info = make_library.probe(tmp_path / v.filename)
    assert info["height"] == 72 and info["width"] == 128
    assert info["duration"] == pytest.approx(12, abs=0.1)
    assert len(make_library.keyframe_times(tmp_path / v.filename)) == 12


def test_presets_cover_the_axes():
    full = make_library.preset("full")
    assert {v.codec for v in full} == {"h264", "hevc", "vp9", "av1"}
    assert {v.height for v in full} >= {360, 720, 1080, 2160}
    assert {v.gop for v in full} >= {1, 10}
    assert max(v.duration for v in full) >= 600
    assert len({v.name for v in full}) == len(full)
    names = {v.name for v in make_library.preset("scaling")}
    assert "bbb_720p_h264_600s_gop2s" in names and "gen_90p_h264_2s_gop1s" in names


def test_command_line_lists_the_cross_product(capsys):
    assert make_library.main(["--heights", "360,720", "--codecs", "h264,vp9", "--gops", "1,10", "--list"]) == 0
    out = capsys.readouterr().out.split()
    assert len(out) == 8
    assert "bbb_720p_vp9_10s_gop10s.webm" in out


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_preview_clip_is_kept_until_its_recipe_changes(tmp_path):
    """A library made before a recipe changed (the HLG clip's, 2026-12-05) kept the old clip and the
    comparison judged it without a word; the index's commands now say which recipe made it."""
    clip = next(c for c in make_library.PREVIEW_CLIPS if c.name == "pixel_life")  # lavfi only, no corpus
    said: list[str] = []
    make_library.build_previews([clip], tmp_path, tmp_path, log=said.append)
    path = tmp_path / clip.filename
    made = path.stat().st_mtime_ns
    make_library.build_previews([clip], tmp_path, tmp_path, log=said.append)
    assert path.stat().st_mtime_ns == made and said[-1] == f"kept  {clip.filename}"
    index = json.loads((tmp_path / "library.json").read_text())
    index["clips"][clip.name]["commands"][0] += " -older-recipe"
    (tmp_path / "library.json").write_text(json.dumps(index))
    make_library.build_previews([clip], tmp_path, tmp_path, log=said.append)
    assert path.stat().st_mtime_ns != made
    assert f"remake {clip.filename}: its recipe changed" in said
