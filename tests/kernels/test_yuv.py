"""Y'CbCr planes to R'G'B': the studio and full ranges land black at 0 and white at 1, each
matrix undoes its own forward transform, and planes of any chroma size come out at the size asked."""

from __future__ import annotations

import pytest
import torch

from animated_previews.kernels.resize import resize_planes
from animated_previews.kernels.colour import MATRICES
from animated_previews.kernels.yuv import yuv_to_rgb


def encode(rgb: torch.Tensor, matrix: str, bits: int, full_range: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """R'G'B' float [N, 3, H, W] in [0, 1] -> integer luma [N, 1, H, W] and chroma [N, 2, H, W]
    (4:4:4), the forward transform a camera applies."""
    kr, kb = MATRICES[matrix]
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    step = 1 << (bits - 8)
    if full_range:
        luma, chroma = y * ((1 << bits) - 1), torch.cat([cb, cr], 1) * ((1 << bits) - 1)
    else:
        luma, chroma = 16 * step + y * 219 * step, torch.cat([cb, cr], 1) * 224 * step
    return luma.round().to(torch.int32), (chroma + (1 << (bits - 1))).round().to(torch.int32)


@pytest.mark.parametrize("bits", [8, 10, 12])
def test_studio_range_black_and_white_are_0_and_1_and_neutral(bits):
    step = 1 << (bits - 8)
    luma = torch.tensor([16 * step, 235 * step], dtype=torch.int32).view(1, 1, 1, 2)
    chroma = torch.full((1, 2, 1, 2), 128 * step, dtype=torch.int32)
    rgb = yuv_to_rgb(luma, chroma, 1, 2, matrix="bt2020", bits=bits, full_range=False)
    assert torch.allclose(rgb[0, :, 0, 0], torch.zeros(3), atol=1e-6)
    assert torch.allclose(rgb[0, :, 0, 1], torch.ones(3), atol=1e-6)


def test_full_range_spans_every_code():
    luma = torch.tensor([0, 1023], dtype=torch.int32).view(1, 1, 1, 2)
    chroma = torch.full((1, 2, 1, 2), 512, dtype=torch.int32)
    rgb = yuv_to_rgb(luma, chroma, 1, 2, matrix="bt709", bits=10, full_range=True)
    assert torch.allclose(rgb[0, :, 0], torch.tensor([[0.0, 1.0]] * 3), atol=1e-6)


@pytest.mark.parametrize("matrix", sorted(MATRICES))
@pytest.mark.parametrize("full_range", [False, True])
def test_each_matrix_gives_back_the_colours_it_encoded(matrix, full_range):
    torch.manual_seed(1)
    rgb = torch.rand(2, 3, 8, 8)
    luma, chroma = encode(rgb, matrix, 10, full_range)
    back = yuv_to_rgb(luma, chroma, 8, 8, matrix=matrix, bits=10, full_range=full_range)
    assert (back - rgb).abs().max() < 3 / 876  # a few 10-bit codes of rounding


def test_another_matrix_reads_the_colours_wrong():
    """The matrix matters: BT.2020 codes read as BT.601 shift saturated colours visibly."""
    rgb = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    luma, chroma = encode(rgb, "bt2020", 10, False)
    wrong = yuv_to_rgb(luma, chroma, 1, 1, matrix="bt601", bits=10, full_range=False)
    assert (wrong - rgb).abs().max() > 0.03  # 0.047 on green when written: 12 levels of 8 bits


def test_half_size_chroma_is_resized_with_the_luma_to_the_size_asked():
    """4:2:0 planes of a flat colour: any output size, the same colour everywhere."""
    rgb = torch.tensor([0.2, 0.6, 0.3]).view(1, 3, 1, 1)
    luma, chroma = encode(rgb, "bt2020", 10, False)
    luma, chroma = luma.expand(3, 1, 36, 64), chroma.expand(3, 2, 18, 32)
    for height, width in [(18, 32), (27, 48), (72, 128)]:
        out = yuv_to_rgb(luma, chroma, height, width, matrix="bt2020", bits=10, full_range=False)
        assert out.shape == (3, 3, height, width)
        assert (out - rgb).abs().max() < 2e-3


def test_a_shrunk_picture_is_the_picture_converted_then_shrunk():
    """Resizing the planes before the (linear) matrix is resizing R'G'B' after it."""
    torch.manual_seed(2)
    rgb = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 96), 3, stride=1, padding=1)  # some structure
    luma, chroma = encode(rgb, "bt709", 12, False)
    shrunk = yuv_to_rgb(luma, chroma, 24, 40, matrix="bt709", bits=12, full_range=False)
    expected = resize_planes(yuv_to_rgb(luma, chroma, 64, 96, matrix="bt709", bits=12, full_range=False), 24, 40)
    assert (shrunk - expected).abs().max() < 1e-4


@pytest.mark.parametrize("luma_shape,chroma_shape,kwargs,words", [
    ((1, 1, 4, 4), (1, 2, 2, 2), {"matrix": "bt2100"}, "matrix"),
    ((1, 3, 4, 4), (1, 2, 2, 2), {}, "planes"),
    ((1, 1, 4, 4), (2, 2, 2, 2), {}, "planes"),
    ((1, 1, 4, 4), (1, 2, 2, 2), {"bits": 7}, "bits"),
])
def test_bad_planes_or_parameters_are_refused(luma_shape, chroma_shape, kwargs, words):
    args = {"matrix": "bt2020", "bits": 10, "full_range": False, **kwargs}
    with pytest.raises(ValueError, match=words):
        yuv_to_rgb(torch.zeros(luma_shape, dtype=torch.int32), torch.zeros(chroma_shape, dtype=torch.int32), 2, 2, **args)


def test_uint16_planes_as_a_decoder_gives_them():
    luma = torch.full((1, 1, 2, 2), 940, dtype=torch.uint16)
    chroma = torch.full((1, 2, 1, 1), 512, dtype=torch.uint16)
    assert torch.allclose(yuv_to_rgb(luma, chroma, 2, 2, matrix="bt2020", bits=10, full_range=False),
                          torch.ones(1, 3, 2, 2), atol=1e-6)
