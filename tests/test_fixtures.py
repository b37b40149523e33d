"""Proves the test infrastructure itself: clips, the index reader, the clients."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

import clients
import clipmaker
from clipmaker import find_index, read_index, render_frame


def _decode(path):
    """[(time_s, rgb)] for every decoded frame of the first video stream."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append((f.time, f.to_ndarray(format="rgb24")))
    return out


def _pil_preview(rgb: np.ndarray, factor: int = 4) -> np.ndarray:
    """Downscale by ``factor`` and quantise to a dithered 64-colour palette."""
    im = Image.fromarray(rgb)
    im = im.resize((im.width // factor, im.height // factor), Image.Resampling.LANCZOS)
    im = im.quantize(colors=64, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(im.convert("RGB"))


def _small_frames(n, width=96, height=72):
    return [Image.fromarray(render_frame(i, width, height)) for i in range(n)]


# --------------------------------------------------------------------------
# the pattern
# --------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 1, 2, 255, 1000, 12345, clipmaker.MAX_INDEX])
def test_render_read_roundtrip(index):
    assert read_index(render_frame(index)) == index
    assert read_index(render_frame(index, 96, 72)) == index


def test_read_index_rejects_what_it_cannot_prove():
    a, b = render_frame(6), render_frame(9)
    blend = ((a.astype(np.uint16) + b) // 2).astype(np.uint8)
    for bad in (
        blend,  # cross-fade of two frames
        np.fliplr(a),
        np.flipud(a),
        np.zeros_like(a),
        np.full_like(a, 255),
        np.full_like(a, 128),
        a[30:],  # cropped
    ):
        with pytest.raises(ValueError):
            read_index(bad)
    with pytest.raises(ValueError):
        render_frame(clipmaker.MAX_INDEX + 1)


def test_find_index_reports_rotation():
    img = render_frame(777)
    for turns in range(4):
        assert find_index(np.rot90(img, turns)) == (777, turns)
    with pytest.raises(ValueError):
        find_index(np.fliplr(img))


def test_read_index_box_and_formats():
    img = render_frame(42, 160, 120)
    padded = np.zeros((200, 260, 3), np.uint8)
    padded[40:160, 50:210] = img
    assert read_index(padded, box=(50, 40, 210, 160)) == 42
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert read_index(rgba) == 42
    assert read_index(img.astype(np.float32) / 255.0) == 42


@pytest.mark.parametrize("resample", ["LANCZOS", "BILINEAR", "BOX", "NEAREST"])
def test_index_survives_downscale_and_dithered_palette(resample):
    # the whole h264 -> downscale -> 64 dithered colours chain, plus direct renders
    for index in (0, 5, 170, 4321, 9999, clipmaker.MAX_INDEX):
        im = Image.fromarray(render_frame(index))
        small = im.resize((80, 60), getattr(Image.Resampling, resample))
        q = small.quantize(colors=64, dither=Image.Dither.FLOYDSTEINBERG)
        assert read_index(np.asarray(q.convert("RGB"))) == index
        # and through a palette built by libimagequant-free adaptive mode with dithering
        q2 = small.convert("P", palette=Image.Palette.ADAPTIVE, colors=64, dither=Image.Dither.FLOYDSTEINBERG)
        assert read_index(np.asarray(q2.convert("RGB"))) == index


def test_decoded_clip_survives_preview_chain(h264_clip):
    frames = _decode(h264_clip)
    for k, (_, rgb) in enumerate(frames):
        assert read_index(_pil_preview(rgb)) == k


# --------------------------------------------------------------------------
# clips
# --------------------------------------------------------------------------

def test_codec_variant_roundtrip(codec_clip):
    name, path = codec_clip
    kw = clipmaker.VARIANTS[name]
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        decoders = {"av1": {"av1", "libdav1d", "libaom-av1"}}.get(kw["codec"], {kw["codec"]})
        assert vs.codec_context.codec.name in decoders
        assert (vs.width, vs.height) == (320, 240)
        fmts = set()
        indices = []
        for f in c.decode(vs):
            fmts.add(f.format.name)
            indices.append(read_index(f.to_ndarray(format="rgb24")))
    assert indices == list(range(50))
    if kw.get("pix_fmt") == "yuv420p10le":
        assert fmts == {"yuv420p10le"}
    else:
        assert fmts == {"yuv420p"}


def test_clip_timing_and_fps(clip_factory):
    path = clip_factory(codec="h264", fps=Fraction(30000, 1001), frames=20)
    with av.open(str(path)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
    times = [t for t, _ in _decode(path)]
    assert times == pytest.approx([k * 1001 / 30000 for k in range(20)], abs=1e-3)


def test_vfr_pts_come_back(vfr_clip, vfr_pts):
    frames = _decode(vfr_clip)
    assert [t for t, _ in frames] == pytest.approx(vfr_pts, abs=1e-3)
    assert [read_index(rgb) for _, rgb in frames] == list(range(len(vfr_pts)))


def test_vfr_in_webm(clip_factory):
    if not clipmaker.variant_available("vp9"):
        pytest.skip("no vp9 encoder")
    pts = [0.0, 0.1, 0.15, 0.9, 1.0]
    frames = _decode(clip_factory(codec="vp9", pts_seconds=tuple(pts)))
    assert [t for t, _ in frames] == pytest.approx(pts, abs=1e-3)
    assert [read_index(rgb) for _, rgb in frames] == list(range(5))


def test_long_gop_keyframes(long_gop_clip):
    with av.open(str(long_gop_clip)) as c:
        vs = c.streams.video[0]
        key_pts = sorted(float(p.pts * p.time_base) for p in c.demux(vs) if p.pts is not None and p.is_keyframe)
    assert key_pts == pytest.approx([0.0, 2.0, 4.0], abs=1e-3)
    # seeking to a late frame must land on the keyframe before it
    with av.open(str(long_gop_clip)) as c:
        vs = c.streams.video[0]
        c.seek(int(3.0 / vs.time_base), stream=vs, backward=True)
        first = next(c.decode(vs))
        assert read_index(first.to_ndarray(format="rgb24")) == 50


def test_first_index_and_size(clip_factory):
    path = clip_factory(codec="h264", frames=10, first_index=500, width=160, height=90)
    frames = _decode(path)
    assert frames[0][1].shape == (90, 160, 3)
    assert [read_index(rgb) for _, rgb in frames] == list(range(500, 510))


def test_mkv_container(clip_factory):
    path = clip_factory(codec="h264", frames=10, suffix=".mkv")
    assert path.suffix == ".mkv"
    with av.open(str(path)) as c:
        assert "matroska" in c.format.name
    assert [read_index(rgb) for _, rgb in _decode(path)] == list(range(10))


def test_audio_clip(audio_clip):
    with av.open(str(audio_clip)) as c:
        assert len(c.streams.audio) == 1 and len(c.streams.video) == 1
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        assert samples / a.rate == pytest.approx(2.0, abs=0.1)
    assert [read_index(rgb) for _, rgb in _decode(audio_clip)] == list(range(50))


def test_audio_only_and_bad_inputs(audio_only_file, not_media_file, empty_file, tmp_path):
    with av.open(str(audio_only_file)) as c:
        assert len(c.streams.video) == 0 and len(c.streams.audio) == 1
    for suffix in (".mp3", ".wav"):
        p = clipmaker.make_audio_only(tmp_path / f"a{suffix}", seconds=0.3)
        with av.open(str(p)) as c:
            assert len(c.streams.video) == 0 and len(c.streams.audio) == 1
    for bad in (not_media_file, empty_file):
        with pytest.raises(av.error.FFmpegError):
            with av.open(str(bad)) as c:
                list(c.decode(video=0))


def test_truncated_clips(truncated_clip, headless_clip):
    decoded, error = [], None
    try:
        with av.open(str(truncated_clip)) as c:
            for f in c.decode(video=0):
                decoded.append(read_index(f.to_ndarray(format="rgb24")))
    except av.error.FFmpegError as exc:  # usual: the last packet is cut short
        error = exc
    assert 10 < len(decoded) < 100, error
    assert decoded == list(range(len(decoded)))
    with pytest.raises(av.error.FFmpegError):
        with av.open(str(headless_clip)) as c:
            list(c.decode(video=0))


def test_rotation_metadata(rotated_clip):
    with av.open(str(rotated_clip)) as c:
        f = next(c.decode(video=0))
        assert f.rotation == -90
        assert (f.width, f.height) == (320, 240)
        coded = f.to_ndarray(format="rgb24")
    with pytest.raises(ValueError):
        read_index(coded)  # stored sideways, like a phone clip
    assert find_index(coded) == (0, 1)
    assert read_index(np.rot90(coded, -1)) == 0  # what a player shows
    info = clients.ffprobe_info(rotated_clip)
    assert info["rotation"] == -90
    # ffmpeg's autorotation shows it upright, 240 wide and 320 tall
    if clients.have_tool("ffmpeg"):
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(rotated_clip), "-frames:v", "1",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            capture_output=True, check=True).stdout
        shown = np.frombuffer(raw, np.uint8).reshape(320, 240, 3)
        assert read_index(shown) == 0


@pytest.mark.parametrize("rotation", [90, 180, -90])
def test_rotation_variants_display_upright(clip_factory, rotation):
    path = clip_factory(codec="h264", rotation=rotation, frames=3, width=192, height=128)
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    assert frames[0].rotation == (-180 if rotation == 180 else rotation)
    for k, f in enumerate(frames):
        coded = f.to_ndarray(format="rgb24")
        assert coded.shape == (128, 192, 3)
        assert read_index(np.rot90(coded, rotation // 90)) == k


def test_ffprobe_on_clips(h264_clip, audio_clip, clip_10bit, audio_only_file):
    info = clients.ffprobe_info(h264_clip)
    assert (info["codec"], info["width"], info["height"]) == ("h264", 320, 240)
    assert info["frames"] == 50 and info["nb_frames"] == 50
    assert info["pts"][:3] == pytest.approx([0.0, 0.04, 0.08])
    assert info["has_audio"] is False and info["rotation"] is None
    assert clients.ffprobe_info(audio_clip)["has_audio"] is True
    assert clients.ffprobe_info(clip_10bit, frames=False)["pix_fmt"] == "yuv420p10le"
    a = clients.ffprobe_info(audio_only_file)
    assert a["codec"] is None and a["has_audio"] is True and a["frames"] == 0


# --------------------------------------------------------------------------
# clients on Pillow-made outputs
# --------------------------------------------------------------------------

DURS = [100, 200, 300, 40, 60]


@pytest.fixture
def pillow_gif(tmp_path):
    frames = _small_frames(len(DURS))
    p = tmp_path / "t.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=DURS, loop=0)
    return p


@pytest.fixture
def pillow_webp(tmp_path):
    frames = _small_frames(len(DURS))
    p = tmp_path / "t.webp"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=DURS, loop=0, quality=80)
    return p


def test_pillow_frames_gif(pillow_gif):
    fr = clients.pillow_frames(pillow_gif)
    assert [d for _, d in fr] == DURS
    assert [read_index(img) for img, _ in fr] == list(range(len(DURS)))
    assert all(img.shape == (72, 96, 3) for img, _ in fr)
    meta = clients.pillow_meta(pillow_gif)
    assert meta["format"] == "GIF" and meta["n_frames"] == 5 and meta["loop"] == 0
    assert (meta["width"], meta["height"]) == (96, 72)


def test_pillow_frames_webp(pillow_webp):
    fr = clients.pillow_frames(pillow_webp)
    assert [d for _, d in fr] == DURS
    assert [read_index(img) for img, _ in fr] == list(range(len(DURS)))
    meta = clients.pillow_meta(pillow_webp)
    assert meta["format"] == "WEBP" and meta["n_frames"] == 5 and meta["loop"] == 0


def test_gifsicle_info(pillow_gif, tmp_path):
    info = clients.gifsicle_info(pillow_gif)
    assert info["frames"] == 5
    assert info["delays_cs"] == [d // 10 for d in DURS]
    assert info["loop"] == 0
    assert info["screen"] == (96, 72)
    # no loop block -> plays once; loop=3 -> "loop count 3"
    frames = _small_frames(3)
    once = tmp_path / "once.gif"
    frames[0].save(once, save_all=True, append_images=frames[1:], duration=50)
    assert clients.gifsicle_info(once)["loop"] is None
    thrice = tmp_path / "thrice.gif"
    frames[0].save(thrice, save_all=True, append_images=frames[1:], duration=50, loop=3)
    assert clients.gifsicle_info(thrice)["loop"] == 3
    with pytest.raises(clients.ToolError):
        clients.gifsicle_info(tmp_path / "missing.gif")


def test_pillow_composites_optimised_gif(tmp_path):
    """gifsicle -O3 stores only changed rectangles with transparency; Pillow
    must still give full frames."""
    if not clients.have_tool("gifsicle"):
        pytest.skip("gifsicle not installed")
    # frames that differ only in the code band (static gradient below it)
    base = render_frame(0, 96, 72)
    frames = []
    for i in range(len(DURS)):
        img = render_frame(i, 96, 72)
        img[29:] = base[29:]
        frames.append(Image.fromarray(img))
    src, opt = tmp_path / "src.gif", tmp_path / "opt.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=DURS, loop=0, optimize=False)
    subprocess.run(["gifsicle", "-O3", str(src), "-o", str(opt)], check=True, capture_output=True)
    info = clients.gifsicle_info(opt)
    assert any((im["width"], im["height"]) != (96, 72) for im in info["images"][1:])
    fr = clients.pillow_frames(opt)
    assert [read_index(img) for img, _ in fr] == list(range(len(DURS)))


def test_ffprobe_info_gif(pillow_gif):
    info = clients.ffprobe_info(pillow_gif)
    assert info["format_name"] == "gif"
    assert (info["width"], info["height"]) == (96, 72)
    assert info["frames"] == 5
    assert info["durations"] == pytest.approx([d / 1000 for d in DURS])
    assert info["pts"] == pytest.approx([0.0, 0.1, 0.3, 0.6, 0.64])


def test_ffprobe_info_animated_webp_is_opaque(pillow_webp):
    """Documents ffprobe's limitation (see clients.ffprobe_info)."""
    info = clients.ffprobe_info(pillow_webp)
    assert info["format_name"] == "webp_pipe"
    if info["decodable"]:
        pytest.skip("this ffprobe decodes animated WebP; the docstring can be updated")
    assert info["frames"] == 0 and info["width"] == 0


def test_webpmux_info(pillow_webp, tmp_path):
    info = clients.webpmux_info(pillow_webp)
    assert info["animated"] is True
    assert info["canvas"] == (96, 72)
    assert info["frames"] == 5
    assert info["durations_ms"] == DURS
    assert info["loop"] == 0
    assert len(info["frame_table"]) == 5
    still = tmp_path / "still.webp"
    _small_frames(1)[0].save(still)
    s = clients.webpmux_info(still)
    assert s["animated"] is False and s["frames"] == 1 and s["canvas"] == (96, 72)
    frames = _small_frames(2)
    looped = tmp_path / "l.webp"
    frames[0].save(looped, save_all=True, append_images=frames[1:], duration=70, loop=4)
    assert clients.webpmux_info(looped)["loop"] == 4
    with pytest.raises(clients.ToolError):
        clients.webpmux_info(tmp_path / "missing.webp")


def test_missing_tool_returns_none(monkeypatch, pillow_gif):
    monkeypatch.setattr(clients.shutil, "which", lambda name: None)
    assert clients.gifsicle_info(pillow_gif, missing="none") is None
    assert clients.webpmux_info(pillow_gif, missing="none") is None
    assert clients.ffprobe_info(pillow_gif, missing="none") is None
    with pytest.raises(pytest.skip.Exception):
        clients.gifsicle_info(pillow_gif)


def test_displayed_index_at():
    fr = [(None, d) for d in (100, 200, 300)]
    at = clients.displayed_index_at
    assert at(fr, 0.0) == 0
    assert at(fr, 0.099) == 0
    assert at(fr, 0.1) == 1
    assert at(fr, 0.299) == 1
    assert at(fr, 0.3) == 2
    assert at(fr, 0.6) == 0  # loops
    assert at(fr, 0.75) == 1
    assert at(fr, 0.75, loop=False) == 2
    assert at([100, 0, 100], 0.1) == 2  # zero-length frames are never shown
    assert at([0, 0, 50], 0.02, clamp_gif_delays=True) == 0
    assert at([0, 0, 50], 0.15, clamp_gif_delays=True) == 1
    assert clients.frame_start_times(fr) == pytest.approx([0.0, 0.1, 0.3])


def test_displayed_frame_at_returns_the_image_on_screen(pillow_gif):
    fr = clients.pillow_frames(pillow_gif)
    starts = np.cumsum([0] + DURS)[:-1] / 1000
    for k, t in enumerate(starts):
        assert clients.displayed_index_at(fr, t + 0.001) == k
        assert read_index(clients.displayed_frame_at(fr, t + 0.001)) == k
    with pytest.raises(TypeError):
        clients.displayed_frame_at([100, 200], 0.0)


# --------------------------------------------------------------------------
# corpus
# --------------------------------------------------------------------------

@pytest.mark.corpus
def test_corpus_fixture(corpus):
    assert corpus.is_dir()
    assert corpus.name == "corpus"
