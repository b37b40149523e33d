"""HDR and wide-gamut SDR frames from a GPU decoder's 4:2:0 planes, with the CPU path's colour steps.

NVDEC hands over NV12 (8-bit) or P016 (deeper video, each sample in the high bits of a 16-bit
word). SDR BT.709/BT.601 frames go to RGB bytes in one kernel (:func:`kernels.colour.yuv420_to_rgb`).
HDR (PQ, HLG) and SDR frames with wide primaries (BT.2020, Display P3) need what engine/decode/pyav.py does for
them instead, and this module does it with the same kernels on whatever device the planes are on:

* 10- to 16-bit HDR frames the fit only resizes: the planes are resized as they are and
  converted at the output size (:meth:`engine.render.Fitter.fit_planes`), then tone-mapped
  (:func:`kernels.tonemap.hdr_to_sdr`): the CPU path's planes route, the same function.
* HDR frames kept at their size, cropped or padded, and 8-bit ones (which the CPU path's planes
  route does not read either): R'G'B' at the source size as floats
  (:func:`kernels.yuv.yuv_to_rgb`; the CPU path has FFmpeg's scaler make 16-bit RGB here, so the
  chroma upsampling differs a little), turned upright, fitted, then tone-mapped.
* Wide-gamut SDR: 16-bit R'G'B' codes at the source size mapped to BT.709's primaries
  (:func:`kernels.gamut.sdr_to_bt709`), as the CPU path maps its 16-bit frames, then
  turned and fitted as bytes.

Frames go through :data:`FRAMES_AT_ONCE` at a time: float R'G'B' at the source size is 12 bytes
a pixel (100 MB a 4K frame), against 1.5 (NV12) or 3 (P016) for the batch it comes from. By
arithmetic from the tensors' sizes (not measured on a GPU): at 4K, four HDR frames peak near 1 GB
plus the tone map's per-frame intermediates; four wide-gamut SDR frames near 2 GB (the gamut map
holds 16-bit codes, int64 indices and float light at once).
"""

from __future__ import annotations

import torch

from . import CodedFit, Fit, YUVPlanes
from .frame_tags import StreamTags
from ...kernels.colour import word_values
from ...kernels.gamut import sdr_to_bt709
from ...kernels.tonemap import hdr_to_sdr
from ...kernels.yuv import yuv_to_rgb

__all__ = ["FRAMES_AT_ONCE", "sample_codes", "wide_colour"]

FRAMES_AT_ONCE = 4
"""Frames converted at once (see the module docstring): by arithmetic a 4K batch peaks at 1-2 GB,
where the 32 frames of a fetch at once would be 8-16."""


def sample_codes(samples: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer sample codes (0 .. 2^bits - 1) from NV12 bytes (as they are) or P016 words, given
    as uint16 or int16 (the same bits), whose sample sits in the high bits: int32 codes."""
    if samples.dtype == torch.uint8:
        return samples
    return word_values(samples).bitwise_right_shift_(16 - bits)


def wide_colour(y: torch.Tensor, uv: torch.Tensor, tags: StreamTags, fit: Fit | None) -> torch.Tensor:
    """Upright, fitted SDR BT.709 bytes [N, 3, h, w] from HDR (``tags.transfer``) or wide-gamut SDR
    (``tags.wide_gamut``) 4:2:0 planes as coded: ``y`` [N, H, W] and ``uv`` [N, H/2, W/2, 2]
    (:func:`kernels.colour.split_nv12`), flipped left-right first when ``tags.mirrored``."""
    if tags.transfer is None and not tags.wide_gamut:
        raise ValueError("wide_colour is for HDR or wide-gamut frames; SDR BT.709/601 goes through yuv420_to_rgb")
    done = []
    for start in range(0, y.shape[0], FRAMES_AT_ONCE):
        luma = sample_codes(y[start:start + FRAMES_AT_ONCE], tags.bits).unsqueeze(1)
        chroma = sample_codes(uv[start:start + FRAMES_AT_ONCE], tags.bits).permute(0, 3, 1, 2)
        if tags.mirrored:
            luma, chroma = luma.flip(-1), chroma.flip(-1)
        done.append(_converted(luma, chroma, tags, fit))
    return done[0] if len(done) == 1 else torch.cat(done)


def _converted(luma: torch.Tensor, chroma: torch.Tensor, tags: StreamTags, fit: Fit | None) -> torch.Tensor:
    height, width = luma.shape[-2:]
    if tags.transfer is not None and tags.bits > 8 and isinstance(fit, CodedFit) \
            and fit.takes_planes(width, height, tags.turns):
        planes = YUVPlanes(luma=luma, chroma=chroma, matrix=tags.matrix, bits=tags.bits, full_range=tags.full_range)
        return hdr_to_sdr(fit.fit_planes(planes, tags.turns), tags.transfer, tags.peak_nits, tags.hdr_primaries)
    rgb = yuv_to_rgb(luma, chroma, height, width, matrix=tags.matrix, bits=tags.bits, full_range=tags.full_range)
    if tags.transfer is None:
        codes = rgb.clamp_(0, 1).mul_(65535).round_().to(torch.int32)
        del rgb  # the float frames go before the gamut map makes its own
        rgb = sdr_to_bt709(codes, tags.wide_gamut)
    if tags.turns:
        rgb = torch.rot90(rgb, k=tags.turns, dims=(2, 3))
    if fit is not None:
        rgb = fit(rgb, tags.turns)
    return rgb if tags.transfer is None else hdr_to_sdr(rgb, tags.transfer, tags.peak_nits, tags.hdr_primaries)
