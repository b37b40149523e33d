"""kernels.scenes: one palette for a clip that keeps its colours, one per run of frames for a
clip whose colours move on (a cut, animation)."""

from __future__ import annotations

import torch

from animated_previews.kernels.scenes import GROUP_FRAMES, palette_groups


def gradient(frames: int, hue: tuple[float, float, float], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64)
    colour = torch.tensor(hue).view(1, 3, 1, 1)
    base = (ramp * colour * 255).expand(frames, 3, 48, 64)
    noise = torch.randint(-2, 3, (frames, 3, 48, 64), generator=generator)
    return (base + noise).clamp(0, 255).to(torch.uint8)


def test_a_clip_that_keeps_its_colours_gets_one_palette():
    frames = gradient(3 * GROUP_FRAMES, (1.0, 0.6, 0.2))
    assert palette_groups(frames) == [slice(0, 3 * GROUP_FRAMES)]


def test_a_cut_to_other_colours_gives_each_run_of_frames_a_palette():
    frames = torch.cat([gradient(GROUP_FRAMES + 4, (1.0, 0.3, 0.1)), gradient(GROUP_FRAMES + 4, (0.1, 0.4, 1.0), seed=1)])
    runs = palette_groups(frames)
    assert len(runs) == 3 and runs[0] == slice(0, GROUP_FRAMES) and runs[-1].stop == frames.shape[0]


def test_a_short_clip_is_one_run_whatever_its_colours():
    frames = torch.cat([gradient(4, (1.0, 0.3, 0.1)), gradient(4, (0.1, 0.4, 1.0))])
    assert palette_groups(frames) == [slice(0, 8)]


def test_the_runs_histograms_are_the_palettes_input_whether_split_or_not():
    from animated_previews.kernels.histogram import colour_histogram
    from animated_previews.kernels.scenes import palette_runs

    still = gradient(3 * GROUP_FRAMES, (1.0, 0.6, 0.2))
    runs, histograms = palette_runs(still)
    counts, sums = colour_histogram(still, bits=5, sample_stride=2)
    assert runs == [slice(0, 3 * GROUP_FRAMES)] and len(histograms) == 1
    assert torch.equal(histograms[0][0], counts) and torch.equal(histograms[0][1], sums)  # the clip's, exactly
    cut = torch.cat([gradient(GROUP_FRAMES, (1.0, 0.3, 0.1)), gradient(GROUP_FRAMES, (0.1, 0.4, 1.0), seed=1)])
    runs, histograms = palette_runs(cut)
    assert len(runs) == 2
    assert torch.equal(histograms[1][0], colour_histogram(cut[GROUP_FRAMES:], bits=5, sample_stride=2)[0])
