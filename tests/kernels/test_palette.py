"""Clip-wide palette by batched median cut plus k-means refinement."""

from collections import Counter

import pytest
import torch

import clipmaker

import animated_previews.kernels.palette as palette_module
from animated_previews.kernels import kmeans_scan, median_cut_scan
from animated_previews.kernels.palette import median_cut, median_cut_slots


def clip_of(colours, counts, height=16, width=16, n=2):
    """Frames whose pixels are ``colours[i]`` repeated ``counts[i]`` times (row-major fill)."""
    pixels = torch.cat([torch.tensor(c, dtype=torch.uint8).expand(k, 3) for c, k in zip(colours, counts)])
    assert pixels.shape[0] == n * height * width
    return pixels.view(n, height, width, 3).permute(0, 3, 1, 2).contiguous()


def smooth_clip(n=3, height=48, width=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, 3, height // 8, width // 8), generator=generator) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")
    return smooth.clamp(0, 255).round().to(torch.uint8)


def rows(palette):
    return {tuple(row) for row in palette.tolist()}


def nearest_psnr(frames, palette):
    pixels = frames.permute(0, 2, 3, 1).reshape(-1, 3).float()
    nearest = torch.cdist(pixels, palette.float()).argmin(1)
    mse = (palette.float()[nearest] - pixels).square().mean()
    return (10 * torch.log10(255**2 / mse)).item()


def test_a_clip_with_3_colours_gets_exactly_those_3_colours():
    colours = [(250, 10, 10), (10, 200, 30), (40, 40, 230)]
    palette = median_cut(clip_of(colours, [100, 300, 112]))
    assert palette.shape == (3, 3)
    assert rows(palette) == set(colours)


def test_colours_off_the_bin_grid_are_reproduced_exactly_not_rounded_to_bin_centres():
    colours = [(13, 77, 201), (99, 1, 254), (0, 0, 0), (255, 255, 255), (130, 131, 129)]
    palette = median_cut(clip_of(colours, [100, 100, 100, 100, 112]))
    assert rows(palette) == set(colours)


def test_palette_is_for_the_whole_clip_a_colour_in_the_last_frame_only_is_kept():
    frames = torch.zeros((4, 3, 8, 8), dtype=torch.uint8)
    frames[-1, :, :2, :2] = torch.tensor([200, 20, 90], dtype=torch.uint8).view(3, 1, 1)
    assert rows(median_cut(frames)) == {(0, 0, 0), (200, 20, 90)}


@pytest.mark.parametrize("max_colours", [1, 2, 7, 16, 64, 255])
def test_palette_never_exceeds_max_colours(max_colours):
    generator = torch.Generator().manual_seed(max_colours)
    noise = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=generator)
    palette = median_cut(noise, max_colours=max_colours)
    assert palette.dtype == torch.uint8
    assert palette.device == noise.device
    assert palette.dim() == 2 and palette.shape[1] == 3
    assert 1 <= palette.shape[0] <= max_colours


def test_rich_clips_use_the_whole_colour_budget():
    assert median_cut(smooth_clip(), max_colours=255).shape[0] == 255


def test_one_colour_budget_gives_the_clip_average():
    # 3/4 black, 1/4 white: the best single colour is 255/4 = 63.75.
    palette = median_cut(clip_of([(0, 0, 0), (255, 255, 255)], [384, 128]), max_colours=1)
    assert palette.tolist() == [[64, 64, 64]]


def test_more_colours_give_a_closer_approximation():
    frames = smooth_clip(seed=2)
    psnrs = [nearest_psnr(frames, median_cut(frames, max_colours=k)) for k in (4, 16, 64, 255)]
    assert psnrs == sorted(psnrs)
    # Random smooth colour fields fill the RGB cube densely: 255 colours give ~28 dB here
    # (PIL's median cut 25.7 dB, max coverage 27.0 dB, fast octree 26.4 dB).
    assert psnrs[-1] > 27.5


def test_refinement_does_not_make_the_palette_worse():
    frames = smooth_clip(seed=5)
    raw = nearest_psnr(frames, median_cut(frames, max_colours=32, refine_iterations=0))
    refined = nearest_psnr(frames, median_cut(frames, max_colours=32, refine_iterations=4))
    assert refined >= raw - 0.05


def test_a_big_region_survives_spatial_subsampling():
    frames = smooth_clip(seed=3)
    frames[:, :, 8:40, 8:40] = torch.tensor([255, 0, 255], dtype=torch.uint8).view(3, 1, 1)
    palette = median_cut(frames, max_colours=32, sample_stride=4)
    assert (255, 0, 255) in rows(palette)


