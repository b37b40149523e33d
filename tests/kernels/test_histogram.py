"""Colour histogram on a coarse RGB grid with exact per-bin sums."""

import pytest
import torch

import animated_previews.kernels.histogram as histogram_module
from animated_previews.kernels import histogram_scan
from animated_previews.kernels.histogram import bin_index, colour_histogram


def random_frames(n=3, height=20, width=30, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=generator)


def phase(k, stride):
    """Frame k's first sampled row and column: the phase turns frame by frame."""
    return k % (stride * stride) % stride, (k % (stride * stride) // stride + k % (stride * stride)) % stride


def reference_histogram(frames, bits, stride):
    pixels = [frames[k, :, phase(k, stride)[0]::stride, phase(k, stride)[1]::stride].reshape(3, -1)
              for k in range(frames.shape[0])]
    sampled = torch.cat(pixels, 1).long()
    index = (sampled[0] >> (8 - bits) << (2 * bits)) | (sampled[1] >> (8 - bits) << bits) | (sampled[2] >> (8 - bits))
    counts = torch.bincount(index, minlength=1 << (3 * bits))
    sums = [torch.bincount(index, weights=sampled[c].double(), minlength=1 << (3 * bits)) for c in range(3)]
    return counts, torch.stack(sums, 1)


def test_bins_are_numbered_red_major():
    quantised = torch.tensor([[1], [2], [3]], dtype=torch.int32)
    assert bin_index(quantised, 5).item() == (1 << 10) | (2 << 5) | 3


@pytest.mark.parametrize("bits,stride", [(5, 1), (5, 2), (4, 3), (7, 1), (3, 1), (1, 1)])
def test_counts_and_sums_match_a_direct_computation(bits, stride):
    frames = random_frames()
    counts, sums = colour_histogram(frames, bits=bits, sample_stride=stride)
    ref_counts, ref_sums = reference_histogram(frames, bits, stride)
    assert counts.dtype == torch.int64 and sums.dtype == torch.float32
    assert torch.equal(counts, ref_counts)
    assert torch.equal(sums.double(), ref_sums)


def test_a_turning_phase_sees_every_pixel_of_a_still_picture_over_four_frames():
    still = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    still[0, 0, 1::2, 1::2] = 255  # red only on odd rows and odd columns: a fixed phase never sees it
    frames = still.expand(4, 3, 8, 8).contiguous()
    counts, _ = colour_histogram(frames, bits=5, sample_stride=2)
    red = bin_index(torch.tensor([[31], [0], [0]]), 5).item()
    assert counts[red].item() == 16 and counts.sum().item() == 64  # a quarter of each frame, each pixel once
    assert colour_histogram(frames[:1], bits=5, sample_stride=2)[0][red].item() == 0  # frame 0 alone: phase (0, 0)


def test_channels_last_input_gives_the_same_histogram():
    frames = random_frames(2, 17, 23, seed=4)
    planar = colour_histogram(frames, 5, 2)
    nhwc = colour_histogram(frames.contiguous(memory_format=torch.channels_last), 5, 2)
    assert torch.equal(planar[0], nhwc[0]) and torch.equal(planar[1], nhwc[1])


def test_clip_longer_than_one_chunk_is_counted_completely(monkeypatch):
    monkeypatch.setattr(histogram_module, "_CHUNK_PIXELS", 600)  # 1 frame of 20x30 per chunk
    frames = random_frames(5)
    counts, sums = colour_histogram(frames, 5, 1)
    ref_counts, ref_sums = reference_histogram(frames, 5, 1)
    assert counts.sum().item() == 5 * 20 * 30
    assert torch.equal(counts, ref_counts) and torch.equal(sums.double(), ref_sums)


def test_empty_clip_has_an_empty_histogram():
    counts, sums = colour_histogram(torch.zeros((0, 3, 4, 4), dtype=torch.uint8), 5)
    assert counts.sum().item() == 0 and sums.abs().sum().item() == 0


def test_invalid_arguments_are_rejected():
    frames = random_frames()
    with pytest.raises(ValueError):
        colour_histogram(frames, bits=0)
    with pytest.raises(ValueError):
        colour_histogram(frames, bits=8)
    with pytest.raises(ValueError):
        colour_histogram(frames, sample_stride=0)
    with pytest.raises(ValueError):
        colour_histogram(frames.float())


@pytest.mark.skipif(histogram_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("bits", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_compiled_loop_gives_the_torch_kernels_counts_and_sums(monkeypatch, bits, stride, channels_last):
    gen = torch.Generator().manual_seed(bits * 10 + stride)
    frames = torch.randint(0, 256, (11, 3, 23, 37), dtype=torch.uint8, generator=gen)
    frames[:, :, :8] = 255  # a crowded bin: sums far past one pixel's
    if channels_last:
        frames = frames.contiguous(memory_format=torch.channels_last)

    counts, sums = colour_histogram(frames, bits=bits, sample_stride=stride)
    monkeypatch.setattr(histogram_module, "SCAN", None)
    plain_counts, plain_sums = colour_histogram(frames, bits=bits, sample_stride=stride)

    assert counts.dtype == plain_counts.dtype and sums.dtype == plain_sums.dtype
    assert torch.equal(counts, plain_counts) and torch.equal(sums, plain_sums)
    assert int(counts.sum()) == sum(p.shape[0] * p.shape[2] * p.shape[3] for p in histogram_module._phased(frames, stride))
