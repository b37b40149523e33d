"""Antialiased resizing of RGB frame batches (uint8; float for HDR frames before their tone map)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .compiled import launch_bound, rgb_rows, runs
from .sharpen_scan import SCAN

__all__ = ["resize", "resize_planes"]

# Bicubic with antialias=True measured 53.0 dB PSNR against PIL's LANCZOS on a 1280x720 ->
# 640x360 Big Buck Bunny clip, bilinear 44.5 dB: the wider bicubic kernel is much closer
# to the Lanczos reference that other tools (ffmpeg, PIL) are judged by.
_MODE = "bicubic"

SHARPEN = 0.09
"""After a downscale, each pixel moves ``SHARPEN / 4`` of the way away from each of its four
neighbours (a 3x3 cross, edges repeated): antialiased bicubic (the kernel torch has in uint8)
is softer than Lanczos, the filter previews are judged against (Pillow, ffmpeg's scaler, and the
frames gifski is given). Against Pillow's LANCZOS, frames of the previews library resized to
480 px: 0 / 0.06 / 0.09 / 0.12 gave screen text 41.3 / 43.5 / 44.1 / 44.0 dB, 1080p animation
48.7 / 51.4 / 52.6 / 53.2, colour bars 44.5 / 47.0 / 47.7 / 47.8, film grain 45.2 / 47.3 / 48.2 /
48.5, talking head 50.8 / 51.9 / 52.1 / 52.3, flat logo 51.9 / 52.7 / 51.8 / 50.9 (flat graphics
need it least); a 3x3 box instead of the cross was up to 0.6 dB worse."""

# Float fallback works on this many values per chunk (64 Mi float32 = 256 MB at most for
# input plus output), so a long 720p clip never has to be materialised as float at once.
_FLOAT_CHUNK_VALUES = 1 << 25


def resize(frames: Tensor, height: int, width: int, sharpen: bool = True) -> Tensor:
    """Resize uint8 frames [N, 3, H, W] to [N, 3, height, width] with antialiasing. Float frames
    (16-bit HDR scaled to [0, 1], resized before their tone map) come back as float, unclamped.

    Downscaling averages over the source footprint (``antialias=True``) instead of point
    sampling, so fine detail turns into its average colour rather than aliasing into moire.
    Returns the input itself when the size already matches. When both sides shrink, the result
    is sharpened by :data:`SHARPEN` (``sharpen=False``: not), which brings it 1-4 dB closer to a
    Lanczos resize for the cost of a 3x3 filter at the output size.

    On CPU, torch has a native uint8 antialiased bicubic kernel (fixed-point, rounds and
    saturates internally) that is ~10x faster than converting to float; it is fastest on
    channels_last input and then also returns channels_last (still a valid [N, 3, h, w]
    tensor). Other devices use a float32 path, chunked over frames to bound memory.
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [N, 3, H, W], got {tuple(frames.shape)}")
    if frames.dtype != torch.uint8 and not frames.is_floating_point():
        raise ValueError(f"frames must be uint8 or float, got {frames.dtype}")
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    if frames.shape[-2:] == (height, width):
        return frames
    if frames.shape[0] == 0:
        return frames.new_empty((0, 3, height, width))
    if frames.is_floating_point():  # e.g. 16-bit HDR scaled to [0, 1]: no rounding, no clamping
        return resize_planes(frames, height, width, sharpen)
    amount = SHARPEN if sharpen and height < frames.shape[-2] and width < frames.shape[-1] else 0.0
    if frames.device.type == "cpu":
        return _sharpened_bytes(F.interpolate(frames, size=(height, width), mode=_MODE, antialias=True), amount)
    return _resize_float(frames, height, width, amount)


def resize_planes(planes: Tensor, height: int, width: int, sharpen: bool = True) -> Tensor:
    """Float planes [N, C, H, W] (any number of channels: R'G'B', or a YUV frame's luma or chroma
    planes) resized as :func:`resize` resizes float frames: antialiased bicubic, then
    :data:`SHARPEN` when both sides shrink; unclamped. Returns the input itself when the size
    already matches."""
    if planes.dim() != 4 or not planes.is_floating_point():
        raise ValueError(f"planes must be float [N, C, H, W], got {planes.dtype} {tuple(planes.shape)}")
    if planes.shape[-2:] == (height, width):
        return planes
    if planes.shape[0] == 0:
        return planes.new_empty((0, planes.shape[1], height, width))
    amount = SHARPEN if sharpen and height < planes.shape[-2] and width < planes.shape[-1] else 0.0
    return _sharpened(F.interpolate(planes, size=(height, width), mode=_MODE, antialias=True), amount)


