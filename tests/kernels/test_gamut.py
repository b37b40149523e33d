"""SDR with wide primaries (BT.2020, Display P3) -> BT.709 primaries: greys stay grey, BT.709
colours come back, and the matrices are the published ones."""

from __future__ import annotations

import pytest
import torch

from animated_previews.kernels.gamut import sdr_to_bt709
from animated_previews.kernels.primaries import BT2020_TO_BT709, CHROMATICITIES, rgb_to_xyz, to_bt709_matrix

WIDE = ["bt2020", "p3"]


@pytest.mark.parametrize("primaries", WIDE)
def test_greys_stay_grey(primaries):
    grey = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256).expand(1, 3, 1, 256).contiguous()
    assert (sdr_to_bt709(grey, primaries).int() - grey.int()).abs().max() <= 1


@pytest.mark.parametrize("primaries,as_is", [("bt2020", 160), ("p3", 120)])
def test_bt709_colours_coded_in_wide_primaries_come_back(primaries, as_is):
    """BT.709 colours put into the wider primaries (the inverse matrix, in BT.1886 display
    light) and coded at 10 bits come back: within 2 codes, but for channels near black (where a
    code is far less light); BT.709's primaries themselves are the hardest case."""
    generator = torch.Generator().manual_seed(3)
    colours = torch.randint(0, 256, (1, 3, 64, 64), generator=generator, dtype=torch.uint8)
    colours[0, :, 0, :3] = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8).T
    linear = (colours.double() / 255) ** 2.4
    inverse = torch.linalg.inv(torch.tensor(to_bt709_matrix(primaries), dtype=torch.float64))
    wide = torch.einsum("ij,njhw->nihw", inverse, linear).clamp(0, 1) ** (1 / 2.4)
    coded = ((wide * 1023).round() * 64).to(torch.int32)  # a 10-bit coding, as 16-bit codes
    back = sdr_to_bt709(coded, primaries)
    light = ((back.double() / 255) ** 2.4 - linear).abs()
    assert light.max() < 0.01  # in display light, everywhere: within one output code at white (0.0094)
    lit = colours >= 32  # near black gamma 2.4 magnifies the 10-bit coding's steps (0 -> 9 at worst)
    assert (back.int() - colours.int()).abs()[lit].max() <= 2
    read_as_is = (coded / 257.0 - colours.double()).abs().max()
    assert read_as_is > as_is  # what showing the wide codes as BT.709 does to saturated colours (168, 124)


def test_colours_outside_bt709_are_clipped_not_wrapped():
    green = torch.tensor([0, 255, 0], dtype=torch.uint8).view(1, 3, 1, 1)  # BT.2020's green
    assert sdr_to_bt709(green, "bt2020").view(3).tolist() == [0, 255, 0]


def test_the_matrix_worked_out_from_bt2020s_chromaticities_is_the_one_bt2087_publishes():
    """So the same arithmetic gives Display P3's from its chromaticities (SMPTE EG 432-1)."""
    worked_out = torch.linalg.inv(rgb_to_xyz(CHROMATICITIES["bt709"])) @ rgb_to_xyz(CHROMATICITIES["bt2020"])
    assert (worked_out - torch.tensor(BT2020_TO_BT709, dtype=torch.float64)).abs().max() < 1e-6
    p3 = torch.tensor(to_bt709_matrix("p3"), dtype=torch.float64)
    assert torch.allclose(p3.sum(dim=1), torch.ones(3, dtype=torch.float64))  # white stays white
    assert p3[0, 0] == pytest.approx(1.2249, abs=1e-4) and p3[2, 2] == pytest.approx(1.0983, abs=1e-4)


def test_only_integer_codes_and_known_primaries_are_taken():
    with pytest.raises(ValueError, match="uint8 or 16-bit"):
        sdr_to_bt709(torch.zeros(1, 3, 2, 2), "bt2020")
    with pytest.raises(ValueError, match="primaries must be one of"):
        sdr_to_bt709(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), "smpte431")
