"""The previews library (bench/make_library.py --preset previews), the sampling conventions of
bench/psnr.py, gifski's runner (bench/gifski.py) and the per-clip comparison (bench/quality_library.py),
on clips of a few dozen pixels: quick, no timing asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import gifski, make_library, psnr, quality_library  # noqa: E402
from bench.make_library import PREVIEW_CATEGORIES, PREVIEW_CLIPS  # noqa: E402

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs the ffmpeg and ffprobe commands")


def test_previews_preset_covers_a_real_library():
    assert len(PREVIEW_CLIPS) >= 12
    assert len({c.name for c in PREVIEW_CLIPS}) == len(PREVIEW_CLIPS)
    covered = {cat for c in PREVIEW_CLIPS for cat in c.categories}
    assert covered >= set(PREVIEW_CATEGORIES)
    assert {c.hdr for c in PREVIEW_CLIPS} >= {"pq", "hlg"}
    for c in PREVIEW_CLIPS:
        assert 4 <= c.duration <= 8
        assert c.job_seek + c.job_duration <= c.duration
        w, h = c.resized_size
        assert max(w, h) == make_library.RESIZED_LONG_SIDE and w % 2 == 0 and h % 2 == 0
        assert [j["id"] for j in c.jobs()] == [f"{c.name}-{k}-{f}" for k in ("source", "resized")
                                               for f in ("gif", "webp")]
        assert (c.master_filename is not None) == (c.hdr is not None)
    portrait = [c for c in PREVIEW_CLIPS if "rotation" in c.categories]
    assert portrait and all(c.display_size == (c.height, c.width) and c.rotation % 180 == 90 for c in portrait)
    assert any(c.display_size[0] * 3 == c.display_size[1] * 4 for c in PREVIEW_CLIPS)  # a 4:3 source
    assert any(c.height >= 1080 for c in PREVIEW_CLIPS)


def test_the_holdout_clips_are_others_than_the_defaults_were_chosen_on(tmp_path):
    """Every setting was chosen on PREVIEW_CLIPS; the held-out clips are others (no name shared,
    kinds of footage the previews library lacks among them), each has a recipe, and its jobs lie
    inside it."""
    holdout = make_library.HOLDOUT_CLIPS
    assert len(holdout) >= 10 and len({c.name for c in holdout}) == len(holdout)
    assert not {c.name for c in holdout} & {c.name for c in PREVIEW_CLIPS}
    assert {cat for c in holdout for cat in c.categories} - {cat for c in PREVIEW_CLIPS for cat in c.categories}
    corpus = make_library.DEFAULT_CORPUS
    for c in holdout:
        assert c.job_seek + c.job_duration <= c.duration
        if corpus.exists():
            steps = make_library.preview_steps(c, tmp_path / c.filename, corpus)
            assert steps and steps[-1][2] == tmp_path / c.filename


@needs_ffmpeg
def test_holdout_preset_builds_its_own_library(tmp_path, capsys, monkeypatch):
    """In its own folder, not the previews library's, and says which clips it holds (the
    comparison's report names the preset)."""
    out = tmp_path / "holdout"
    monkeypatch.setattr(make_library, "HOLDOUT_OUT", out)
    assert make_library.main(["--preset", "holdout", "--clips", "bar_chart"]) == 0
    index = json.loads((out / "library.json").read_text())
    assert list(index["clips"]) == ["bar_chart"] and index["preset"] == "holdout"
    assert quality_library.library_preset(out) == "holdout"
    assert quality_library.library_preset(tmp_path / "nowhere") == "previews"
    info = index["clips"]["bar_chart"]["probe"]
    assert (info["width"], info["height"]) == (640, 360)
    lines = [json.loads(x) for x in (out / "previews.jsonl").read_text().splitlines()]
    chart = next(c for c in make_library.HOLDOUT_CLIPS if c.name == "bar_chart")
    assert [x["id"] for x in lines] == [j["id"] for j in chart.jobs()]
    with av.open(str(out / chart.filename)) as f:  # the bars move (FFmpeg 5.1's drawbox would not)
        frames = [fr.to_ndarray(format="gray") for i, fr in zip(range(40), f.decode(video=0)) if i in (0, 39)]
    assert np.abs(frames[0].astype(int) - frames[1]).max() > 100


