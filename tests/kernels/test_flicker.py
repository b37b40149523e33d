"""The share of a clip that flickers by a few levels (kernels/flicker.py): camera noise counts,
stillness and real motion do not."""

from __future__ import annotations

import pytest
import torch

from animated_previews.kernels.flicker import FLICKER_LEVELS, flicker_share


def still(count: int = 6, height: int = 32, width: int = 48) -> torch.Tensor:
    frame = torch.arange(height * width * 3, dtype=torch.int64).reshape(3, height, width) % 200 + 20
    return frame.to(torch.uint8).expand(count, 3, height, width).contiguous()


def test_a_still_clip_does_not_flicker():
    assert float(flicker_share(still())) == 0.0


def test_noise_of_a_few_levels_on_every_frame_is_flicker():
    frames = still().to(torch.int16)
    noise = torch.randint(-2, 3, frames.shape, generator=torch.Generator().manual_seed(1))
    share = float(flicker_share((frames + noise).clamp(0, 255).to(torch.uint8), stride=1))
    assert share > 0.8  # a pixel whose three channels all come out unchanged is rare


def test_change_past_the_levels_is_motion_not_flicker():
    frames = still()
    frames[1::2, :, :, :16] += FLICKER_LEVELS + 1  # a third of the picture jumps on every other frame
    assert float(flicker_share(frames, stride=1)) == 0.0
    frames[1::2, 0, :, 16:] += FLICKER_LEVELS  # and the rest moves by exactly the levels, in one channel
    assert float(flicker_share(frames, stride=1)) == pytest.approx(2 / 3, abs=0.01)


def test_one_frame_has_nothing_to_compare_and_wrong_frames_are_refused():
    assert float(flicker_share(still(count=1))) == 0.0
    with pytest.raises(ValueError):
        flicker_share(still().float())
