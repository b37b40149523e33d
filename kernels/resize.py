"""Antialiased Lanczos resizing of frame batches: uint8 RGB, float RGB (16-bit HDR scaled to
[0, 1], before its tone map) and float planes of any channel count (Y'CbCr).

The filter is Lanczos with three lobes, stretched by the shrink factor when shrinking (so every
source pixel counts: detail averages out instead of aliasing into moire), each output's weights
normalised to sum to one over the part of the window inside the picture: the filter previews are
judged against (Pillow's ``LANCZOS``, ffmpeg's ``lanczos`` scaler, the frames gifski is given).
It replaced torch's antialiased bicubic plus a 3x3 sharpening cross (2026-12-05): against
Pillow's ``LANCZOS`` that was 38.9 dB on 10 px text shrunk 640 -> 480 px, this is 53.8; screen
text 960 -> 480 44.1 -> 49.3 dB, 1080p animation 52.1 -> 57.8, flat logo 51.6 -> 65.9, colour
bars 47.7 -> 60.1 (frames of the bench libraries; notes/quality-per-byte.md has the table). It
costs more where the factor is large (24 taps each way at 1920 -> 480 against bicubic's 16): one
thread, to 480x270, 4.3 ms a 1080p frame against 2.4, 1.5 ms from 640x360 against 0.8; whole
resized jobs 5-17 % longer, the screen text's 25-55 %, HDR ones 5 % shorter (their float planes
now through a compiled loop; notes/cpu-kernels.md).

CPU tensors go through the compiled loops (:mod:`kernels.lanczos_scan`); GPU tensors, and the
CPU without numba, through the torch kernel here: a sum over taps, each tap one gather along
the axis, the same integer arithmetic for uint8 (the same bytes) and float32 for floats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .compiled import rgb_rows, runs
from .lanczos_scan import FRACTION_BITS, MIDDLE_BITS, SCAN_BYTES, SCAN_FLOATS

__all__ = ["LOBES", "resize", "resize_planes", "taps"]

LOBES = 3
"""Lanczos-3: the window is three lobes of the sinc each side (times the shrink factor)."""

_CHUNK_VALUES = 1 << 26
"""The torch kernel works on chunks of frames whose copies hold about this many values (int32 or
float32: 256 MB a temporary; 10 frames of 1080p), so a long clip on a GPU never needs a
clip-sized temporary per tap, and a chunk's 150-odd operations (24 taps each way at 1080p ->
480x270) are launched once for many frames, not once a frame."""


def resize(frames: Tensor, height: int, width: int) -> Tensor:
    """Frames [N, 3, H, W] resized to [N, 3, height, width] with :data:`LOBES`-lobe Lanczos.

    uint8 frames come back as uint8 (rounded, clamped: Lanczos overshoots at edges),
    channels-last on the CPU (the layout decode gives and the palette kernels read; still a valid
    [N, 3, h, w] tensor). Float frames (16-bit HDR codes scaled to [0, 1]) come back as float32,
    unclamped. Returns the input itself when the size already matches.
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [N, 3, H, W], got {tuple(frames.shape)}")
    if frames.dtype != torch.uint8 and not frames.is_floating_point():
        raise ValueError(f"frames must be uint8 or float, got {frames.dtype}")
    _check_size(height, width)
    if frames.shape[-2:] == (height, width):
        return frames
    if frames.shape[0] == 0:
        return frames.new_empty((0, 3, height, width))
    if frames.is_floating_point():
        return resize_planes(frames, height, width)
    rows, cols = _taps_on(frames.shape[-2], height, frames.device), _taps_on(frames.shape[-1], width, frames.device)
    if runs(SCAN_BYTES, frames.device):
        count = frames.shape[0]
        out = torch.empty((count, height, width, 3), dtype=torch.uint8)
        src = rgb_rows(frames).reshape(count, frames.shape[-2], -1)
        SCAN_BYTES(src, rows.starts.numpy(), rows.fixed.numpy(), cols.starts.numpy(), cols.fixed.numpy(),
                   out.numpy().reshape(count, height, width * 3))
        return out.permute(0, 3, 1, 2)
    return _chunked(frames, height, width, lambda part: _bytes(part, rows, cols))


def resize_planes(planes: Tensor, height: int, width: int) -> Tensor:
    """Float planes [N, C, H, W] (any number of channels: R'G'B', or a Y'CbCr frame's luma or
    chroma planes) resized as :func:`resize` resizes float frames: float32, unclamped. Returns the
    input itself when the size already matches."""
    if planes.dim() != 4 or not planes.is_floating_point():
        raise ValueError(f"planes must be float [N, C, H, W], got {planes.dtype} {tuple(planes.shape)}")
    _check_size(height, width)
    if planes.shape[-2:] == (height, width):
        return planes
    if planes.shape[0] == 0:
        return planes.new_empty((0, planes.shape[1], height, width), dtype=torch.float32)
    rows, cols = _taps_on(planes.shape[-2], height, planes.device), _taps_on(planes.shape[-1], width, planes.device)
    count, channels = planes.shape[:2]
    if runs(SCAN_FLOATS, planes.device):  # each plane a one-channel picture
        src = planes.to(torch.float32).contiguous().reshape(count * channels, planes.shape[-2], planes.shape[-1])
        out = torch.empty((count, channels, height, width), dtype=torch.float32)
        SCAN_FLOATS(src.numpy(), rows.starts.numpy(), rows.weights.numpy(), cols.starts.numpy(),
                    cols.weights.numpy(), out.numpy().reshape(count * channels, height, width))
        return out
    return _chunked(planes, height, width, lambda part: _floats(part, rows, cols))


