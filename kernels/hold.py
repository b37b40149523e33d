"""Keep a pixel's palette index from one frame to the next while the colour shown is still good.

A GIF stores each frame as the pixels that changed, the rest transparent (engine/encode/gif.py),
and LZW codes a run of transparent pixels in a few bits. But a pixel's index changes between
frames whenever the source's colour crosses a palette (or dither) boundary, and sensor noise,
grain and re-encoding make it cross back and forth on every frame of a still background: the
frame is then re-sent almost whole, and the flicker is visible too. Here each pixel keeps the
index it showed on the previous frame when that colour is, for the new frame's source colour,
at most ``slack`` x the palette's spacing (Euclidean RGB distance) worse than the newly mapped
index's colour. The error a pixel can show is bounded (its new best plus the slack); what moves
still changes at once.

The scan runs along the output instants in order (each depends on the one before): per instant
that shows a new source frame, only the pixels whose index changed are looked at (on a still
background a few percent; when most changed, the whole frame at once); instants repeating the
previous source frame repeat its indices. (Finding the changed pixels is one host
synchronisation per frame on a GPU; on the CPU it goes through NumPy, see :func:`_positions`.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .remap import palette_spacing

__all__ = ["DEFAULT_HOLD_SLACK", "hold_indices"]

DEFAULT_HOLD_SLACK = 0.35
"""Extra error a held colour may have, as a fraction of the palette's median spacing. On 8
clips of the previews library at source size (`python -m bench.quality_library --kinds source
--sides engine-gif --only bars_4x3,hd1080_bbb,animation_bbb,talking_head,flat_logo,sport_fast,
live_camera_nasa,film_grain_chaplin`) 0.25 gave 16.5% fewer bytes than no hold at +0.08 dB mean
PSNR (a still background no longer flickers between two indices); 0.75 gave 30% fewer at
-1.3 dB. On all 14 clips (with per-run palettes): 0.25 40.15 dB / 4.43 MB at source size and
37.99 dB / 1.95 MB resized; 0.35 39.96 / 4.24 and 37.86 / 1.87 (under gifski's bytes at both
sizes: 4.97 and 1.91 MB); 0.5 39.60 / 4.00 and 37.60 / 1.77."""


def hold_indices(frames: Tensor, indices: Tensor, index: Tensor, palette: Tensor,
                 slack: float = DEFAULT_HOLD_SLACK, out: Tensor | None = None) -> Tensor:
    """Indices per output instant [N, H, W] from ``indices`` per source frame [U, H, W] (the
    remap of ``frames`` uint8 [U, 3, H, W]), ``index`` int64 [N] (the row on screen at each
    instant) and ``palette`` uint8 [K, 3]; ``slack`` 0 keeps a held index only when it is at
    least as good as the new one. ``out`` (uint8 [N, H, W], contiguous) receives them in place:
    the caller's array of every instant's indices is the largest thing a GIF job holds, and a
    second one of it doubled the job's peak."""
    if frames.dim() != 4 or indices.shape != (frames.shape[0], *frames.shape[2:]):
        raise ValueError(f"indices {tuple(indices.shape)} do not match frames {tuple(frames.shape)}")
    if slack < 0:
        raise ValueError(f"slack must be >= 0, got {slack}")
    if out is None:
        out = indices[index]  # a copy: one row per instant
    elif out.shape != (index.shape[0], *indices.shape[1:]) or out.dtype != indices.dtype or not out.is_contiguous():
        raise ValueError(f"out {tuple(out.shape)} {out.dtype} is not contiguous {index.shape[0]} x "
                         f"{tuple(indices.shape[1:])} {indices.dtype}")
    else:
        torch.index_select(indices, 0, index, out=out)
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
            planes = [plane.reshape(-1) for plane in frames[rows[k]]]  # views, whatever the layout
            where = _positions(now != before)
            if where.numel() * 2 < now.numel():  # few changed: look only at those
                new, held = now.index_select(0, where), before.index_select(0, where)
                keep = _no_worse([plane.index_select(0, where) for plane in planes], channels, held, new, margin)
                now.index_copy_(0, where, torch.where(keep, held, new))
            elif where.numel():  # most changed (motion everywhere): the whole frame at once
                keep = _no_worse(planes, channels, before, now, margin)
                torch.where(keep, before, now, out=now)
    return out


def _positions(mask: Tensor) -> Tensor:
    """Where ``mask`` (bool [P]) is true, as int64 positions. On the CPU through NumPy, whose
    flatnonzero is about 6x torch.nonzero's speed there (0.08 ms against 0.46 ms for 130,000
    pixels): torch's was a third of this kernel's time."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


def _no_worse(planes: list[Tensor], channels: Tensor, held: Tensor, new: Tensor, margin: float) -> Tensor:
    """For pixels given as three uint8 channel planes [P]: is palette colour ``held`` at most
    ``margin`` farther (Euclidean RGB) from the pixel than colour ``new``? (bool [P]) One
    channel at a time: gathers from [K] tables are far cheaper than from [K, 3] rows."""
    held, new = held.to(torch.int32), new.to(torch.int32)
    held_error = new_error = None
    for plane, table in zip(planes, channels):
        pixel = plane.to(torch.float32)
        h = table.index_select(0, held).sub_(pixel).square_()
        n = table.index_select(0, new).sub_(pixel).square_()
        held_error = h if held_error is None else held_error.add_(h)
        new_error = n if new_error is None else new_error.add_(n)
    return held_error.sqrt_() <= new_error.sqrt_().add_(margin)
