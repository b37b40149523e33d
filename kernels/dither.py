"""Ordered (Bayer) dithering thresholds.

Ordered dither is used instead of error diffusion because every pixel's offset depends only
on its position, so a whole batch of frames is dithered with one broadcast add: no
sequential scan over pixels, identical cost on CPU and GPU, and the pattern is the same in
every frame, so static areas of an animation do not shimmer (which also keeps GIF/WebP
inter-frame compression effective).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["bayer_matrix", "dither_pattern"]


def bayer_matrix(order: int, device: torch.device | str | None = None) -> Tensor:
    """Return the 2^order x 2^order Bayer threshold matrix as float32 in [-0.5, 0.5).

    The thresholds are ``(rank + 0.5) / n^2 - 0.5`` where ``rank`` is the classic recursive
    Bayer index (0 .. n^2-1). They are evenly spaced and sum to zero, so adding
    ``step * matrix`` before quantising with step ``step`` leaves the local average colour
    unchanged while breaking flat bands into a fine, regular pattern.
    """
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    rank = torch.zeros((1, 1), dtype=torch.int64, device=device)
    for _ in range(order):
        # Recursive construction: [[4M, 4M+2], [4M+3, 4M+1]].
        rank = torch.cat(
            [torch.cat([4 * rank, 4 * rank + 2], dim=1), torch.cat([4 * rank + 3, 4 * rank + 1], dim=1)],
            dim=0,
        )
    cells = float(rank.numel())
    return (rank.to(torch.float32) + 0.5) / cells - 0.5


def dither_pattern(
    height: int,
    width: int,
    order: int = 3,
    per_channel: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """Return float32 Bayer thresholds in [-0.5, 0.5) tiled over [C, height, width].

    With ``per_channel=False`` C is 1 and all colour channels share one pattern (the
    classic choice, and what remap uses: it tracked colour ramps better). With
    ``per_channel=True`` C is 3 and the green and blue planes use a transposed/shifted copy
    of the matrix, so the offsets are not all along the grey axis (slightly less PSNR loss
    on busy content, but weaker banding removal at equal strength).
    """
    matrix = bayer_matrix(order, device=device)
    n = matrix.shape[0]
    planes = [matrix]
    if per_channel:
        planes += [
            torch.roll(matrix.T, shifts=(0, 1 % n), dims=(0, 1)),
            torch.roll(matrix, shifts=(2 % n, 1 % n), dims=(0, 1)),
        ]
    tile = torch.stack(planes)
    reps_h = -(-height // n)
    reps_w = -(-width // n)
    return tile.repeat(1, reps_h, reps_w)[:, :height, :width]
