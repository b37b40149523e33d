"""Frames to palette indices: LUT lookup with optional ordered dithering."""

import pytest
import torch
import torch.nn.functional as F

import animated_previews.kernels.remap as remap_module
from animated_previews.kernels import remap_scan
from animated_previews.kernels.palette import median_cut
from animated_previews.kernels.remap import DEFAULT_DITHER_STRENGTH, palette_spacing, remap


def random_frames(n=2, height=24, width=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=generator)


def random_palette(k, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (k, 3), dtype=torch.uint8, generator=generator)


def reconstruct(palette, indices):
    return palette[indices.long()].permute(0, 3, 1, 2)


def psnr(a, b):
    return (10 * torch.log10(255**2 / (a.float() - b.float()).square().mean())).item()


def grey_ramp(height=64, width=512):
    ramp = torch.linspace(0, 255, width).round().to(torch.uint8)
    return ramp.expand(1, 3, height, width).contiguous()


def test_output_is_uint8_indices_one_per_pixel_on_the_input_device():
    frames = random_frames(3, 10, 14)
    palette = random_palette(20)
    indices = remap(frames, palette)
    assert indices.dtype == torch.uint8
    assert indices.shape == (3, 10, 14)
    assert indices.device == frames.device
    assert indices.max().item() < 20


def test_without_dither_each_pixel_gets_the_nearest_colour_up_to_the_cell_size():
    frames = random_frames(2, 32, 32, seed=1)
    palette = random_palette(64, seed=2)
    indices = remap(frames, palette, dither_strength=0)
    pixels = frames.permute(0, 2, 3, 1).reshape(-1, 3).float()
    dist = torch.cdist(pixels, palette.float())
    chosen = dist.gather(1, indices.view(-1, 1).long()).squeeze(1)
    best = dist.min(1).values
    # A pixel is looked up at its lut_bits=6 cell centre, at most 1.5 levels per channel
    # away (2.6 in distance), so the chosen colour is at most twice that farther.
    assert (chosen - best).max() <= 2 * 1.5 * 3**0.5 + 1e-4
    assert (chosen - best <= 1e-4).float().mean() > 0.9


def test_palette_colours_map_to_themselves_without_dither():
    palette = torch.tensor([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 128, 255], [90, 200, 40]], dtype=torch.uint8)
    frames = palette.T.reshape(1, 3, 1, 5).expand(2, 3, 4, 5).contiguous()
    indices = remap(frames, palette, dither_strength=0)
    assert torch.equal(indices, torch.arange(5, dtype=torch.uint8).expand(2, 4, 5))


def test_extreme_colours_survive_the_strongest_dither_without_wrapping_around():
    palette = torch.tensor([[0, 0, 0], [255, 255, 255]], dtype=torch.uint8)
    frames = torch.zeros((1, 3, 16, 16), dtype=torch.uint8)
    frames[..., 8:] = 255
    indices = remap(frames, palette, dither_strength=4.0)
    assert (indices[..., :8] == 0).all() and (indices[..., 8:] == 1).all()


def test_dithering_a_flat_colour_between_two_palette_colours_keeps_its_average():
    palette = torch.tensor([[0, 0, 0], [64, 64, 64]], dtype=torch.uint8)
    frames = torch.full((1, 3, 32, 32), 24, dtype=torch.uint8)
    flat = reconstruct(palette, remap(frames, palette, dither_strength=0)).float().mean()
    dithered = reconstruct(palette, remap(frames, palette, dither_strength=1.0)).float().mean()
    assert flat.item() == 0  # without dither the whole area snaps to black
    assert abs(dithered.item() - 24) < 4


def test_dithering_removes_banding_on_a_smooth_gradient():
    frames = grey_ramp()
    palette = median_cut(frames, max_colours=16)
    plain = reconstruct(palette, remap(frames, palette, dither_strength=0)).float()
    dithered = reconstruct(palette, remap(frames, palette)).float()

    def local_error(image):  # how far the 8x8 local average strays from the true gradient
        return (F.avg_pool2d(image, 8) - F.avg_pool2d(frames.float(), 8)).square().mean().sqrt().item()

    assert local_error(dithered) < 0.5 * local_error(plain)


