"""kernels.hold: a pixel keeps its index while the colour shown is nearly as good as the new
one, so a still but noisy background stops flickering (and costs the GIF writer nothing), while
whatever really changes takes its new colour at once."""

from __future__ import annotations

import pytest
import torch

from animated_previews.kernels import hold, hold_scan
from animated_previews.kernels.hold import DEFAULT_HOLD_SLACK, KEEP, hold_indices
from animated_previews.kernels.palette import median_cut
from animated_previews.kernels.remap import palette_spacing, remap


def noisy_still(frames: int = 8, seed: int = 0) -> torch.Tensor:
    """A smooth gradient, the same in every frame but for +-3 levels of fresh noise."""
    gen = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    base = torch.stack([x * 4, y * 5, (x + y) * 2]).float()
    noise = torch.randint(-3, 4, (frames, 3, 48, 64), generator=gen).float()
    return (base + noise).clamp(0, 255).to(torch.uint8)


def distance(frames: torch.Tensor, indices: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    shown = palette.float()[indices.long()].permute(0, 3, 1, 2)  # [N, 3, H, W]
    return (shown - frames.float()).square().sum(1).sqrt()


def test_a_still_noisy_background_keeps_its_indices():
    frames = noisy_still()
    palette = median_cut(frames, max_colours=32)
    fresh = remap(frames, palette)
    index = torch.arange(frames.shape[0])
    held = hold_indices(frames, fresh, index, palette)
    flips_fresh = (fresh[1:] != fresh[:-1]).float().mean()
    flips_held = (held[1:] != held[:-1]).float().mean()
    assert flips_fresh > 0.05  # the noise alone makes the plain remap flicker
    assert flips_held < flips_fresh / 4


def test_a_held_colour_is_never_worse_than_the_new_one_by_more_than_the_slack():
    frames = noisy_still()
    palette = median_cut(frames, max_colours=32)
    fresh = remap(frames, palette, dither_strength=0)
    slack = 0.25
    held = hold_indices(frames, fresh, torch.arange(frames.shape[0]), palette, slack)
    margin = slack * float(palette_spacing(palette))
    assert torch.all(distance(frames, held, palette) <= distance(frames, fresh, palette) + margin + 1e-3)
    assert torch.equal(held[0], fresh[0])  # the first frame is the remap as it is


def test_what_really_changes_takes_its_new_colour_at_once():
    frames = noisy_still(4)
    frames[2:, :, 10:30, 20:40] = torch.tensor([250, 20, 20], dtype=torch.uint8).view(3, 1, 1)  # a red square appears
    palette = median_cut(frames, max_colours=32)
    fresh = remap(frames, palette, dither_strength=0)
    held = hold_indices(frames, fresh, torch.arange(4), palette)
    assert torch.equal(held[2, 10:30, 20:40], fresh[2, 10:30, 20:40])


def test_instants_showing_the_same_source_frame_repeat_its_indices():
    frames = noisy_still(3)
    palette = median_cut(frames, max_colours=16)
    index = torch.tensor([0, 0, 1, 1, 1, 2])
    held = hold_indices(frames, remap(frames, palette), index, palette)
    assert held.shape == (6, 48, 64)
    assert torch.equal(held[0], held[1]) and torch.equal(held[2], held[4])


def test_slack_zero_holds_only_what_is_at_least_as_good():
    frames = noisy_still()
    palette = median_cut(frames, max_colours=32)
    fresh = remap(frames, palette, dither_strength=0)
    held = hold_indices(frames, fresh, torch.arange(frames.shape[0]), palette, 0.0)
    assert torch.all(distance(frames, held, palette) <= distance(frames, fresh, palette) + 1e-3)


def test_mismatched_shapes_and_negative_slack_are_refused():
    frames = noisy_still(2)
    palette = median_cut(frames, max_colours=8)
    with pytest.raises(ValueError, match="do not match"):
        hold_indices(frames, torch.zeros(2, 10, 10, dtype=torch.uint8), torch.arange(2), palette)
    with pytest.raises(ValueError, match="slack"):
        hold_indices(frames, remap(frames, palette), torch.arange(2), palette, -1.0)


def test_the_indices_can_be_written_into_the_callers_array_in_place():
    """The render holds every instant's indices once: a run's stretch of that array is filled
    where it lies (a second copy doubled a GIF job's peak memory)."""
    frames = noisy_still(3)
    palette = median_cut(frames, max_colours=16)
    fresh, index = remap(frames, palette), torch.tensor([0, 1, 1, 2])
    everything = torch.full((6, 48, 64), 99, dtype=torch.uint8)
    returned = hold_indices(frames, fresh, index, palette, out=everything[1:5])
    assert returned.data_ptr() == everything[1:5].data_ptr()
    assert torch.equal(everything[1:5], hold_indices(frames, fresh, index, palette))
    assert torch.all(everything[0] == 99) and torch.all(everything[5] == 99)  # nothing outside the stretch
    with pytest.raises(ValueError, match="out"):
        hold_indices(frames, fresh, index, palette, out=torch.empty((3, 48, 64), dtype=torch.uint8))


# -- a new palette keeps what the previous one left on screen ----------------------------------

def on_screen(frame: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """What ``frame`` [3, H, W] shows remapped to ``palette``, [3, H, W]."""
    return palette[remap(frame.unsqueeze(0), palette, dither_strength=0)[0].long()].permute(2, 0, 1).contiguous()


def test_a_new_palette_keeps_the_colours_on_screen_it_does_not_show_clearly_better():
    frames = noisy_still(4)
    old, new = median_cut(frames, max_colours=32), median_cut(frames, max_colours=24)
    before = on_screen(frames[0], old)
    fresh = remap(frames, new, dither_strength=0)
    held = hold_indices(frames, fresh, torch.arange(4), new, before=before)
    kept = held == KEEP
    assert kept[0].float().mean() > 0.5  # the old colours are as good: most of the first frame is kept
    shown = torch.where(kept.unsqueeze(-1), before.permute(1, 2, 0).unsqueeze(0), new[held.long().clamp(max=23)])
    error = (shown.float() - frames.permute(0, 2, 3, 1).float()).square().sum(-1).sqrt()
    margin = DEFAULT_HOLD_SLACK * float(palette_spacing(new))
    assert torch.all(error <= distance(frames, fresh, new) + margin + 1e-3)  # never worse than the slack allows


def test_what_the_new_palette_shows_better_takes_its_colour_and_a_changed_source_is_looked_at_again():
    frames = noisy_still(4)
    frames[2:, :, 10:30, 20:40] = torch.tensor([250, 20, 20], dtype=torch.uint8).view(3, 1, 1)  # a red square
    grey = median_cut(frames[:1], max_colours=16)
    before = on_screen(frames[0], grey)
    before[:, 0:8, 0:8] = 255  # a white corner on screen, where the picture is nearly black
    new = median_cut(frames, max_colours=32)
    held = hold_indices(frames, remap(frames, new), torch.arange(4), new, before=before)
    assert not (held[0, 0:8, 0:8] == KEEP).any()  # white was far: the new palette's colours are shown
    assert not (held[2:, 10:30, 20:40] == KEEP).any()  # the square appears on a kept background
    assert (held[1] == KEEP).float().mean() > 0.3


def test_the_kept_index_is_the_formats_own():
    from animated_previews.engine import encode

    assert KEEP == encode.KEEP == 255 and encode.GIF.keeps_screen and not encode.WEBP.keeps_screen


# -- the compiled loop (kernels/hold_scan.py) against the torch kernel -------------------------------

def moving_clip(frames: int, seed: int, channels_last: bool) -> torch.Tensor:
    """Noise over a gradient that drifts by a pixel a frame, with a still block: some pixels
    change index, some keep it, some flicker."""
    gen = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(40), torch.arange(56), indexing="ij")
    clip = []
    for k in range(frames):
        base = torch.stack([(x + k) * 4, y * 6, (x + y + 2 * k) * 2]).float()
        base[:, 5:15, 5:20] = torch.tensor([200.0, 40.0, 90.0]).view(3, 1, 1)
        clip.append(base + torch.randint(-6, 7, (3, 40, 56), generator=gen).float())
    out = torch.stack(clip).clamp(0, 255).to(torch.uint8)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@pytest.mark.skipif(hold_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("slack", [0.0, DEFAULT_HOLD_SLACK, 1.5])
@pytest.mark.parametrize("with_screen", [False, True])
def test_the_compiled_loop_gives_the_torch_kernels_indices(monkeypatch, seed, slack, with_screen):
    """Three ways, one result: the compiled loop (CPU), the torch kernel looking only at the pixels
    whose index changed (CPU without numba), and the torch kernel deciding every pixel at once
    (a GPU, which would pay a host synchronisation a frame to find the changed ones)."""
    frames = moving_clip(7, seed, channels_last=seed % 2 == 0)
    palette = median_cut(frames, max_colours=24 + 20 * (seed % 3))
    fresh = remap(frames, palette)
    index = torch.tensor([0, 0, 1, 2, 2, 3, 4, 5, 6, 6][: 6 + seed % 4])  # repeats, and not every frame
    screen = None
    if with_screen:  # another palette's colours on screen: a flat colour and the first frame, half each
        screen = frames[0].clone()
        screen[:, :20] = torch.tensor([30, 60, 90], dtype=torch.uint8).view(3, 1, 1)

    compiled = hold_indices(frames, fresh, index, palette, slack=slack, before=screen)
    monkeypatch.setattr(hold, "SCAN", None)
    plain = hold_indices(frames, fresh, index, palette, slack=slack, before=screen)
    monkeypatch.setattr(hold, "launch_bound", lambda device: True)  # as on a GPU: no search for changes
    at_once = hold_indices(frames, fresh, index, palette, slack=slack, before=screen)

    assert torch.equal(compiled, plain) and torch.equal(plain, at_once)
    assert (compiled != fresh[index]).any()  # the hold did decide something here
    if with_screen:
        assert (compiled == KEEP).any()
