"""The YUV 4:2:0 -> RGB kernel against FFmpeg's swscale (the CPU path's converter).

Pictures are made with PyAV: an RGB picture is converted to yuv420p / yuv420p10le with an explicit
matrix and range, its planes are laid out as NVDEC lays them out (NV12, or P016 with the 10-bit
sample in the high bits of 16-bit words), and the kernel's RGB is compared with what swscale
gives for the same planes and tags (as engine/decode/pyav.py asks it).
"""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import ColorRange, Colorspace

import clipmaker
import animated_previews.kernels.colour as colour
from animated_previews.kernels.colour import split_nv12, yuv420_to_rgb

SWS_COLORSPACE = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709}
SWS_RANGE = {False: ColorRange.MPEG, True: ColorRange.JPEG}


def picture(kind: str, width: int = 320, height: int = 240) -> np.ndarray:
    if kind == "clip":  # the test clips' frame: a hard-edged code band over a smooth gradient
        return clipmaker.render_frame(7, width, height)
    return (np.random.default_rng(1).random((height, width, 3)) * 255).astype(np.uint8)


def to_yuv(rgb: np.ndarray, bits: int, matrix: str, full_range: bool) -> av.VideoFrame:
    fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(format=fmt, dst_colorspace=SWS_COLORSPACE[matrix], dst_color_range=SWS_RANGE[full_range])


def swscale_rgb(frame: av.VideoFrame, matrix: str, full_range: bool) -> np.ndarray:
    return frame.reformat(
        format="rgb24", src_colorspace=SWS_COLORSPACE[matrix], src_color_range=SWS_RANGE[full_range],
        dst_color_range=ColorRange.JPEG,
    ).to_ndarray()


def nvdec_surface(frame: av.VideoFrame) -> np.ndarray:
    """The frame as NVDEC's NATIVE output: (1.5 H, W), luma rows then interleaved Cb/Cr rows."""
    deep = frame.format.name.endswith("10le")
    dtype = np.uint16 if deep else np.uint8
    planes = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype().itemsize)
        planes.append(rows[:, : plane.width])
    y, u, v = planes
    uv = np.stack((u, v), axis=-1).reshape(u.shape[0], -1)
    surface = np.concatenate((y, uv), axis=0)
    if deep:  # P016: the 10-bit sample in the high bits
        surface = (surface.astype(np.uint32) << 6).astype(np.uint16)
    return np.ascontiguousarray(surface)


def kernel_rgb(surfaces: np.ndarray, height: int, matrix: str, full_range: bool, chroma: str) -> np.ndarray:
    y, uv = split_nv12(torch.from_numpy(surfaces), height)
    rgb = yuv420_to_rgb(y, uv, matrix=matrix, full_range=full_range, chroma=chroma)
    return rgb.permute(0, 2, 3, 1).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.mark.parametrize("kind", ["clip", "noise"])
@pytest.mark.parametrize("full_range", [False, True], ids=["limited", "full"])
@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_eight_bit_nearest_matches_swscale_to_rounding(matrix, full_range, kind):
    frame = to_yuv(picture(kind), 8, matrix, full_range)
    want = swscale_rgb(frame, matrix, full_range)
    got = kernel_rgb(nvdec_surface(frame)[None], 240, matrix, full_range, "nearest")[0]
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.mean() < 1.2 and diff.max() <= 3
    assert psnr(got, want) > 45


@pytest.mark.parametrize("full_range", [False, True], ids=["limited", "full"])
@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
@pytest.mark.parametrize("chroma", ["nearest", "bilinear"])
def test_ten_bit_p016_is_close_to_swscale(matrix, full_range, chroma):
    frame = to_yuv(picture("clip"), 10, matrix, full_range)
    want = swscale_rgb(frame, matrix, full_range)
    got = kernel_rgb(nvdec_surface(frame)[None], 240, matrix, full_range, chroma)[0]
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    # limited range: swscale's 10-bit path sits ~1.4 levels below the source (see the next test)
    assert diff.mean() < (2.0 if not full_range else 1.0)
    assert psnr(got, want) > 40


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_ten_bit_limited_range_lands_on_the_source_picture(matrix):
    source = picture("clip")
    frame = to_yuv(source, 10, matrix, False)
    got = kernel_rgb(nvdec_surface(frame)[None], 240, matrix, False, "bilinear")[0]
    smooth = slice(120, 240)  # the gradient, away from the code band's hard edges
    bias = (got[smooth].astype(np.float64) - source[smooth]).mean(axis=(0, 1))
    assert np.all(np.abs(bias) < 0.3), bias


