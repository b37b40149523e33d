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
pixel art 0.147, PQ 0.088, ...). On the four it splits, +0.6 to +0.8 dB for 4-17% more bytes;
a palette per run of 8 frames gained another 0.3 dB on 1080p animation for 20% more bytes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .histogram import colour_histogram

__all__ = ["DRIFT", "GROUP_FRAMES", "palette_groups"]

GROUP_FRAMES = 16
"""Source frames per palette when a clip's colours drift."""
DRIFT = 0.15
"""Total variation distance (0: same colours, 1: none shared) past which groups get palettes."""


def palette_groups(frames: Tensor, group: int = GROUP_FRAMES, drift: float = DRIFT) -> list[slice]:
    """The frames (uint8 [U, 3, H, W]) split into runs that each get a palette: one run, the
    whole clip, unless some run's colours differ from the clip's by more than ``drift``."""
    count = frames.shape[0]
    if count <= group:
        return [slice(0, count)]
    runs = [slice(start, min(count, start + group)) for start in range(0, count, group)]
    shares = []
    for run in runs:
        counts = colour_histogram(frames[run], bits=4, sample_stride=2)[0].to(torch.float64)
        shares.append(counts / counts.sum().clamp(min=1))
    stacked = torch.stack(shares)
    whole = stacked.mean(0)
    distance = 0.5 * (stacked - whole).abs().sum(1)
    return runs if float(distance.max()) > drift else [slice(0, count)]
