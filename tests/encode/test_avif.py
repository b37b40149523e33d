"""Animated AVIF (``format: avif``): the writer, its table entry, and jobs whose files Pillow,
ffprobe and headless Chromium read back as asked: size, frame count, per-frame durations summing
to the requested duration, looping forever."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import clients
from animated_previews.engine import Service, load_manifest, run_batch
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.encode import IndexedFrames, RGBFrames, get_format
from animated_previews.engine.encode.avif import encode_avif
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import probe
from animated_previews.engine.spec import parse_job
from animated_previews.engine.timeline import plan_timeline


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    return 100.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def moving_square(count: int = 8, h: int = 97, w: int = 161) -> np.ndarray:
    """Odd sizes on purpose: 4:4:4 has no even-size rule, and neither may the writer."""
    ys, xs = np.mgrid[0:h, 0:w]
    background = np.stack([xs * 255 // w, ys * 255 // h, (xs + ys) * 255 // (w + h)], axis=-1).astype(np.uint8)
    frames = np.repeat(background[None], count, axis=0)
    for k in range(count):
        frames[k, 20:36, 10 + 9 * k: 26 + 9 * k] = (255, 255, 255)
    return frames


def loops_forever(data: bytes) -> bool:
    """The edit list's repeat flag: libavif writes it for an infinite repetition count, and it is
    what browsers read as "loop forever" (Pillow does not report an AVIF's loop)."""
    at = data.find(b"elst")
    assert at > 0, "no edit list: not an image sequence"
    return bool(int.from_bytes(data[at + 5:at + 8], "big") & 1)


# --- the writer --------------------------------------------------------------------------------

def test_every_frame_comes_back_with_its_own_duration_and_the_animation_loops(tmp_path):
    frames = moving_square()
    delays = [40, 50, 60, 70, 80, 90, 100, 111]
    data = encode_avif(frames, delays)
    path = tmp_path / "x.avif"
    path.write_bytes(data)

    meta = clients.pillow_meta(path)
    assert (meta["format"], meta["width"], meta["height"], meta["n_frames"]) == ("AVIF", 161, 97, 8)
    assert meta["is_animated"] and meta["durations_ms"] == delays
    assert loops_forever(data)
    for (rgb, _), source in zip(clients.pillow_frames(path), frames):
        assert rgb.shape == (97, 161, 3) and psnr(rgb, source) > 30


def test_unchanged_frames_are_kept_as_frames_and_cost_little(tmp_path):
    first = moving_square(1)
    two, twenty = (encode_avif(np.repeat(first, n, axis=0), [50] * n) for n in (2, 20))
    path = tmp_path / "still.avif"
    path.write_bytes(twenty)
    assert clients.pillow_meta(path)["n_frames"] == 20
    # Each repeated frame is an AV1 inter frame with nothing to code, plus its sample-table entries:
    # a few dozen bytes, against the first frame's whole picture.
    assert (len(twenty) - len(two)) / 18 < 0.05 * len(two)


def test_one_frame_is_a_still_avif(tmp_path):
    path = tmp_path / "one.avif"
    path.write_bytes(encode_avif(moving_square(1), [100]))
    meta = clients.pillow_meta(path)
    assert (meta["format"], meta["n_frames"], meta["is_animated"]) == ("AVIF", 1, False)


def test_frames_that_are_views_of_a_larger_array_are_encoded_as_they_look(tmp_path):
    frames = moving_square(4, 97, 322)[:, :, ::2]  # a strided view, as a crop or a step would give
    path = tmp_path / "v.avif"
    path.write_bytes(encode_avif(frames, [50] * 4))
    shown = clients.pillow_frames(path)
    assert [rgb.shape for rgb, _ in shown] == [(97, 161, 3)] * 4
    assert all(psnr(rgb, source) > 30 for (rgb, _), source in zip(shown, frames))


@pytest.mark.parametrize("frames, delays, words", [
    (moving_square(3), [50, 50], "3 frames but 2 delays"),
    (moving_square(2), [50, 0], "at least 1 ms"),
    (moving_square(2)[..., 0], [50, 50], "uint8 [N, H, W, 3]"),
    (moving_square(2).astype(np.float32), [50, 50], "uint8 [N, H, W, 3]"),
])
def test_bad_frames_or_delays_are_refused(frames, delays, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        encode_avif(frames, delays)


# --- the table entry ---------------------------------------------------------------------------

def test_avif_counts_milliseconds_plays_up_to_60_fps_and_takes_rgb_frames():
    avif = get_format("avif")
    assert (avif.ticks_per_second, avif.max_fps, avif.min_delay, avif.palette_colours) == (1000, 60, 1, None)
    assert avif.encode(RGBFrames(moving_square(2)), [30, 40])[4:12] == b"ftypavis"
    with pytest.raises(TypeError, match="RGBFrames"):
        avif.encode(IndexedFrames(np.zeros((2, 4, 4), np.uint8), np.zeros((1, 3), np.uint8)), [30, 40])


def test_a_manifest_line_and_a_template_may_say_avif(tmp_path):
    line = parse_job({"id": "a", "input": "a.mp4", "TemplateConfig": {
        "Format": "AVIF", "Fps": "15", "Width": "320", "TimeSpan": {"Seek": "1", "Duration": "2"}}},
        default_id="x", input_root=tmp_path)
    assert line.format == "avif" and line.output_path(tmp_path) == tmp_path / "a.avif"
    with pytest.raises(EngineError) as caught:
        parse_job({"input": "a.mp4", "format": "avif", "fps": 10, "duration": 1, "output": str(tmp_path / "a.webp")},
                  default_id="x", input_root=tmp_path)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER and "must end in .avif" in caught.value.message
    with Service(store=tmp_path / "store.db") as service:
        body = {"TemplateType": "DynamicImage", "Name": "avif-preview", "TemplateConfig": {
            "Format": "avif", "Fps": "12", "Width": "480", "TimeSpan": {"Seek": "0", "Duration": "2"}}}
        template = service.add_template_body(body)
        assert service.template(template.id).format == "avif"
        assert service.template_info(template)["TemplateConfig"]["Format"] == "avif"
        assert service.add_template("avif-flags", format="avif", fps=10, duration=1).format == "avif"


# --- jobs, read back by outside clients --------------------------------------------------------

@pytest.fixture(scope="module")
def avif_job(h264_clip, tmp_path_factory):
    """One avif job through run_job: 15 fps for 1.2 s, so the delays are 67/66/67 ms, not one value."""
    out = tmp_path_factory.mktemp("avif-job")
    spec = parse_job({"id": "clip", "input": str(h264_clip), "format": "avif", "fps": 15, "seek": 0.2,
                      "duration": 1.2, "width": 160}, default_id="x", input_root=out)
    timeline = plan_timeline(spec, probe(h264_clip))
    result = run_job(spec, out, PyAVDecoder())
    assert result.ok, result.error_message
    return result, timeline


def test_a_job_makes_an_avif_pillow_opens_at_its_size_frames_and_durations(avif_job):
    result, timeline = avif_job
    assert result.output.endswith("clip.avif") and result.format == "avif"
    meta = clients.pillow_meta(result.output)
    assert (meta["format"], meta["width"], meta["height"]) == ("AVIF", 160, 120) == ("AVIF", result.width, result.height)
    assert meta["n_frames"] == timeline.frame_count == result.frames == 18
    assert meta["durations_ms"] == list(timeline.delays) and set(timeline.delays) == {66, 67}
    assert abs(sum(meta["durations_ms"]) - 1200) <= 1  # within one tick of the clock (1 ms)
    assert result.duration == pytest.approx(1.2)
    with open(result.output, "rb") as f:
        assert loops_forever(f.read())


def _ffprobe_decodes_av1() -> bool:
    if not clients.have_tool("ffprobe"):
        return False
    decoders = subprocess.run(["ffprobe", "-hide_banner", "-decoders"], capture_output=True, text=True).stdout
    return any(f" {name} " in decoders for name in ("libdav1d", "libaom-av1", "av1"))


def test_ffprobe_reads_the_job_as_an_av1_sequence(avif_job):
    if not _ffprobe_decodes_av1():
        pytest.skip("no ffprobe with an AV1 decoder here")
    result, timeline = avif_job
    info = clients.ffprobe_info(result.output)
    assert info["codec"] == "av1" and (info["width"], info["height"]) == (160, 120)
    assert info["pix_fmt"] == "yuv444p"
    assert info["frames"] == timeline.frame_count and info["decodable"]
    assert [round(d * 1000) for d in info["durations"]] == list(timeline.delays)


@pytest.mark.skipif(clients.CHROMIUM is None, reason="headless Chromium is not installed")
def test_chromium_decodes_avif_jobs_at_their_size(tmp_path, h264_clip):
    jobs = [{"id": "a", "input": str(h264_clip), "format": "avif", "fps": 12, "width": 200, "duration": 1},
            {"id": "b", "input": str(h264_clip), "format": "avif", "fps": 30, "width": 240, "height": 100,
             "duration": 1.5},
            {"id": "one", "input": str(h264_clip), "format": "avif", "fps": 10, "width": 96, "duration": 0.1}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    out = tmp_path / "out"
    results = list(run_batch(load_manifest(manifest), out, workers=1))
    assert all(r.ok for r in results), [r.error_message for r in results]
    assert clients.load_in_chromium(out, ["a.avif", "b.avif", "one.avif"]) == {
        "a.avif": [200, 150], "b.avif": [240, 100], "one.avif": [96, 72]}


def test_a_pillow_without_avif_support_is_a_clear_error(monkeypatch):
    from PIL import features

    monkeypatch.setattr(features, "check", lambda name: name != "avif")
    with pytest.raises(EngineError) as caught:
        encode_avif(moving_square(2), [50, 50])
    assert caught.value.code is ErrorCode.FORMAT_UNAVAILABLE
    assert "needs Pillow built with libavif" in caught.value.message


def test_a_job_asking_avif_of_a_pillow_without_it_fails_before_decoding(monkeypatch, tmp_path, h264_clip):
    from PIL import features

    monkeypatch.setattr(features, "check", lambda name: name != "avif")
    spec = parse_job({"id": "no-avif", "input": str(h264_clip), "format": "avif", "fps": 5, "duration": 1},
                     default_id="x", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert not result.ok and result.error_code == "FormatUnavailable"
    assert "pillow>=11.3" in result.error_message and "or ask for webp" in result.error_message
    assert "decode" not in result.timings and not (tmp_path / "no-avif.avif").exists()
