"""Where a clip's colours change enough that one palette for all of it would be spread thin.

A GIF palette holds 255 colours. One palette per clip is best when the picture keeps its colours
(a talking head, a screen recording, a camera on one scene: a palette per group of frames there
costs bytes and buys nothing), but after a cut to another scene, or in animation whose colours
move on, half of a clip-wide palette serves frames that are gone. The test is cheap: the 4-bit
colour histogram (4,096 bins) of each group of :data:`GROUP_FRAMES` frames against the clip's;
if some group's total variation distance from it passes :data:`DRIFT`, every group gets its own
palette. Measured on the previews library, resized to 480 (bench/make_library.py): 0.37 for 1080p
animation, 0.32 for 480p animation, 0.55 for a low-light clip with a cut, 0.23 for a rotated
portrait clip, and 0.005-0.147 for the ten others (talking head, screen text, sport, grain, bars,
pixel art 0.147, PQ 0.088, ...). On the four it splits, +0.6 to +0.8 dB for 4-16% more bytes (with hold slack 0.25);
a palette per run of 8 frames gained another 0.3 dB on 1080p animation for 20% more bytes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .histogram import colour_histogram

__all__ = ["DRIFT", "GROUP_FRAMES", "palette_groups", "palette_runs"]

GROUP_FRAMES = 16
"""Source frames per palette when a clip's colours drift."""
DRIFT = 0.15
"""Total variation distance (0: same colours, 1: none shared) past which groups get palettes."""


def palette_groups(frames: Tensor, group: int = GROUP_FRAMES, drift: float = DRIFT) -> list[slice]:
    """The frames (uint8 [U, 3, H, W]) split into runs that each get a palette: one run, the
    whole clip, unless some run's colours differ from the clip's by more than ``drift``."""
    return palette_runs(frames, group, drift)[0]


def palette_runs(frames: Tensor, group: int = GROUP_FRAMES, drift: float = DRIFT, bits: int = 5,
                 sample_stride: int = 2) -> tuple[list[slice], list[tuple[Tensor, Tensor]]]:
    """:func:`palette_groups` and, for each run it returns, the colour histogram a palette is
    made from (``bits`` bins per channel, every ``sample_stride``-th pixel: what
    :func:`kernels.palette.median_cut_slots` would read), so the frames are read once whether
    or not the clip is split: the runs' histograms decide the split (summed to 4 bits) and, for
    an unsplit clip, add up to the clip's."""
    count = frames.shape[0]
    runs = [slice(start, min(count, start + group)) for start in range(0, count, group)] or [slice(0, 0)]
    histograms = [colour_histogram(frames[run], bits=bits, sample_stride=sample_stride) for run in runs]
    if len(runs) == 1:
        return runs, histograms
    coarse = 1 << (bits - 4)  # 5-bit bins folded into 4-bit ones, exactly
    shares = []
    for counts, _ in histograms:
        folded = counts.view(16, coarse, 16, coarse, 16, coarse).sum(dim=(1, 3, 5)).to(torch.float64).view(-1)
        shares.append(folded / folded.sum().clamp(min=1))
    stacked = torch.stack(shares)
    distance = 0.5 * (stacked - stacked.mean(0)).abs().sum(1)
    if float(distance.max()) > drift:
        return runs, histograms
    return [slice(0, count)], [(sum(c for c, _ in histograms), sum(s for _, s in histograms))]
