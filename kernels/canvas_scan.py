"""Where a frame differs from the animation's canvas, as compiled loops: the WebP planner's
questions (engine/encode/webp.py ``plan_frames``) answered without building the frame's distance.

The NumPy planner computes ``|frame - canvas|`` for every byte of every frame, then reduces it
twice (rows, then columns) for the changed box, and again in 8x8 blocks for the see-through ones:
9.8-18.6 ms for a 45-frame 480x270 job and 119 ms at 1280x720 on the project's VM, twice where the
see-through trial says no. These loops read only what each answer needs:

- :func:`changed_box`: the first changed row from the top, the last from the bottom, and between
  them only the columns outside the box found so far (a frame that changes at its left and right
  edges costs two short scans a row). A row is tested as one reduction over its bytes, which LLVM
  vectorises; the exact column is then found pixel by pixel.
- :func:`still_blocks`: a row of blocks at a time, the largest difference of each byte over its 8
  rows (whole rows, vectorised), then of each block's 24 bytes.
- :func:`paint_canvas`: the box copied onto the canvas as runs of bytes a row, the still blocks
  left as they were.
- :func:`block_detail`: the planner's detail estimate (neighbour differences of the channel sum on
  every other pixel) summed per block, from the frame's bytes directly.

Each gives what the NumPy planner gives (tests/encode/test_webp_planning.py holds the two
plans equal, box by box and block by block). Compiled by :func:`kernels.compiled.compile_loop`
(each ``SCAN_*`` is None without numba, and the NumPy planner runs).
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN_BLOCK_DETAIL", "SCAN_CHANGED_BOX", "SCAN_PAINT_CANVAS", "SCAN_STILL_BLOCKS", "block_detail",
           "changed_box", "paint_canvas", "still_blocks"]

_BLOCK = 8
"""The see-through unit: libwebp flattens fully transparent 8x8 blocks (engine/encode/webp.py)."""


def _largest_difference(frame: np.ndarray, canvas: np.ndarray, row: int, start: int, stop: int) -> int:
    """The largest ``|frame - canvas|`` over bytes ``start:stop`` of ``row`` (rows of RGB bytes)."""
    f, c = frame[row, start:stop], canvas[row, start:stop]
    largest = np.uint8(0)
    for i in range(stop - start):  # in bytes throughout: 32 lanes a vector instruction
        a, b = f[i], c[i]
        difference = np.uint8(a - b) if a > b else np.uint8(b - a)
        largest = difference if difference > largest else largest
    return largest


def _changed_column(frame: np.ndarray, canvas: np.ndarray, row: int, start: int, stop: int, step: int,
                    threshold: int) -> int:
    """The first column of ``range(start, stop, step)`` (``step`` 1 or -1) in ``row`` whose pixel
    differs from the canvas by more than ``threshold`` in a channel, or -1."""
    for column in range(start, stop, step):
        if _largest_difference(frame, canvas, row, 3 * column, 3 * column + 3) > threshold:
            return column
    return -1


def changed_box(frame: np.ndarray, canvas: np.ndarray, threshold: int, box: np.ndarray) -> bool:
    """Whether any pixel of ``frame`` differs from ``canvas`` (uint8 [H, W x 3], rows of RGB bytes)
    by more than ``threshold`` in a channel; if so ``box`` (int64 [4]) gets (x0, y0, x1, y1) around
    those pixels, x0 and y0 rounded down to even (ANMF stores offsets halved), as the NumPy
    planner's ``_changed_box`` gives it."""
    height, row_bytes = frame.shape
    width = row_bytes // 3
    top = -1
    for row in range(height):
        if _largest_difference(frame, canvas, row, 0, row_bytes) > threshold:
            top = row
            break
    if top < 0:
        return False
    left = _changed_column(frame, canvas, top, 0, width, 1, threshold)
    right = _changed_column(frame, canvas, top, width - 1, left - 1, -1, threshold)
    bottom = top
    for row in range(height - 1, top, -1):
        if _largest_difference(frame, canvas, row, 0, row_bytes) > threshold:
            bottom = row
            found = _changed_column(frame, canvas, row, 0, left, 1, threshold)
            left = found if found >= 0 else left
            right = max(right, _changed_column(frame, canvas, row, width - 1, right, -1, threshold))
            break
    for row in range(top + 1, bottom):  # only what lies outside the box so far can widen it
        if left > 0 and _largest_difference(frame, canvas, row, 0, 3 * left) > threshold:
            left = _changed_column(frame, canvas, row, 0, left, 1, threshold)
        if right < width - 1 and _largest_difference(frame, canvas, row, 3 * right + 3, row_bytes) > threshold:
            right = _changed_column(frame, canvas, row, width - 1, right, -1, threshold)
    box[0], box[1], box[2], box[3] = left & ~1, top & ~1, right + 1, bottom + 1
    return True


