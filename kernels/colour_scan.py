"""8-bit 4:2:0 and 4:2:2 Y'CbCr -> RGB as one compiled loop, for the CPU decoder's frames: the
arithmetic of :func:`kernels.colour.yuv420_to_rgb` with ``chroma="bilinear"``, on the decoder's
planes as they are (4:2:2's chroma rows are the luma's: the row interpolation keeps them).

Why not FFmpeg's scaler, which the CPU path used until 2026-12-05: its unscaled 8-bit 4:2:0 ->
RGB24 converter (what PyAV's ``reformat`` takes at the same size) repeats each chroma sample over
its 2x2 block and rounds down, so every picture came out about one level dark (mean -0.6 to -1.4
a channel) and, on four library clips' frames made 4:2:0 by zimg from 4:4:4 masters (960x540),
43.0-46.6 dB from the master where this conversion gives 50.1-54.2 (bench/colour_conversion.py,
bench/results/colour-conversion.md). The scaler's accurate path (``ACCURATE_RND |
FULL_CHR_H_INT``) lands as close, at 3.2-3.7 ms a 960x540 frame; this loop takes 0.60-0.67 ms,
the inexact converter 0.26 (its SIMD code), the torch kernel 12-14 ms on one CPU thread.

Each output row's chroma is interpolated once between its two chroma rows (centre siting, as
``interpolate(align_corners=False)`` weighs them), then spread over the row (co-siting: even
columns take the sample, odd ones the mean of two), then each pixel is converted in a loop with
neither a branch nor a call per value (a first version with both took 2.4-2.5 ms a frame): float32
throughout in the torch kernel's order of operations, rounded half to even by adding and taking
away 1.5 x 2^23 (what ``torch.round`` gives, for values this small), clamped. tests/kernels/test_colour_scan.py holds the loop to
the torch kernel's bytes (noise and clip frames, odd sizes, both ranges, BT.601 and BT.709).

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the CPU
decoder runs the torch kernel instead: the same bytes).
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "colour_scan"]


def colour_scan(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray, width: int, coefficients: np.ndarray,
                out: np.ndarray) -> None:
    """``out`` (uint8 [H, W x 3], rows of RGB triplets) from the planes ``luma`` (uint8 [H, >= W]),
    ``cb`` and ``cr`` (uint8 [ceil(H/2) or H, >= ceil(W/2)]; rows may be longer than the picture, as a
    decoder's padded lines are), ``width`` W; ``coefficients`` float32 [7]: (luma offset, luma gain,
    chroma gain, R<-Cr, G<-Cb, G<-Cr, B<-Cb), :func:`kernels.colour.conversion_coefficients`."""
    height = out.shape[0]
    chroma_rows = cb.shape[0]
    chroma_width = (width + 1) // 2
    offset, luma_gain, chroma_gain = coefficients[0], coefficients[1], coefficients[2]
    r_cr, g_cb, g_cr, b_cb = coefficients[3], coefficients[4], coefficients[5], coefficients[6]
    half, centre, zero, one, white = np.float32(0.5), np.float32(128.0), np.float32(0.0), np.float32(1.0), np.float32(255.0)
    nearest = np.float32(12582912.0)  # 1.5 x 2^23: adding and taking it away rounds a float32 half to even
    scale = np.float32(chroma_rows) / np.float32(height)
    blue_row = np.empty(chroma_width + 1, dtype=np.float32)
    red_row = np.empty(chroma_width + 1, dtype=np.float32)
    blue = np.empty(2 * chroma_width, dtype=np.float32)
    red = np.empty(2 * chroma_width, dtype=np.float32)
    for y in range(height):
        source = scale * (np.float32(y) + half) - half
        if source < zero:
            source = zero
        above = int(source)
        beneath = above + 1 if above < chroma_rows - 1 else above
        lower = source - np.float32(above)
        upper = one - lower
        cb_above, cb_beneath, cr_above, cr_beneath = cb[above], cb[beneath], cr[above], cr[beneath]
        for c in range(chroma_width):
            blue_row[c] = upper * np.float32(cb_above[c]) + lower * np.float32(cb_beneath[c])
            red_row[c] = upper * np.float32(cr_above[c]) + lower * np.float32(cr_beneath[c])
        blue_row[chroma_width] = blue_row[chroma_width - 1]  # the last column repeats the edge sample
        red_row[chroma_width] = red_row[chroma_width - 1]
        for c in range(chroma_width):  # even columns take the sample, odd ones the mean of two
            blue[2 * c] = (blue_row[c] - centre) * chroma_gain
            blue[2 * c + 1] = ((blue_row[c] + blue_row[c + 1]) * half - centre) * chroma_gain
            red[2 * c] = (red_row[c] - centre) * chroma_gain
            red[2 * c + 1] = ((red_row[c] + red_row[c + 1]) * half - centre) * chroma_gain
        row, target = luma[y], out[y]
        for x in range(width):
            light = (np.float32(row[x]) - offset) * luma_gain
            r = light + r_cr * red[x]
            g = light + g_cb * blue[x] + g_cr * red[x]
            b = light + b_cb * blue[x]
            target[3 * x] = min(max((r + nearest) - nearest, zero), white)
            target[3 * x + 1] = min(max((g + nearest) - nearest, zero), white)
            target[3 * x + 2] = min(max((b + nearest) - nearest, zero), white)

SCAN = compile_loop(colour_scan, lambda nb: nb.void(nb.uint8[:, ::1], nb.uint8[:, ::1], nb.uint8[:, ::1], nb.int64,
                                                    nb.float32[::1], nb.uint8[:, ::1]))
"""The compiled :func:`colour_scan`, or None when numba is not installed."""
