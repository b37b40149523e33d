"""``seek: "auto"``: the request (manifests, TemplateConfig, stored templates), the judging kernel,
and the cheap pass on a generated clip with a black lead-in and fade, a lively section, a still
section and end credits (white lines scrolling up over black)."""

from __future__ import annotations

import sqlite3
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch

import clipmaker
from animated_previews.engine import Service
from animated_previews.engine.autostart import MAX_SAMPLES, choose_start, sample_video
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import probe
from animated_previews.engine.spec import parse_job
from animated_previews.engine.store.batch_jobs import effective_config
from animated_previews.engine.store.schema import MIGRATIONS
from animated_previews.engine.vod.worker import job_spec
from animated_previews.kernels.liveliness import least_bad_window, liveliest_window, score_samples

ROOT = Path("/videos")
FPS, W, H = 25, 160, 120
SECTIONS = {"black": (0.0, 2.0), "fade": (2.0, 3.0), "lively": (3.0, 9.0), "still": (9.0, 14.0),
            "credits": (14.0, 20.0)}


def line(**fields) -> dict:
    return {"input": "a.mp4", "format": "gif", "fps": 5, "duration": 2, **fields}


def refused(fields: dict) -> EngineError:
    with pytest.raises(EngineError) as caught:
        parse_job(fields, default_id="j", input_root=ROOT)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    return caught.value


# -- the request -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["auto", "AUTO", " Auto "])
def test_seek_auto_is_a_flag_and_seek_stays_zero_until_chosen(value):
    job = parse_job(line(seek=value), default_id="j", input_root=ROOT)
    assert (job.seek, job.seek_auto, job.duration) == (0.0, True, 2.0)
    flat = parse_job({"input": "a.mp4", "TemplateConfig": {"Format": "gif", "Fps": 5,
                                                           "TimeSpan": {"Seek": value, "Duration": "2"}}},
                     default_id="j", input_root=ROOT)
    assert flat.seek_auto and flat.seek == 0.0


def test_seek_auto_needs_duration_not_trim_end():
    err = refused({"input": "a.mp4", "format": "gif", "fps": 5, "seek": "auto", "trim_end": 1})
    assert 'seek "auto"' in err.message and "needs duration, not trim_end" in err.message
    err = refused({"input": "a.mp4", "format": "gif", "fps": 5, "seek": "auto"})
    assert 'seek "auto" needs duration' in err.message
    nested = refused({"input": "a.mp4", "TemplateConfig": {"Container": {"Format": "gif"}, "Video": {"Fps": 5},
                                                           "Clip": {"TimeSpan": {"Seek": "auto", "End": 1}}}})
    assert 'TemplateConfig.Clip.TimeSpan.Seek "auto"' in nested.message


def test_a_word_other_than_auto_is_still_refused_as_before():
    with pytest.raises(EngineError) as caught:
        parse_job(line(seek="later"), default_id="j", input_root=ROOT)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER and "seek must be a number" in caught.value.message


def test_effective_config_names_seek_auto_only_when_asked():
    plain = parse_job(line(seek=0), default_id="j", input_root=ROOT)
    auto = parse_job(line(seek="auto"), default_id="j", input_root=ROOT)
    assert "seek_auto" not in effective_config(plain)  # old lines keep their batch keys
    assert effective_config(auto) == {**effective_config(plain), "seek_auto": True}


def test_templates_store_seek_auto_and_answer_auto(tmp_path):
    with Service(store=tmp_path / "s.db") as engine:
        auto = engine.add_template("lively-preview", format="gif", fps=5, seek="auto", duration=2)
        plain = engine.add_template("plain-preview", format="gif", fps=5, seek=1, duration=2)
    with Service(store=tmp_path / "s.db") as engine:  # read back from the file
        config = engine.template_info(auto.id)["TemplateConfig"]
        assert config["TimeSpan"] == {"Seek": "auto", "Duration": "2"}
        assert engine.template(auto.id).job_fields()["seek"] == "auto"
        assert engine.template_info(plain.id)["TemplateConfig"]["TimeSpan"]["Seek"] == "1"
        again = engine.add_template_body({"Name": "sent-back", "TemplateConfig": config})
        assert again.seek_auto
        assert not engine.update_template(auto.id, seek=4).seek_auto
        with pytest.raises(EngineError, match="needs duration, not trim_end"):
            engine.update_template(again.id, trim_end=1)
    snapshot = {"format": "gif", "fps": 5, "seek": "auto", "duration": 2, "trim_end": None, "width": None,
                "height": None, "set_as_cover": False}
    queued = job_spec(SimpleNamespace(id="j", spec=snapshot), Path("/v.mp4"), Path("/o.gif"))
    assert (queued.seek, queued.seek_auto) == (0.0, True)


