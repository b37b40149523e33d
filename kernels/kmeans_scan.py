"""The k-means refinement of :mod:`kernels.palette` (``_refine``) as one compiled loop, for CPU
tensors.

The torch kernel computes every entry's distance to every centroid ([E, K], up to 4,096 x 255) in
each of its rounds: 14-24 ms a palette of 4,096 entries on one thread. Here each entry starts
from the centroid it had in the round before, and looks only at the centroids whose red value lies
near its own (sorted by red each round, searched outwards until the red difference alone passes the
best distance: a partial sum of non-negative float32 squares never exceeds the full one, so
nothing nearer is skipped).

Same centroids, exactly: the distance is the torch kernel's sum ``(c0 - p0)^2 + (c1 - p1)^2 +
(c2 - p2)^2`` in float32 in that order, the nearest is the lowest index among equal distances (as
``min(1).indices``), and the new centroids are float32 sums taken entry by entry, as ``index_add_``
takes them on the CPU (tests/kernels/test_palette.py compares the two).

Compiled by :func:`kernels.compiled.compile_loop` (``SCAN`` is None without numba, and the torch
kernel runs). GPU tensors keep the torch kernel.
"""

from __future__ import annotations

import numpy as np

from .compiled import compile_loop

__all__ = ["SCAN", "kmeans_scan"]


def kmeans_scan(colour: np.ndarray, weight: np.ndarray, centroids: np.ndarray, used: int, iterations: int) -> None:
    """``iterations`` weighted Lloyd rounds on ``centroids`` (float32 [K, 3], in place; only the
    first ``used`` take part, the rest are left as they are) over the entries ``colour`` (float32
    [E, 3]) of weight ``weight`` (float32 [E]). A centroid that gets no entry keeps its place."""
    entries = colour.shape[0]
    slots = centroids.shape[0]
    nearest = np.zeros(entries, dtype=np.int64)
    total = np.zeros(slots, dtype=np.float32)
    sums = np.zeros((slots, 3), dtype=np.float32)
    order = np.empty(used, dtype=np.int64)  # the used centroids by their red value
    reds = np.empty(used, dtype=np.float32)
    for _ in range(iterations):
        for j in range(used):  # insertion sort: a few hundred centroids
            value = centroids[j, 0]
            i = j
            while i > 0 and reds[i - 1] > value:
                reds[i], order[i] = reds[i - 1], order[i - 1]
                i -= 1
            reds[i], order[i] = value, j
        for e in range(entries):
            red, green, blue = colour[e, 0], colour[e, 1], colour[e, 2]
            best_j = nearest[e]  # the round before's centroid bounds the search from the start
            a, b, c = red - centroids[best_j, 0], green - centroids[best_j, 1], blue - centroids[best_j, 2]
            best = a * a + b * b + c * c
            low, high = 0, used  # the first centroid whose red value is at least this entry's
            while low < high:
                middle = (low + high) // 2
                if reds[middle] < red:
                    low = middle + 1
                else:
                    high = middle
            # outwards from there: past a centroid whose red difference alone exceeds the best
            # distance, every one further out does too (the float32 square grows with the gap)
            for step in range(2):
                position = low if step == 0 else low - 1
                while 0 <= position < used:
                    j = order[position]
                    position = position + 1 if step == 0 else position - 1
                    a = red - centroids[j, 0]
                    partial = a * a
                    if partial > best:
                        break
                    b = green - centroids[j, 1]
                    partial = partial + b * b
                    if partial > best:
                        continue
                    c = blue - centroids[j, 2]
                    distance = partial + c * c
                    if distance < best or (distance == best and j < best_j):
                        best, best_j = distance, j
            nearest[e] = best_j
        total[:] = 0
        sums[:] = 0
        for e in range(entries):
            j = nearest[e]
            w = weight[e]
            total[j] += w
            sums[j, 0] += colour[e, 0] * w
            sums[j, 1] += colour[e, 1] * w
            sums[j, 2] += colour[e, 2] * w
        for j in range(slots):
            if total[j] > 0:
                share = max(total[j], np.float32(1e-6))
                centroids[j, 0] = sums[j, 0] / share
                centroids[j, 1] = sums[j, 1] / share
                centroids[j, 2] = sums[j, 2] / share

SCAN = compile_loop(kmeans_scan, lambda nb: nb.void(nb.float32[:, ::1], nb.float32[::1], nb.float32[:, ::1], nb.int64,
                                                    nb.int64))
"""The compiled :func:`kmeans_scan`, or None when numba is not installed."""
