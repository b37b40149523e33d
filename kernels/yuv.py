"""Y'CbCr planes to R'G'B' at the output size: each plane resized on its own, then the matrix.

A decoder's picture is a luma plane and two chroma planes, the chroma often at half the width
and height (4:2:0). Converting to RGB first (FFmpeg's scaler) and then shrinking touches three
full-size channels twice; resizing the planes as they are and converting at the output size
touches one full-size plane and two small ones, and builds no full-size RGB at all. For 16-bit
HDR frames, which are shrunk as floats before their tone map, that is the difference between a
960x540 PQ clip's 45 frames costing 1.1 s (RGB48 from the scaler, a float copy, a three-channel
float resize) and 0.5 s, one thread. The chroma planes go straight to the output size (up or
down), so a 4:2:0 clip halved in size keeps its chroma as coded.

Pure tensor ops, any device; float32 throughout.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .colour import MATRICES, chroma_weights
from .resize import resize_planes

__all__ = ["yuv_to_rgb"]


def yuv_to_rgb(luma: Tensor, chroma: Tensor, height: int, width: int, *, matrix: str, bits: int,
               full_range: bool) -> Tensor:
    """Non-linear R'G'B' float [N, 3, height, width] (nominally in [0, 1], unclamped: the
    resize overshoots at edges and out-of-range codes stay out of range) from integer planes:
    ``luma`` [N, 1, H, W] and ``chroma`` [N, 2, h, w] (Cb then Cr; any h, w: 4:2:0, 4:2:2,
    4:4:4) holding ``bits``-bit codes in any integer dtype (uint16 from a 10- or 12-bit decoder).
    ``full_range``: codes span 0..2^bits-1 (BT.2100's full range: white is 2^bits-1 exactly);
    otherwise the studio range (luma 16-235, chroma 16-240, scaled to the bit depth). ``matrix``
    is a key of :data:`kernels.colour.MATRICES`. Both planes are resized with
    :func:`kernels.resize.resize_planes`.

    :func:`kernels.colour.yuv420_to_rgb` is the same conversion at the source size, to bytes,
    for NVDEC's surfaces."""
    if matrix not in MATRICES:
        raise ValueError(f"matrix must be one of {sorted(MATRICES)}, got {matrix!r}")
    if luma.dim() != 4 or luma.shape[1] != 1 or chroma.dim() != 4 or chroma.shape[:2] != (luma.shape[0], 2):
        raise ValueError(f"planes must be luma [N, 1, H, W] and chroma [N, 2, h, w], got "
                         f"{tuple(luma.shape)} and {tuple(chroma.shape)}")
    if not 8 <= bits <= 16:
        raise ValueError(f"bits must be in 8..16, got {bits}")
    step = 1 << (bits - 8)
    if full_range:
        black, luma_span, chroma_span = 0, (1 << bits) - 1, (1 << bits) - 1
    else:
        black, luma_span, chroma_span = 16 * step, 219 * step, 224 * step
    y = _as_float(luma).sub_(black).mul_(1 / luma_span)
    c = _as_float(chroma).sub_(1 << (bits - 1)).mul_(1 / chroma_span)
    y = resize_planes(y, height, width)
    c = resize_planes(c, height, width)
    red_cr, green_cb, green_cr, blue_cb = chroma_weights(matrix)
    cb, cr = c[:, 0:1], c[:, 1:2]
    out = torch.empty((y.shape[0], 3, height, width), dtype=torch.float32, device=y.device)
    torch.add(y, cr, alpha=red_cr, out=out[:, 0:1])
    torch.add(y, cb, alpha=blue_cb, out=out[:, 2:3])
    torch.add(y, cr, alpha=green_cr, out=out[:, 1:2]).add_(cb, alpha=green_cb)
    return out


def _as_float(codes: Tensor) -> Tensor:
    """A float32 copy of integer planes (uint16 casts through ``copy_``, which every device has)."""
    return torch.empty(codes.shape, dtype=torch.float32, device=codes.device).copy_(codes)
