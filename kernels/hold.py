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
previous source frame repeat its indices. (On a GPU every pixel of the frame is decided at once
instead: finding the changed ones would be a host synchronisation per frame, and an unchanged
pixel keeps its index whichever way it is decided. On the CPU the search goes through NumPy, see
:func:`_positions`.)

A run of frames with a palette of its own starts from what the previous run left on screen
(``before``): a pixel keeps that colour, as :data:`KEEP`, on the same terms, so a change of
palette costs only the pixels the new palette shows better, and over runs the colours on screen
build up beyond one palette's 255.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .compiled import launch_bound, runs
from .hold_scan import SCAN
from .remap import palette_spacing

__all__ = ["DEFAULT_HOLD_SLACK", "KEEP", "hold_indices"]

KEEP = 255
"""The index that means "the colour already on screen": a run's frames keep what the previous
run showed with another palette, where that colour is still good (``hold_indices(before=...)``).
Palettes therefore hold at most 255 colours; a GIF writes it as the transparent index."""

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
                 slack: float = DEFAULT_HOLD_SLACK, out: Tensor | None = None,
                 before: Tensor | None = None) -> Tensor:
    """Indices per output instant [N, H, W] from ``indices`` per source frame [U, H, W] (the
    remap of ``frames`` uint8 [U, 3, H, W]), ``index`` int64 [N] (the row on screen at each
    instant) and ``palette`` uint8 [K, 3]; ``slack`` 0 keeps a held index only when it is at
    least as good as the new one. ``out`` (uint8 [N, H, W], contiguous) receives them in place:
    the caller's array of every instant's indices is the largest thing a GIF job holds, and a
    second one of it doubled the job's peak. ``before`` (uint8 [3, H, W]): the colours on screen
    before the first instant, shown with another palette (the previous run's): a pixel keeps
    it, as :data:`KEEP`, on the same terms as it keeps an index, so a change of palette re-sends
    only what the new palette shows better."""
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
    if out.shape[0] < 2 and before is None:
        return out
    if runs(SCAN, frames.device):
        return _scan(frames, index, palette, slack, out, before)
    channels = torch.zeros((3, KEEP + 1), dtype=torch.float32, device=frames.device)  # KEEP's entry unused
    channels[:, : palette.shape[0]] = palette.to(device=frames.device, dtype=torch.float32).t()
    at_once = launch_bound(frames.device)
    spacing = palette_spacing(palette.to(frames.device))
    margin: float | Tensor = slack * spacing if at_once else float(slack * spacing)  # a GPU's stays there
    screen = None if before is None else before.permute(1, 2, 0).contiguous().view(-1, 3)  # [P, 3]
    rows = index.tolist()
    kept = torch.full(out.shape[1:], KEEP, dtype=out.dtype, device=out.device).view(-1) if before is not None else None
    with torch.inference_mode():
        for k in range(len(rows)):
            if k and rows[k] == rows[k - 1]:
                out[k] = out[k - 1]
                continue
            if k == 0 and before is None:
                continue
            now = out[k].view(-1)
            previous = out[k - 1].view(-1) if k else kept
            pixels = _pixels(frames[rows[k]])
            if k and before is not None:  # a kept pixel whose source is as it was stays kept (the
                stays = previous == KEEP  # same decision: remap's dither is by place, not time)
                stays &= _unchanged(pixels, _pixels(frames[rows[k - 1]]))
                now.masked_fill_(stays, KEEP)
            if at_once:  # every pixel at once, without asking which changed (a host synchronisation
                # a frame, which stalls every thread of a GPU node's process): an unchanged pixel's
                # held and new colours are the same, so it keeps its index either way
                keep = _no_worse(pixels, channels, previous, now, margin, screen)
                torch.where(keep, previous, now, out=now)
                continue
            where = _positions(now != previous)
            if where.numel() * 2 < now.numel():  # few changed: look only at those
                new, held = now.index_select(0, where), previous.index_select(0, where)
                shown = None if screen is None else screen.index_select(0, where)
                keep = _no_worse(pixels.index_select(0, where), channels, held, new, margin, shown)
                now.index_copy_(0, where, torch.where(keep, held, new))
            elif where.numel():  # most changed (motion everywhere): the whole frame at once
                keep = _no_worse(pixels, channels, previous, now, margin, screen)
                torch.where(keep, previous, now, out=now)
    return out


