"""The hold scan of :mod:`kernels.hold` as one compiled loop over the pixels, for CPU tensors.

The torch kernel decides each pixel with a chain of whole-tile operations (gather the held and
the new colour per channel, subtract, square, add, two square roots, compare), each a pass over
memory: about 36 ns a pixel on one thread, the largest of a GIF job's kernels. The same decision
as one loop touches each pixel once and skips the pixels whose index did not change: on the
previews library's resized clips (every run of a clip, one thread, best of 5) 3.3-5x as fast
(animation 0.086 -> 0.026 s, film grain 0.147 -> 0.030 s), with the same indices.

Same indices, not nearly: the errors are exact integers held in float32 (at most 3 x 255^2), and
the comparison is the torch kernel's, in float32: the square roots rounded to float32, the margin
rounded to float32 and added in float32. tests/kernels/test_hold.py checks both give identical
indices on random clips, with and without the colours of a previous palette on screen.

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "hold_scan"]


def hold_scan(pixels: np.ndarray, rows: np.ndarray, colours: np.ndarray, margin: np.float32, out: np.ndarray,
              screen: np.ndarray, has_screen: bool, keep: int) -> None:
    """In place on ``out`` (uint8 [N, P], C order: each instant's remapped indices, as
    ``hold_indices`` starts from them): each changed pixel keeps the index it showed at the
    instant before (or the colour on screen, shown as index ``keep``: :data:`kernels.hold.KEEP`)
    when that colour is at most ``margin`` farther from its source colour than the new one. ``pixels`` uint8 [U, P, 3] (any strides) are
    the source frames, ``rows`` int64 [N] the frame on screen at each instant, ``colours`` float32
    [256, 3] the palette (rows past it unused), ``screen`` uint8 [P, 3] the colours on screen
    before the first instant when ``has_screen`` (else any [0, 3] array)."""
    count, size = out.shape
    sqrt = np.sqrt
    for k in range(count):
        if k > 0 and rows[k] == rows[k - 1]:
            out[k, :] = out[k - 1, :]
            continue
        if k == 0 and not has_screen:
            continue
        now = out[k]
        source = pixels[rows[k]]
        earlier = pixels[rows[k - 1]] if k > 0 else source  # a view made in the loop costs 1.8x
        for i in range(size):
            held = out[k - 1, i] if k > 0 else keep
            if k > 0 and has_screen and held == keep:  # kept, and its source unchanged: stays kept
                if source[i, 0] == earlier[i, 0] and source[i, 1] == earlier[i, 1] and source[i, 2] == earlier[i, 2]:
                    now[i] = keep
                    continue
            new = now[i]
            if new == held:
                continue
            red, green, blue = np.float32(source[i, 0]), np.float32(source[i, 1]), np.float32(source[i, 2])
            if held == keep:
                a = np.float32(screen[i, 0]) - red
                b = np.float32(screen[i, 1]) - green
                c = np.float32(screen[i, 2]) - blue
            else:
                a, b, c = colours[held, 0] - red, colours[held, 1] - green, colours[held, 2] - blue
            held_error = a * a + b * b + c * c
            a, b, c = colours[new, 0] - red, colours[new, 1] - green, colours[new, 2] - blue
            new_error = a * a + b * b + c * c
            if sqrt(held_error) <= sqrt(new_error) + margin:
                now[i] = held


SCAN = compile_loop(hold_scan, lambda nb: nb.void(nb.uint8[:, :, :], nb.int64[::1], nb.float32[:, ::1], nb.float32,
                                                  nb.uint8[:, ::1], nb.uint8[:, :], nb.boolean, nb.uint8))
"""The compiled :func:`hold_scan`, or None when numba is not installed."""
