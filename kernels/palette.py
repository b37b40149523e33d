"""Clip-wide palette selection: batched median cut on a colour histogram, refined by k-means.

Everything after the histogram works on a fixed number of histogram entries (the most
populated bins, and past 4,096 occupied bins the rest added up into coarse cells) with fixed
tensor shapes, so no step needs to know on the host how many
boxes or colours exist. Only the public :func:`median_cut` trims the result to the colours
actually found, which is a single device-to-host synchronisation per clip; use
:func:`median_cut_slots` to stay fully asynchronous.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .compiled import runs
from .histogram import colour_histogram
from .kmeans_scan import SCAN as SCAN_KMEANS
from .median_cut_scan import SCAN as SCAN_MEDIAN_CUT

__all__ = ["median_cut", "median_cut_slots", "palette_from_histogram", "palettes_from_histograms"]

# Histogram entries kept for median cut and k-means: the most populated bins. A 45-frame
# 640x360 Big Buck Bunny clip fills 5,794 of the 32,768 5-bit bins; the top 4,096 hold
# 99.86 % of its pixels (8,192 entries measured no better, 37.30 vs 37.32 dB, and k-means took
# twice as long). The bins past them are not dropped but folded into coarse cells (TAIL_BITS).
# On a GPU the shapes stay fixed at this size (no host synchronisation); on the CPU the engine
# asks for the occupied bins only (``occupied_only``) (a clip with few colours: 132 bins of film grain, 4 ms instead of 19 ms
# a palette; a full one, 3,757 bins of animation, 22 instead of 24 ms), the same palettes but for
# the order of bins with equal counts (remapped PSNR within 0.01 dB on 5 library clips).
_MAX_ENTRIES = 4096

TAIL_BITS = 3
"""When a histogram has more occupied bins than :data:`_MAX_ENTRIES`, the bins past the most
populated ``_MAX_ENTRIES - 8**TAIL_BITS`` are not dropped but added up into the 512 cells of a
3-bit grid (counts and float32 colour sums), so every sampled pixel still has its say in where
the palette's colours go. Found on the held-out library's first run (2026-12-05,
bench/library-holdout, made after the other defaults were chosen; this one was then chosen on its
plasma clip): a plasma of every hue fills all 32,768 5-bit bins and the top 4,096 held 44 % of its
pixels; its palette ignored the rest and its GIF scored 22.15 dB against gifski's 25.61 (patches
of one colour across whole gradients). Folded, 26.13 dB in 2 % fewer bytes, as good as keeping all
32,768 entries (26.04 dB) at the cost of 4,096 (the engine's own measure of the decoded job; the
library comparison gave the same 22.15 -> 26.13). Clips with more occupied bins than 4,096 whose
top 4,096 held 97.6-99.97 % (the previews library's animation, 1080p, PQ, VP9 and bars; a hue
drift) moved by -0.23 to +0.09 dB, mostly with a few percent fewer bytes; clips with fewer
occupied bins do not change."""

# Fraction of the current boxes split per round, largest error first. Splitting every box
# each round (1.0) is classic median cut (a balanced tree); smaller fractions spend more
# of the colour budget where the colour error is, at the cost of more rounds. On the
# benchmark clip 0.5 gave +0.3 dB over 1.0 after refinement; 0.25 gave nothing more.
_SPLIT_FRACTION = 0.5

BATCH_SETS = 32
"""Palettes made in one batch at most: k-means holds a float32 distance for every entry and slot of
every set at once, 4 MiB a set (4,096 entries x 255 slots); a 3,000-frame clip in runs of 8 frames
would otherwise hold 375 of them, 1.5 GB twice over."""


def median_cut(
    frames: Tensor,
    max_colours: int = 255,
    bits: int = 5,
    refine_iterations: int = 4,
    sample_stride: int = 1,
) -> Tensor:
    """Choose one palette (uint8 [K, 3], 1 <= K <= max_colours) for a whole clip.

    frames: uint8 [N, 3, H, W]. Colours are histogrammed on a 2^bits grid per channel
    (keeping each bin's exact mean colour), boxes of bins are split at the weighted median
    of their widest-variance axis, many boxes per round, and the box means are polished by
    ``refine_iterations`` rounds of weighted k-means. If the sampled pixels fall in at most
    ``max_colours`` bins, the palette is the bins' mean colours, i.e. the clip's colours
    exactly when no two of them share a bin. ``sample_stride`` > 1 histograms only every
    that-many-th row and column, at a phase turning from frame to frame (so a still picture
    is read whole over stride^2 frames): on the 45-frame 640x360 benchmark clip (one CPU
    thread) stride 1 takes ~140 ms, stride 2 ~70 ms (same PSNR), stride 4 ~45 ms (0.1 dB lower).

    Returning exactly K rows needs K on the host: this is the one synchronisation.
    """
    slots, valid = median_cut_slots(frames, max_colours, bits, refine_iterations, sample_stride)
    return slots[valid]


def median_cut_slots(
    frames: Tensor,
    max_colours: int = 255,
    bits: int = 5,
    refine_iterations: int = 4,
    sample_stride: int = 1,
) -> tuple[Tensor, Tensor]:
    """Like :func:`median_cut` but without host synchronisation.

    Returns ``(palette, valid)``: uint8 [max_colours, 3] and bool [max_colours]. Rows where
    ``valid`` is false are unused and hold a copy of a used colour (palette[0]), so the
    padded palette can also be used as is: no pixel is ever closer to a duplicate.
    """
    counts, sums = colour_histogram(frames, bits=bits, sample_stride=sample_stride)
    return palette_from_histogram(counts, sums, max_colours, refine_iterations)


def palette_from_histogram(counts: Tensor, sums: Tensor, max_colours: int = 255,
                           refine_iterations: int = 4, occupied_only: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`median_cut_slots` from a histogram already made (``counts``, ``sums`` as
    :func:`kernels.histogram.colour_histogram` returns them): a caller that histograms runs of
    frames anyway (kernels/scenes.py) adds them up instead of reading the frames again.
    ``occupied_only`` works on the occupied bins alone instead of a fixed :data:`_MAX_ENTRIES`:
    less work for a clip with few colours, at the price of reads of their count to the host
    (free on the CPU, a stall on a GPU)."""
    return palettes_from_histograms([(counts, sums)], max_colours, refine_iterations, occupied_only)[0]


def palettes_from_histograms(histograms: list[tuple[Tensor, Tensor]], max_colours: int = 255,
                             refine_iterations: int = 4, occupied_only: bool = False) -> list[tuple[Tensor, Tensor]]:
    """:func:`palette_from_histogram` of each histogram (a clip's runs of frames, each with its own
    palette), the same palettes. Without the compiled loops (a GPU) the median cuts and k-means
    of all of them run side by side, one batch: the torch kernels are some thirty small operations
    a round, about 1,100 a palette, and a clip of six runs made 6,800 of them (the profile of a GIF
    job on an H200: ~20,000 Python calls, the GIL held for each)."""
    if not 1 <= max_colours <= 256:
        raise ValueError(f"max_colours must be in 1..256 (palette indices are uint8), got {max_colours}")
    if refine_iterations < 0:
        raise ValueError(f"refine_iterations must be >= 0, got {refine_iterations}")
    entries = [_entries(counts, sums, occupied_only) for counts, sums in histograms]
    if not entries:
        return []
    device = entries[0][0].device
    batched = len({weight.shape[0] for weight, _ in entries}) == 1 and not runs(SCAN_MEDIAN_CUT, device)
    size = BATCH_SETS if batched else 1
    groups = [list(range(start, min(start + size, len(entries)))) for start in range(0, len(entries), size)]
    out: list[tuple[Tensor, Tensor]] = []
    for group in groups:
        weight = torch.stack([entries[k][0] for k in group])
        colour = torch.stack([entries[k][1] for k in group])
        box, n_boxes = _split_boxes_batch(colour, weight, max_colours)
        centroids = _box_means_batch(colour, weight, box, max_colours)
        centroids = _refine_batch(colour, weight, centroids, n_boxes, refine_iterations)
        out += [_chosen(weight[p], colour[p], centroids[p], n_boxes[p], max_colours) for p in range(len(group))]
    return out


def _entries(counts: Tensor, sums: Tensor, occupied_only: bool) -> tuple[Tensor, Tensor]:
    """The histogram's most populated bins, most first: their weights (int64 [E]) and mean
    colours (float32 [E, 3]); past :data:`_MAX_ENTRIES` occupied bins, the least populated ones
    folded into coarser cells (:func:`_folded`). ``occupied_only`` (the CPU) trims to the
    occupied entries; otherwise the shapes stay fixed and the choice is made on the device."""
    entries = min(_MAX_ENTRIES, counts.numel())
    occupied = torch.count_nonzero(counts)
    if counts.numel() > entries:  # more bins than entries: past ``entries`` occupied, fold the tail
        if not occupied_only:  # both ways, chosen on the device: no host synchronisation on a GPU
            weight, colour = _most_populated(counts, sums, entries)
            folded_weight, folded_colour = _folded(counts, sums, entries)
            over = occupied > entries
            return torch.where(over, folded_weight, weight), torch.where(over, folded_colour, colour)
        if int(occupied) > entries:
            weight, colour = _folded(counts, sums, entries)
            kept = int(torch.count_nonzero(weight))  # empty cells weigh 0 and sort last
            return weight[:kept], colour[:kept]
    if occupied_only:
        entries = max(1, min(entries, int(occupied)))
    return _most_populated(counts, sums, entries)


def _most_populated(counts: Tensor, sums: Tensor, entries: int) -> tuple[Tensor, Tensor]:
    """The ``entries`` most populated bins, most first: weights and mean colours."""
    weight, bins = torch.topk(counts, entries)
    return weight, sums[bins] / weight.clamp(min=1).unsqueeze(1).to(torch.float32)


def _folded(counts: Tensor, sums: Tensor, entries: int) -> tuple[Tensor, Tensor]:
    """``entries`` entries, most populated first: the ``entries - 8**TAIL_BITS`` most populated
    bins as they are, and every other bin added into its cell of a :data:`TAIL_BITS` grid
    (weights, and mean colours from the float32 colour sums; cells with nothing in them weigh 0). Bin (r, g, b) of a
    grid of ``side`` bins a channel is ``(r * side + g) * side + b``, so a cell is a block of the
    histogram seen as [cells, fold, cells, fold, cells, fold]."""
    side = round(counts.numel() ** (1 / 3))
    cells = 1 << TAIL_BITS
    fold = side // cells
    if side**3 != counts.numel() or fold * cells != side or entries <= cells**3:
        raise ValueError(f"cannot fold {counts.numel()} bins into {cells**3} cells within {entries} entries")
    weight, bins = torch.topk(counts, entries - cells**3)
    tail_counts = counts.index_fill(0, bins, 0).view(cells, fold, cells, fold, cells, fold)
    tail_sums = sums.index_fill(0, bins, 0).view(cells, fold, cells, fold, cells, fold, 3)
    weight = torch.cat([weight, tail_counts.sum((1, 3, 5)).reshape(-1)])
    colour = torch.cat([sums[bins], tail_sums.sum((1, 3, 5)).reshape(-1, 3)])
    order = torch.argsort(weight, descending=True, stable=True)
    weight = weight[order]
    return weight, colour[order] / weight.clamp(min=1).unsqueeze(1).to(torch.float32)


def _chosen(weight: Tensor, colour: Tensor, centroids: Tensor, n_boxes: Tensor, max_colours: int) -> tuple[Tensor, Tensor]:
    """The palette and its valid rows: the bins' own colours when they are few, else the refined
    box means."""
    device = colour.device
    entries = weight.shape[0]
    occupied = (weight > 0).sum()
    # Few colours: every occupied bin becomes a palette colour, exactly its mean.
    few_slots = min(max_colours, entries)
    few = torch.zeros((max_colours, 3), dtype=torch.float32, device=device)
    few[:few_slots] = colour[:few_slots]
    few_valid = torch.zeros(max_colours, dtype=torch.bool, device=device)
    few_valid[:few_slots] = weight[:few_slots] > 0
    many_valid = torch.arange(max_colours, device=device) < n_boxes

    use_few = occupied <= max_colours
    palette = torch.where(use_few, few, centroids)
    valid = torch.where(use_few, few_valid, many_valid)
    # Empty clip: keep one black colour so the palette is never empty.
    valid[0] = True
    palette = torch.where(valid.unsqueeze(1), palette, palette[:1])
    return palette.round_().clamp_(0, 255).to(torch.uint8), valid


def _split_boxes(colour: Tensor, weight: Tensor, max_boxes: int) -> tuple[Tensor, Tensor]:
    """Median-cut the weighted entries (``colour`` float32 [E, 3], ``weight`` int64 [E]) into
    at most ``max_boxes`` boxes: the box id of every entry (int64 [E]) and the number of boxes
    (0-dim tensor). :func:`_split_boxes_batch` for one set of entries."""
    box, n_boxes = _split_boxes_batch(colour.unsqueeze(0), weight.unsqueeze(0), max_boxes)
    return box[0], n_boxes[0]


def _split_boxes_batch(colour: Tensor, weight: Tensor, max_boxes: int) -> tuple[Tensor, Tensor]:
    """Median-cut P sets of weighted entries (``colour`` float32 [P, E, 3], ``weight`` int64
    [P, E]), each into at most ``max_boxes`` boxes: box ids int64 [P, E], box counts int64 [P].

    Each round ranks each set's boxes by squared error (weight x summed channel variance) and
    splits the worst ones (as many as the remaining budget and ``_SPLIT_FRACTION`` allow)
    along their highest-variance channel at the weighted median: one sort of every set's entries
    a round (a row each, in the compiled loop's float32 key). (Cutting where the most squared error is removed instead, as Wu's quantiser does, was
    measured 0.1 dB worse after k-means refinement on the benchmark clip.) The sets are kept
    apart by numbering set p's boxes from p x ``max_boxes``; each set's boxes come out as they
    would alone (tests/kernels/test_palette.py).
    """
    device = colour.device
    sets, n_entries = weight.shape
    box = torch.zeros((sets, n_entries), dtype=torch.int64, device=device)
    n_boxes = torch.ones(sets, dtype=torch.int64, device=device)
    if max_boxes == 1:
        return box, n_boxes
    rounds = math.ceil(math.log(max_boxes) / math.log1p(_SPLIT_FRACTION)) + 2
    if runs(SCAN_MEDIAN_CUT, device):  # the same rounds, compiled (kernels/median_cut_scan.py), set by set
        for p in range(sets):
            n_boxes[p] = SCAN_MEDIAN_CUT(colour[p].contiguous().numpy(), weight[p].contiguous().numpy(), max_boxes,
                                         _SPLIT_FRACTION, rounds, box[p].numpy())
        return box, n_boxes
    positive = weight > 0
    # Per-entry contributions to box statistics, constant across rounds: [w, w*c (3),
    # w*c^2 (3)] and [w, occupied] as exact integers. Float64 because the variance
    # E[c^2] - E[c]^2 of a bright, nearly flat box cancels ~10 significant digits.
    wd = weight.to(torch.float64).unsqueeze(2)
    cd = colour.to(torch.float64)
    moments = torch.cat([wd, cd * wd, cd.square() * wd], dim=2).view(-1, 7)
    tallies = torch.stack([weight, positive.to(torch.int64)], dim=2).view(-1, 2)
    slot = torch.arange(max_boxes, device=device).expand(sets, max_boxes)
    first = torch.arange(sets, device=device).unsqueeze(1) * max_boxes  # set p's boxes: p x max_boxes on
    entry_base = torch.arange(sets, device=device).unsqueeze(1) * n_entries  # set p's entries, flattened
    # ``rounds``: enough to reach max_boxes when boxes grow by (1 + fraction) per round, plus slack
    # for boxes that cannot be split (single bin) and for rounding. (Big Buck Bunny and random
    # noise both reach 255 boxes one round before the nominal count.)
    for _ in range(rounds):
        everywhere = (box + first).view(-1)  # box ids across the sets
        stats = torch.zeros((sets * max_boxes, 7), dtype=torch.float64, device=device).index_add_(0, everywhere, moments)
        counts = torch.zeros((sets * max_boxes, 2), dtype=torch.int64, device=device).index_add_(0, everywhere, tallies)
        box_w = stats[:, 0].clamp(min=1e-6).unsqueeze(1)
        mean = stats[:, 1:4] / box_w
        var = (stats[:, 4:7] / box_w - mean.square()).clamp_(min=0)
        splittable = (counts[:, 1] >= 2).view(sets, max_boxes) & (slot < n_boxes.unsqueeze(1))
        score = torch.where(splittable, (var.sum(1) * stats[:, 0]).view(sets, max_boxes),
                            torch.full((sets, max_boxes), -1.0, dtype=torch.float64, device=device))
        order = torch.argsort(score, dim=1, descending=True, stable=True)  # stable: the compiled loop's order too
        rank = torch.empty_like(order).scatter_(1, order, slot)
        quota = torch.minimum(max_boxes - n_boxes, torch.ceil(n_boxes * _SPLIT_FRACTION).to(torch.int64))
        split = splittable & (rank < quota.unsqueeze(1))
        new_id = first + n_boxes.unsqueeze(1) + rank  # only meaningful where split
        axis = var.argmax(1).view(sets, max_boxes)

        # Sort each set's entries by (box, coordinate along the box's axis), the float32 key the
        # compiled loop forms, set by set (one key across the sets, raised by the set's number,
        # rounded a near-black box's coordinates together: a review found palettes that differed)
        coord = colour.gather(2, axis.gather(1, box).unsqueeze(2)).squeeze(2)
        key = box.to(torch.float32) * 512.0 + coord
        perm = (torch.argsort(key, dim=1, stable=True) + entry_base).view(-1)
        sbox = everywhere.index_select(0, perm)
        entry = tallies.index_select(0, perm)  # [P x E, 2]: weight, occupied
        # Per-box values each sorted entry needs, gathered in one go: totals of all
        # lower-numbered boxes (weight, occupied), own totals, split flag, new id.
        starts = torch.cumsum(counts, 0) - counts
        per_box = torch.cat([starts, counts, split.view(-1, 1).to(torch.int64), new_id.view(-1, 1)], dim=1)
        boxed = per_box.index_select(0, sbox)  # [P x E, 6]
        # Boxes are contiguous in sorted order, so the global running totals minus the
        # totals of lower-numbered boxes are the running totals within the entry's box.
        running = torch.cumsum(entry, 0) - boxed[:, 0:2]  # inclusive
        weight_sorted, occupied = entry[:, 0], entry[:, 1]
        before = running[:, 0] - weight_sorted
        pos_rank = running[:, 1] - occupied  # occupied entries before this one
        is_occupied = occupied.bool()
        # Right half: the entry's weight centre lies at or beyond half the box weight.
        # The first occupied entry always stays left and the last always goes right, so
        # both halves are non-empty even when one bin dominates the box.
        right = (2 * before + weight_sorted) >= boxed[:, 2]
        right |= is_occupied & (pos_rank == boxed[:, 3] - 1)
        right &= ~(is_occupied & (pos_rank == 0))
        move = right & boxed[:, 4].bool()
        sbox = torch.where(move, boxed[:, 5], sbox)
        box = torch.empty_like(everywhere).scatter_(0, perm, sbox).view(sets, n_entries) - first
        n_boxes = n_boxes + split.sum(1)
    return box, n_boxes


def _box_means(colour: Tensor, weight: Tensor, box: Tensor, n_slots: int) -> Tensor:
    """Weighted mean colour of every box, float32 [n_slots, 3] (0 for empty slots)."""
    return _box_means_batch(colour.unsqueeze(0), weight.unsqueeze(0), box.unsqueeze(0), n_slots)[0]


def _box_means_batch(colour: Tensor, weight: Tensor, box: Tensor, n_slots: int) -> Tensor:
    """:func:`_box_means` of P sets ([P, E, 3], [P, E], [P, E]): float32 [P, n_slots, 3]."""
    sets = weight.shape[0]
    everywhere = (box + torch.arange(sets, device=box.device).unsqueeze(1) * n_slots).view(-1)
    wf = weight.to(torch.float32)
    total = torch.zeros(sets * n_slots, device=colour.device).index_add_(0, everywhere, wf.view(-1))
    sums = torch.zeros((sets * n_slots, 3), device=colour.device).index_add_(0, everywhere,
                                                                            (colour * wf.unsqueeze(2)).view(-1, 3))
    return (sums / total.clamp(min=1e-6).unsqueeze(1)).view(sets, n_slots, 3)


def _refine(colour: Tensor, weight: Tensor, centroids: Tensor, n_used: Tensor, iterations: int) -> Tensor:
    """Weighted Lloyd iterations: assign entries to their nearest centroid, re-average.

    Distances are ``(c0 - p0)^2 + (c1 - p1)^2 + (c2 - p2)^2`` summed in that order, in float32:
    the compiled loop (:mod:`kernels.kmeans_scan`, taken for CPU tensors) repeats them exactly,
    which ``addmm``'s BLAS rounding (used until 2026-12) did not allow. Unused slots get +inf so they attract nothing. A centroid that loses all its
    entries keeps its previous position. :func:`_refine_batch` for one set.
    """
    return _refine_batch(colour.unsqueeze(0), weight.unsqueeze(0), centroids.unsqueeze(0), n_used.reshape(1),
                         iterations)[0]


def _refine_batch(colour: Tensor, weight: Tensor, centroids: Tensor, n_used: Tensor, iterations: int) -> Tensor:
    """:func:`_refine` of P sets (``colour`` [P, E, 3], ``weight`` [P, E], ``centroids``
    [P, S, 3], ``n_used`` [P]): the refined centroids [P, S, 3]."""
    if runs(SCAN_KMEANS, colour.device):  # the same rounds, compiled, set by set
        refined = centroids.clone(memory_format=torch.contiguous_format)  # one copy, C-ordered
        for p in range(refined.shape[0]):
            SCAN_KMEANS(colour[p].contiguous().numpy(), weight[p].to(torch.float32).contiguous().numpy(),
                        refined[p].numpy(), int(n_used[p]), iterations)
        return refined
    sets, n_slots = centroids.shape[0], centroids.shape[1]
    device = colour.device
    wf = weight.to(torch.float32)
    weighted = (colour * wf.unsqueeze(2)).view(-1, 3)
    first = torch.arange(sets, device=device).unsqueeze(1) * n_slots
    unused = torch.arange(n_slots, device=device) >= n_used.unsqueeze(1)
    penalty = torch.zeros((sets, n_slots), device=device).masked_fill_(unused, float("inf")).unsqueeze(1)
    for _ in range(iterations):
        dist = (colour[:, :, 0:1] - centroids[:, :, 0].unsqueeze(1)).square_()
        dist += (colour[:, :, 1:2] - centroids[:, :, 1].unsqueeze(1)).square_()
        dist += (colour[:, :, 2:3] - centroids[:, :, 2].unsqueeze(1)).square_()
        dist += penalty
        nearest = (dist.min(2).indices + first).view(-1)  # = argmin (first of equal minima), 2.5x as fast on the CPU
        total = torch.zeros(sets * n_slots, device=device).index_add_(0, nearest, wf.view(-1))
        sums = torch.zeros((sets * n_slots, 3), device=device).index_add_(0, nearest, weighted)
        moved = (sums / total.clamp(min=1e-6).unsqueeze(1)).view(sets, n_slots, 3)
        centroids = torch.where((total > 0).view(sets, n_slots, 1), moved, centroids)
    return centroids
