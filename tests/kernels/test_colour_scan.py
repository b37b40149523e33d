"""The CPU decoder's 8-bit 4:2:0 -> RGB loop: the torch kernel's bilinear bytes, on planes as a
decoder lays them out, and closer to the picture than FFmpeg's unscaled converter."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import ColorRange, Colorspace

import clipmaker
from animated_previews.kernels.colour import conversion_coefficients, yuv420_to_rgb
from animated_previews.kernels.colour_scan import SCAN

pytestmark = pytest.mark.skipif(SCAN is None, reason="needs numba")


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The decoder's planes with their padded lines, as the CPU decoder hands them over."""
    return [np.frombuffer(p, dtype=np.uint8).reshape(p.height, p.line_size) for p in frame.planes]


def loop_rgb(frame: av.VideoFrame, matrix: str, full_range: bool) -> np.ndarray:
    out = np.empty((frame.height, frame.width * 3), dtype=np.uint8)
    SCAN(*planes(frame), frame.width, np.array(conversion_coefficients(matrix, full_range), dtype=np.float32), out)
    return out.reshape(frame.height, frame.width, 3)


def torch_rgb(frame: av.VideoFrame, matrix: str, full_range: bool) -> np.ndarray:
    y, u, v = planes(frame)
    cw = (frame.width + 1) // 2
    uv = torch.from_numpy(np.stack((u[:, :cw], v[:, :cw]), axis=-1).copy())[None]
    rgb = yuv420_to_rgb(torch.from_numpy(y[:, : frame.width].copy())[None], uv, matrix=matrix, full_range=full_range,
                        chroma="bilinear")
    return rgb[0].permute(1, 2, 0).numpy()


def coded(rgb: np.ndarray, matrix: str, full_range: bool, layout: str = "yuv420p") -> av.VideoFrame:
    space = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709}[matrix]
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=layout, dst_colorspace=space, dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG)


@pytest.mark.parametrize("layout", ["yuv420p", "yuv422p"])
@pytest.mark.parametrize("size", [(320, 240), (321, 241), (7, 5), (2, 2)])
@pytest.mark.parametrize("matrix,full_range", [("bt709", False), ("bt601", False), ("bt601", True)])
def test_the_loop_gives_the_torch_kernels_bilinear_bytes(size, matrix, full_range, layout):
    width, height = size
    noise = (np.random.default_rng(5).random((height + height % 2, width + width % 2, 3)) * 255).astype(np.uint8)
    for picture in (noise[:height, :width], clipmaker.render_frame(3, width, height) if width >= 48 else noise[:height, :width]):
        frame = coded(np.ascontiguousarray(picture), matrix, full_range, layout)
        assert frame.planes[1].height == (height if layout == "yuv422p" else (height + 1) // 2)
        assert np.array_equal(loop_rgb(frame, matrix, full_range), torch_rgb(frame, matrix, full_range))


def test_extremes_saturate_instead_of_wrapping():
    ends = []
    for value in (0, 255):  # luma and both chromas at one end: red and blue far past it
        frame = av.VideoFrame(4, 2, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([value]) * plane.buffer_size)
        ends.append(loop_rgb(frame, "bt709", False))
    assert int(ends[0].min()) == 0 and int(ends[1].max()) == 255
    assert np.array_equal(ends[0][..., 0], np.zeros((2, 4))) and np.array_equal(ends[1][..., 0], np.full((2, 4), 255))


def test_it_lands_on_the_picture_where_ffmpegs_unscaled_converter_is_a_level_dark():
    """A smooth picture (the test clips' gradient) coded 4:2:0 at limited range: this conversion's
    mean error is near zero, FFmpeg's unscaled one (chroma repeated, rounded down) about one
    level below on every channel (-0.7 to -1.1 on clip frames made 4:2:0 by zimg)."""
    source = clipmaker.render_frame(11, 320, 240)[120:]  # the gradient, without the code band
    source = np.ascontiguousarray(source)
    frame = coded(source, "bt709", False)
    ours = loop_rgb(frame, "bt709", False).astype(np.float64) - source
    theirs = frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG,
                            dst_color_range=ColorRange.JPEG).to_ndarray().astype(np.float64) - source
    assert np.all(np.abs(ours.mean(axis=(0, 1))) < 0.3), ours.mean(axis=(0, 1))
    assert theirs.mean() < -0.5 and np.abs(ours).mean() < np.abs(theirs).mean()
