"""YUV 4:2:0 -> RGB colour conversion of frame batches, as NVDEC hands them over.

NVDEC decodes 8-bit 4:2:0 into NV12 (a luma plane, then one plane of interleaved Cb/Cr at half
the height and half the width) and 10/12-bit 4:2:0 into P016 (the same layout in 16-bit words,
the sample in the high bits). :func:`split_nv12` cuts such a surface into its two planes without
copying, and :func:`yuv420_to_rgb` turns a batch of them into RGB with the matrix and range the
stream is tagged with.

Why our own kernel rather than the decoder's RGB output: the decoder applies the stream's matrix
with its own defaults for untagged video and its own chroma filter, always at 8 bits, and the CPU
path (FFmpeg's swscale through PyAV) is the reference every output is judged against. Doing the
conversion here makes the GPU path follow exactly the CPU path's rules (untagged HD is BT.709,
smaller untagged video BT.601; limited or full range from the tags; 10-bit precision kept until
the final rounding) and keeps it testable on CPU tensors.

Chroma upsampling (``chroma=``):

- "nearest": each chroma sample covers its 2x2 block of luma samples. This is what swscale's
  unscaled 8-bit 4:2:0 -> RGB24 converter does, so for 8-bit video the GPU path then matches the
  CPU path to rounding (at most 3 levels apart, measured on noise and on clip frames).
- "bilinear": linear interpolation with MPEG-2/H.264 chroma siting (samples co-sited with the
  even luma columns, centred between two luma rows): the better filter for smooth pictures, and
  closer than "nearest" to swscale's high-bit-depth path (which interpolates rows but holds
  columns): 43-51 dB against 41-45 dB on clip frames.

tests/kernels/test_colour.py measures both against swscale for BT.601/709, both ranges, 8 and
10 bits. For 10-bit limited range, swscale lands about 1.4 levels below the source picture while
this kernel lands on it, so the two differ by that bias there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MATRICES", "chroma_weights", "split_nv12", "word_values", "yuv420_to_rgb"]

MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}
"""Luma weights (Kr, Kb) of each YCbCr matrix, as ITU-R BT.601/709/2020, SMPTE 240M and FCC
define them (the same constants swscale uses for those tags)."""

# Float work per chunk: 2^24 float32 values per plane set (64 MB), so a 3000-frame 1080p clip is
# converted a few frames at a time instead of materialising gigabytes of float intermediates.
_CHUNK_VALUES = 1 << 24


def split_nv12(surfaces: Tensor, height: int, width: int | None = None) -> tuple[Tensor, Tensor]:
    """Views of the luma and interleaved chroma planes of NV12/P016 surfaces; no copy.

    surfaces: [N, rows, W] (or one [rows, W]) with ``rows >= height + ceil(height / 2)``: the
    luma plane's ``height`` rows, then the chroma rows, as NVDEC's NATIVE output lays them out
    (one (1.5 H, W) plane per frame). uint8 for NV12, uint16/int16 words for P016.
    Returns ``y`` [N, height, width] and ``uv`` [N, ceil(height/2), ceil(width/2), 2] (Cb, Cr).
    ``width`` crops the picture when the surface is wider (NVDEC pads odd widths to even).
    """
    if surfaces.dim() == 2:
        surfaces = surfaces.unsqueeze(0)
    if surfaces.dim() != 3:
        raise ValueError(f"surfaces must be [N, rows, W], got {tuple(surfaces.shape)}")
    rows, surface_width = surfaces.shape[-2:]
    width = surface_width if width is None else width
    chroma_rows = (height + 1) // 2
    chroma_cols = (width + 1) // 2
    if rows < height + chroma_rows or surface_width < 2 * chroma_cols or surface_width % 2:
        raise ValueError(f"a {tuple(surfaces.shape[-2:])} surface cannot hold a {width}x{height} NV12 picture")
    y = surfaces[:, :height, :width]
    uv = surfaces[:, height : height + chroma_rows, :].unflatten(-1, (surface_width // 2, 2))[:, :, :chroma_cols]
    return y, uv


def yuv420_to_rgb(y: Tensor, uv: Tensor, *, matrix: str, full_range: bool, chroma: str = "nearest") -> Tensor:
    """RGB uint8 [N, 3, H, W] from 4:2:0 planes y [N, H, W] and uv [N, ceil(H/2), ceil(W/2), 2].

    ``matrix`` names the YCbCr matrix (a key of :data:`MATRICES`: "bt601", "bt709", ...);
    ``full_range`` is True for full-range ("JPEG") video, False for limited range (Y in 16..235,
    Cb/Cr in 16..240 at 8 bits). Samples are uint8 for 8-bit video, or 16-bit words with the
    sample in the high bits (P016: a 10-bit value v is stored as v << 6) for deeper video, given
    as uint16 or as int16 (the same bits; DLPack producers and older torch builds differ).
    ``chroma`` picks the chroma upsampling, "nearest" or "bilinear" (see the module notes).

    Runs as batched tensor ops on the tensors' device, chunked over frames to bound memory, with
    no read-back to the host.
    """
    if matrix not in MATRICES:
        raise ValueError(f"unknown colour matrix {matrix!r}; expected one of {sorted(MATRICES)}")
    if chroma not in _UPSAMPLERS:
        raise ValueError(f"unknown chroma upsampling {chroma!r}; expected one of {sorted(_UPSAMPLERS)}")
    if y.dim() != 3 or uv.dim() != 4 or uv.shape[-1] != 2:
        raise ValueError(f"expected y [N, H, W] and uv [N, H/2, W/2, 2], got {tuple(y.shape)} and {tuple(uv.shape)}")
    n, height, width = y.shape
    if uv.shape[0] != n or uv.shape[1] != (height + 1) // 2 or uv.shape[2] != (width + 1) // 2:
        raise ValueError(f"chroma {tuple(uv.shape)} does not fit luma {tuple(y.shape)} in 4:2:0")
    if y.dtype != uv.dtype or y.dtype not in (torch.uint8, torch.uint16, torch.int16):
        raise ValueError(f"planes must both be uint8, uint16 or int16, got {y.dtype} and {uv.dtype}")
    out = torch.empty((n, 3, height, width), dtype=torch.uint8, device=y.device)
    if n == 0:
        return out
    coefficients = _coefficients(matrix, full_range)
    chunk = max(1, _CHUNK_VALUES // (height * width))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = _convert(y[start:stop], uv[start:stop], coefficients, _UPSAMPLERS[chroma])
    return out


def chroma_weights(matrix: str) -> tuple[float, float, float, float]:
    """(R<-Cr, G<-Cb, G<-Cr, B<-Cb): what Cb and Cr (centred on 0, luma's scale) add to R', G'
    and B' under ``matrix`` (a key of :data:`MATRICES`)."""
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    return 2.0 * (1.0 - kr), -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg, 2.0 * (1.0 - kb)


def _coefficients(matrix: str, full_range: bool) -> tuple[float, ...]:
    """(luma offset, luma gain, chroma gain, R<-Cr, G<-Cb, G<-Cr, B<-Cb) on the 8-bit scale."""
    if full_range:
        offset, luma_gain, chroma_gain = 0.0, 1.0, 1.0
    else:
        offset, luma_gain, chroma_gain = 16.0, 255.0 / 219.0, 255.0 / 224.0
    return (offset, luma_gain, chroma_gain, *chroma_weights(matrix))


def word_values(words: Tensor) -> Tensor:
    """16-bit words (P016's, as uint16 or int16: the same bits) as their unsigned values, int32.

    Read through int16 with the sign undone in int32: torch's uint16 has only barebones support,
    on CUDA in particular, while int16 and int32 work everywhere."""
    if words.dtype == torch.uint16:
        words = words.view(torch.int16)
    return words.to(torch.int32).bitwise_and_(0xFFFF)


def _to_float(samples: Tensor) -> Tensor:
    """Samples as float32 on the 8-bit scale (a 16-bit word w becomes w / 256)."""
    if samples.dtype == torch.uint8:
        return samples.to(torch.float32)
    return word_values(samples).to(torch.float32).mul_(1.0 / 256.0)


def _nearest_chroma(uv: Tensor, height: int, width: int) -> Tensor:
    """Cb/Cr [n, 2, h/2, w/2] -> [n, 2, H, W]: each sample repeated over its 2x2 block."""
    return uv.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :height, :width]