def test_a_store_from_before_seek_auto_is_migrated_and_its_templates_keep_their_seek(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in MIGRATIONS:
        if number <= 7:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
    conn.execute("PRAGMA user_version = 7")
    conn.execute("INSERT INTO templates (id, name, format, fps, width, height, seek, duration, trim_end, set_as_cover,"
                 " created, modified) VALUES ('t', 'old-template', 'gif', 5, NULL, NULL, 3, 1, NULL, 0, 0, 0)")
    conn.close()
    with Service(store=path) as engine:
        old = engine.template("old-template")
        assert (old.seek, old.seek_auto) == (3.0, False)
        assert engine.template_info(old)["TemplateConfig"]["TimeSpan"]["Seek"] == "3"
        assert engine.update_template(old.id, seek="auto").seek_auto


# -- the kernel --------------------------------------------------------------------------------------

def _frames(*pictures: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(pictures).astype(np.uint8))


def test_black_credits_still_and_lively_samples_are_told_apart():
    rng = np.random.default_rng(0)
    black = np.zeros((48, 64, 3))
    credits = black.copy()
    credits[10:12, 20:44] = 255
    credits_after = black.copy()
    credits_after[8:10, 20:44] = 255
    still = np.tile(np.linspace(0, 255, 64)[None, :, None], (48, 1, 3))
    lively, lively_after = rng.integers(0, 256, (48, 64, 3)), rng.integers(0, 256, (48, 64, 3))
    scores = score_samples(_frames(black, credits, still, still, lively),
                           _frames(black, credits_after, still, still, lively_after), [0, 1, 2, 3, 4])
    assert [s.verdict for s in scores] == ["black", "credits", "still", "still", "ok"]


def test_the_steps_of_a_fade_in_beside_black_are_fading_too():
    rng = np.random.default_rng(1)
    gains = [0.0, 0.28, 0.47, 0.63, 0.8, 0.8]  # mean luma about 0, 35, 60, 80, 100, 100
    shots = [rng.integers(0, 256, (48, 64, 3)) * g for g in gains]
    after = [rng.integers(0, 256, (48, 64, 3)) * g for g in gains]
    scores = score_samples(_frames(*shots), _frames(*after), list(range(6)))
    assert [s.verdict for s in scores] == ["black", "fade", "fade", "fade", "ok", "ok"]


def test_the_window_avoids_bad_samples_and_prefers_motion():
    def sample(t, verdict, lively):
        return SimpleNamespace(time=float(t), verdict=verdict, liveliness=float(lively))
    scores = [sample(0, "black", 0), sample(1, "ok", 1), sample(2, "ok", 5), sample(3, "ok", 5),
              sample(4, "ok", 1), sample(5, "credits", 0)]
    window = liveliest_window(scores, 6.0, 1.5)
    assert window is not None and window.start == 2.0
    assert liveliest_window(scores, 6.0, 5.0) is None  # no 5 s span avoids both the black and the credits
    assert liveliest_window(scores, 6.0, 7.0) is None  # longer than the video


def test_when_no_window_is_clean_the_one_with_the_least_bad_time_is_taken():
    def sample(t, verdict, lively):
        return SimpleNamespace(time=float(t), verdict=verdict, liveliness=float(lively))
    # a 2 s burst between black stretches: a 3 s span cannot avoid black, but should cover the burst
    scores = [sample(t, "black", 0) for t in range(5)] + [sample(5, "ok", 4), sample(6, "ok", 4)] + \
             [sample(t, "black", 0) for t in range(7, 12)]
    assert liveliest_window(scores, 12.0, 3.0) is None
    window = least_bad_window(scores, 12.0, 3.0)
    assert window is not None and window.start == 5.0 and abs(window.bad_seconds - 1.5) < 1e-6  # cells reach 6.5 s
    assert least_bad_window([sample(t, "black", 0) for t in range(5)], 5.0, 2.0) is None  # nothing good


# -- the cheap pass on a clip ------------------------------------------------------------------------

def _picture(t: float) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    if t < SECTIONS["black"][1]:
        return np.zeros((H, W, 3), np.uint8)
    if t < SECTIONS["still"][0]:  # a fade into a lively section: moving stripes and a bouncing square
        gain = min(1.0, (t - 2.0) / 1.0)
        frame = np.stack([(x * 3 + t * 90) % 256, (y * 4 - t * 70) % 256, (x + y + t * 50) % 256], axis=-1)
        cx, cy = int((np.sin(t * 3) + 1) * (W - 30) / 2), int((np.cos(t * 2) + 1) * (H - 30) / 2)
        frame[cy:cy + 30, cx:cx + 30] = 255
        return (frame * gain).astype(np.uint8)
    if t < SECTIONS["credits"][0]:  # a still picture
        return np.stack([x * 255 // W, y * 255 // H, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    frame = np.zeros((H, W, 3), np.uint8)  # credits: rows of white "words" scrolling up
    offset = int((t - 14.0) * 20)
    for row in range(0, 400, 16):
        top = row - offset + H
        if 0 <= top < H - 3:
            for word in range(40, 120, 20):
                frame[top:top + 3, word:word + 14] = 235
    return frame


@pytest.fixture(scope="module")
def staged_clip(tmp_path_factory) -> Path:
    """A 20 s 160x120 H.264 clip: black 0-2 s, a fade in 2-3 s, lively 3-9 s, still 9-14 s, credits 14-20 s."""
    encoder = clipmaker.encoder_for("h264")
    if encoder is None:
        pytest.skip("this PyAV build cannot encode h264")
    path = tmp_path_factory.mktemp("autostart") / "staged.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if encoder == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "20", "x264-params": "keyint=25:min-keyint=25:scenecut=0"}
        for k in range(20 * FPS):
            frame = av.VideoFrame.from_ndarray(_picture(k / FPS), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_the_chosen_start_is_in_the_lively_section_and_the_note_says_why(staged_clip):
    chosen = choose_start(probe(staged_clip), 2.0)
    lo, hi = SECTIONS["lively"]
    assert lo <= chosen.seek <= hi - 2.0, chosen.note
    assert chosen.note.startswith(f"seek auto: {chosen.seek:.1f}".removesuffix(".0")), chosen.note
    assert "liveliest 2 s" in chosen.note and "black 0-" in chosen.note and "credits from 1" in chosen.note
    assert "still" in chosen.note
    assert len(chosen.samples) <= MAX_SAMPLES
    verdicts = {s.verdict for s in chosen.samples if SECTIONS["credits"][0] + 0.5 < s.time}
    assert verdicts == {"credits"}, [(s.time, s.verdict) for s in chosen.samples]


def test_a_span_longer_than_the_video_starts_at_zero(staged_clip):
    longer = choose_start(probe(staged_clip), 25.0)
    assert longer.seek == 0.0 and "is not longer than the 25 s asked" in longer.note


def test_a_span_longer_than_any_clean_stretch_starts_where_it_shows_least_of_the_bad(staged_clip):
    wide = choose_start(probe(staged_clip), 8.0)  # the lively section is 6 s long: no 8 s span avoids everything
    lo = SECTIONS["lively"][0]
    assert lo - 0.5 <= wide.seek <= lo + 0.5, wide.note  # at the lively section, not at 0 in the black
    assert "no 8 s span avoids every bad sample" in wide.note and "the least, about" in wide.note


def test_samples_keep_their_own_times_between_distant_key_frames(tmp_path):
    """Key frames 10 s apart: the samples are spread through each key frame's stretch, not
    snapped to the key frames (whose cells would then be 10 s wide guesses)."""
    path = tmp_path / "long_gop.mp4"
    encoder = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": str(10 * FPS), "keyint_min": str(10 * FPS), "sc_threshold": "0"} \
            if encoder == "mpeg4" else {"preset": "ultrafast", "x264-params": "keyint=250:min-keyint=250:scenecut=0"}
        for k in range(20 * FPS):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (k * 5) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    times, shots, _ = sample_video(probe(path))
    assert len(times) >= 20 and len(shots) == len(times)
    assert sum(1 for t in times if t % 10 > 1.0) >= 15, times  # most samples lie between the key frames
    assert max(b - a for a, b in zip(times, times[1:])) < 2.0, times


needs_ffmpeg_x264 = pytest.mark.skipif(not clipmaker.ffmpeg_can("testsrc2", "libx264"),
                                       reason="needs the ffmpeg command with testsrc2 and libx264")


@needs_ffmpeg_x264
@pytest.mark.parametrize("x264", [("-g", "50"), ("-g", "50", "-bf", "0"), ()],
                         ids=["key-every-2s-bframes", "key-every-2s-no-bframes", "one-key-frame"])
def test_an_mpeg_ts_file_is_sampled_as_densely_as_its_mp4_copy_at_the_same_times(tmp_path, x264):
    """MPEG-TS has no index: FFmpeg's seek lands on any packet, and decoding from it skips to the
    next key frame, so the sweep's TS files got one sample a key frame (9 of 48 at 20 s; none of a
    3 s clip with one key frame). Now as many as the MP4 copy, each at its own time counted from
    the container's start (1.4 s into the TS's clock, later still with B-frames)."""
    ts, mp4 = clipmaker.ts_and_mp4_copy(tmp_path, "clip", 6, *x264)
    media = probe(ts)
    assert media.start_time >= 1.4 and media.container == "mpegts"
    ts_times, ts_shots, ts_after = sample_video(media)
    mp4_times, mp4_shots, mp4_after = sample_video(probe(mp4))
    assert len(mp4_times) == 24 and len(ts_times) == len(mp4_times), (ts_times, mp4_times)
    assert np.allclose(ts_times, mp4_times, atol=1e-3), (ts_times, mp4_times)
    assert np.array_equal(ts_shots, mp4_shots) and np.array_equal(ts_after, mp4_after)  # the very frames


@needs_ffmpeg_x264
def test_a_short_mpeg_ts_clip_with_one_key_frame_starts_where_its_mp4_copy_does(tmp_path):
    """The sweep's case: 3 s of TS, one key frame, a 1 s span: was 'too few samples', started at 0."""
    ts, mp4 = clipmaker.ts_and_mp4_copy(tmp_path, "plain3s", 3)
    from_ts, from_mp4 = choose_start(probe(ts), 1.0), choose_start(probe(mp4), 1.0)
    assert "liveliest 1 s of 12 samples" in from_ts.note, from_ts.note
    assert from_ts.seek == pytest.approx(from_mp4.seek, abs=1e-3) and from_ts.seek > 0, (from_ts.note, from_mp4.note)


def test_a_job_with_seek_auto_starts_there_and_says_so(tmp_path, staged_clip):
    spec = parse_job({"id": "auto", "input": str(staged_clip), "format": "gif", "fps": 5, "width": 80,
                      "seek": "auto", "duration": 2}, default_id="j", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert result.ok, result.error_message
    note = next(n for n in result.notes if n.startswith("seek auto: "))
    start = float(note.split()[2])
    assert SECTIONS["lively"][0] <= start <= SECTIONS["lively"][1] - 2.0
    assert "autostart" in result.timings and result.frames == 10


def test_engine_template_add_takes_seek_auto_and_a_line_naming_it_chooses_its_start(tmp_path):
    from click.testing import CliRunner

    from animated_previews.cli.main import main

    store = tmp_path / "s.db"
    added = CliRunner().invoke(main, ["template", "add", "--store", str(store), "--name", "lively-gif",
                                      "--format", "gif", "--fps", "5", "--seek", "auto", "--duration", "2"])
    assert added.exit_code == 0, added.output
    refused_trim = CliRunner().invoke(main, ["template", "add", "--store", str(store), "--name", "trim-gif",
                                             "--format", "gif", "--fps", "5", "--seek", "auto", "--trim-end", "1"])
    assert refused_trim.exit_code == 1 and "needs duration, not trim_end" in refused_trim.output
    with Service(store=store) as service:
        fields = service.template("lively-gif").job_fields()
    job = parse_job({"input": "a.mp4", "template": "lively-gif"}, default_id="j", input_root=ROOT,
                    templates=lambda name: fields)
    assert (job.seek, job.seek_auto, job.duration) == (0.0, True, 2.0)
    own = parse_job({"input": "a.mp4", "template": "lively-gif", "seek": 5}, default_id="j", input_root=ROOT,
                    templates=lambda name: fields)
    assert (own.seek, own.seek_auto) == (5.0, False)  # the line's own seek wins


def test_the_start_a_seek_auto_job_reports_makes_the_same_preview_when_asked_for(tmp_path):
    """``start`` is the second the clip starts at. ``seek: "auto"`` starts on a frame's own time,
    which at 29.97 fps has more decimals than four: rounded to 1.8685 s (frame 56 is at 1.8685352 s)
    it named the instant before frame 56, and a job asking for it showed frame 55 first (found
    by a sweep of broadcast files). Now ``start``, asked for, gives the same image byte for byte."""
    source = clipmaker.make_clip(tmp_path / "ntsc.mp4", fps=Fraction(30000, 1001), frames=150, width=160, height=120,
                                 gop=15)
    fields = {"input": str(source), "format": "gif", "fps": 10, "duration": 1.0}
    chosen = run_job(parse_job({"id": "auto", "seek": "auto", **fields}, default_id="j", input_root=tmp_path),
                     tmp_path / "a", PyAVDecoder())
    assert chosen.ok and chosen.start > 0, (chosen.error_message, chosen.notes)
    assert abs(chosen.start * 30000 / 1001 - round(chosen.start * 30000 / 1001)) < 1e-3  # on a frame's time
    again = run_job(parse_job({"id": "auto", "seek": chosen.start, **fields}, default_id="j", input_root=tmp_path),
                    tmp_path / "b", PyAVDecoder())
    assert again.ok and again.start == chosen.start
    assert Path(again.output).read_bytes() == Path(chosen.output).read_bytes()
