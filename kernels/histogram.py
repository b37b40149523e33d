"""Colour histogram of a clip on a coarse RGB grid, with exact per-bin mean colours."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["colour_histogram", "bin_index"]

# Pixels per chunk. Small enough that the int32/float32 scratch buffers (~4 B x 3 channels
# per pixel) stay in the tens of MB and are reused from chunk to chunk: on CPU, freshly
# allocated buffers above glibc's mmap threshold cost a page fault per 4 KiB, which made
# whole-clip int32 temporaries several times slower than the arithmetic itself.
_CHUNK_PIXELS = 1 << 20


def bin_index(quantised: Tensor, bits: int, out: Tensor | None = None) -> Tensor:
    """Pack per-channel bin coordinates [3, ...] (integer, channel first) into one index.

    Index = (r << 2*bits) | (g << bits) | b, so the bins of a 2^bits grid are numbered
    0 .. 2^(3*bits) - 1 in (r, g, b) lexicographic order. ``out`` (same shape as one
    channel) avoids allocating a fresh index tensor per call.
    """
    index = quantised[0].clone() if out is None else out.copy_(quantised[0])
    index.bitwise_left_shift_(bits).bitwise_or_(quantised[1])
    index.bitwise_left_shift_(bits).bitwise_or_(quantised[2])
    return index


def colour_histogram(frames: Tensor, bits: int = 5, sample_stride: int = 1) -> tuple[Tensor, Tensor]:
    """Count pixels per colour bin and sum their exact colours.

    frames: uint8 [N, 3, H, W]. Every ``sample_stride``-th row and column is used.
    Returns ``(counts, sums)``: int64 [2^(3*bits)] and float32 [2^(3*bits), 3]. The mean
    colour of a bin, ``sums / counts``, is the true average of its pixels, so a palette
    built from bins is not biased towards bin centres (a 5-bit bin is 8 levels wide; using
    its centre instead of its mean costs ~5 in MSE on typical footage).

    Sums are accumulated as the low bits below the bin (exact small integers, per chunk in
    float32 where they stay below 2^24) and the bin base is added back once at the end.
    """
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 [N, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    if sample_stride < 1:
        raise ValueError(f"sample_stride must be >= 1, got {sample_stride}")
    device = frames.device
    n_bins = 1 << (3 * bits)
    shift = 8 - bits
    low_mask = (1 << shift) - 1
    sampled = frames[:, :, ::sample_stride, ::sample_stride]
    n, _, h, w = sampled.shape
    counts = torch.zeros(n_bins, dtype=torch.int64, device=device)
    low_sums = torch.zeros((3, n_bins), dtype=torch.float64, device=device)
    if n * h * w == 0:
        return counts, low_sums.T.to(torch.float32)
    # Low-bit sums per chunk are at most low_mask * chunk pixels; keep them exact in float32.
    chunk_pixels = _CHUNK_PIXELS if low_mask == 0 else min(_CHUNK_PIXELS, (1 << 24) // low_mask)
    chunk = max(1, chunk_pixels // (h * w))
    # Channel-first scratch buffers [3, frames, h, w] so each channel plane is contiguous.
    values = torch.empty((3, min(chunk, n) * h * w), dtype=torch.int32, device=device)
    low = torch.empty_like(values)
    low_float = torch.empty(values.shape, dtype=torch.float32, device=device)
    index_buffer = torch.empty(values.shape[1], dtype=torch.int32, device=device)
    for start in range(0, n, chunk):
        part = sampled[start : start + chunk]
        size = part.shape[0] * h * w
        v, lo, lf = values[:, :size], low[:, :size], low_float[:, :size]
        v.view(3, -1, h, w).copy_(part.transpose(0, 1))
        torch.bitwise_and(v, low_mask, out=lo)
        v.bitwise_right_shift_(shift)
        index = bin_index(v, bits, out=index_buffer[:size])
        counts += _bin_totals(index, None, n_bins)
        if low_mask:
            lf.copy_(lo)
            for c in range(3):
                low_sums[c] += _bin_totals(index, lf[c], n_bins)
    base = _bin_base(bits, device)  # [n_bins, 3] lowest value of each bin
    sums = base * counts.unsqueeze(1).to(torch.float64) + low_sums.T
    return counts, sums.to(torch.float32)


def _bin_totals(index: Tensor, weights: Tensor | None, n_bins: int) -> Tensor:
    """Per-bin count (int64) or weight sum (weights' dtype) of a 1-D int32 index.

    torch.bincount is the fastest on CPU, but on CUDA it reads the largest index back to
    the host to size its output, a synchronisation per call; index_add_ into a fixed-size
    zero tensor does the same job asynchronously.
    """
    if _prefer_bincount(index.device):
        return torch.bincount(index, weights=weights, minlength=n_bins)
    if weights is None:
        ones = torch.ones((), dtype=torch.int64, device=index.device).expand(index.shape[0])
        return torch.zeros(n_bins, dtype=torch.int64, device=index.device).index_add_(0, index, ones)
    return torch.zeros(n_bins, dtype=weights.dtype, device=index.device).index_add_(0, index, weights)


def _prefer_bincount(device: torch.device) -> bool:
    """Whether torch.bincount is the right tool on this device (see :func:`_bin_totals`)."""
    return device.type == "cpu"


def _bin_base(bits: int, device: torch.device) -> Tensor:
    """Lowest 8-bit value of every bin of the 2^bits grid, [2^(3*bits), 3] float64."""
    levels = torch.arange(1 << bits, dtype=torch.float64, device=device) * float(1 << (8 - bits))
    return torch.cartesian_prod(levels, levels, levels)