def test_dithering_costs_little_psnr_on_smooth_content():
    generator = torch.Generator().manual_seed(3)
    coarse = torch.rand((2, 3, 6, 8), generator=generator) * 255
    frames = F.interpolate(coarse, size=(96, 128), mode="bicubic").clamp(0, 255).round().to(torch.uint8)
    palette = median_cut(frames, 255)
    plain = psnr(reconstruct(palette, remap(frames, palette, dither_strength=0)), frames)
    dithered = psnr(reconstruct(palette, remap(frames, palette)), frames)
    assert dithered > plain - 1.5


def test_dither_pattern_is_fixed_in_place_so_static_frames_stay_identical():
    frame = random_frames(1, 24, 40, seed=4)
    frames = frame.expand(3, 3, 24, 40).contiguous()
    indices = remap(frames, random_palette(32, seed=5))
    assert torch.equal(indices[0], indices[1]) and torch.equal(indices[0], indices[2])


def test_channels_last_and_contiguous_frames_give_identical_indices():
    frames = random_frames(3, 20, 28, seed=6)
    palette = random_palette(50, seed=7)
    planar = remap(frames.contiguous(), palette)
    nhwc = remap(frames.contiguous(memory_format=torch.channels_last), palette)
    assert torch.equal(planar, nhwc)


@pytest.mark.parametrize("tile_pixels", [1, 7 * 20 + 3, 2 * 16 * 20, 10**6])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_tile_size_never_changes_an_index(tile_pixels, layout):
    """Tiles of several frames, of row bands within a frame (the last one short), of one row."""
    frames = random_frames(5, 16, 20, seed=8).contiguous(memory_format=layout)
    palette = random_palette(40, seed=9)
    tiled = remap(frames, palette, tile_pixels=tile_pixels)
    one_by_one = torch.cat([remap(frames[i : i + 1], palette, tile_pixels=10**6) for i in range(5)])
    assert torch.equal(tiled, one_by_one)


