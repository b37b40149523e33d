"""Sensor noise taken out over time: each pixel averaged with itself in the frames around it,
where those frames show nearly the same colour there.

A GIF pays for every pixel whose colour changes (:mod:`kernels.hold`), and noise on a still
scene changes most pixels on every frame. Holding colours longer (the hold slack) keeps the
bytes down but shows each pixel as it was in some noisy frame: about sqrt(2) x the noise away
from the next frames. The mean of a few frames is nearer all of them, so a GIF rendered from it
holds more pixels at the same slack and shows less error for it. Measured on the previews
library (bench/make_library.py; each setting rendered, encoded and scored as
``bench.quality_library`` scores, 2026-12-04, dB at equal bytes interpolated on the plain
render's curve over hold slack 0.2-1.0): talking head at its own size, radius 2 and threshold
10 at slack 0.35, 966 KB at 42.24 dB (+1.66 dB; the plain render 2.86 MB at 44.36), low light
+0.99 dB, animation +0.39; but film grain -1.7 to -3.2 dB (the grain is the picture there) and
screen text -0.2 to -0.5 dB. So it is not a default: the byte budget tries it as a way to its
size and keeps it where it shows less error (:mod:`engine.byte_budget`).

A neighbour frame counts for a pixel when each channel is within ``threshold`` of the pixel's
own (a motion gate: an edge moving past changes by more); the mean of the frames that count,
rounded half up, in integers. A window symmetric in time leaves a steady fade as it is.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .compiled import rgb_rows, runs
from .denoise_scan import SCAN

__all__ = ["DENOISE_RADIUS", "DENOISE_THRESHOLD", "temporal_denoise"]

DENOISE_RADIUS = 2
"""Frames on each side a pixel is averaged with (radius 1 at threshold 8 gained about half as
much on the talking head, 1.48 MB at 42.66 dB against 0.97 MB at 42.24)."""
DENOISE_THRESHOLD = 10
"""Most a channel may differ (0-255) for a neighbour frame to count: about 3x the difference
that sensor noise of sigma 2.5 (the previews library's talking head, bench/make_library.py)
makes between two frames (sigma 3.5). Tried at 6, 10 and 14 with radius 2 on that clip at its
own size, hold slack 0.2 and 0.35: 14 about 0.1 dB below 10 at equal bytes (1.22 MB: 42.28
against 42.37 dB); 6 about 0.2 dB above at 1.1-1.4 MB (1.14 MB 42.53, 1.39 MB 42.68) but not
tried at the fewer bytes where the budget most uses it."""
_CHUNK = 8
"""Frames averaged at once by the torch kernel (its int32 sums are 12 bytes a pixel)."""


def temporal_denoise(frames: Tensor, radius: int = DENOISE_RADIUS, threshold: int = DENOISE_THRESHOLD) -> Tensor:
    """uint8 frames [U, 3, H, W] (in time order) with each pixel the mean of itself and the same
    pixel of the frames up to ``radius`` away whose channels are all within ``threshold`` of its
    own (module docstring). A new tensor, channels-last like the decoder's frames."""
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 [U, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")
    if radius < 0 or not 0 <= threshold <= 255:
        raise ValueError(f"radius must be >= 0 and threshold 0..255, got {radius} and {threshold}")
    count, _, height, width = frames.shape
    out = torch.empty((count, height, width, 3), dtype=torch.uint8, device=frames.device)
    if runs(SCAN, frames.device):  # compiled: kernels/denoise_scan.py
        SCAN(rgb_rows(frames).reshape(count, height * width, 3), radius, threshold,
             out.numpy().reshape(count, height * width, 3))
        return out.permute(0, 3, 1, 2)
    with torch.inference_mode():
        for start in range(0, count, _CHUNK):
            stop = min(count, start + _CHUNK)
            own = frames[start:stop].to(torch.int32)
            sums, taken = own.clone(), torch.ones_like(own[:, :1])
            for offset in range(-radius, radius + 1):
                if offset == 0:
                    continue
                first, last = max(start, -offset), min(stop, count - offset)  # frames whose neighbour exists
                if first >= last:
                    continue
                other = frames[first + offset:last + offset].to(torch.int32)
                near = ((other - own[first - start:last - start]).abs().amax(1, keepdim=True) <= threshold).to(torch.int32)
                sums[first - start:last - start] += other * near
                taken[first - start:last - start] += near
            out[start:stop] = ((2 * sums + taken) // (2 * taken)).to(torch.uint8).permute(0, 2, 3, 1)
    return out.permute(0, 3, 1, 2)