def test_subsampling_barely_changes_quality_on_smooth_content():
    frames = smooth_clip(seed=4)
    full = nearest_psnr(frames, median_cut(frames, max_colours=64, sample_stride=1))
    sparse = nearest_psnr(frames, median_cut(frames, max_colours=64, sample_stride=4))
    assert sparse > full - 1.0


def test_slots_variant_pads_with_a_used_colour_and_marks_used_rows():
    colours = [(250, 10, 10), (10, 200, 30), (40, 40, 230)]
    frames = clip_of(colours, [100, 300, 112])
    slots, valid = median_cut_slots(frames, max_colours=16)
    assert slots.shape == (16, 3) and valid.shape == (16,) and valid.dtype == torch.bool
    assert valid.sum().item() == 3
    assert rows(slots[valid]) == set(colours)
    assert (slots[~valid] == slots[0]).all()
    assert torch.equal(median_cut(frames, max_colours=16), slots[valid])


def test_black_clip_gets_black():
    assert median_cut(torch.zeros((2, 3, 4, 4), dtype=torch.uint8)).tolist() == [[0, 0, 0]]


def test_an_empty_clip_still_gets_a_one_colour_palette():
    assert median_cut(torch.zeros((0, 3, 4, 4), dtype=torch.uint8)).shape == (1, 3)


def test_channels_last_frames_give_the_same_palette():
    frames = smooth_clip(seed=6)
    nhwc = frames.contiguous(memory_format=torch.channels_last)
    assert torch.equal(median_cut(frames, 64), median_cut(nhwc, 64))


def test_invalid_arguments_are_rejected():
    frames = smooth_clip()
    with pytest.raises(ValueError):
        median_cut(frames, max_colours=0)
    with pytest.raises(ValueError):
        median_cut(frames, max_colours=257)
    with pytest.raises(ValueError):
        median_cut(frames, refine_iterations=-1)


@pytest.mark.parametrize("max_colours,seed", [(255, 3), (32, 4), (255, 6)])
def test_occupied_bins_only_gives_a_palette_as_good_as_the_fixed_size_one(max_colours, seed):
    """The CPU's shortcut (no fixed 4,096 entries) changes only the order of bins with equal
    counts: the palette is as close to the clip, and a clip with few colours keeps them all."""
    from animated_previews.kernels.histogram import colour_histogram
    from animated_previews.kernels.palette import palette_from_histogram

    frames = smooth_clip(seed=seed)
    histogram = colour_histogram(frames)
    fixed, fixed_valid = palette_from_histogram(*histogram, max_colours=max_colours)
    trimmed, trimmed_valid = palette_from_histogram(*histogram, max_colours=max_colours, occupied_only=True)
    assert trimmed.shape == fixed.shape and int(trimmed_valid.sum()) == int(fixed_valid.sum())
    assert nearest_psnr(frames, trimmed[trimmed_valid]) >= nearest_psnr(frames, fixed[fixed_valid]) - 0.05

    few = clip_of([(10, 20, 30), (200, 100, 0), (0, 255, 0)], [200, 200, 112])
    palette, valid = palette_from_histogram(*colour_histogram(few), occupied_only=True)
    assert rows(palette[valid]) == {(10, 20, 30), (200, 100, 0), (0, 255, 0)}


def plasma_clip(n=3, height=96, width=128):
    """:func:`clipmaker.plasma` as [N, 3, H, W]: every hue, smooth, more occupied 5-bit bins than
    the 4,096 entries a palette is made from."""
    return torch.from_numpy(clipmaker.plasma(n, height, width)).permute(0, 3, 1, 2).contiguous()


def test_past_4096_occupied_bins_every_pixel_still_counts(monkeypatch):
    """A clip of every hue (a plasma in bench/library-holdout scored 3.5 dB under gifski) fills
    more bins than the palette reads: the least populated are folded into coarse cells instead of
    dropped, which is worth more than half a dB here and comes within 0.3 dB of reading them all,
    on the CPU's trimmed entries and on the GPU's fixed ones alike."""
    from animated_previews.kernels.histogram import colour_histogram
    from animated_previews.kernels.palette import palette_from_histogram

    frames = plasma_clip()
    counts, sums = colour_histogram(frames)
    assert int(torch.count_nonzero(counts)) > palette_module._MAX_ENTRIES

    def psnr(occupied_only=True):
        palette, valid = palette_from_histogram(counts, sums, occupied_only=occupied_only)
        return nearest_psnr(frames, palette[valid])

    folded, fixed_shape = psnr(), psnr(occupied_only=False)
    assert fixed_shape == pytest.approx(folded, abs=0.05)
    with monkeypatch.context() as m:
        m.setattr(palette_module, "_MAX_ENTRIES", counts.numel())
        everything = psnr()
    with monkeypatch.context() as m:  # the most populated bins alone, the tail dropped
        m.setattr(palette_module, "_folded", lambda c, s, e: (lambda w, b: (w, s[b] / w.clamp(min=1).unsqueeze(1).float()))(
            *torch.topk(c, e)))
        dropped = psnr()
    assert folded >= dropped + 0.5
    assert folded >= everything - 0.3


