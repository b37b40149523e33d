"""The uint8 sharpening after a downscale (:mod:`kernels.resize`) as one compiled loop, for CPU
tensors.

The torch kernel sharpens each band of rows through a dozen int16 operations (cast, pad the
edges, four shifted adds, scale, round, add, clamp): about 1 ms a 480x270 frame on one thread.
One loop over each row's bytes (a pixel's neighbours are 3 bytes away) reads the cross of five
once: 0.42 ms (45 frames: 19 ms against 43-49 ms; splitting off the edge pixels so that the
middle loop has no branch made it slower, 53-63 ms). The
arithmetic is the torch kernel's fixed point, integer for integer (4 x centre - neighbours,
times the weight, plus half, shifted, onto the centre, clamped), so the bytes are the same
(tests/kernels/test_resize.py compares the two).

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors take the float path of :mod:`kernels.resize`.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "sharpen_scan"]


def sharpen_scan(pixels: np.ndarray, weight: int, shift: int, out: np.ndarray) -> None:
    """``out`` (uint8 [N, H, W x 3]): ``pixels`` (uint8 [N, H, W x 3], rows of RGB triplets) moved
    away from the mean of their four neighbours (edges repeated) by ``weight`` / 2^``shift`` of 4x
    the difference."""
    count, height, values = pixels.shape
    half = np.int32(1) << (shift - 1)
    for k in range(count):
        frame, target = pixels[k], out[k]
        for y in range(height):
            above, below = frame[max(y - 1, 0)], frame[min(y + 1, height - 1)]
            row, result = frame[y], target[y]
            for j in range(values):
                left = j - 3 if j >= 3 else j
                right = j + 3 if j + 3 < values else j
                centre = np.int32(row[j])
                ring = np.int32(above[j]) + np.int32(below[j]) + np.int32(row[left]) + np.int32(row[right])
                value = (((4 * centre - ring) * weight + half) >> shift) + centre
                result[j] = min(max(value, 0), 255)

SCAN = compile_loop(sharpen_scan, lambda nb: nb.void(nb.uint8[:, :, ::1], nb.int32, nb.int32, nb.uint8[:, :, ::1]))
"""The compiled :func:`sharpen_scan`, or None when numba is not installed."""
