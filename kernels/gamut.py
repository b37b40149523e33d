"""SDR frames with primaries wider than BT.709's shown with BT.709's: BT.2020 (UHD broadcast SDR,
some cameras) and Display P3 (SMPTE EG 432-1: the P3 of wide-gamut screens, with D65 white).

A frame tagged BT.2020 with an SDR transfer (``bt2020-10``/``bt2020-12``, BT.709's curve) needs
no tone map, but its colours are coded against wider primaries: read as BT.709 they come out
desaturated (an odd-variant sweep found such a clip 12 dB from its BT.709 master). The
conversion is done in display light, as zimg does by default: BT.1886's EOTF (gamma 2.4),
BT.2020 -> BT.709 primaries (BT.2087), colours outside BT.709 clipped, and the EOTF's inverse.
On that clip's first frame: 24.5 dB from the master (zscale's own conversion: 25.2 dB; through the
camera curve, BT.709's OETF, instead: 17.2 dB), the rest being the 4:2:0 chroma of two codings.
Display P3 frames read as BT.709 come out desaturated too, less so (P3 lies between the two), and
take the same steps with their own matrix.

The matrices: :func:`kernels.primaries.to_bt709_matrix` (BT.2087's for BT.2020; worked out from
the chromaticities for the others).

Pure tensor ops; the per-code curve is a table (256 or 65,536 entries). Take 16-bit input where
there is any (the decoder hands these frames over so): near black gamma 2.4 magnifies steps, and
on random BT.709 colours an 8-bit wide coding read at 8 bits came back up to 28 codes off in a
dark channel, a 10-bit one read at 16 bits up to 15 there and within 2 codes elsewhere
(tests/kernels/test_gamut.py), all within a code's worth of light at white.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .primaries import to_bt709_matrix
from .tonemap import bt1886_inverse

__all__ = ["sdr_to_bt709"]

_GAMMA = 2.4
"""BT.1886's display gamma: the EOTF whose inverse is the tone map's output step (:func:`bt1886_inverse`)."""


def sdr_to_bt709(rgb: Tensor, primaries: str) -> Tensor:
    """R'G'B' [N, 3, H, W] with ``primaries`` ("bt2020", "p3"), uint8 or 16-bit codes (uint16, or
    int32 as torch reads them) -> uint8 R'G'B' with BT.709 primaries, same shape (a new tensor)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3 or rgb.dtype not in (torch.uint8, torch.uint16, torch.int32):
        raise ValueError(f"rgb must be uint8 or 16-bit codes [N, 3, H, W], got {rgb.dtype} {tuple(rgb.shape)}")
    matrix = torch.tensor(to_bt709_matrix(primaries), dtype=torch.float32, device=rgb.device)
    bits = 8 if rgb.dtype == torch.uint8 else 16
    codes = rgb.to(torch.int64) if bits == 8 else rgb.to(torch.int64).clamp_(0, 65535)
    linear = torch.einsum("ij,njhw->nihw", matrix, _display_light(bits, rgb.device)[codes])
    return bt1886_inverse(linear).mul_(255).round_().to(torch.uint8)  # clipped to [0, 1]


@functools.lru_cache(maxsize=4)
def _display_light(bits: int, device: torch.device) -> Tensor:
    """BT.1886's EOTF for each code of ``bits`` bits, float32 [2^bits]."""
    top = (1 << bits) - 1
    return (torch.arange(top + 1, dtype=torch.float64) / top).pow(_GAMMA).to(device=device, dtype=torch.float32)
