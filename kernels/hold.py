"""Keep a pixel's palette index from one frame to the next while the colour shown is still good.

A GIF stores each frame as the pixels that changed, the rest transparent (engine/encode/gif.py),
and LZW codes a run of transparent pixels in a few bits. But a pixel's index changes between
frames whenever the source's colour crosses a palette (or dither) boundary, and sensor noise,
grain and re-encoding make it cross back and forth on every frame of a still background: the
frame is then re-sent almost whole, and the flicker is visible too. Here each pixel keeps the
index it showed on the previous frame when that colour is, for the new frame's source colour,
at most ``slack`` x the palette's spacing (Euclidean RGB distance) worse than the newly mapped
index's colour. The error
a pixel can show is bounded (its new best plus the slack); what moves still changes at once.

The scan runs along the output instants in order (each depends on the one before): per instant
that shows a new source frame, only the pixels whose index changed are looked at (on a still
background a few percent), so it costs a fraction of the remap; instants repeating the previous
source frame repeat its indices. (Picking the changed pixels is one host synchronisation per
frame on a GPU.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .remap import palette_spacing

__all__ = ["DEFAULT_HOLD_SLACK", "hold_indices"]

DEFAULT_HOLD_SLACK = 0.25
"""Extra error a held colour may have, as a fraction of the palette's median spacing. On 8
clips of the previews library at source size (`python -m bench.quality_library --kinds source
--sides engine-gif --only bars_4x3,hd1080_bbb,animation_bbb,talking_head,flat_logo,sport_fast,
live_camera_nasa,film_grain_chaplin`): 0.25 gave 16.5% fewer bytes at +0.08 dB mean PSNR (a still
background no longer flickers between two indices); 0.75 gave 30% fewer bytes at -1.3 dB."""


def hold_indices(frames: Tensor, indices: Tensor, index: Tensor, palette: Tensor,
                 slack: float = DEFAULT_HOLD_SLACK) -> Tensor:
    """Indices per output instant [N, H, W] from ``indices`` per source frame [U, H, W] (the
    remap of ``frames`` uint8 [U, 3, H, W]), ``index`` int64 [N] (the row on screen at each
    instant) and ``palette`` uint8 [K, 3]; ``slack`` 0 keeps a held index only when it is
    exactly as good as the new one."""
    if frames.dim() != 4 or indices.shape != (frames.shape[0], *frames.shape[2:]):
        raise ValueError(f"indices {tuple(indices.shape)} do not match frames {tuple(frames.shape)}")
    if slack < 0:
        raise ValueError(f"slack must be >= 0, got {slack}")
    out = indices[index]  # a copy: one row per instant
    if out.shape[0] < 2:
        return out
    channels = palette.to(device=frames.device, dtype=torch.float32).t().contiguous()  # [3, K]
    margin = float(slack * palette_spacing(palette))
    rows = index.tolist()
    with torch.inference_mode():
        for k in range(1, len(rows)):
            if rows[k] == rows[k - 1]:
                out[k] = out[k - 1]
                continue
            now, before = out[k].view(-1), out[k - 1].view(-1)
            changed = (now != before).nonzero().squeeze(1)  # only these pixels can be held
            if changed.numel() == 0:
                continue
            source = frames[rows[k]].view(3, -1).index_select(1, changed).to(torch.float32)  # [3, P]
            new, held = now.index_select(0, changed), before.index_select(0, changed)
            keep = _distance(source, channels, held) <= _distance(source, channels, new).add_(margin)
            now.index_copy_(0, changed, torch.where(keep, held, new))
    return out


def _distance(source: Tensor, channels: Tensor, indices: Tensor) -> Tensor:
    """Euclidean RGB distance from ``source`` [3, P] to the palette colours of ``indices`` [P]
    (float32 [P]), one channel at a time."""
    flat = indices.long()
    total = None
    for c in range(3):
        diff = channels[c].index_select(0, flat).sub_(source[c]).square_()
        total = diff if total is None else total.add_(diff)
    return total.sqrt_()
