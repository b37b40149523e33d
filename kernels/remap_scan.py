"""The remap of :mod:`kernels.remap` as one compiled loop over the pixels, for CPU tensors.

The torch kernel maps a tile of pixels through a dozen whole-tile byte and int32 operations
(shift, add the dither offset, clamp, shift, pack three channels into an address, two table
lookups, a select), each a pass over memory. One loop reads each pixel once and does the same
integer arithmetic on it, skipping the dithered lookup where the adaptive table already decided
the pixel keeps its nearest colour, and skipping everything where the pixel is as it was in the
frame before (the dither is by place, so its index is the one that frame got: 70% of the pixels
of the 1080p library clip, whose remap went 0.48 -> 0.41 s with it and C-ordered arrays).

Same indices, exactly: the arithmetic is the torch kernel's, integer for integer, and the loop
walks the same tiles in the same order. Where the nearest-colour table is searched only in some
blocks, a tile in which a pixel lands on an unsearched cell is finished (so every such pixel's
blocks are known), the loop returns that tile's number, and the caller searches those blocks and
runs the loop again from that tile: the torch kernel's redo, tile for tile, so the table is
filled in the same sequence and the indices agree even where a search's tiers are not exact
(tests/kernels/test_remap.py compares the two).

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "remap_scan"]


def remap_scan(frames: np.ndarray, offset: np.ndarray, period_mask: int, lut: np.ndarray, undithered: np.ndarray,
               use_undithered: bool, lut_bits: int, low: int, high: int, bias_cells: int, frames_per_tile: int,
               band: int,
               first_tile: int, check: bool, unsearched: int, need: np.ndarray, out: np.ndarray) -> int:
    """Write ``out`` (uint8 [N, H, W]) from ``frames`` (uint8 [N, H, W, 3], C order), tile
    by tile from ``first_tile`` (tiles of ``frames_per_tile`` frames and ``band`` rows, numbered
    frames first, as :func:`kernels.remap.remap` walks them). Returns -1 when done, or, with
    ``check``, the number of the first tile where a pixel's index is ``unsearched``: that tile is
    finished and the blocks its missed pixels need (their own colour's and their dithered cell's)
    are set in ``need`` (bool [(2^lut_bits / 4)^3]).

    ``offset`` uint8 [P, P] (C order): one period of the biased dither offset in half-levels (the
    pixel at (y, x) takes ``offset[y & period_mask, x & period_mask]``); ``lut`` uint8: the nearest
    table padded in front for biased cell addresses; ``undithered`` int16 [n^3]: the adaptive
    table (index, plus 256 where the pixel is dithered), read when ``use_undithered``; ``low``
    and ``high`` clamp ``(pixel >> 1) + offset``; ``bias_cells``: the offsets' bias in cells."""
    n_frames, height, width, _ = frames.shape
    n = np.int64(1) << lut_bits
    shift = 8 - lut_bits
    cell_shift = shift - 1
    grid = n >> 2
    block_shift = 10 - lut_bits
    bands = (height + band - 1) // band
    tiles = ((n_frames + frames_per_tile - 1) // frames_per_tile) * bands
    for tile in range(first_tile, tiles):
        first = (tile // bands) * frames_per_tile
        top = (tile % bands) * band
        missed = False
        for k in range(first, min(first + frames_per_tile, n_frames)):
            for y in range(top, min(top + band, height)):
                # views of whole rows, made outside the pixel loop (made inside it, numba's
                # reference counting slows the loop down ~2x)
                row, before, indices = frames[k, y], frames[max(k - 1, 0), y], out[k, y]
                offsets, indices_before = offset[y & period_mask], out[max(k - 1, 0), y]
                for x in range(width):
                    red = np.int64(row[x, 0])
                    green = np.int64(row[x, 1])
                    blue = np.int64(row[x, 2])
                    if k > 0 and red == before[x, 0] and green == before[x, 1] and blue == before[x, 2]:
                        indices[x] = indices_before[x]  # as the frame before (a still area): its index
                        continue
                    index = np.int64(-1)
                    if use_undithered:
                        plain = np.int64(undithered[((red >> shift) * n + (green >> shift)) * n + (blue >> shift)])
                        if plain < 256:
                            index = plain
                    if index >= 0 and not (check and index == unsearched):
                        indices[x] = index
                        continue
                    o = np.int64(offsets[x & period_mask])
                    cell_r = min(max((red >> 1) + o, low), high) >> cell_shift
                    cell_g = min(max((green >> 1) + o, low), high) >> cell_shift
                    cell_b = min(max((blue >> 1) + o, low), high) >> cell_shift
                    if index < 0:
                        index = np.int64(lut[(cell_r * n + cell_g) * n + cell_b])
                    indices[x] = index
                    if check and index == unsearched:
                        missed = True
                        own = ((red >> block_shift) * grid + (green >> block_shift)) * grid + (blue >> block_shift)
                        need[own] = True
                        dr = min(max(cell_r - bias_cells, 0), n - 1) >> 2
                        dg = min(max(cell_g - bias_cells, 0), n - 1) >> 2
                        db = min(max(cell_b - bias_cells, 0), n - 1) >> 2
                        need[(dr * grid + dg) * grid + db] = True
        if missed:
            return tile
    return -1

SCAN = compile_loop(remap_scan, lambda nb: nb.int64(
    nb.uint8[:, :, :, ::1], nb.uint8[:, ::1], nb.int64, nb.uint8[::1], nb.int16[::1], nb.boolean, nb.int64, nb.int64,
    nb.int64, nb.int64, nb.int64, nb.int64, nb.int64, nb.boolean, nb.int64, nb.boolean[::1], nb.uint8[:, :, ::1]))
"""The compiled :func:`remap_scan`, or None when numba is not installed."""
