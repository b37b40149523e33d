"""Ordered-dither thresholds: what remap adds to pixels before quantising."""

import pytest
import torch

from animated_previews.kernels.dither import bayer_matrix, dither_pattern


def test_order_2_is_the_classic_4x4_bayer_matrix():
    classic = torch.tensor([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=torch.float32)
    assert torch.equal(bayer_matrix(2), (classic + 0.5) / 16 - 0.5)


@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_thresholds_are_evenly_spaced_zero_mean_and_inside_half_open_unit_interval(order):
    matrix = bayer_matrix(order)
    n = 1 << order
    assert matrix.shape == (n, n)
    assert matrix.dtype == torch.float32
    expected_levels = (torch.arange(n * n, dtype=torch.float32) + 0.5) / (n * n) - 0.5
    assert torch.equal(matrix.flatten().sort().values, expected_levels)
    assert matrix.sum().abs().item() < 1e-5
    assert matrix.min() >= -0.5 and matrix.max() < 0.5


def test_neighbouring_thresholds_are_far_apart_so_the_pattern_is_fine_grained():
    matrix = bayer_matrix(3)
    # Horizontally adjacent thresholds (including across the tile seam) differ by over a third of the range.
    assert (matrix - torch.roll(matrix, 1, dims=1)).abs().min() > 1 / 3
    # Every aligned 2x2 block already spans most of the range.
    blocks = matrix.view(4, 2, 4, 2).permute(0, 2, 1, 3).reshape(16, 4)
    assert (blocks.max(1).values - blocks.min(1).values).min() >= 0.7


def test_pattern_tiles_the_matrix_over_the_frame():
    pattern = dither_pattern(20, 30, order=3)
    assert pattern.shape == (1, 20, 30)
    tile = bayer_matrix(3)
    assert torch.equal(pattern[0, :8, :8], tile)
    assert torch.equal(pattern[0, 8:16, 16:24], tile)
    assert torch.equal(pattern[0, 16:20, 24:30], tile[:4, :6])


def test_per_channel_pattern_gives_each_channel_its_own_zero_mean_tiling():
    pattern = dither_pattern(16, 16, order=3, per_channel=True)
    assert pattern.shape == (3, 16, 16)
    assert not torch.equal(pattern[0], pattern[1])
    assert not torch.equal(pattern[1], pattern[2])
    assert not torch.equal(pattern[0], pattern[2])
    tile_means = pattern.view(3, 2, 8, 2, 8).mean(dim=(2, 4))
    assert tile_means.abs().max() < 1e-5


def test_device_argument_is_respected():
    assert bayer_matrix(2, device="cpu").device.type == "cpu"
    assert dither_pattern(4, 4, device=torch.device("cpu")).device.type == "cpu"


def test_negative_order_is_rejected():
    with pytest.raises(ValueError):
        bayer_matrix(-1)
