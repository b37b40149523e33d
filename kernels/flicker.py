"""How much of a clip flickers by a few levels from one frame to the next: sensor noise, film
grain, a codec's noise on what should stand still.

A clip made of few exact colours (a chart, credits, a slide, a logo over flat ground) changes
either not at all or by a lot where something moves; camera footage, even of a still scene, has
pixels that wander by a level or a few on every frame. The palette uses the difference
(engine/render.py ``_histograms``): finer colour bins pay on the first kind and, on the second,
put palette colours on the noise itself, so every frame's noise is re-sent. Measured on 15
library clips at 15 fps (every 2nd pixel of every 2nd row; levels 1-4): bar chart 0.001, glow on
black 0.006, credits 0.016, sky gradient 0.020, flat logo 0.025; the AV1 film 0.22, film grain
0.30, near-black camera footage 0.44, talking head 0.56.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["FLICKER_LEVELS", "flicker_share"]

FLICKER_LEVELS = 4
"""Largest change (0-255, in the channel that changes most) counted as flicker: past it, a change is
something moving or a cut."""


def flicker_share(frames: Tensor, levels: int = FLICKER_LEVELS, stride: int = 4) -> Tensor:
    """0-dim float32: of the pixels on every ``stride``-th row and column of each frame after the
    first (uint8 [U, 3, H, W], in time order), the share whose largest channel change from the
    frame before is 1 to ``levels``. 0 for fewer than two frames."""
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 [U, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")
    if frames.shape[0] < 2:
        return torch.zeros((), dtype=torch.float32, device=frames.device)
    sampled = frames[:, :, ::stride, ::stride]
    change = (torch.maximum(sampled[1:], sampled[:-1]) - torch.minimum(sampled[1:], sampled[:-1])).amax(dim=1)
    return ((change > 0) & (change <= levels)).to(torch.float32).mean()
