"""The colour histogram of :mod:`kernels.histogram` as one compiled loop over the sampled pixels,
for CPU tensors.

The torch kernel counts each pixel through a dozen whole-tile integer operations and two
``index_add_`` passes; one loop reads each sampled pixel once, adds one to its bin and its colour
to the bin's sums. The counts are the same, and so are the sums: exact integers here (int64),
as in the torch kernel, rounded to float32 the same way at the end (tests/kernels/test_histogram.py
compares the two on random clips, every stride and bit depth).

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "histogram_scan"]


def histogram_scan(pixels: np.ndarray, bits: int, counts: np.ndarray, sums: np.ndarray) -> None:
    """Add every pixel of ``pixels`` (uint8 [N, 3, H, W], any strides) to ``counts`` (int64
    [2^(3 bits)]) and its colour to ``sums`` (int64 [2^(3 bits), 3]), bins numbered as
    :func:`kernels.histogram.bin_index` numbers them."""
    shift = 8 - bits
    frames, _, height, width = pixels.shape
    for n in range(frames):
        for y in range(height):
            for x in range(width):
                red, green, blue = pixels[n, 0, y, x], pixels[n, 1, y, x], pixels[n, 2, y, x]
                index = (((red >> shift) << bits | (green >> shift)) << bits) | (blue >> shift)
                counts[index] += 1
                sums[index, 0] += red
                sums[index, 1] += green
                sums[index, 2] += blue


SCAN = compile_loop(histogram_scan, lambda nb: nb.void(nb.uint8[:, :, :, :], nb.int64, nb.int64[::1], nb.int64[:, ::1]))
"""The compiled :func:`histogram_scan`, or None when numba is not installed."""
