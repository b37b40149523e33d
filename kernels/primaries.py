"""The colour primaries frames are coded with, and the matrices that take their linear light to
BT.709's: for SDR frames with wider primaries (:mod:`kernels.gamut`) and for HDR frames in the
tone map (:mod:`kernels.tonemap`), which are coded against BT.2020's mostly, Display P3's in
some mastering formats (P3-D65 PQ).

BT.2020's matrix is BT.2087's as published; any other is worked out from the primaries' and
white's chromaticities (CIE 1931 xy) as SMPTE RP 177 does, which gives BT.2087's to within 1e-6
from BT.2020's (tests/kernels/test_gamut.py).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

__all__ = ["BT2020_TO_BT709", "CHROMATICITIES", "rgb_to_xyz", "to_bt709_matrix"]

Chromaticity = tuple[float, float]
CHROMATICITIES: dict[str, tuple[Chromaticity, Chromaticity, Chromaticity]] = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
    "p3": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
}
"""Red, green and blue primaries (CIE 1931 x, y) of BT.709, BT.2020 and Display P3 (SMPTE EG 432-1),
all three with the D65 white point (:data:`_D65`)."""
_D65 = (0.3127, 0.3290)

BT2020_TO_BT709 = (
    (1.660491, -0.587641, -0.072850),
    (-0.124550, 1.132900, -0.008350),
    (-0.018151, -0.100579, 1.118730),
)
"""Linear BT.2020 RGB -> linear BT.709 RGB as BT.2087 publishes it, rows summing to 1 so that greys
stay grey."""


@functools.lru_cache(maxsize=8)
def to_bt709_matrix(primaries: str) -> tuple[tuple[float, float, float], ...]:
    """The 3x3 matrix from linear RGB with ``primaries`` (a key of :data:`CHROMATICITIES`) to
    linear BT.709 RGB, D65 on both sides; BT.2020's is BT.2087's published one."""
    if primaries not in CHROMATICITIES:
        raise ValueError(f"primaries must be one of {sorted(CHROMATICITIES)}, got {primaries!r}")
    if primaries == "bt2020":
        return BT2020_TO_BT709
    to_xyz = rgb_to_xyz(CHROMATICITIES[primaries])
    from_xyz = torch.linalg.inv(rgb_to_xyz(CHROMATICITIES["bt709"]))
    return tuple(tuple(row) for row in (from_xyz @ to_xyz).tolist())


def rgb_to_xyz(primaries: tuple[Chromaticity, Chromaticity, Chromaticity]) -> Tensor:
    """RGB -> CIE XYZ for these primaries and D65 white (RP 177): the primaries' XYZ at Y = 1 as
    columns, each scaled so that R = G = B = 1 is the white point at Y = 1; float64 [3, 3]."""
    def xyz(x: float, y: float) -> list[float]:
        return [x / y, 1.0, (1 - x - y) / y]

    columns = torch.tensor([xyz(*p) for p in primaries], dtype=torch.float64).T
    scale = torch.linalg.solve(columns, torch.tensor(xyz(*_D65), dtype=torch.float64))
    return columns * scale