_FIXED_SHIFT = 10
"""The uint8 sharpening's fixed point: ``amount / 4`` in 1/1024ths (0.09 -> 23/1024)."""
_BAND_ROWS = 64
"""Rows of a frame sharpened at once, so the int16 intermediates stay in cache."""


def _sharpened_bytes(frames: Tensor, amount: float) -> Tensor:
    """uint8 frames [N, 3, H, W] sharpened as :func:`_sharpened` does (edges repeated), in int16
    fixed point (each output within a level of the float filter), band by band: 0.6-1 ms for a
    480x270 frame (0.6 when measured against a float depthwise convolution's 1.7-4 ms; 45 frames
    in 43-49 ms when the loop was written), 0.42 ms through the compiled loop."""
    count, _, height, width = frames.shape
    if not amount:
        return frames
    weight = round(amount / 4 * (1 << _FIXED_SHIFT))
    pixels = frames.permute(0, 2, 3, 1)  # [N, H, W, 3]: a view of channels-last memory
    if runs(SCAN, frames.device):  # compiled: kernels/sharpen_scan.py
        out = torch.empty(pixels.shape, dtype=torch.uint8)
        rows = rgb_rows(frames).reshape(count, height, width * 3)
        SCAN(rows, weight, _FIXED_SHIFT, out.numpy().reshape(count, height, width * 3))
        return out.permute(0, 3, 1, 2)
    out = torch.empty_like(pixels)
    rows = min(_BAND_ROWS, height)
    around = torch.empty((rows, width, 3), dtype=torch.int16, device=frames.device)
    detail = torch.empty_like(around)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        above_below = torch.arange(top - 1, bottom + 1, device=frames.device).clamp_(0, height - 1)
        ring, lap = around[: bottom - top], detail[: bottom - top]
        for k in range(count):
            band = pixels[k].index_select(0, above_below).to(torch.int16)  # one row more each side
            band = torch.cat([band[:, :1], band, band[:, -1:]], dim=1)  # one column more each side
            centre = band[1:-1, 1:-1]
            torch.add(band[:-2, 1:-1], band[2:, 1:-1], out=ring)
            ring += band[1:-1, :-2]
            ring += band[1:-1, 2:]
            torch.mul(centre, 4, out=lap)
            lap -= ring  # 4 x centre - neighbours, then x amount / 4, rounded, onto the centre
            lap.mul_(weight).add_(1 << (_FIXED_SHIFT - 1)).bitwise_right_shift_(_FIXED_SHIFT)
            out[k, top:bottom] = lap.add_(centre).clamp_(0, 255)
    return out.permute(0, 3, 1, 2)


def _sharpened(frames: Tensor, amount: float) -> Tensor:
    """Float frames [N, C, H, W] sharpened by a 3x3 cross (centre 1 + amount, each neighbour
    -amount / 4; edges repeated), frame by frame as shifted sums: 10x as fast on the CPU as the
    same weights as a depthwise convolution (15 frames at 480x270, one thread: 0.009 s, was 0.13 s)."""
    if not amount:
        return frames
    out = torch.empty_like(frames, memory_format=torch.contiguous_format)
    # On the CPU a frame at a time (its intermediates stay in cache); elsewhere every frame at once
    # (a GPU: 5 operations for the chunk, not 5 a frame, each launched holding the GIL)
    step = max(1, frames.shape[0]) if launch_bound(frames.device) else 1
    for k in range(0, frames.shape[0], step):
        frame = frames[k : k + step]
        edged = F.pad(frame, (1, 1, 1, 1), mode="replicate")
        ring = torch.add(edged[:, :, :-2, 1:-1], edged[:, :, 2:, 1:-1], out=out[k : k + step])
        ring += edged[:, :, 1:-1, :-2]
        ring += edged[:, :, 1:-1, 2:]
        ring.mul_(-amount / 4).add_(frame, alpha=1 + amount)
    return out


def _resize_float(frames: Tensor, height: int, width: int, sharpen: float = 0.0) -> Tensor:
    """Float32 antialiased resize for devices without a uint8 kernel, chunked over frames.

    Bicubic overshoots near edges, so values are rounded to nearest and clamped to
    [0, 255] before the cast (a bare cast would truncate and wrap).
    """
    n, _, h, w = frames.shape
    per_frame = 3 * max(h * w, height * width)
    chunk = max(1, _FLOAT_CHUNK_VALUES // per_frame)
    out = torch.empty((n, 3, height, width), dtype=torch.uint8, device=frames.device)
    for start in range(0, n, chunk):
        part = frames[start : start + chunk].to(torch.float32)
        scaled = _sharpened(F.interpolate(part, size=(height, width), mode=_MODE, antialias=True), sharpen)
        out[start : start + chunk] = scaled.round_().clamp_(0, 255).to(torch.uint8)
    return out
