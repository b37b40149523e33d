"""Where a clip's colours change enough that one palette for all of it would be spread thin.

A GIF palette holds 255 colours. One palette per clip is best when the picture keeps its colours
(a talking head, a screen recording, a camera on one scene: a palette per group of frames there
costs bytes and buys nothing), but after a cut to another scene, or in animation whose colours
move on, half of a clip-wide palette serves frames that are gone. The test is cheap: the 4-bit
colour histogram (4,096 bins, every 4th pixel of every 4th row) of each group of
:data:`GROUP_FRAMES` frames against the groups' mean; if some group's total variation distance
from it passes :data:`DRIFT`, every group gets its own palette. Measured on the previews library,
resized to 480 (bench/make_library.py), groups of 8: 0.69 for 1080p animation, 0.47 for 480p
animation, 0.56 for a low-light clip with a cut, 0.31 for a rotated portrait clip, 0.20 for pixel
art (0.15 in groups of 16), and 0.01-0.12 for the nine others (talking head, screen text, sport,
grain, bars, PQ 0.12, ...).

Groups of 8 rather than 16: a GIF frame may keep what the previous palette left on screen
(engine/render.py, kernels/hold.py ``before``), so a change of palette no longer re-sends the
whole picture and more palettes buy colours rather than bytes: on 1080p animation +0.6 dB for 1%
more bytes against groups of 16, on 480p animation +0.3 dB for 2% (without keeping the screen,
groups of 8 cost 19% more bytes for +0.3 dB).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .histogram import colour_histogram

__all__ = ["DRIFT", "GROUP_FRAMES", "palette_groups", "palette_runs"]

GROUP_FRAMES = 8
"""Source frames per palette when a clip's colours drift (see the module docstring for why 8)."""
DRIFT = 0.15
"""Total variation distance (0: same colours, 1: none shared) past which groups get palettes."""


def palette_groups(frames: Tensor, group: int = GROUP_FRAMES, drift: float = DRIFT) -> list[slice]:
    """The frames (uint8 [U, 3, H, W]) split into runs that each get a palette: one run, the
    whole clip, unless some run's colours differ from the runs' mean by more than ``drift``."""
    return palette_runs(frames, group, drift)[0]


def palette_runs(frames: Tensor, group: int = GROUP_FRAMES, drift: float = DRIFT, bits: int = 5,
                 sample_stride: int = 2) -> tuple[list[slice], list[tuple[Tensor, Tensor]]]:
    """:func:`palette_groups` and, for each run it returns, the colour histogram its palette is
    made from (``bits`` bins per channel, every ``sample_stride``-th pixel: what
    :func:`kernels.palette.median_cut_slots` would read). The split is decided on coarse
    histograms (:func:`_drift`, a fraction of a millisecond a group), so the exact ones are made
    once per run: one for an unsplit clip (each costs ~3 ms on the CPU besides its pixels)."""
    count = frames.shape[0]
    runs = [slice(start, min(count, start + group)) for start in range(0, count, group)] or [slice(0, 0)]
    if len(runs) > 1 and _drift(frames, runs) <= drift:
        runs = [slice(0, count)]
    return runs, [colour_histogram(frames[run], bits=bits, sample_stride=sample_stride) for run in runs]


def _drift(frames: Tensor, runs: list[slice], stride: int = 4) -> float:
    """The largest total variation distance between a run's 4-bit colour histogram (every
    ``stride``-th pixel of every ``stride``-th row) and the mean of the runs'."""
    shares = []
    for run in runs:
        sampled = frames[run, :, ::stride, ::stride]
        coarse = sampled.to(torch.int32).bitwise_right_shift_(4)
        key = (coarse[:, 0] * 256 + coarse[:, 1] * 16 + coarse[:, 2]).reshape(-1)
        counts = torch.zeros(4096, dtype=torch.float64, device=frames.device)
        counts.index_add_(0, key, torch.ones((), dtype=torch.float64, device=frames.device).expand(key.numel()))
        shares.append(counts / counts.sum().clamp(min=1))
    stacked = torch.stack(shares)
    return float((0.5 * (stacked - stacked.mean(0)).abs().sum(1)).max())