def _scan(frames: Tensor, index: Tensor, palette: Tensor, slack: float, out: Tensor,
          before: Tensor | None) -> Tensor:
    """:func:`hold_indices` on CPU tensors through the compiled loop (:mod:`kernels.hold_scan`):
    the same indices."""
    count, height, width = out.shape
    colours = np.zeros((KEEP + 1, 3), dtype=np.float32)
    colours[: palette.shape[0]] = palette.cpu().numpy()
    pixels = frames.permute(0, 2, 3, 1).reshape(frames.shape[0], height * width, 3)  # a view when channels-last
    screen = (before.permute(1, 2, 0).reshape(height * width, 3) if before is not None
              else torch.empty((0, 3), dtype=torch.uint8))
    SCAN(pixels.numpy(), index.to(torch.int64).contiguous().numpy(), colours,
         np.float32(slack * palette_spacing(palette)), out.view(count, height * width).numpy(), screen.numpy(),
         before is not None, KEEP)
    return out


def _unchanged(pixels: Tensor, before: Tensor) -> Tensor:
    """bool [P]: True where the pixel (uint8 [P, 3]) is certainly the same in ``before``; it may
    say False for an unchanged pixel (the caller then decides that pixel the long way, to the
    same result). Compared as 32-bit words, four pixels in three words, a pixel unchanged when
    the words holding its bytes are: 2.9 ms for a 1080p frame against 8.7 ms byte by byte with a
    reduction over channels (a pixel next to a changed one in the same word is sent the long way)."""
    count = pixels.shape[0]
    if count % 4 or not (pixels.is_contiguous() and before.is_contiguous()):
        return (pixels == before).all(1)
    equal = (pixels.view(-1).view(torch.int32) == before.view(-1).view(torch.int32)).view(-1, 3)
    out = torch.empty((count // 4, 4), dtype=torch.bool, device=pixels.device)
    out[:, 0] = equal[:, 0]
    torch.logical_and(equal[:, 0], equal[:, 1], out=out[:, 1])
    torch.logical_and(equal[:, 1], equal[:, 2], out=out[:, 2])
    out[:, 3] = equal[:, 2]
    return out.view(-1)


def _positions(mask: Tensor) -> Tensor:
    """Where ``mask`` (bool [P]) is true, as int64 positions. On the CPU through NumPy, whose
    flatnonzero is about 6x torch.nonzero's speed there (0.08 ms against 0.46 ms for 130,000
    pixels): torch's was a third of this kernel's time."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


def _pixels(frame: Tensor) -> Tensor:
    """One frame [3, H, W] as pixels [P, 3]: a view of channels-last memory (the clip's layout on
    the CPU), a copy otherwise."""
    return frame.permute(1, 2, 0).reshape(-1, 3)


def _no_worse(pixels: Tensor, channels: Tensor, held: Tensor, new: Tensor, margin: float | Tensor,
              screen: Tensor | None = None) -> Tensor:
    """For pixels uint8 [P, 3]: is palette colour ``held`` at most ``margin`` farther (Euclidean
    RGB) from the pixel than colour ``new``? (bool [P]) A ``held`` of :data:`KEEP` stands for
    the colour in ``screen`` ([P, 3]). On the CPU in tiles of :data:`CPU_TILE` pixels, so that
    the float intermediates stay in cache (a 1080p animation clip's 44 frames: 0.91 s at once, 0.49 s
    in tiles)."""
    count = pixels.shape[0]
    tile = CPU_TILE if pixels.device.type == "cpu" else max(1, count)
    if count <= tile:
        return _no_worse_tile(pixels, channels, held, new, margin, screen)
    keep = torch.empty(count, dtype=torch.bool, device=pixels.device)
    for start in range(0, count, tile):
        part = slice(start, start + tile)
        keep[part] = _no_worse_tile(pixels[part], channels, held[part], new[part], margin,
                                    None if screen is None else screen[part])
    return keep


CPU_TILE = 1 << 15
"""Pixels compared at once on the CPU (see :func:`_no_worse`)."""


def _no_worse_tile(pixels: Tensor, channels: Tensor, held: Tensor, new: Tensor, margin: float | Tensor,
                   screen: Tensor | None) -> Tensor:
    """:func:`_no_worse` on one tile. One channel at a time: gathers from [K] tables are far
    cheaper than from [K, 3] rows."""
    on_screen = None if screen is None else held == KEEP
    held, new = held.to(torch.int32), new.to(torch.int32)
    held_error = new_error = None
    for c, table in enumerate(channels):
        pixel = pixels[:, c].to(torch.float32)
        h = table.index_select(0, held)
        if on_screen is not None:
            h = torch.where(on_screen, screen[:, c].to(torch.float32), h)
        h = h.sub_(pixel).square_()
        n = table.index_select(0, new).sub_(pixel).square_()
        held_error = h if held_error is None else held_error.add_(h)
        new_error = n if new_error is None else new_error.add_(n)
    return held_error.sqrt_() <= new_error.sqrt_().add_(margin)
