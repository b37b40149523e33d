"""GIF quality on a generated test pattern, through the whole job: flat colour bars, thin lines
that live only on odd rows, a moving square, and a little noise that changes every frame (what
video coding leaves on a still background).

What it pins down (issue 10): a palette that sees the odd rows (the histogram's sampling phase
turns frame by frame) and no dither noise on colours the palette holds. (What kernels/hold.py
saves is measured on the library, and its rule is tested in tests/kernels/test_hold.py.)"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import clipmaker
from clients import gif_images

from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.job import run_job
from animated_previews.engine.spec import parse_job

W, H, FPS, FRAMES = 160, 120, 10, 20
BARS = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                 [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], dtype=np.int16)


def pattern(k: int, rng: np.random.Generator) -> np.ndarray:
    frame = np.repeat(BARS, W // len(BARS), axis=0)[None].repeat(H, axis=0)  # [H, W, 3]
    frame[41:80:2, 10:150] = (250, 120, 30)  # thin orange lines on odd rows only
    x = 10 + 5 * k
    frame[90:110, x:x + 20] = (40, 40, 40)  # a square moving right
    frame = frame + rng.integers(-2, 3, frame.shape)  # fresh noise in every frame
    return frame.clip(0, 255).astype(np.uint8)


def write_clip(path: Path, frames, size: tuple[int, int] = (W, H)) -> Path:
    """``frames`` (RGB arrays, ``size`` (w, h)) as a near-lossless H.264 clip (4:4:4, qp 0), or
    MPEG-4 where x264 is missing, at FPS."""
    encoder = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=Fraction(FPS))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv444p" if encoder == "libx264" else "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"} if encoder == "libx264" else {"qscale": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def pattern_clip(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """The clip and the frames it was made from."""
    rng = np.random.default_rng(7)
    frames = [pattern(k, rng) for k in range(FRAMES)]
    return write_clip(tmp_path_factory.mktemp("gif-quality") / "pattern.mp4", frames), frames


def decoded_source(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as image:
        out = []
        for k in range(image.n_frames):
            image.seek(k)
            out.append(np.asarray(image.convert("RGB")))
        return out


def test_a_test_pattern_gif_keeps_its_thin_lines_and_flat_colours(tmp_path, pattern_clip):
    path, _ = pattern_clip
    spec = parse_job({"id": "pattern", "input": str(path), "format": "gif", "fps": FPS, "duration": FRAMES / FPS},
                     default_id="x", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert result.ok, result.error_message
    source, shown = decoded_source(path), gif_frames(Path(result.output))
    assert len(shown) >= FRAMES - 1  # the square moves every frame: no frame is merged away
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(shown, source)]
    psnr = 10 * np.log10(255**2 / np.mean(errors))
    assert psnr >= 40, psnr
    lines = np.stack([f[41:80:2, 10:150] for f in shown]).astype(float)
    assert np.abs(lines - (250, 120, 30)).mean() < 6  # the odd-row lines kept their colour


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory) -> Path:
    """Two scenes of 24 frames with no colour in common: warm gradients, then cold ones."""
    y, x = np.mgrid[0:H, 0:W]

    def frame(k: int) -> np.ndarray:
        t = (x + 3 * k) % W / W
        warm = np.stack([200 + 55 * t, 40 + 140 * (y / H), 20 + 30 * t], axis=-1)
        cold = np.stack([20 + 30 * t, 60 + 120 * (y / H), 200 + 55 * t], axis=-1)
        return (warm if k < 24 else cold).astype(np.uint8)

    return write_clip(tmp_path_factory.mktemp("gif-cut") / "cut.mp4", (frame(k) for k in range(48)))


def test_a_cut_to_other_colours_gets_its_own_palette(tmp_path, cut_clip):
    spec = parse_job({"id": "cut", "input": str(cut_clip), "format": "gif", "fps": FPS, "duration": 4.8},
                     default_id="x", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert result.ok, result.error_message
    shown = gif_frames(Path(result.output))
    colours = {tuple(c) for f in shown for c in f.reshape(-1, 3)}
    assert len(colours) > 255  # one palette could not have shown them
    source = decoded_source(cut_clip)
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(shown, source)]
    assert 10 * np.log10(255**2 / np.mean(errors)) >= 38


@pytest.fixture(scope="module")
def half_cut_clip(tmp_path_factory) -> Path:
    """A still grey ramp on the left; on the right, warm gradients that cut to cold ones."""
    y, x = np.mgrid[0:H, 0:W // 2]

    def frame(k: int) -> np.ndarray:
        left = np.repeat((60 + 120 * x / (W // 2))[..., None], 3, axis=-1)
        t = (x + 3 * k) % (W // 2) / (W // 2)
        warm = np.stack([200 + 55 * t, 40 + 140 * (y / H), 20 + 30 * t], axis=-1)
        cold = np.stack([20 + 30 * t, 60 + 120 * (y / H), 200 + 55 * t], axis=-1)
        return np.concatenate([left, warm if k < 12 else cold], axis=1).astype(np.uint8)

    return write_clip(tmp_path_factory.mktemp("gif-half-cut") / "half.mp4", (frame(k) for k in range(24)))


def test_at_a_change_of_palette_the_still_part_of_the_picture_is_not_sent_again(tmp_path, half_cut_clip):
    """The runs after the cut get their own palette, and the grey half, already on screen in
    colours as good as the new palette's, stays there (kept, written as transparent)."""
    spec = parse_job({"id": "half", "input": str(half_cut_clip), "format": "gif", "fps": FPS, "duration": 2.4},
                     default_id="x", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert result.ok, result.error_message
    data = Path(result.output).read_bytes()
    _, images = gif_images(data)
    assert sum(1 for image in images if image["local"]) >= 8, "the runs should have palettes of their own"
    assert all(image["rect"][0] >= W // 2 - 8 for image in images[1:])  # only the moving half is sent
    source = decoded_source(half_cut_clip)
    shown = gif_frames(Path(result.output))
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(shown, source)]
    assert 10 * np.log10(255**2 / np.mean(errors)) >= 38


PLASMA_SIZE, PLASMA_FRAMES = (320, 240), 40


@pytest.fixture(scope="module")
def plasma_clip(tmp_path_factory) -> Path:
    """Three moving sine fields, one per channel: every hue, smooth (the held-out library's
    plasma in small). Its colours fill 32,766 of the palette histogram's 32,768 bins, and the
    4,096 most populated hold 45 % of its pixels: those where a sine lingers near its crest, so
    the colours between are the ones left out."""
    width, height = PLASMA_SIZE
    frames = clipmaker.plasma(PLASMA_FRAMES, height, width, scale=2, step=3 / FPS)
    return write_clip(tmp_path_factory.mktemp("gif-plasma") / "plasma.mp4", frames, PLASMA_SIZE)


def test_a_clip_of_every_hue_gets_a_palette_from_all_of_its_pixels(tmp_path, plasma_clip):
    """bench/library-holdout's plasma scored 3.5 dB under gifski while its palette read the 4,096
    most populated histogram bins alone (kernels/palette.py ``TAIL_BITS``): here 22.5 dB then,
    26.6 with the rest of the bins folded in."""
    spec = parse_job({"id": "plasma", "input": str(plasma_clip), "format": "gif", "fps": FPS,
                      "duration": PLASMA_FRAMES / FPS}, default_id="x", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert result.ok, result.error_message
    shown, source = gif_frames(Path(result.output)), decoded_source(plasma_clip)
    assert len(shown) == len(source) == PLASMA_FRAMES
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(shown, source)]
    assert 10 * np.log10(255**2 / np.mean(errors)) >= 25


def chart(k: int, noise: np.random.Generator | None = None) -> np.ndarray:
    """A chart-like frame: a ramp of 80 greys, three bars growing to the right with edges at
    sub-pixel places (blends of bar and ground): about a hundred exact colours in 25 to 31 (as sampled) of the
    palette histogram's 5-bit bins. ``noise``: a level or two on every pixel, as a camera adds."""
    y, x = np.mgrid[0:H, 0:W].astype(float)
    frame = np.repeat((60 + x * 0.5)[..., None], 3, axis=-1)
    for i, colour in enumerate([(200, 60, 40), (40, 160, 90), (60, 90, 210)]):
        right = 30 + 4 * k + 20 * i + 0.5 * (k % 2)
        cover = np.clip(right - x, 0, 1) * ((y >= 20 + 30 * i) & (y < 40 + 30 * i))
        frame = frame * (1 - cover[..., None]) + np.array(colour) * cover[..., None]
    if noise is not None:
        frame = frame + noise.integers(-2, 3, frame.shape)
    return frame.round().clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def chart_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("gif-chart") / "chart.mp4", (chart(k) for k in range(20)))


