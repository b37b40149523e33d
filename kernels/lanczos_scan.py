"""The Lanczos resize of :mod:`kernels.resize` as compiled loops, for CPU tensors.

Each output value is a weighted sum of up to ``taps`` neighbours along one axis: first down the
columns (source rows combined into one row of the output height), then along that row. The
column pass adds whole source rows, each scaled by its weight: contiguous, so LLVM vectorises it;
four rows a step (one read and write of the sums per four rows, not per row: 1920x1080 ->
480x270, 24 taps each way, 3.8 -> 2.8 ms a frame for this pass on the project's VM; splitting the
rows into cache-sized strips made it slower: the pass is arithmetic-bound). The row pass is a dot
product per output pixel over its window, one running sum per channel (three independent chains
for RGB): transposing the column pass's rows so that the row pass too could add whole rows cost
more in the transpose than it saved (5.8-6.0 ms a 1080p frame against 4.3; 640x360 -> 480x270
1.34 against 1.40-1.49 ms; 960x540 2.3 against 2.1).

- :func:`lanczos_bytes`, uint8 RGB in and out, in fixed point: weights in 1/2^14ths (each
  output's summing to 2^14 exactly, so a flat colour stays that colour), the column pass's sums
  kept with 7 fractional bits, the row pass's rounded and clamped to bytes. Integer sums do not
  depend on their order, so the torch kernel (GPU tensors, or no numba) gives the same bytes
  (tests/kernels/test_resize.py).
- :func:`lanczos_floats`, float32 planes in and out (HDR codes and Y'CbCr planes, before their
  tone map): no rounding, no clamping; within float rounding of the torch kernel (the column
  pass adds its terms in another order).

Compiled by :func:`kernels.compiled.compile_loop` (each ``SCAN_*`` is None without numba).
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["FRACTION_BITS", "MIDDLE_BITS", "SCAN_BYTES", "SCAN_FLOATS", "lanczos_bytes", "lanczos_floats"]

FRACTION_BITS = 14
"""The fixed-point weights are whole numbers of 1/2^14ths."""
MIDDLE_BITS = 7
"""Fractional bits the column pass keeps for the row pass. A window's weights' sizes sum to 1.2-1.4
at the usual sizes (1.37-1.40 inside the picture) and at most 1.57 (4 -> 5 pixels, where the
picture's edge cuts the window and the rest is renormalised; tests/kernels/test_resize.py), so the
row pass's sums stay within
255 x 1.57 x 2^7 x 2^14 x 1.57 = 1.23 x 2^30, under int32's 2^31."""


def lanczos_bytes(src: np.ndarray, row_starts: np.ndarray, row_weights: np.ndarray,
                  col_starts: np.ndarray, col_weights: np.ndarray, out: np.ndarray) -> None:
    """``out`` (uint8 [N, h, w x 3]): ``src`` (uint8 [N, H, W x 3], rows of RGB triplets)
    resampled: output row ``o`` is source rows ``row_starts[o]`` onwards times ``row_weights[o]``
    (int32, 1/2^14ths), output column ``x`` likewise from the columns."""
    count, _, values = src.shape
    height, width, taps = row_starts.shape[0], col_starts.shape[0], col_weights.shape[1]
    line = np.empty(values, np.int32)
    down = np.int32(1) << (MIDDLE_BITS - 1)
    last = 2 * FRACTION_BITS - MIDDLE_BITS
    half = np.int32(1) << (last - 1)
    for n in range(count):
        frame, target = src[n], out[n]
        for o in range(height):
            for j in range(values):
                line[j] = down
            _add_rows_u8(line, frame, row_starts[o], row_weights[o])
            for j in range(values):
                line[j] = line[j] >> MIDDLE_BITS
            row = target[o]
            for x in range(width):
                window, weights = line[col_starts[x] * 3 : (col_starts[x] + taps) * 3], col_weights[x]
                red, green, blue = half, half, half
                for k in range(taps):  # kept in int32 (numba's integers are int64): the pass runs 2x faster
                    w = weights[k]
                    red = np.int32(red + np.int32(w * window[3 * k]))
                    green = np.int32(green + np.int32(w * window[3 * k + 1]))
                    blue = np.int32(blue + np.int32(w * window[3 * k + 2]))
                red, green, blue = red >> last, green >> last, blue >> last
                row[3 * x] = 0 if red < 0 else (255 if red > 255 else red)
                row[3 * x + 1] = 0 if green < 0 else (255 if green > 255 else green)
                row[3 * x + 2] = 0 if blue < 0 else (255 if blue > 255 else blue)


def lanczos_floats(src: np.ndarray, row_starts: np.ndarray, row_weights: np.ndarray,
                   col_starts: np.ndarray, col_weights: np.ndarray, out: np.ndarray) -> None:
    """:func:`lanczos_bytes` for float32 planes (``src`` [N, H, W], ``out`` [N, h, w]) and float32
    weights: no rounding, no clamping."""
    count, _, values = src.shape
    height, width, taps = row_starts.shape[0], col_starts.shape[0], col_weights.shape[1]
    line = np.empty(values, np.float32)
    for n in range(count):
        frame, target = src[n], out[n]
        for o in range(height):
            for j in range(values):
                line[j] = 0
            _add_rows_f32(line, frame, row_starts[o], row_weights[o])
            row = target[o]
            for x in range(width):
                window, weights = line[col_starts[x] : col_starts[x] + taps], col_weights[x]
                total = np.float32(0)
                for k in range(taps):
                    total += weights[k] * window[k]
                row[x] = total


def _add_rows(acc: np.ndarray, rows: np.ndarray, start: int, weights: np.ndarray) -> None:
    """``acc += sum_k weights[k] * rows[start + k]`` (the column pass), four rows a step, then the rest
    one by one."""
    taps = weights.shape[0]
    whole = taps - taps % 4
    for k in range(0, whole, 4):
        w0, w1, w2, w3 = weights[k], weights[k + 1], weights[k + 2], weights[k + 3]
        r0, r1, r2, r3 = rows[start + k], rows[start + k + 1], rows[start + k + 2], rows[start + k + 3]
        for j in range(acc.shape[0]):
            acc[j] += w0 * r0[j] + w1 * r1[j] + w2 * r2[j] + w3 * r3[j]
    for k in range(whole, taps):
        w, r = weights[k], rows[start + k]
        for j in range(acc.shape[0]):
            acc[j] += w * r[j]


_add_rows_u8 = compile_loop(_add_rows, lambda nb: nb.void(nb.int32[::1], nb.uint8[:, ::1], nb.int64, nb.int32[::1]),
                            inline=True)
""":func:`_add_rows` for :func:`lanczos_bytes` (int32 sums of bytes), compiled into it."""
_add_rows_f32 = compile_loop(_add_rows, lambda nb: nb.void(nb.float32[::1], nb.float32[:, ::1], nb.int64,
                                                           nb.float32[::1]), inline=True)
""":func:`_add_rows` for :func:`lanczos_floats`, compiled into it."""

SCAN_BYTES = compile_loop(lanczos_bytes, lambda nb: nb.void(
    nb.uint8[:, :, ::1], nb.int32[::1], nb.int32[:, ::1], nb.int32[::1], nb.int32[:, ::1], nb.uint8[:, :, ::1]))
"""The compiled :func:`lanczos_bytes`, or None when numba is not installed."""

SCAN_FLOATS = compile_loop(lanczos_floats, lambda nb: nb.void(
    nb.float32[:, :, ::1], nb.int32[::1], nb.float32[:, ::1], nb.int32[::1], nb.float32[:, ::1], nb.float32[:, :, ::1]))
"""The compiled :func:`lanczos_floats`, or None when numba is not installed."""
