"""SDR with BT.2020 primaries -> BT.709 primaries: greys stay grey, BT.709 colours come back."""

from __future__ import annotations

import pytest
import torch

from animated_previews.kernels.gamut import bt2020_sdr_to_bt709
from animated_previews.kernels.tonemap import bt2020_to_bt709


def test_greys_stay_grey():
    grey = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256).expand(1, 3, 1, 256).contiguous()
    assert (bt2020_sdr_to_bt709(grey).int() - grey.int()).abs().max() <= 1


def test_bt709_colours_coded_in_bt2020_come_back():
    """BT.709 colours put into BT.2020 (the inverse matrix, in BT.1886 display light) and coded
    at 10 bits come back: within 2 codes, but for channels near black (where a code is far less
    light); BT.709's primaries themselves are the hardest case."""
    generator = torch.Generator().manual_seed(3)
    colours = torch.randint(0, 256, (1, 3, 64, 64), generator=generator, dtype=torch.uint8)
    colours[0, :, 0, :3] = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8).T
    linear = (colours.double() / 255) ** 2.4
    inverse = torch.linalg.inv(bt2020_to_bt709(torch.eye(3, dtype=torch.float64).view(1, 3, 3, 1)).view(3, 3))
    wide = torch.einsum("ij,njhw->nihw", inverse, linear).clamp(0, 1) ** (1 / 2.4)
    coded = ((wide * 1023).round() * 64).to(torch.int32)  # a 10-bit coding, as 16-bit codes
    back = bt2020_sdr_to_bt709(coded)
    light = ((back.double() / 255) ** 2.4 - linear).abs()
    assert light.max() < 0.01  # in display light, everywhere: within one output code at white (0.0094)
    lit = colours >= 32  # near black gamma 2.4 magnifies the 10-bit coding's steps (0 -> 9 at worst)
    assert (back.int() - colours.int()).abs()[lit].max() <= 2
    read_as_is = (coded / 257.0 - colours.double()).abs().max()
    assert read_as_is > 40  # what showing the BT.2020 codes as BT.709 does to saturated colours


def test_colours_outside_bt709_are_clipped_not_wrapped():
    green = torch.tensor([0, 255, 0], dtype=torch.uint8).view(1, 3, 1, 1)  # BT.2020's green
    assert bt2020_sdr_to_bt709(green).view(3).tolist() == [0, 255, 0]


def test_only_integer_codes_are_taken():
    with pytest.raises(ValueError, match="uint8 or 16-bit"):
        bt2020_sdr_to_bt709(torch.zeros(1, 3, 2, 2))