def _bilinear_chroma(uv: Tensor, height: int, width: int) -> Tensor:
    """Cb/Cr [n, 2, h/2, w/2] -> [n, 2, H, W] by bilinear interpolation with MPEG-2 siting.

    Vertically each chroma row sits between two luma rows (centre siting), which is what
    ``interpolate(align_corners=False)`` assumes. Horizontally each chroma sample is co-sited
    with an even luma column, so even output columns take the sample itself and odd columns the
    mean of their two neighbours (the last column repeats the edge sample).
    """
    cw = uv.shape[-1]
    rows = F.interpolate(uv, size=(height, cw), mode="bilinear", align_corners=False)
    right = torch.cat((rows[..., 1:], rows[..., -1:]), dim=-1)
    full = torch.stack((rows, (rows + right).mul_(0.5)), dim=-1).flatten(-2)
    return full[..., :width]


_UPSAMPLERS = {"nearest": _nearest_chroma, "bilinear": _bilinear_chroma}


def _convert(y: Tensor, uv: Tensor, c: tuple[float, ...], upsample) -> Tensor:
    offset, luma_gain, chroma_gain, r_cr, g_cb, g_cr, b_cb = c
    height, width = y.shape[-2:]
    luma = _to_float(y).sub_(offset).mul_(luma_gain)
    chroma = upsample(_to_float(uv).permute(0, 3, 1, 2), height, width)
    chroma = chroma.sub_(128.0).mul_(chroma_gain)
    cb, cr = chroma[:, 0], chroma[:, 1]
    red = luma + r_cr * cr
    green = luma + g_cb * cb + g_cr * cr
    blue = luma + b_cb * cb
    rgb = torch.stack((red, green, blue), dim=1)
    return rgb.round_().clamp_(0.0, 255.0).to(torch.uint8)
