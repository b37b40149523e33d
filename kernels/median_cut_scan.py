"""The median cut of :mod:`kernels.palette` (``_split_boxes``) as one compiled loop, for CPU tensors.

The torch kernel splits boxes in rounds of some thirty small whole-array operations (box
statistics by ``index_add_``, a rank by sorting the boxes' errors, a sort of all entries by box
and coordinate, running totals, the split test) on at most 4,096 histogram entries: about 20 ms
a palette on one thread, nearly all of it per-operation cost. The same rounds as loops take a
couple of milliseconds, and a clip with a palette per run of frames makes several palettes.

Same boxes, exactly: the statistics are summed in the torch kernel's order (entry by entry, in
float64), the scores, variances and the axis come from the same operations in the same order,
and both sort stably (the torch kernel asks for ``stable=True``: without it, torch orders equal
keys as its sort happens to, which no other code can repeat).
tests/kernels/test_palette.py compares the two on random, tie-heavy and real clips' histograms.

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import math

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "median_cut_scan", "stable_order"]


def stable_order(values: np.ndarray, count: int, order: np.ndarray, scratch: np.ndarray) -> None:
    """``order[:count]``: the indices 0..count-1 sorted by ``values`` (float64), equal values in
    index order (a bottom-up merge sort; numba's own ``argsort(kind="mergesort")`` sorts the same
    but took 10 s to compile)."""
    for i in range(count):
        order[i] = i
    width = 1
    while width < count:
        for low in range(0, count, 2 * width):
            middle, high = min(low + width, count), min(low + 2 * width, count)
            i, j, k = low, middle, low
            while i < middle and j < high:
                if values[order[j]] < values[order[i]]:  # strictly: on equal values the left one first
                    scratch[k] = order[j]
                    j += 1
                else:
                    scratch[k] = order[i]
                    i += 1
                k += 1
            while i < middle:
                scratch[k] = order[i]
                i += 1
                k += 1
            while j < high:
                scratch[k] = order[j]
                j += 1
                k += 1
        order[:count] = scratch[:count]
        width *= 2


_ORDER = compile_loop(stable_order, lambda nb: nb.void(nb.float64[::1], nb.int64, nb.int64[::1], nb.int64[::1]))
_sort = _ORDER if _ORDER is not None else stable_order


def median_cut_scan(colour: np.ndarray, weight: np.ndarray, max_boxes: int, split_fraction: float,
                    rounds: int, box: np.ndarray) -> int:
    """Split the entries (``colour`` float32 [E, 3], ``weight`` int64 [E]) into at most
    ``max_boxes`` boxes, writing each entry's box into ``box`` (int64 [E], all 0 on entry);
    returns the number of boxes. One round splits the ``ceil(boxes x split_fraction)`` boxes of
    largest squared error (those with two occupied entries or more), each at the weighted median
    of its entries along its widest-variance channel; ``rounds`` rounds at most."""
    entries = colour.shape[0]
    boxes = 1
    stats = np.zeros((max_boxes, 7), dtype=np.float64)
    counts = np.zeros((max_boxes, 2), dtype=np.int64)
    score = np.empty(max_boxes, dtype=np.float64)
    rank = np.empty(max_boxes, dtype=np.int64)
    split = np.zeros(max_boxes, dtype=np.bool_)
    axis = np.zeros(max_boxes, dtype=np.int64)
    members = np.zeros(max_boxes + 1, dtype=np.int64)  # where each box's entries start in ``by_box``
    filled = np.zeros(max_boxes, dtype=np.int64)
    by_box = np.empty(entries, dtype=np.int64)
    key = np.empty(entries, dtype=np.float64)  # float32 values, held exactly
    negated = np.empty(max_boxes, dtype=np.float64)
    order = np.empty(max(entries, max_boxes), dtype=np.int64)
    scratch = np.empty(max(entries, max_boxes), dtype=np.int64)
    for _ in range(rounds):
        stats[:] = 0.0
        counts[:] = 0
        for e in range(entries):
            b = box[e]
            w = np.float64(weight[e])
            red, green, blue = np.float64(colour[e, 0]), np.float64(colour[e, 1]), np.float64(colour[e, 2])
            stats[b, 0] += w
            stats[b, 1] += red * w
            stats[b, 2] += green * w
            stats[b, 3] += blue * w
            stats[b, 4] += red * red * w
            stats[b, 5] += green * green * w
            stats[b, 6] += blue * blue * w
            counts[b, 0] += weight[e]
            if weight[e] > 0:
                counts[b, 1] += 1
        for b in range(max_boxes):
            box_w = max(stats[b, 0], 1e-6)
            best, best_var, total = 0, -1.0, 0.0
            for channel in range(3):
                mean = stats[b, 1 + channel] / box_w
                var = max(stats[b, 4 + channel] / box_w - mean * mean, 0.0)
                total += var
                if var > best_var:
                    best, best_var = channel, var
            axis[b] = best
            score[b] = total * stats[b, 0] if counts[b, 1] >= 2 and b < boxes else -1.0
        for b in range(max_boxes):
            negated[b] = -score[b]
        _sort(negated, max_boxes, order, scratch)  # descending, equal scores in box order
        for position in range(max_boxes):
            rank[order[position]] = position
        quota = min(max_boxes - boxes, int(math.ceil(np.float32(boxes * split_fraction))))
        splits = 0
        for b in range(max_boxes):
            split[b] = counts[b, 1] >= 2 and b < boxes and rank[b] < quota
            splits += split[b]
        if splits == 0:
            break  # every later round would find the same nothing to split
        # The entries of each box in entry order (a counting sort), then, box by box, those of a
        # box that splits in the torch kernel's order: by its sort key, stably. Its key
        # box * 512 + coordinate keeps the boxes apart, so sorting within a box is the same
        # order as its one sort of every entry, and the boxes that do not split need none.
        members[:] = 0
        for e in range(entries):
            members[box[e] + 1] += 1
        for b in range(max_boxes):
            members[b + 1] += members[b]
        filled[:] = members[:max_boxes]
        for e in range(entries):
            b = box[e]
            by_box[filled[b]] = e
            filled[b] += 1
        for b in range(max_boxes):
            if not split[b]:
                continue
            inside = by_box[members[b]:members[b + 1]]
            for position in range(inside.shape[0]):
                e = inside[position]
                key[position] = np.float32(b) * np.float32(512.0) + colour[e, axis[b]]  # float32, as torch's
            _sort(key, inside.shape[0], order, scratch)
            weight_before, occupied_before = 0, 0
            for position in range(inside.shape[0]):
                e = inside[order[position]]
                w = weight[e]
                occupied = 1 if w > 0 else 0
                # right half: the entry's weight centre at or past half the box's weight; the first
                # occupied entry always stays and the last always goes, so both halves hold one
                right = 2 * weight_before + w >= counts[b, 0]
                if occupied == 1 and occupied_before == counts[b, 1] - 1:
                    right = True
                if occupied == 1 and occupied_before == 0:
                    right = False
                if right:
                    box[e] = boxes + rank[b]
                weight_before += w
                occupied_before += occupied
        boxes += splits
    return boxes


SCAN = compile_loop(median_cut_scan, lambda nb: nb.int64(nb.float32[:, ::1], nb.int64[::1], nb.int64, nb.float64,
                                                         nb.int64, nb.int64[::1]))
"""The compiled :func:`median_cut_scan`, or None when numba is not installed."""