def test_previews_list_on_the_command_line(capsys):
    assert make_library.main(["--preset", "previews", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(PREVIEW_CLIPS)
    assert lines[0].split("\t")[0] == PREVIEW_CLIPS[0].filename
    assert make_library.main(["--preset", "previews", "--clips", "bars_4x3", "--list"]) == 0
    assert capsys.readouterr().out.startswith("bars_4x3.mp4\t")


def _tiny(path: Path, fps: int = 25, seconds: float = 1.0, size: str = "64x36") -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r={fps}", "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


@needs_ffmpeg
def test_conventions_pick_their_frames(tmp_path):
    clip = _tiny(tmp_path / "c.mp4")  # 25 fps, sampled at 15 fps from 0
    times = psnr.instants(0, 0.3, 15)
    refs = psnr.decode_conventions(clip, times, fps=15)
    assert refs["on_screen"].source_times == pytest.approx([0, 0.04, 0.12, 0.20])
    assert refs["nearest"].source_times == pytest.approx([0, 0.08, 0.12, 0.20])
    assert refs["mid_slot"].source_times == pytest.approx([0, 0.08, 0.16, 0.20])  # what ffmpeg's fps filter takes
    assert refs["on_screen"].source_times == psnr.decode_on_screen(clip, times).source_times
    # an output made of the nearest frames scores best against that convention
    frames = refs["nearest"].frames
    anim = psnr.Animation(frames, [1000 / 15] * 4, [1000 / 15] * 4, (64, 36), "GIF", 0, [])
    best = psnr.score_best(anim, refs, 15, 0.3)
    assert best["convention"] == "nearest" and best["psnr_mean_db"] == psnr.PSNR_CAP_DB
    assert set(best["psnr_mean_db_by_convention"]) == {f"{c}{r}" for c in psnr.CONVENTIONS for r in ("", "+ffmpeg")}
    assert best["psnr_mean_db_by_convention"]["on_screen"] < psnr.PSNR_CAP_DB


@needs_ffmpeg
def test_each_convention_is_read_as_players_show_chroma_and_as_ffmpeg_hands_it_on(tmp_path):
    """A tool fed by the ffmpeg command sees chroma repeated (and a level dark), a player shows it
    interpolated: an output of either kind scores best against its own reading."""
    clip = _tiny(tmp_path / "c.mp4")
    times = psnr.instants(0, 0.3, 15)
    refs = psnr.decode_conventions(clip, times, fps=15)
    players, ffmpeg = refs["on_screen"], refs["on_screen+ffmpeg"]
    assert players.source_times == ffmpeg.source_times
    assert (np.stack(ffmpeg.frames).astype(float) - np.stack(players.frames)).mean() < -0.3  # a level dark, about
    with av.open(str(clip)) as opened:
        first = next(opened.decode(video=0))
    assert np.array_equal(ffmpeg.frames[0], first.to_ndarray(format="rgb24"))
    for own in ("on_screen", "on_screen+ffmpeg"):
        anim = psnr.Animation(refs[own].frames, [1000 / 15] * 4, [1000 / 15] * 4, (64, 36), "GIF", 0, [])
        assert psnr.score_best(anim, refs, 15, 0.3)["convention"] == own


@needs_ffmpeg
def test_rotation_metadata_is_written_and_honoured(tmp_path):
    clip = _tiny(tmp_path / "r.mp4", size="64x32")
    make_library.set_mp4_rotation(clip, 90)
    assert make_library.probe_clip(clip)["rotation"] == -90  # ffprobe's sign for a quarter turn clockwise
    refs = psnr.decode_conventions(clip, psnr.instants(0, 0.2, 10))
    assert refs["on_screen"].frames[0].shape == (64, 32, 3)  # upright: portrait
    shown = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(clip), "-frames:v", "1", "-f", "rawvideo",
                            "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    assert len(shown) == 64 * 32 * 3  # ffmpeg's autorotate agrees on the shape


def _tiny_library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    clip = replace(next(c for c in PREVIEW_CLIPS if c.name == "pixel_life"), width=96, height=54, duration=1.5,
                   job_seek=0.2, job_duration=0.8, job_fps=10.0)
    make_library.build_previews([clip], lib)
    return lib


@needs_ffmpeg
def test_build_previews_writes_the_index_and_the_manifest(tmp_path):
    lib = _tiny_library(tmp_path)
    entry = json.loads((lib / "library.json").read_text())["clips"]["pixel_life"]
    assert entry["probe"]["width"] == 96 and entry["probe"]["color_space"] == "bt709"
    assert entry["job"] == {"seek": 0.2, "duration": 0.8, "fps": 10.0}
    assert entry["reference_file"] == "pixel_life.mp4" and "flat-graphics" in entry["categories"]
    lines = [json.loads(x) for x in (lib / "previews.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["pixel_life-source-gif", "pixel_life-source-webp", "pixel_life-resized-gif",
                                        "pixel_life-resized-webp"]
    assert (lib / ".gitignore").read_text().splitlines()[-1] == "*"


def test_gifski_absent_is_a_note_not_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GIFSKI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no gifski on PATH
    binary, note = gifski.ensure(tmp_path / "cache", allow_install=False)
    assert binary is None and "not installed" in note
    job = quality_library.harness.Job("j", tmp_path / "in.mp4", "gif", 10, 0, 1)
    run = gifski.run_gifski([job], tmp_path / "out", workers=1, binary=None)
    assert [r["status"] for r in run["results"]] == ["skipped"]
    monkeypatch.setenv("GIFSKI", str(tmp_path / "nothing"))
    assert gifski.ensure(tmp_path / "cache", allow_install=False)[0] is None


@needs_ffmpeg
def test_gifski_runs_when_installed(tmp_path):
    binary, _ = gifski.find()
    if binary is None:
        pytest.skip("gifski 1.7.1 is not installed (python -m bench.quality_library installs it)")
    job = quality_library.harness.Job("g", _tiny(tmp_path / "c.mp4"), "gif", 10, 0.1, 0.5, 48, 28)
    run = gifski.run_gifski([job], tmp_path / "out", workers=1, binary=binary)
    r = run["results"][0]
    assert r["status"] == "success", r
    anim = psnr.decode_animation(Path(r["output"]))
    assert anim.size == (48, 28) and len(anim.frames) == 5 and anim.loop == 0


@needs_ffmpeg
def test_comparison_end_to_end_without_gifski(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GIFSKI", raising=False)
    monkeypatch.setattr(gifski, "CACHE", tmp_path / "no-cache")
    real_which = shutil.which  # gifski.shutil is the shutil module: patching it patches every caller
    monkeypatch.setattr(gifski.shutil, "which", lambda name: None if name == "gifski" else real_which(name))
    lib = _tiny_library(tmp_path)
    results = tmp_path / "results"
    code = quality_library.main(["--library", str(lib), "--jobs", "1", "--sides", "engine-gif,gifski,ffmpeg-gif,floor",
                                 "--no-install", "--results-dir", str(results), "--name", "t"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "note: " in captured.err and "gifski" in captured.err
    rep = json.loads((results / "t.json").read_text())
    for kind in ("source", "resized"):
        sides = rep["kinds"][kind]["clips"]["pixel_life"]["sides"]
        assert sides["gifski"]["status"] == "skipped"
        assert 15 < sides["ffmpeg-gif"]["psnr_mean_db"] <= 100
        assert 15 < sides["engine-gif"]["psnr_mean_db"] <= 100
        assert sides["floor"]["latency_s"] > 0
    assert (rep["kinds"]["resized"]["clips"]["pixel_life"]["sides"]["ffmpeg-gif"]["width"],
            rep["kinds"]["resized"]["clips"]["pixel_life"]["sides"]["ffmpeg-gif"]["height"]) == (480, 270)
    sheet = results / "contact" / "pixel_life.png"
    assert sheet.exists() and sheet.stat().st_size < quality_library.CONTACT_MAX_BYTES
    md = (results / "t.md").read_text()
    assert "| pixel_life |" in md and "## source size" in md and "## resized size" in md


@needs_ffmpeg
def test_repeat_runs_the_sides_in_turn_and_keeps_each_sides_fastest_batch(tmp_path, monkeypatch):
    """--repeat 3: rounds of every side, the order reversed every other round; each side's
    table entry is its fastest batch (the fake batches' walls are chosen, nothing is timed)."""
    walls = {"engine-gif": [0.9, 0.5, 0.7], "floor": [0.3, 0.4, 0.2]}
    order = []

    def fake_side(side, jobs, out_dir, *, workers, gifski_binary):
        if "warmup" in out_dir.parts:
            wall = 9.0
        else:
            order.append(side)
            wall = walls[side][sum(1 for s in order if s == side) - 1]
        return {"wall_s": wall, "results": [{"id": job.id, "status": "success", "timings": {"total": wall}}
                                            for job in jobs]}

    lib = _tiny_library(tmp_path)
    monkeypatch.setattr(quality_library, "run_side", fake_side)
    rep = quality_library.run(lib, jobs=1, kinds=["resized"], sides=["engine-gif", "floor"], repeat=3)

    assert order == ["engine-gif", "floor", "floor", "engine-gif", "engine-gif", "floor"]
    batches = rep["kinds"]["resized"]["batches"]
    assert batches["engine-gif"]["wall_s"] == 0.5 and batches["floor"]["wall_s"] == 0.2
    assert rep["kinds"]["resized"]["clips"]["pixel_life"]["sides"]["engine-gif"]["latency_s"] == 0.5
    assert rep["config"]["repeat"] == 3
    assert "fastest of 3 runs" in quality_library.render_markdown(rep)


@needs_ffmpeg
def test_the_engine_runs_once_more_under_the_other_tools_bytes_for_each_job(tmp_path, monkeypatch):
    """With engine-gif and gifski, one more engine batch after the rounds: each GIF job with
    max_bytes = gifski's bytes for that job (a job gifski failed gets none), run once; likewise
    the WebP jobs at ffmpeg's WebP bytes."""
    batches = []

    def fake_side(side, jobs, out_dir, *, workers, gifski_binary):
        if "warmup" not in out_dir.parts:
            batches.append((side, out_dir.name, jobs))
        return {"wall_s": 1.0, "results": [
            {"id": job.id, "status": "success", "timings": {"total": 1.0},
             "bytes": 70_000 + len(job.id) if side in ("gifski", "ffmpeg-webp") else 90_000,
             "notes": ["max_bytes 70000: 90000 bytes as asked; gave up hold slack 1 (from 0.35) -> 69000 bytes"]}
            for job in jobs]}

    lib = _tiny_library(tmp_path)
    monkeypatch.setattr(quality_library, "run_side", fake_side)
    rep = quality_library.run(lib, jobs=1, kinds=["resized"], sides=["engine-gif", "gifski", "engine-webp",
                                                                    "ffmpeg-webp"], repeat=2)

    rounds = ["engine-gif", "gifski", "engine-webp", "ffmpeg-webp"]
    assert [(side, name) for side, name, _ in batches] == (
        [(side, f"{side}-0") for side in rounds] + [(side, f"{side}-1") for side in reversed(rounds)]
        + [("engine-gif", quality_library.AT_GIFSKI), ("engine-webp", quality_library.AT_FFMPEG_WEBP)])
    (gif,), (webp,) = batches[-2][2], batches[-1][2]
    assert gif.format == "gif" and gif.engine_options == {"max_bytes": 70_000 + len("pixel_life-resized-gif")}
    assert webp.format == "webp" and webp.engine_options == {"max_bytes": 70_000 + len("pixel_life-resized-webp")}
    entry = rep["kinds"]["resized"]["clips"]["pixel_life"]["sides"][quality_library.AT_GIFSKI]
    assert entry["status"] == "success" and entry["bytes"] == 90_000
    assert quality_library.AT_GIFSKI not in rep["sides"]  # its own table, not a column of the main one
    assert "WebP at ffmpeg's bytes (resized size)" in quality_library.render_markdown(rep)


def test_a_tool_whose_image_is_bigger_than_the_engines_runs_again_at_the_engines_bytes(tmp_path):
    """gifski's modelled bytes are 1,000 x its quality (90,000 at its default 90) against the
    engine's 50,000: its quality range is halved five times (45 fits, 68, 57 and 51 miss, 48
    fits) and the best fit kept with its quality; where even quality 1 is over (another
    100,000 bytes) the clip is unreached, with the smallest size tried."""
    asked = []

    def fake_side(side, jobs, out_dir, *, workers, gifski_binary):
        assert side == "gifski" and out_dir.parent == tmp_path
        asked.extend((job.id, job.quality) for job in jobs)
        return {"wall_s": 2.0, "results": [
            {"id": job.id, "status": "success", "output": str(out_dir / f"{job.id}.gif"), "timings": {"total": 1.0},
             "bytes": 1000 * job.quality + (100_000 if job.id.startswith("grain") else 0)} for job in jobs]}

    jobs = {clip: quality_library.harness.Job(id=f"{clip}-gif", input=tmp_path / "x.mp4", format="gif", fps=10.0,
                                              seek=0.0, duration=1.0) for clip in ("bars", "grain")}
    original = quality_library.run_side
    quality_library.run_side = fake_side
    try:
        record = quality_library.anchor_at_bytes("gifski", jobs, {"bars": 50_000, "grain": 50_000}, 90, tmp_path,
                                                 workers=1, gifski_binary=None)
    finally:
        quality_library.run_side = original
    assert [q for job_id, q in asked if job_id.startswith("bars")] == [45, 68, 57, 51, 48]
    bars, grain = record["results"]
    assert (bars["id"], bars["status"], bars["quality"], bars["bytes"]) == ("bars-gif", "success", 48, 48_000)
    assert bars["output"].endswith("bars-gif-q48.gif")
    assert (grain["id"], grain["status"], grain["bytes"]) == ("grain-gif", "unreached", min(
        1000 * q + 100_000 for job_id, q in asked if job_id.startswith("grain")))
    assert record["wall_s"] == 2.0 * 5


def test_equal_bytes_rows_take_whichever_side_had_to_come_down():
    """Clip a: the engine's GIF is bigger, so the engine under gifski's bytes counts; clip b:
    gifski's is bigger, so gifski at the engine's bytes counts; clip c: gifski never got down
    to the engine's bytes, so there is no comparison."""
    note = "max_bytes 1400000: 2800000 bytes as asked; gave up hold slack 1 (from 0.35) -> 1350000 bytes"
    kind = {"clips": {
        "a": {"hdr": None, "sides": {"gifski": _side(4.0, 41.0, 1_400_000), "engine-gif": _side(0.5, 44.0, 2_800_000),
                                     quality_library.AT_GIFSKI: {**_side(1.0, 41.7, 1_350_000), "status": "success",
                                                                 "notes": [note]}}},
        "b": {"hdr": None, "sides": {"gifski": _side(4.0, 44.3, 1_060_000), "engine-gif": _side(0.4, 44.0, 738_000),
                                     quality_library.GIFSKI_AT_ENGINE: {**_side(3.0, 42.9, 730_000),
                                                                        "status": "success", "quality": 71}}},
        "c": {"hdr": None, "sides": {"gifski": _side(4.0, 40.0, 900_000), "engine-gif": _side(0.4, 39.0, 200_000),
                                     quality_library.GIFSKI_AT_ENGINE: {"status": "unreached", "bytes": 300_000,
                                                                        "quality": 1}}}}}
    rows = quality_library.equal_bytes_rows(kind, quality_library.EQUAL_BYTES[0])
    assert rows[0] == ["clip", "how", "engine GIF dB", "bytes", "gifski dB", "bytes", "dB −gifski"]
    assert rows[1] == ["a", "engine under gifski's bytes", "41.70", "1.35 MB", "41.00", "1.40 MB", "+0.70"]
    assert rows[2] == ["b", "gifski at quality 71", "44.00", "738 KB", "42.90", "730 KB", "+1.10"]
    assert rows[3][:2] == ["c", "gifski over the engine's bytes at every quality tried"] and rows[3][-1] == "–"
    assert rows[4][1] == "2 of 2 clips >= +0.5 dB, 0 below -0.5"
    assert quality_library.equal_bytes_rows({"clips": {"x": {"hdr": None, "sides": {}}}},
                                            quality_library.EQUAL_BYTES[1]) == []


def test_gif_at_gifskis_bytes_rows_say_what_was_given_up_and_count_the_clips():
    note = "max_bytes 1400000: 2800000 bytes as asked; gave up hold slack 1 (from 0.35) -> 1350000 bytes (9 encodes)"
    kind = {"clips": {
        "a": {"hdr": None, "sides": {"gifski": _side(4.0, 41.0, 1_400_000), "engine-gif": _side(0.5, 44.0, 2_800_000),
                                     quality_library.AT_GIFSKI: {**_side(1.0, 41.2, 1_350_000), "status": "success",
                                                                 "notes": [note]}}},
        "b": {"hdr": "pq", "sides": {"gifski": _side(4.0, 20.0, 900_000), "engine-gif": _side(0.5, 24.0, 800_000),
                                     quality_library.AT_GIFSKI: {**_side(0.5, 24.0, 800_000), "status": "success",
                                                                 "notes": []}}},
        "c": {"hdr": None, "sides": {"gifski": {"status": "failed"}, "engine-gif": _side(0.5, 30.0, 100)}}}}
    rows = quality_library.matched_rows(kind, quality_library.AT_GIFSKI)
    assert all(len(r) == len(rows[0]) for r in rows) and len(rows) == 5
    assert rows[1] == ["a", "41.00", "1.40 MB", "44.00", "2.80 MB", "41.20", "1.35 MB", "hold slack 1 (from 0.35)", "+0.20"]
    assert rows[2][0] == "b (PQ)" and rows[2][-2:] == ["nothing", "+4.00"]
    assert rows[3][-1] == "–"
    assert rows[4][-2] == "1 of 2 clips >= +0.5 dB, 0 below -0.5"
    assert rows[0][1] == "gifski GIF dB" and rows[0][-1] == "dB −gifski"
    assert quality_library.matched_rows({"clips": {"c": kind["clips"]["c"]}}, quality_library.AT_GIFSKI) == []
    assert quality_library.matched_rows(kind, quality_library.AT_FFMPEG_WEBP) == []  # that batch did not run


def _side(s, db, b):
    return {"latency_s": s, "psnr_mean_db": db, "bytes": b}


def test_per_clip_table_rows_and_means():
    sides = ["engine-gif", "gifski", "floor", "engine-webp", "ffmpeg-webp"]
    kind = {"batches": {"engine-gif": {"s_per_clip": 0.5}, "gifski": {"s_per_clip": 3.0}, "floor": {"s_per_clip": 0.1},
                        "engine-webp": {"s_per_clip": 0.4}, "ffmpeg-webp": {"s_per_clip": 0.6}},
            "clips": {"a": {"hdr": None, "sides": {"engine-gif": _side(0.6, 40.0, 1_500_000),
                                                   "gifski": _side(3.2, 41.0, 1_400_000), "floor": _side(0.1, None, None),
                                                   "engine-webp": _side(0.5, 35.0, 350_000),
                                                   "ffmpeg-webp": _side(0.7, 33.0, 300_000)}},
                      "b": {"hdr": "pq", "sides": {"engine-gif": _side(0.8, 30.0, 500_000),
                                                   "gifski": {"status": "failed"}, "floor": _side(0.2, None, None),
                                                   "engine-webp": _side(0.4, 31.0, 100_000),
                                                   "ffmpeg-webp": _side(0.5, 30.0, 90_000)}}}}
    rows = quality_library.table_rows(kind, sides)
    header = rows[0]
    assert header[:4] == ["clip", "engine GIF s", "engine GIF dB", "engine GIF bytes"]
    assert "floor s" in header and "floor dB" not in header
    assert all(len(r) == len(header) for r in rows)
    a, b = rows[1], rows[2]
    assert a[0] == "a" and a[1:4] == ["0.60", "40.00", "1.50 MB"] and a[-2:] == ["-1.00", "+2.00"]
    assert b[0] == "b (PQ)" and b[4:7] == ["–", "–", "–"] and b[-2] == "–"
    batch, latency, sdr = rows[3], rows[4], rows[5]
    assert "batch wall" in batch[0] and batch[1] == "0.50" and batch[2] == "35.00" and batch[3] == "1.00 MB"
    assert latency[1] == "0.70" and "1 SDR" in sdr[0] and sdr[2] == "40.00"
    table = quality_library.markdown_table(rows)
    assert table.count("\n") == len(rows) and "| b (PQ) |" in table


def test_stage_rows_say_where_each_engine_jobs_time_goes_against_the_floor():
    def engine(decode, kernels, encode, total):
        return {"latency_s": total, "timings": {"decode": decode, "kernels": kernels, "encode": encode, "total": total}}

    kind = {"clips": {"a": {"hdr": None, "sides": {"floor": _side(0.2, None, None),
                                                   "engine-gif": engine(0.2, 0.5, 0.1, 0.8),
                                                   "engine-webp": engine(0.2, 0.05, 0.15, 0.4)}},
                      "b": {"hdr": "hlg", "sides": {"floor": _side(0.4, None, None),
                                                    "engine-gif": {"status": "failed"},
                                                    "engine-webp": engine(0.3, 0.2, 0.1, 0.6)}}}}
    rows = quality_library.stage_rows(kind, ["engine-gif", "gifski", "floor", "engine-webp"])
    header = rows[0]
    assert header[:2] == ["clip", "floor s"] and header[2:7] == [
        "engine GIF decode", "engine GIF kernels", "engine GIF encode", "engine GIF s", "engine GIF ÷ floor"]
    assert all(len(r) == len(header) for r in rows) and len(rows) == 4
    assert rows[1] == ["a", "0.20", "0.20", "0.50", "0.10", "0.80", "4.00", "0.20", "0.05", "0.15", "0.40", "2.00"]
    assert rows[2][0] == "b (HLG)" and rows[2][2:7] == ["–"] * 5 and rows[2][-1] == "1.50"
    mean = rows[3]
    assert mean[0] == "mean, 2 clips" and mean[1] == "0.30" and mean[-2] == "0.50"
    assert mean[-1] == "1.67"  # the mean total over the mean floor, not the mean of the ratios
    assert quality_library.stage_rows(kind, ["gifski", "floor"]) == []


@needs_ffmpeg
def test_engine_bench_takes_gifski_as_a_baseline(tmp_path):
    if gifski.find()[0] is None:
        pytest.skip("gifski 1.7.1 is not installed (python -m bench.quality_library installs it)")
    from click.testing import CliRunner

    from animated_previews.cli.main import main

    clip = _tiny(tmp_path / "c.mp4", seconds=2.0, size="96x54")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"one-{fmt}", "input": clip.name, "format": fmt, "fps": 5,
                                            "width": 64, "seek": 0.5, "duration": 1}) + "\n" for fmt in ("gif", "webp")))
    res = CliRunner().invoke(main, ["bench", "--manifest", str(manifest), "--devices", "none", "--baseline", "gifski",
                                    "--repeat", "1", "--no-plot", "--name", "g", "--results-dir", str(tmp_path)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    g = json.loads((tmp_path / "g.json").read_text())["paths"]["gifski"]
    assert g["status"] == "ok" and g["clips"] == 1  # the GIF job only
    assert g["quality"]["scored"] == 1 and 15 < g["quality"]["psnr_mean_db"] <= 100
    assert g["quality"]["jobs"][0]["flags"] == []  # 64 wide, aspect kept, 5 frames, forever


@needs_ffmpeg
def test_job_time_runs_a_library_job_and_reports_its_stages(tmp_path, capsys, monkeypatch):
    from bench import job_time

    lib = _tiny_library(tmp_path)
    assert job_time.main(["pixel_life", "gif", "resized", "--repeat", "2", "--library", str(lib)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("pixel_life-resized-gif on pyav: best ") and " of 2 " in line
    assert "decode " in line and "kernels " in line and "encode " in line and line.endswith(" bytes")
    assert job_time.main(["pixel_life", "gif", "resized", "--repeat", "1", "--library", str(lib),
                          "--profile", "--profile-sort", "cumulative"]) == 0
    listing = capsys.readouterr().out
    assert "Ordered by: cumulative time" in listing and "run_job" in listing  # the stages, with what they call
    from animated_previews.kernels import compiled
    monkeypatch.setattr(compiled, "ENABLED", True)
    seen = []
    timed = job_time.time_job
    monkeypatch.setattr(job_time, "time_job", lambda *args: (seen.append(compiled.ENABLED), timed(*args))[1])
    assert job_time.main(["pixel_life", "gif", "resized", "--repeat", "1", "--library", str(lib), "--torch-kernels"]) == 0
    assert seen == [False] and compiled.ENABLED is True  # the torch kernels while timed (the A/B's other side), then back
    assert capsys.readouterr().out.strip().endswith(line.rsplit("; ", 1)[1])
    spec = job_time.job_spec(lib, "pixel_life", "webp", "resized")
    assert (spec.width, spec.height, spec.seek, spec.fps) == (480, 270, 0.2, 10.0)
    with pytest.raises(SystemExit, match="no clip 'nope'"):
        job_time.job_spec(lib, "nope", "gif", "source")


@needs_ffmpeg
def test_webp_methods_compares_each_method_within_method_1s_bytes(tmp_path, capsys):
    from bench import webp_methods

    lib = _tiny_library(tmp_path)
    assert webp_methods.main(["--library", str(lib), "--results-dir", str(tmp_path / "r"), "--name", "m"]) == 0
    report = json.loads((tmp_path / "r" / "m.json").read_text())
    assert [job["id"] for job in report["jobs"]] == ["pixel_life-source-webp", "pixel_life-resized-webp"]
    for job in report["jobs"]:
        base = job["method_1"]
        assert (base["quality"], base["method"]) == (45, 1)
        for method, found in job["methods"].items():
            assert found["method"] == int(method) and found["bytes"] <= base["bytes"]  # at most method 1's bytes
        assert (job["chosen"]["quality"], job["chosen"]["method"]) in ((45, 1), (60, 2))
        assert job["spread"] >= 0
    table = (tmp_path / "r" / "m.md").read_text()
    assert "| pixel_life-resized-webp |" in table and "Method 2 at method 1's bytes" in table