def test_a_clip_of_few_exact_colours_gets_them_from_a_finer_histogram(tmp_path, chart_clip):
    """Its 5-bit bins are fewer than the palette's colours, so the palette would be their means,
    up to 4 levels a channel off: 42.8 dB so; from the 6-bit histogram (engine/render.py
    ``_histograms``) 48.6."""
    spec = parse_job({"id": "chart", "input": str(chart_clip), "format": "gif", "fps": FPS, "duration": 2.0},
                     default_id="x", input_root=tmp_path)
    result = run_job(spec, tmp_path, PyAVDecoder())
    assert result.ok, result.error_message
    shown, source = gif_frames(Path(result.output)), decoded_source(chart_clip)
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(shown, source)]
    assert 10 * np.log10(255**2 / np.mean(errors)) >= 46


def test_the_finer_histogram_is_only_for_few_colours_that_hold_still():
    from animated_previews.engine import render

    def bits(frames: list[np.ndarray]) -> int:
        tensor = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
        return render._histograms(tensor, 255)[2]

    rng = np.random.default_rng(3)
    assert bits([chart(k) for k in range(16)]) == render.FINE_HISTOGRAM_BITS
    assert bits([chart(k, rng) for k in range(16)]) == render.HISTOGRAM_BITS  # camera noise: colours on the noise
    assert bits(clipmaker.plasma(4, 60, 80, scale=2, step=0.3)) == render.HISTOGRAM_BITS  # more bins than colours
    cuts = [chart(k) if k // 8 % 2 else 255 - chart(k) for k in range(8 * (render.FINE_MAX_RUNS + 1))]
    assert bits(cuts) == render.HISTOGRAM_BITS  # a palette per run of 8, more runs than are worth 5 MiB each


@pytest.mark.gpu
def test_cuda_frames_choose_the_same_histogram_as_the_cpu():
    """The choice reads a count and the flicker back from the device: the same bits and counts there."""
    from animated_previews.engine import render

    rng = np.random.default_rng(3)
    for frames in ([chart(k) for k in range(16)], [chart(k, rng) for k in range(16)]):
        tensor = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
        cpu_runs, cpu_histograms, cpu_bits = render._histograms(tensor, 255)
        gpu_runs, gpu_histograms, gpu_bits = render._histograms(tensor.cuda(), 255)
        assert (gpu_runs, gpu_bits) == (cpu_runs, cpu_bits)
        assert all(torch.equal(g[0].cpu(), c[0]) for g, c in zip(gpu_histograms, cpu_histograms))
