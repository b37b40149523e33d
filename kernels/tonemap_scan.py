"""The HDR to SDR tone map of :mod:`kernels.tonemap` as one compiled loop over the pixels, for CPU
tensors.

The torch kernel maps each tile of 32 Ki pixels through about twenty whole-tile operations (the
transfer's table, HLG's OOTF, the primaries, the roll-off, the square root, the output
table), each a pass over the tile: 45 PQ frames at 960x540 (23 M pixels) took it 0.52-0.66 s on
one thread (0.73 s since its steps are the ones this loop repeats exactly). This loop reads each
pixel's three uint16 codes once and writes its three bytes channels last, the layout the remap
reads, so neither the int32 copy of the decoder's frames nor a transposing copy at the end is
made; planar float frames (the resizing fit's) become codes in one compiled pass first
(:func:`planes_to_codes`: the same 45 frames as planar floats 0.26-0.28 s in all, against
0.47-0.55 s when torch ops made the codes frame by frame; one thread, five runs each). Taken pixel by pixel, the same steps cost 15 ns a pixel
(0.35 s): a chain of divisions and a square root per channel, with little to overlap. So each
block of :data:`BLOCK` pixels goes in three passes: the table reads, then the arithmetic alone,
which compiles to vector instructions (8 pixels at once), then the output table: 5.5 ns a pixel,
0.13 s for the 45 frames. A PQ GIF job at source size 1.64-1.92 s -> 1.29-1.44 s (its decode
stage, where the tone map runs, 0.97-1.21 -> 0.61-0.73 s).

Same bytes, not nearly: every step is the torch kernel's float32 operation in the torch kernel's
order (the constants rounded to float32 as torch rounds a Python scalar; no fused multiply-add,
which numba does not make without ``fastmath``). Two steps are taken in float64 and rounded on
both sides: HLG's power (float32 ``pow`` differs by an ulp between libm and torch's vectorised
path) and the square root (torch's float32 ``sqrt`` on the CPU is MKL's, which moved one output
code in a million). tests/kernels/test_tonemap.py compares the two on random codes over all 16
bits, a ramp, black and full scale, out-of-range codes and a NaN, PQ and HLG, each caller's input
kind.

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["CODES", "SCAN", "planes_to_codes", "tonemap_scan"]


BLOCK = 256
"""Pixels looked up, mapped and written at a time: the middle pass over a block has no table
lookups, so it compiles to vector instructions."""


def tonemap_scan(codes: np.ndarray, hlg: bool, signal: np.ndarray, output: np.ndarray, primaries: np.ndarray,
                 luma: np.ndarray, curve: np.ndarray, lift_power: float, out: np.ndarray) -> None:
    """``out`` (uint8 [P, 3]): the SDR colours of ``codes`` (uint16 [P, 3]: non-linear HDR R'G'B'
    as 16-bit codes). ``signal`` float32 [65536] is the transfer's inverse at each code,
    ``output`` uint8 [65536] the SDR code at each step of sqrt(display light), ``primaries``
    float32 [3, 3] the frames' primaries -> BT.709 (BT.2020's, P3's, ...); for HLG, ``luma`` float32 [3] the
    BT.2020 luma weights and ``lift_power`` the OOTF's gamma - 1; ``curve`` float32 [3] the
    constants as torch rounds Python scalars (the knee, the roll-off's rate, HLG's OOTF scale):
    :func:`kernels.tonemap.scan_curve`.

    Each block of :data:`BLOCK` pixels goes in three passes (the module's docstring says why):
    the transfer's table (and HLG's OOTF), the arithmetic, the output table."""
    count = codes.shape[0]
    knee, rate, ootf_scale = curve[0], curve[1], curve[2]
    m00, m01, m02 = primaries[0, 0], primaries[0, 1], primaries[0, 2]
    m10, m11, m12 = primaries[1, 0], primaries[1, 1], primaries[1, 2]
    m20, m21, m22 = primaries[2, 0], primaries[2, 1], primaries[2, 2]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    tiny = np.float32(1e-6)
    steps = np.float32(65535.0)
    half = np.float32(0.5)
    light = np.empty((3, BLOCK), np.float32)
    index = np.empty((3, BLOCK), np.int32)
    lr, lg, lb = light[0], light[1], light[2]
    ir, ig, ib = index[0], index[1], index[2]
    for start in range(0, count, BLOCK):
        size = min(BLOCK, count - start)
        for q in range(size):
            lr[q] = signal[codes[start + q, 0]]
            lg[q] = signal[codes[start + q, 1]]
            lb[q] = signal[codes[start + q, 2]]
        if hlg:  # the BT.2100 OOTF: scene light times luma^(gamma - 1), then the display's peak
            for q in range(size):
                r, g, u = lr[q], lg[q], lb[q]
                lift = np.float32(np.float64(max(r * luma[0] + g * luma[1] + u * luma[2], tiny)) ** lift_power)
                lr[q], lg[q], lb[q] = r * lift * ootf_scale, g * lift * ootf_scale, u * lift * ootf_scale
        for q in range(size):  # no lookups, no calls, selects for max/min: vectorised
            r, g, u = lr[q], lg[q], lb[q]
            red = m00 * r + m01 * g + m02 * u
            red = red if red > zero else zero
            green = m10 * r + m11 * g + m12 * u
            green = green if green > zero else zero
            blue = m20 * r + m21 * g + m22 * u
            blue = blue if blue > zero else zero
            top = red if red > green else green
            top = top if top > blue else blue
            top = top if top > tiny else tiny
            excess = top - knee
            excess = excess if excess > zero else zero
            mapped = knee + excess / (one + excess * rate)
            mapped = top if top < knee else mapped
            scale = mapped / top
            x = red * scale
            ir[q] = np.int32(np.sqrt(x if x < one else one) * steps + half)
            x = green * scale
            ig[q] = np.int32(np.sqrt(x if x < one else one) * steps + half)
            x = blue * scale
            ib[q] = np.int32(np.sqrt(x if x < one else one) * steps + half)
        for q in range(size):
            out[start + q, 0] = output[ir[q]]
            out[start + q, 1] = output[ig[q]]
            out[start + q, 2] = output[ib[q]]


SCAN = compile_loop(tonemap_scan, lambda nb: nb.void(
    nb.uint16[:, ::1], nb.boolean, nb.float32[::1], nb.uint8[::1], nb.float32[:, ::1], nb.float32[::1], nb.float32[::1],
    nb.float64, nb.uint8[:, ::1]), vectorise_division=True)  # its divisors are > 0
"""The compiled :func:`tonemap_scan`, or None when numba is not installed."""


def planes_to_codes(planes: np.ndarray, out: np.ndarray) -> None:
    """``out`` (uint16 [P, 3]): float R'G'B' planes (float32 [3, P], what the resizing fit gives)
    as 16-bit codes, the torch kernel's ``_codes`` step for step (clamped to [0, 1], times 65535,
    plus a half, truncated; a NaN is code 0): one pass that also interleaves the channels,
    instead of four torch passes and a transposing copy a frame."""
    count = planes.shape[1]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    scale = np.float32(65535.0)
    half = np.float32(0.5)
    for c in range(3):
        row = planes[c]
        for p in range(count):
            x = row[p]
            if x != x:  # NaN
                out[p, c] = 0
                continue
            x = x if x > zero else zero
            x = x if x < one else one
            out[p, c] = np.uint16(np.int32(x * scale + half))


CODES = compile_loop(planes_to_codes, lambda nb: nb.void(nb.float32[:, ::1], nb.uint16[:, ::1]))
"""The compiled :func:`planes_to_codes`, or None when numba is not installed."""