def still_blocks(frame: np.ndarray, canvas: np.ndarray, x0: int, y0: int, threshold: int,
                 still: np.ndarray) -> None:
    """``still[r, c]`` (bool [rows, cols]): whether no channel of the 8x8 block at column ``x0 + 8 c``,
    row ``y0 + 8 r`` of ``frame`` (uint8 [H, W x 3]) differs from ``canvas`` by more than ``threshold``.
    A row of blocks at a time: the largest difference of each byte over its 8 rows (whole rows of
    bytes, vectorised), then of each block's 24 bytes (block by block, 10x slower at 480x270)."""
    rows, cols = still.shape
    start, span = 3 * x0, 3 * _BLOCK * cols
    largest = np.empty(span, np.uint8)
    for r in range(rows):
        largest[:] = 0
        for row in range(y0 + _BLOCK * r, y0 + _BLOCK * r + _BLOCK):
            f, c = frame[row, start:start + span], canvas[row, start:start + span]
            for i in range(span):
                a, b = f[i], c[i]
                difference = np.uint8(a - b) if a > b else np.uint8(b - a)
                largest[i] = difference if difference > largest[i] else largest[i]
        for block in range(cols):
            most = np.uint8(0)
            for i in range(3 * _BLOCK * block, 3 * _BLOCK * (block + 1)):
                most = largest[i] if largest[i] > most else most
            still[r, block] = most <= threshold


def paint_canvas(frame: np.ndarray, canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int,
                 still: np.ndarray) -> None:
    """Copy the box (``x0``, ``y0``) - (``x1``, ``y1``) of ``frame`` onto ``canvas`` (uint8 [H, W x 3])
    but for the whole 8x8 blocks ``still`` marks (bool [rows, cols], from the box's corner), whose
    pixels the viewer's canvas keeps: each row as runs of bytes (NumPy's masked copy of the block
    view took 10x as long)."""
    rows, cols = still.shape
    middle = x0 + _BLOCK * cols  # the columns right of the whole blocks are always copied
    for row in range(y0, y1):
        f, c = frame[row], canvas[row]
        r = (row - y0) // _BLOCK
        if r >= rows:
            c[3 * x0:3 * x1] = f[3 * x0:3 * x1]
            continue
        block = 0
        while block < cols:
            if still[r, block]:
                block += 1
                continue
            end = block + 1
            while end < cols and not still[r, end]:
                end += 1
            c[3 * (x0 + _BLOCK * block):3 * (x0 + _BLOCK * end)] = f[3 * (x0 + _BLOCK * block):3 * (x0 + _BLOCK * end)]
            block = end
        c[3 * middle:3 * x1] = f[3 * middle:3 * x1]


def block_detail(frame: np.ndarray, x0: int, y0: int, detail: np.ndarray) -> None:
    """``detail[r, c]`` (int64 [rows, cols]): the block at (``x0 + 8 c``, ``y0 + 8 r``)'s share of the
    planner's detail estimate. On every other pixel of the whole blocks (from (``x0``, ``y0``)) the
    channel sum ``level``; each sampled pixel adds ``|level - level left of it|`` and ``|level -
    level above it|`` (where those samples exist) to its block. A sampled row's edges are added
    into one row of sums (vectorised) and split into blocks once every four rows."""
    rows, cols = detail.shape
    half = _BLOCK // 2
    samples = cols * half
    above = np.zeros(samples, np.int32)
    level = np.zeros(samples, np.int32)
    sums = np.zeros(samples, np.int32)
    for i in range(rows * half):
        line = frame[y0 + 2 * i, 3 * x0:3 * (x0 + 2 * samples)]
        for j in range(samples):
            level[j] = np.int32(line[6 * j]) + np.int32(line[6 * j + 1]) + np.int32(line[6 * j + 2])
        for j in range(1, samples):
            sums[j] += abs(level[j] - level[j - 1])
        if i > 0:  # the box's first sampled row has none above it
            for j in range(samples):
                sums[j] += abs(level[j] - above[j])
        if i % half == half - 1:
            r = i // half
            for block in range(cols):
                total = 0
                for j in range(half * block, half * (block + 1)):
                    total += sums[j]
                detail[r, block] = total
            sums[:] = 0
        above, level = level, above


_largest_difference = compile_loop(_largest_difference, lambda nb: nb.int32(
    nb.uint8[:, ::1], nb.uint8[:, ::1], nb.int64, nb.int64, nb.int64), inline=True) or _largest_difference
_changed_column = compile_loop(_changed_column, lambda nb: nb.int64(
    nb.uint8[:, ::1], nb.uint8[:, ::1], nb.int64, nb.int64, nb.int64, nb.int64, nb.int64),
    inline=True) or _changed_column

SCAN_CHANGED_BOX = compile_loop(changed_box, lambda nb: nb.boolean(
    nb.uint8[:, ::1], nb.uint8[:, ::1], nb.int64, nb.int64[::1]))
"""The compiled :func:`changed_box`, or None when numba is not installed."""
SCAN_STILL_BLOCKS = compile_loop(still_blocks, lambda nb: nb.void(
    nb.uint8[:, ::1], nb.uint8[:, ::1], nb.int64, nb.int64, nb.int64, nb.boolean[:, ::1]))
"""The compiled :func:`still_blocks`, or None when numba is not installed."""
SCAN_PAINT_CANVAS = compile_loop(paint_canvas, lambda nb: nb.void(
    nb.uint8[:, ::1], nb.uint8[:, ::1], nb.int64, nb.int64, nb.int64, nb.int64, nb.boolean[:, ::1]))
"""The compiled :func:`paint_canvas`, or None when numba is not installed."""
SCAN_BLOCK_DETAIL = compile_loop(block_detail, lambda nb: nb.void(
    nb.uint8[:, ::1], nb.int64, nb.int64, nb.int64[:, ::1]))
"""The compiled :func:`block_detail`, or None when numba is not installed."""