@dataclass(frozen=True, slots=True)
class Taps:
    """One axis's resampling: output ``o`` is ``weights[o] . source[starts[o] : starts[o] + K]``.

    ``weights`` float32 (summing to 1), ``fixed`` the same in 1/2^14ths (int32, summing to 2^14
    exactly), ``starts`` int32; every window lies inside the source (a window the picture's edge
    cuts is moved inwards, the weights it does not cover are zero)."""

    starts: Tensor
    weights: Tensor
    fixed: Tensor


@functools.lru_cache(maxsize=64)
def taps(source: int, target: int) -> Taps:
    """The Lanczos taps taking ``source`` samples to ``target`` (CPU tensors; cached: every job of
    a batch asks for the same few sizes).

    Output ``o``'s centre is ``(o + 0.5) x source / target`` in source pixels; when shrinking, the
    window is :data:`LOBES` x the factor each side (the filter stretched: an average over the
    footprint), else :data:`LOBES`. Window bounds and weights as Pillow's resampler computes them
    (so a resize here is within rounding of ``Image.resize(..., LANCZOS)``), except that taps whose
    fixed-point weight is zero are dropped (no work for a tap that adds nothing: an axis that
    keeps its size has one tap)."""
    scale = source / target
    stretch = max(scale, 1.0)
    support = LOBES * stretch
    centres = (np.arange(target) + 0.5) * scale
    low = np.maximum((centres - support + 0.5).astype(np.int64), 0)  # truncation, as C's (int)
    high = np.minimum((centres + support + 0.5).astype(np.int64), source)
    width = int((high - low).max())
    positions = low[:, None] + np.arange(width)[None, :]
    inside = positions < high[:, None]
    weights = np.where(inside, _lanczos((positions - centres[:, None] + 0.5) / stretch), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    fixed = np.round(weights * (1 << FRACTION_BITS)).astype(np.int64)
    biggest = np.argmax(np.abs(weights), axis=1)
    fixed[np.arange(target), biggest] += (1 << FRACTION_BITS) - fixed.sum(axis=1)
    used = fixed != 0
    first = np.argmax(used, axis=1)
    last = width - 1 - np.argmax(used[:, ::-1], axis=1)
    count = int((last - first).max()) + 1
    starts = np.minimum(low + first, source - count)
    shift = low[:, None] - starts[:, None] + np.arange(width)[None, :]  # where each tap lands in the window
    keep = (shift >= 0) & (shift < count)
    rows = np.broadcast_to(np.arange(target)[:, None], shift.shape)
    kept_weights = np.zeros((target, count))
    kept_fixed = np.zeros((target, count), dtype=np.int64)
    kept_weights[rows[keep], shift[keep]] = weights[keep]
    kept_weights /= kept_weights.sum(axis=1, keepdims=True)  # the dropped taps' share (under 2^-15 each)
    kept_fixed[rows[keep], shift[keep]] = fixed[keep]
    return Taps(torch.from_numpy(starts.astype(np.int32)), torch.from_numpy(kept_weights.astype(np.float32)),
                torch.from_numpy(kept_fixed.astype(np.int32)))


def _lanczos(x: np.ndarray) -> np.ndarray:
    """The Lanczos window: sinc(x) sinc(x / LOBES) inside |x| < LOBES, 0 outside."""
    return np.where(np.abs(x) < LOBES, np.sinc(x) * np.sinc(x / LOBES), 0.0)


@functools.lru_cache(maxsize=64)
def _taps_on(source: int, target: int, device: torch.device) -> Taps:
    """:func:`taps` with its tensors on ``device``, copied there once per size pair and device
    (a copy to a GPU waits for the work queued there: once a job's first chunk, not every chunk)."""
    found = taps(source, target)
    if device.type == "cpu":
        return found
    return Taps(found.starts.to(device), found.weights.to(device), found.fixed.to(device))


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")


def _chunked(frames: Tensor, height: int, width: int, kernel: Callable[[Tensor], Tensor]) -> Tensor:
    """``kernel`` over chunks of frames whose copies (the frames as int32 or float32, the column
    pass's result) hold about :data:`_CHUNK_VALUES` each."""
    count, channels, source_height, source_width = frames.shape
    per_frame = channels * max(source_height * source_width, height * source_width, height * width)
    step = max(1, _CHUNK_VALUES // per_frame)
    if step >= count:
        return kernel(frames)
    return torch.cat([kernel(frames[k : k + step]) for k in range(0, count, step)])


def _along(values: Tensor, axis: int, found: Taps, weights: Tensor) -> Tensor:
    """``sum_k weights[:, k] * values.index_select(axis, starts + k)``: one axis resampled."""
    shape = [1] * values.dim()
    shape[axis] = -1
    out = None
    for k in range(weights.shape[1]):
        term = values.index_select(axis, found.starts + k).mul_(weights[:, k].view(shape))
        out = term if out is None else out.add_(term)
    return out


def _bytes(frames: Tensor, rows: Taps, cols: Taps) -> Tensor:
    """The torch kernel for uint8 frames: :func:`kernels.lanczos_scan.lanczos_bytes`'s integers."""
    middle = _along(frames.to(torch.int32), 2, rows, rows.fixed)
    middle.add_(1 << (MIDDLE_BITS - 1)).bitwise_right_shift_(MIDDLE_BITS)
    last = 2 * FRACTION_BITS - MIDDLE_BITS
    out = _along(middle, 3, cols, cols.fixed)
    return out.add_(1 << (last - 1)).bitwise_right_shift_(last).clamp_(0, 255).to(torch.uint8)


def _floats(planes: Tensor, rows: Taps, cols: Taps) -> Tensor:
    """The torch kernel for float planes."""
    return _along(_along(planes.to(torch.float32), 2, rows, rows.weights), 3, cols, cols.weights)