def test_bilinear_chroma_is_better_than_nearest_on_a_smooth_picture():
    source = picture("clip")
    frame = to_yuv(source, 10, "bt709", True)
    surface = nvdec_surface(frame)[None]
    smooth = slice(120, 240)
    errors = {
        chroma: np.abs(kernel_rgb(surface, 240, "bt709", True, chroma)[0][smooth].astype(np.float64) - source[smooth]).mean()
        for chroma in ("nearest", "bilinear")
    }
    assert errors["bilinear"] < errors["nearest"]


def test_a_batch_is_converted_like_its_frames_one_by_one_and_in_chunks(monkeypatch):
    frames = [to_yuv(clipmaker.render_frame(i, 64, 48), 8, "bt709", False) for i in range(5)]
    surfaces = np.stack([nvdec_surface(f) for f in frames])
    whole = kernel_rgb(surfaces, 48, "bt709", False, "bilinear")
    monkeypatch.setattr(colour, "_CHUNK_VALUES", 64 * 48 * 2)  # two frames per chunk
    chunked = kernel_rgb(surfaces, 48, "bt709", False, "bilinear")
    singles = np.concatenate([kernel_rgb(s[None], 48, "bt709", False, "bilinear") for s in surfaces])
    assert np.array_equal(whole, chunked) and np.array_equal(whole, singles)


def test_int16_words_read_as_the_same_unsigned_samples():
    frame = to_yuv(picture("noise", 64, 48), 10, "bt601", False)
    words = torch.from_numpy(nvdec_surface(frame))[None]
    a = yuv420_to_rgb(*split_nv12(words, 48), matrix="bt601", full_range=False)
    b = yuv420_to_rgb(*split_nv12(words.view(torch.int16), 48), matrix="bt601", full_range=False)
    assert torch.equal(a, b)


def test_split_nv12_makes_views_and_crops_a_padded_width():
    surface = torch.arange(9 * 8, dtype=torch.int32).reshape(1, 9, 8).to(torch.uint8)  # picture 7x6, surface 8 wide
    y, uv = split_nv12(surface, 6, 7)
    assert y.shape == (1, 6, 7) and uv.shape == (1, 3, 4, 2)
    assert y.data_ptr() == surface.data_ptr()  # views, not copies
    assert uv[0, 0, 1].tolist() == [surface[0, 6, 2].item(), surface[0, 6, 3].item()]
    rgb = yuv420_to_rgb(y, uv, matrix="bt601", full_range=True, chroma="bilinear")
    assert rgb.shape == (1, 3, 6, 7) and rgb.dtype == torch.uint8


def test_extremes_saturate_instead_of_wrapping():
    y = torch.tensor([[[0, 255], [0, 255]]], dtype=torch.uint8)
    uv = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    rgb = yuv420_to_rgb(y, uv, matrix="bt709", full_range=False)
    assert int(rgb.min()) == 0 and int(rgb.max()) == 255


def test_grey_stays_grey_in_every_matrix():
    y = torch.full((1, 4, 4), 126, dtype=torch.uint8)
    uv = torch.full((1, 2, 2, 2), 128, dtype=torch.uint8)
    for matrix in colour.MATRICES:
        rgb = yuv420_to_rgb(y, uv, matrix=matrix, full_range=True)
        assert torch.all(rgb == 126), matrix


def test_bad_arguments_are_refused():
    y = torch.zeros((1, 4, 4), dtype=torch.uint8)
    uv = torch.zeros((1, 2, 2, 2), dtype=torch.uint8)
    with pytest.raises(ValueError, match="matrix"):
        yuv420_to_rgb(y, uv, matrix="bt2100", full_range=False)
    with pytest.raises(ValueError, match="chroma"):
        yuv420_to_rgb(y, uv, matrix="bt709", full_range=False, chroma="lanczos")
    with pytest.raises(ValueError, match="4:2:0"):
        yuv420_to_rgb(y, uv[:, :1], matrix="bt709", full_range=False)
    with pytest.raises(ValueError, match="uint8"):
        yuv420_to_rgb(y.float(), uv.float(), matrix="bt709", full_range=False)
    with pytest.raises(ValueError, match="cannot hold"):
        split_nv12(torch.zeros((1, 5, 4), dtype=torch.uint8), 4)