@pytest.mark.parametrize("known", ["first frame", "nothing", "everything"])
def test_blocks_known_in_advance_never_change_an_index(known):
    """Where the colours lie only speeds the table up: pixels beyond the known blocks get their
    blocks searched when they arrive (here: colours of later frames, or every colour)."""
    from animated_previews.kernels.histogram import colour_histogram
    from animated_previews.kernels.nearest import blocks_in_histogram

    frames = torch.cat([random_frames(1, 32, 48, seed=20), random_frames(3, 32, 48, seed=21) // 2 + 100])
    palette = median_cut(frames, 200)
    if known == "first frame":
        blocks = blocks_in_histogram(colour_histogram(frames[:1])[0], bits=5)
    else:
        blocks = torch.full((4096,), known == "everything")
    for strength in (0.0, DEFAULT_DITHER_STRENGTH, 1.0):
        assert torch.equal(remap(frames, palette, strength, blocks=blocks, tile_pixels=700),
                           remap(frames, palette, strength))


@pytest.mark.skipif(remap_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("known", [None, "first frame", "nothing"])
@pytest.mark.parametrize("strength", [0.0, DEFAULT_DITHER_STRENGTH, 1.0])
def test_the_compiled_loop_gives_the_torch_kernels_indices(monkeypatch, seed, known, strength):
    """Same indices, layouts, tiles (whole frames, row bands), table resolutions, adaptive or not,
    with the nearest-colour table searched up front or block by block as pixels arrive, in still
    areas and moving ones."""
    from animated_previews.kernels.histogram import colour_histogram
    from animated_previews.kernels.nearest import blocks_in_histogram

    layout = torch.channels_last if seed % 2 else torch.contiguous_format
    frames = torch.cat([random_frames(2, 30, 44, seed=30 + seed), random_frames(3, 30, 44, seed=40 + seed) // 3 + 90])
    frames[1, :, :15] = frames[0, :, :15]  # still areas, which the loop copies from the frame before
    frames[4] = frames[3]
    frames = frames.contiguous(memory_format=layout)
    palette = median_cut(frames, (60, 120, 255, 7)[seed])
    lut_bits = (6, 5, 7, 6)[seed]
    blocks = None
    if known is not None and lut_bits >= 4:
        blocks = (blocks_in_histogram(colour_histogram(frames[:1])[0], bits=5, lut_bits=lut_bits)
                  if known == "first frame" else torch.zeros(((1 << lut_bits) // 4) ** 3, dtype=torch.bool))
    settings = dict(lut_bits=lut_bits, adaptive=seed != 3, tile_pixels=(700, 10**6, 44 * 7, 1)[seed], blocks=blocks)

    compiled = remap(frames, palette, strength, **settings)
    monkeypatch.setattr(remap_module, "SCAN", None)
    plain = remap(frames, palette, strength, **settings)

    assert torch.equal(compiled, plain)
    assert compiled.unique().numel() > 3


def test_duplicate_palette_rows_are_never_chosen_over_the_first_copy():
    palette = random_palette(20, seed=10)
    padded = torch.cat([palette, palette[:1].expand(10, 3)])
    assert remap(random_frames(seed=11), padded).max().item() < 20


@pytest.mark.parametrize("lut_bits", [4, 5, 7])
def test_other_lut_resolutions_still_pick_near_colours(lut_bits):
    frames = random_frames(1, 32, 32, seed=12)
    palette = random_palette(32, seed=13)
    indices = remap(frames, palette, dither_strength=0, lut_bits=lut_bits)
    pixels = frames.permute(0, 2, 3, 1).reshape(-1, 3).float()
    dist = torch.cdist(pixels, palette.float())
    excess = dist.gather(1, indices.view(-1, 1).long()).squeeze(1) - dist.min(1).values
    half_cell = (2 ** (8 - lut_bits) - 1) / 2
    assert excess.max() <= 2 * half_cell * 3**0.5 + 1e-4


def test_palette_spacing_is_the_median_nearest_neighbour_distance():
    grid = torch.tensor([[r, g, b] for r in (0, 10, 20) for g in (0, 10) for b in (100, 110)], dtype=torch.uint8)
    assert palette_spacing(grid).item() == pytest.approx(10.0)
    assert palette_spacing(torch.tensor([[5, 5, 5], [5, 5, 5]], dtype=torch.uint8)).item() == 0.0


def test_default_strength_is_moderate():
    assert 0 < DEFAULT_DITHER_STRENGTH <= 1


def test_invalid_arguments_are_rejected():
    frames = random_frames()
    palette = random_palette(8)
    with pytest.raises(ValueError):
        remap(frames.float(), palette)
    with pytest.raises(ValueError):
        remap(frames, palette, dither_strength=-0.1)
    with pytest.raises(ValueError):
        remap(frames, palette, lut_bits=8)


def test_a_flat_area_of_a_palette_colour_is_not_dithered_but_one_between_colours_is():
    palette = torch.tensor([[0, 0, 0], [40, 40, 40], [80, 80, 80], [200, 30, 30]], dtype=torch.uint8)
    frames = torch.empty((1, 3, 32, 64), dtype=torch.uint8)
    frames[..., :32] = 40  # exactly a palette grey: an ordered pattern there is only noise
    frames[..., 32:] = 60  # halfway between two greys: the pattern is what shows 60
    adaptive = remap(frames, palette, dither_strength=1.0)
    assert torch.all(adaptive[..., :32] == 1)
    assert set(adaptive[..., 32:].unique().tolist()) == {1, 2}
    fixed = remap(frames, palette, dither_strength=1.0, adaptive=False)
    assert len(fixed[..., :32].unique()) > 1  # the plain ordered dither does scatter the flat grey


def test_the_adaptive_table_dithers_cells_between_palette_colours_only():
    palette = torch.tensor([[0, 0, 0], [128, 128, 128], [255, 255, 255]], dtype=torch.uint8)
    nearest, distance = remap_module.nearest_lut_and_distance(palette, 6)
    table = remap_module.adaptive_dither_table(nearest, distance, 6).view(64, 64, 64)
    assert table.dtype == torch.int16
    assert table[32, 32, 32].item() == 1  # the cell of 128-131 holds the grey 128: its index, undithered
    assert table[16, 16, 16].item() == 256 + int(nearest[16, 16, 16])  # 64-67 lies between greys: dithered
    assert torch.equal(table % 256, nearest.to(torch.int16))


def test_the_search_gives_each_cells_distance_to_its_colour_exactly():
    generator = torch.Generator().manual_seed(9)
    palette = torch.randint(0, 256, (40, 3), dtype=torch.uint8, generator=generator)
    nearest, distance = remap_module.nearest_lut_and_distance(palette, 6)
    centres = torch.arange(64) * 4 + 1.5
    grid = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"), dim=-1)
    exact = (grid - palette.float()[nearest.long()]).square().sum(-1) * 4
    assert torch.equal(distance.float(), exact)