def test_folding_adds_each_left_out_bin_into_its_own_coarse_cell():
    """Against the cells worked out bin by bin: bin (r, g, b) of the 5-bit grid goes to cell
    (r >> 2, g >> 2, b >> 2) of the 3-bit one, with its count and colour sum."""
    from animated_previews.kernels.histogram import colour_histogram

    counts, sums = colour_histogram(plasma_clip())
    entries, cells = palette_module._MAX_ENTRIES, 8 ** palette_module.TAIL_BITS
    weight, colour = palette_module._folded(counts, sums, entries)
    kept_weight, kept = torch.topk(counts, entries - cells)
    tail = torch.ones(counts.numel(), dtype=torch.bool)
    tail[kept] = False
    bins = torch.arange(counts.numel())[tail]
    cell = ((bins >> 12) << 6) | (((bins >> 7) & 7) << 3) | ((bins >> 2) & 7)
    cell_weight = torch.zeros(cells, dtype=counts.dtype).index_add_(0, cell, counts[bins])
    cell_sums = torch.zeros((cells, 3), dtype=torch.float64).index_add_(0, cell, sums[bins].double())
    expected = list(zip(kept_weight.tolist(), map(tuple, sums[kept].tolist())))
    expected += list(zip(cell_weight.tolist(), map(tuple, cell_sums.tolist())))
    got = sorted(zip(weight.tolist(), map(tuple, (colour.double() * weight.unsqueeze(1).double()).tolist())))
    assert int(weight.sum()) == int(counts.sum()) and bool((weight[:-1] >= weight[1:]).all())
    assert len(got) == len(expected)
    for (w, c), (ew, ec) in zip(got, sorted(expected)):
        assert w == ew and c == pytest.approx(ec, rel=1e-5, abs=1e-3)


@pytest.mark.parametrize("occupied_only", [True, False])
def test_a_histogram_folds_only_past_4096_occupied_bins(occupied_only):
    """4,096 occupied bins are read as they are, 4,097 fold, on the CPU's trimmed entries and on
    the fixed-shape ones alike."""
    def histogram(occupied):
        counts = torch.zeros(1 << 15, dtype=torch.int64)
        bins = torch.randperm(1 << 15, generator=torch.Generator().manual_seed(occupied))[:occupied]
        counts[bins] = torch.arange(1, occupied + 1)
        return counts, counts.unsqueeze(1).float() * torch.tensor([10.0, 20.0, 30.0])

    plain_weight, _ = palette_module._entries(*histogram(4096), occupied_only)
    assert sorted(plain_weight.tolist()) == list(range(1, 4097))
    folded_weight, _ = palette_module._entries(*histogram(4097), occupied_only)
    assert int(folded_weight.sum()) == 4097 * 4098 // 2  # nothing left out
    assert not Counter(range(514, 4098)) - Counter(folded_weight.tolist())  # the top 3,584 as they are
    assert folded_weight.shape[0] <= 4096 and (folded_weight.shape[0] == 4096 or occupied_only)


