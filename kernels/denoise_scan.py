"""The temporal denoise of :mod:`kernels.denoise` as one compiled loop, for CPU tensors.

The torch kernel adds each neighbour frame to an int32 copy of the clip under a per-pixel gate,
a handful of whole-frame passes per neighbour; the loop reads each pixel's neighbours once and
writes its mean, with the same integer arithmetic (a sum, a count, rounded half up), so the
bytes are the same (tests/kernels/test_denoise.py compares the two): 45 frames of the previews
library's talking head (640x360), one thread, 0.21 s, against 1.6-2.0 s for the torch kernel. A
branch-free inner loop (the gate as a 0/1 factor) was slower there, 0.26-0.29 s.

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "denoise_scan"]


def denoise_scan(pixels: np.ndarray, radius: int, threshold: int, out: np.ndarray) -> None:
    """``out`` (uint8 [U, P, 3]): each pixel of ``pixels`` (uint8 [U, P, 3], frames in time order)
    averaged with the same pixel of the frames up to ``radius`` before and after it whose every
    channel is within ``threshold`` of it (the frames past either end are not there)."""
    count, size, _ = pixels.shape
    sums = np.empty((size, 3), dtype=np.int32)
    taken = np.empty(size, dtype=np.int32)
    for t in range(count):
        frame, target = pixels[t], out[t]
        for i in range(size):
            sums[i, 0], sums[i, 1], sums[i, 2] = frame[i, 0], frame[i, 1], frame[i, 2]
            taken[i] = 1
        for n in range(max(t - radius, 0), min(t + radius, count - 1) + 1):
            if n == t:
                continue
            other = pixels[n]  # a view per frame, not per pixel: numba counts references on it
            for i in range(size):
                r, g, b = np.int32(other[i, 0]), np.int32(other[i, 1]), np.int32(other[i, 2])
                if (abs(r - np.int32(frame[i, 0])) <= threshold and abs(g - np.int32(frame[i, 1])) <= threshold
                        and abs(b - np.int32(frame[i, 2])) <= threshold):
                    sums[i, 0] += r
                    sums[i, 1] += g
                    sums[i, 2] += b
                    taken[i] += 1
        for i in range(size):
            half = taken[i]
            target[i, 0] = (2 * sums[i, 0] + half) // (2 * half)
            target[i, 1] = (2 * sums[i, 1] + half) // (2 * half)
            target[i, 2] = (2 * sums[i, 2] + half) // (2 * half)

SCAN = compile_loop(denoise_scan, lambda nb: nb.void(nb.uint8[:, :, ::1], nb.int64, nb.int64, nb.uint8[:, :, ::1]))
"""The compiled :func:`denoise_scan`, or None when numba is not installed."""
