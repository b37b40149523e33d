"""The nearest-colour table search of :mod:`kernels.nearest` as one compiled loop, for CPU tensors.

The torch kernel searches blocks of 4x4x4 cells in tiers of fixed shapes (every block against its
8 likeliest colours, the most crowded against 32, then the whole palette), a few dozen whole-array
operations: 12-17 ms a palette on one thread for the blocks a clip's colours touch, paid once per
palette, and a clip with a palette per run of frames makes several. One loop per block does it in
a few milliseconds, and exactly: a colour is a candidate for a block unless its distance to the
block's cells is certainly larger than some colour's farthest distance to them (exact integer
bounds, no tolerance), and every cell takes the nearest candidate, the lowest index on a tie.

So the table is the exact one, always: the torch kernel's wherever that one is exact (every block
with at most 8 candidates but the 1/16 most crowded, of which at most the 1/128 most crowded over
32: true of real palettes, tests/kernels/test_nearest.py compares the two and both with brute
force), and nearer where a palette crowds more blocks than its tiers allow for.

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "nearest_scan"]


def nearest_scan(palette: np.ndarray, lut_bits: int, blocks: np.ndarray, nearest: np.ndarray,
                 distance: np.ndarray) -> None:
    """Search the blocks numbered ``blocks`` (int64 [S], (r * nb + g) * nb + b, nb blocks per
    channel) of the 2^lut_bits-per-channel table: write each of their cells' nearest colour of
    ``palette`` (uint8 [K, 3]) into ``nearest`` (uint8 [n^3]) and 4x its squared distance in
    8-bit levels into ``distance`` (int32 [n^3]), both flat in (r, g, b) order."""
    n = 1 << lut_bits
    edge = 1 << min(2, lut_bits)  # cells per block edge
    per_channel = n // edge  # blocks per channel
    width = 1 << (8 - lut_bits)  # levels per cell
    colours = palette.shape[0]
    doubled = np.empty((colours, 3), dtype=np.int64)
    for p in range(colours):
        for channel in range(3):
            doubled[p, channel] = np.int64(palette[p, channel]) * 2
    candidates = np.empty(colours, dtype=np.int64)
    low = np.empty(3, dtype=np.int64)
    high = np.empty(3, dtype=np.int64)
    corner = np.empty(3, dtype=np.int64)
    for s in range(blocks.shape[0]):
        block = blocks[s]
        corner[0], corner[1], corner[2] = block // (per_channel * per_channel), block // per_channel % per_channel, \
            block % per_channel
        for channel in range(3):  # the doubled centres of the block's first and last cells
            low[channel] = corner[channel] * edge * 2 * width + width - 1
            high[channel] = (corner[channel] * edge + edge - 1) * 2 * width + width - 1
        # bound: the smallest, over the colours, of a colour's farthest distance to the cells
        bound = np.int64(1) << 62
        for p in range(colours):
            farthest = np.int64(0)
            for channel in range(3):
                a, b = doubled[p, channel] - low[channel], doubled[p, channel] - high[channel]
                farthest += max(a * a, b * b)
            bound = min(bound, farthest)
        # candidates: the colours whose nearest distance to the cells' box is within the bound
        count = 0
        for p in range(colours):
            closest = np.int64(0)
            for channel in range(3):
                value = doubled[p, channel]
                gap = max(low[channel] - value, value - high[channel], 0)
                closest += gap * gap
            if closest <= bound:
                candidates[count] = p
                count += 1
        for i in range(edge):
            red = low[0] + i * 2 * width
            for j in range(edge):
                green = low[1] + j * 2 * width
                for k in range(edge):
                    blue = low[2] + k * 2 * width
                    best, best_distance = np.int64(0), np.int64(1) << 62
                    for c in range(count):  # ascending index: a tie keeps the lower one
                        p = candidates[c]
                        a, b, d = red - doubled[p, 0], green - doubled[p, 1], blue - doubled[p, 2]
                        squared = a * a + b * b + d * d
                        if squared < best_distance:
                            best, best_distance = p, squared
                    cell = ((corner[0] * edge + i) * n + corner[1] * edge + j) * n + corner[2] * edge + k
                    nearest[cell] = best
                    distance[cell] = best_distance


SCAN = compile_loop(nearest_scan, lambda nb: nb.void(nb.uint8[:, ::1], nb.int64, nb.int64[::1], nb.uint8[::1],
                                                     nb.int32[::1]))
"""The compiled :func:`nearest_scan`, or None when numba is not installed."""