@pytest.mark.gpu
def test_the_fixed_shape_entries_make_no_host_synchronisation():
    from animated_previews.kernels.histogram import colour_histogram

    counts, sums = (t.cuda() for t in colour_histogram(plasma_clip()))
    torch.cuda.set_sync_debug_mode("error")
    try:
        weight, colour = palette_module._entries(counts, sums, occupied_only=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert weight.shape == (palette_module._MAX_ENTRIES,) and colour.is_cuda


@pytest.mark.skipif(median_cut_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_boxes", [2, 3, 64, 255])
def test_the_compiled_median_cut_splits_the_boxes_the_torch_kernel_does(monkeypatch, seed, max_boxes):
    """Same box for every entry and the same count: random entries, equal weights on a coarse grid
    of colours (ties in every sort), a zero-weight tail (topk of a sparse histogram), greys."""
    generator = torch.Generator().manual_seed(seed)
    entries = int(torch.randint(1, 3000, (1,), generator=generator))
    kind = seed % 4
    if kind == 1:
        weight = torch.full((entries,), 3, dtype=torch.int64)
        colour = (torch.randint(0, 8, (entries, 3), generator=generator) * 32).to(torch.float32)
    else:
        weight = torch.randint(1, 1000, (entries,), generator=generator).sort(descending=True).values
        colour = torch.rand((entries, 3), generator=generator) * 255
        if kind == 2:
            weight[entries // 2:] = 0
        if kind == 3:
            colour = colour[:, :1].expand(entries, 3).contiguous()

    box, count = palette_module._split_boxes(colour, weight, max_boxes)
    monkeypatch.setattr(palette_module, "SCAN_MEDIAN_CUT", None)
    torch_box, torch_count = palette_module._split_boxes(colour, weight, max_boxes)

    assert torch.equal(box, torch_box) and int(count) == int(torch_count)
    assert int(count) == min(max_boxes, int((weight > 0).sum()))


@pytest.mark.skipif(kmeans_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("seed", range(8))
def test_the_compiled_refinement_moves_the_centroids_as_the_torch_kernel_does(monkeypatch, seed):
    """Same centroids after every round count: random entries, equal weights on a coarse grid (ties
    between centroids), zero-weight entries, unused slots, a centroid that loses all its entries."""
    generator = torch.Generator().manual_seed(seed)
    entries = int(torch.randint(1, 3000, (1,), generator=generator))
    if seed % 2:
        colour = (torch.randint(0, 8, (entries, 3), generator=generator) * 32).to(torch.float32)
        weight = torch.full((entries,), 2, dtype=torch.int64)
    else:
        colour = torch.rand((entries, 3), generator=generator) * 255
        weight = torch.randint(0, 50, (entries,), generator=generator)
    slots, used = 64, int(torch.randint(1, 65, (1,), generator=generator))
    centroids = torch.rand((slots, 3), generator=generator) * 255
    centroids[used // 2] = torch.tensor([1000.0, 1000.0, 1000.0])  # too far for any entry
    for rounds in (1, 4):
        compiled = palette_module._refine(colour, weight, centroids, torch.tensor(used), rounds)
        with monkeypatch.context() as patch:
            patch.setattr(palette_module, "SCAN_KMEANS", None)
            plain = palette_module._refine(colour, weight, centroids, torch.tensor(used), rounds)
        assert torch.equal(compiled, plain)
    assert torch.equal(compiled[used:], centroids[used:])  # unused slots stay where they were


@pytest.mark.parametrize("max_colours", [2, 64, 255])
def test_the_palettes_of_several_runs_made_side_by_side_are_each_runs_own(monkeypatch, max_colours):
    """A GPU (no compiled loops) makes a clip's palettes as one batch: the same palettes and valid
    rows as one at a time, on histograms of smooth, tie-heavy (a coarse grid) and few-colour runs."""
    from animated_previews.kernels.histogram import colour_histogram
    from animated_previews.kernels.palette import palette_from_histogram, palettes_from_histograms

    grid = (torch.randint(0, 4, (2, 3, 24, 32), generator=torch.Generator().manual_seed(3)) * 80).to(torch.uint8)
    runs = [smooth_clip(seed=1), grid, clip_of([(255, 0, 0), (0, 255, 0), (0, 0, 255)], [200, 180, 132]),
            smooth_clip(seed=7)]
    histograms = [colour_histogram(frames) for frames in runs] + [near_black_bins()]
    monkeypatch.setattr(palette_module, "SCAN_MEDIAN_CUT", None)
    monkeypatch.setattr(palette_module, "SCAN_KMEANS", None)
    for iterations, batch in ((0, 32), (4, 32), (4, 2)):  # 2: the runs in batches of two
        monkeypatch.setattr(palette_module, "BATCH_SETS", batch)
        together = palettes_from_histograms(histograms, max_colours=max_colours, refine_iterations=iterations)
        alone = [palette_from_histogram(*h, max_colours=max_colours, refine_iterations=iterations) for h in histograms]
        for (palette, valid), (own, own_valid) in zip(together, alone, strict=True):
            assert torch.equal(valid, own_valid) and torch.equal(palette, own)


def near_black_bins() -> tuple[torch.Tensor, torch.Tensor]:
    """Three bins whose mean reds are 1e-6 and 1e-6 apart and one bright: sorted along red, the
    first two are apart only in float32's last bits (a review's case: one sort key for all the
    sets, raised by each set's number in float64, rounded them together and moved the cut)."""
    counts, sums = torch.zeros(32768, dtype=torch.int64), torch.zeros((32768, 3))
    for bin_, weight, total in ((1, 2_000_001, (2.0, 0.0, 0.0)), (2, 1_000_001, (1.0, 8_000_008.0, 0.0)),
                                (3, 100_000, (25_500_000.0, 0.0, 0.0))):
        counts[bin_], sums[bin_] = weight, torch.tensor(total)
    return counts, sums
