"""`make demo`'s sample: a valid manifest over a real clip, and a second demo redoes nothing."""

from __future__ import annotations

from animated_previews.engine import load_manifest
from animated_previews.engine.probe import probe
from animated_previews.engine.sample import write_demo


def test_the_demo_manifest_is_valid_but_for_its_one_bad_time_and_the_clip_is_kept(tmp_path):
    manifest = write_demo(tmp_path)
    clip = tmp_path / "sample.mp4"
    stamp = clip.stat().st_mtime_ns
    entries = load_manifest(manifest)
    assert [e.id for e in entries if e.spec is None] == [] and len(entries) == 4
    assert round(probe(clip).duration, 1) == 4.0
    write_demo(tmp_path)  # again: same clip file, so the store's identities still match
    assert clip.stat().st_mtime_ns == stamp
