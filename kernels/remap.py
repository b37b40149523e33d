"""Map frames to palette indices through a lookup table, with optional ordered dithering."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .compiled import rgb_rows, runs
from .dither import dither_pattern
from .nearest import UNSEARCHED, fill_blocks, nearest_index_lut, nearest_lut_and_distance
from .remap_scan import SCAN

__all__ = ["remap", "nearest_index_lut", "palette_spacing", "adaptive_dither_table", "DEFAULT_DITHER_STRENGTH"]

# Peak-to-peak dither amplitude as a fraction of the palette's typical nearest-neighbour
# spacing. Banding: RMS error of 8x8 local means against the source on a 512-wide ramp (an
# 8x8 pool hides the dither pattern and keeps its steps); PSNR over all pixels:
#   strength  grey ramp, 16 colours   grey ramp, 64+ colours
#   0         4.50  34.8 dB           2.06  40.7 dB
#   0.25      2.58  34.0 dB           1.27  39.6 dB
#   0.35      2.05  33.6 dB           1.04  39.1 dB
#   0.5       1.39  32.5 dB           0.73  38.2 dB
# On the previews library (`python -m bench.quality_library --kinds source --sides engine-gif
# --only bars_4x3,flat_logo,animation_bbb,talking_head,live_camera_nasa,hd1080_bbb,screen_text,
# sport_fast`) 0.35 instead of 0.5 gave +0.16 to +4.3 dB (screen text most: an ordered pattern
# on a flat area is noise to the eye and to LZW) and 2-8% fewer bytes on every clip; lower
# strengths gave a little more of both but leave visible steps on ramps (0 keeps none of the
# banding reduction). 0.35 still removes over half of the banding (tests/kernels/test_remap.py).
# A pattern shared by all three channels tracked ramps better than per-channel shifted
# patterns at equal cost.
DEFAULT_DITHER_STRENGTH = 0.35

# Largest peak-to-peak dither amplitude in 8-bit levels. Offsets are stored as uint8 with
# a fixed bias, which bounds them; 64 levels is far beyond any useful strength.
_MAX_AMPLITUDE = 64.0
# Bias added to every offset so it is non-negative, in levels: half the maximum amplitude,
# a multiple of every cell width (2^(8 - lut_bits) <= 32 for lut_bits >= 3).
_BIAS = 32

# Pixels per tile on a GPU: the uint8 and int32 scratch buffers (~16 B per pixel) stay ~16 MB
# and are reused across tiles instead of being freshly allocated per op.
_CHUNK_PIXELS = 1 << 20
CPU_TILE_PIXELS = 1 << 16
"""Pixels remapped at once on the CPU: whole frames, or row bands of one large frame, small
enough that the byte and int32 scratch (~10 B a pixel) stays in cache. 45 frames, one thread,
same indices: 1080p 1.22 s with a whole frame at once -> 0.98 s; 480x270 88 -> 82 ms; 16-256 Ki
within 10% of each other (16 Ki the slowest: per-op overhead)."""



def palette_spacing(palette: Tensor) -> Tensor:
    """Median distance from each palette colour to its nearest other colour (0-dim float32).

    This is the step size an ordered dither has to bridge between neighbouring palette
    colours. Duplicate colours are ignored; a palette with one distinct colour gives 0.
    """
    colours = palette.to(torch.float32)
    dist = torch.cdist(colours, colours)
    dist = torch.where(dist > 0, dist, torch.full_like(dist, float("inf")))
    nearest = dist.min(1).values
    nearest = torch.where(torch.isinf(nearest), torch.full_like(nearest, float("nan")), nearest)
    spacing = torch.nanmedian(nearest)
    return torch.nan_to_num(spacing, nan=0.0)


def remap(
    frames: Tensor,
    palette: Tensor,
    dither_strength: float = DEFAULT_DITHER_STRENGTH,
    lut_bits: int = 6,
    dither_order: int = 3,
    adaptive: bool = True,
    tile_pixels: int | None = None,
    blocks: Tensor | None = None,
) -> Tensor:
    """Return uint8 palette indices [N, H, W] for uint8 frames [N, 3, H, W].

    palette: uint8 [K, 3], 1 <= K <= 256 (any device; moved to the frames' device).
    Each pixel's colour, plus an 8x8 (``dither_order`` 3) Bayer offset of peak-to-peak size
    ``dither_strength`` x :func:`palette_spacing` (same offset on all three channels,
    capped at 64 levels), is quantised to a cell of a 2^lut_bits per channel grid and
    looked up in :func:`nearest_index_lut`. ``dither_strength=0`` gives the palette colour
    nearest the pixel's cell centre, which is within 1.5 levels per channel of the pixel
    at lut_bits=6 (costs ~0.2 dB against an exact nearest-colour search).

    All per-pixel arithmetic is on uint8/int32, in place, in chunks of frames: offsets are
    stored with a bias in half-levels and added to ``pixel >> 1`` (so nothing overflows a
    byte), clamping to the cube is a byte clamp, and the bias is undone by indexing a LUT
    padded in front, so no per-pixel subtraction is needed. Dither offsets therefore have
    2-level resolution, far finer than a palette step.

    ``adaptive`` (the default) dithers a pixel only where its colour lies between palette
    colours (:func:`adaptive_dither_table`): a pixel whose colour the palette holds keeps it (flat
    graphics, text and colour bars stay clean), gradients keep their banding removed. It costs
    one more table lookup per pixel.

    ``tile_pixels``: pixels done at once (default :data:`CPU_TILE_PIXELS` on the CPU, 1 Mi on
    other devices); the indices do not depend on it.

    ``blocks`` (bool [(2^lut_bits / 4)^3], e.g. :func:`kernels.nearest.blocks_in_histogram` of the
    palette's histogram): where the frames' colours lie, if known. On the CPU the nearest-colour
    table is then searched there (widened by the dither's reach) and elsewhere only when a pixel
    lands elsewhere (its tile is redone once those blocks are searched), so the indices are the
    same either way (the torch tiers may do better there, their effort spent on those blocks;
    the compiled search is exact either way). Measured with the torch search, the previews
    library's GIF jobs, one thread: a clip with 6 palettes rendered in 10-17% less time (480p
    animation resized 0.57 -> 0.51 s, low light 0.54 -> 0.46 s), one palette 0-5%.
    """
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 [N, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")
    if not 3 <= lut_bits <= 7:
        raise ValueError(f"lut_bits must be in 3..7 for remap, got {lut_bits}")
    if dither_strength < 0:
        raise ValueError(f"dither_strength must be >= 0, got {dither_strength}")
    device = frames.device
    n_frames, _, height, width = frames.shape
    if tile_pixels is None:
        tile_pixels = CPU_TILE_PIXELS if device.type == "cpu" else _CHUNK_PIXELS
    out = torch.empty((n_frames, height, width), dtype=torch.uint8, device=device)
    if out.numel() == 0:
        return out
    palette = palette.to(device)
    n = 1 << lut_bits
    shift = 8 - lut_bits  # log2 of the cell width in levels
    bias_cells = _BIAS >> shift

    # Offsets in half-levels, biased to be >= 0: round((d + bias) / 2), d in [-A/2, A/2).
    if dither_strength > 0:
        amplitude = (dither_strength * palette_spacing(palette)).clamp(max=_MAX_AMPLITUDE)

    def offsets(rows: int, cols: int) -> Tensor:
        """The offsets of the top-left rows x cols pixels, uint8 [1, rows, cols]."""
        if dither_strength > 0:
            pattern = dither_pattern(rows, cols, dither_order, device=device)  # [1, rows, cols]
            return torch.floor((pattern * amplitude + _BIAS) / 2 + 0.5).to(torch.uint8)
        return torch.full((1, rows, cols), _BIAS // 2, dtype=torch.uint8, device=device)
    # (pixel >> 1) + offset lies in [bias/2, bias/2 + 127] exactly when the dithered colour
    # is inside the cube; clamping there clamps the dithered colour to [0, 255].
    low, high = _BIAS // 2, _BIAS // 2 + 127

    searched = None  # with ``blocks``: bool [(n/4)^3], the blocks of the table searched so far
    if blocks is not None and device.type == "cpu" and palette.shape[0] <= UNSEARCHED:
        reach = int(amplitude) // 2 + 1 if dither_strength > 0 else 0  # levels a dithered colour moves
        searched = _widen(blocks.to(device), lut_bits, reach)
        nearest, distance = nearest_lut_and_distance(palette, lut_bits, blocks=searched)
    else:
        nearest, distance = nearest_lut_and_distance(palette, lut_bits)
    # Cell coordinates arrive biased by c = bias_cells per channel; the table is padded in front
    # so that address (r + c)*n^2 + (g + c)*n + (b + c) lands on entry r*n^2 + g*n + b.
    pad = bias_cells * (n * n + n + 1)
    use_undithered = adaptive and dither_strength > 0

    def tables() -> tuple[Tensor, Tensor | None]:
        lut = torch.cat([nearest.new_zeros(pad), nearest.view(-1)])
        return lut, adaptive_dither_table(nearest, distance, lut_bits) if use_undithered else None

    lut, undithered = tables()
    # Tiles of whole frames, or of row bands of one frame when a frame alone passes the tile.
    frames_per_tile = max(1, tile_pixels // (height * width))
    band = height if frames_per_tile > 1 else max(1, min(height, tile_pixels // width))

    if runs(SCAN, device):  # one compiled loop, the same tiles and indices
        grid = (n // 4) ** 3
        need = torch.zeros(grid if searched is not None else 1, dtype=torch.bool)
        plain = undithered if undithered is not None else torch.zeros(1, dtype=torch.int16)
        # pixels as rows of RGB triplets, C order (a view of channels-last frames): declared so,
        # the loop runs 15% faster than on arrays of any strides
        pixels = rgb_rows(frames)
        # the pattern repeats every 2^dither_order pixels: one period of it (1080p: 2 M offsets
        # computed in floats took 21 ms a palette, one thread)
        period = 1 << dither_order
        one_period = offsets(period, period)[0].contiguous().numpy()
        tile = 0
        while (tile := SCAN(pixels, one_period, period - 1, lut.numpy(), plain.numpy(), undithered is not None,
                            lut_bits, low, high, bias_cells, frames_per_tile, band, tile, searched is not None,
                            UNSEARCHED, need.numpy(), out.numpy())) >= 0:
            new = need & ~searched
            searched |= new
            fill_blocks(nearest, distance, palette, new.nonzero().squeeze(1))
            lut, undithered = tables()
            plain = undithered if undithered is not None else plain
            need.zero_()
        return out

    # Work in the frames' own memory layout (resize returns channels_last on CPU): the
    # byte operations then stream through memory, and only the per-channel casts to int32
    # read with a stride.
    layout = torch.channels_last if _is_channels_last(frames) else torch.contiguous_format
    offset = offsets(height, width).unsqueeze(0).expand(1, 3, height, width).contiguous(memory_format=layout)
    m0 = min(frames_per_tile, n_frames)
    half = torch.empty((m0, 3, band, width), dtype=torch.uint8, device=device, memory_format=layout)
    address = torch.empty((m0, band, width), dtype=torch.int32, device=device)
    scratch = torch.empty_like(address)
    plain = torch.empty((m0, band, width), dtype=torch.int16, device=device) if use_undithered else None
    for start in range(0, n_frames, frames_per_tile):
        for top in range(0, height, band):
            rows = slice(top, top + band)
            part = frames[start : start + frames_per_tile, :, rows]
            m, b = part.shape[0], part.shape[2]
            u, a, t = half[:m, :, :b], address[:m, :b], scratch[:m, :b]
            target = out[start : start + m, rows]
            while True:
                if undithered is not None:  # the undithered lookup first: index, plus 256 where dithering pays
                    torch.bitwise_right_shift(part, shift, out=u)
                    _pack(u, n, a, t)
                    flat = plain[:m, :b]
                    torch.index_select(undithered, 0, a.reshape(-1), out=flat.reshape(-1))
                torch.bitwise_right_shift(part, 1, out=u)
                u += offset[:, :, rows]
                u.clamp_(low, high)
                if shift > 1:
                    u.bitwise_right_shift_(shift - 1)
                _pack(u, n, a, t)
                looked = torch.index_select(lut, 0, a.reshape(-1)).view(m, b, width)
                if undithered is not None:
                    torch.where(flat >= 256, looked, flat.to(torch.uint8), out=looked)
                if searched is not None:
                    missed = looked == UNSEARCHED
                    if bool(missed.any()):  # a pixel beyond the searched blocks: search its blocks, redo
                        new = _blocks_of(part, u, missed, lut_bits, bias_cells) & ~searched
                        searched |= new
                        fill_blocks(nearest, distance, palette, new.nonzero().squeeze(1))
                        lut, undithered = tables()
                        continue
                break
            target.copy_(looked)
    return out


def _widen(blocks: Tensor, lut_bits: int, reach: int) -> Tensor:
    """``blocks`` (bool [(n/4)^3]) and every block within ``reach`` levels of one, plus one
    block each way for the cell-centre rounding: where dithered colours of the pixels can land."""
    grid = (1 << lut_bits) // 4
    block_levels = 1 << (10 - lut_bits)
    radius = 1 + reach // block_levels
    cube = blocks.view(1, 1, grid, grid, grid).to(torch.float32)
    return (F.max_pool3d(cube, 2 * radius + 1, stride=1, padding=radius) > 0).view(-1)


def _blocks_of(part: Tensor, cells: Tensor, missed: Tensor, lut_bits: int, bias_cells: int) -> Tensor:
    """The blocks (bool [(n/4)^3]) of the pixels ``missed`` (bool [m, h, w]) of ``part``: the
    block of each pixel's own colour and of its dithered cell (``cells``, biased)."""
    grid = (1 << lut_bits) // 4
    found = torch.zeros(grid**3, dtype=torch.bool, device=part.device)
    pixels = part.permute(1, 0, 2, 3)[:, missed].to(torch.int64)  # [3, M]
    dithered = cells.permute(1, 0, 2, 3)[:, missed].to(torch.int64) - bias_cells
    for block in (pixels >> (10 - lut_bits), dithered.clamp_(0, (1 << lut_bits) - 1) >> 2):
        found[(block[0] * grid + block[1]) * grid + block[2]] = True
    return found


def _pack(cells: Tensor, n: int, address: Tensor, scratch: Tensor) -> None:
    """address = ((r * n) + g) * n + b from uint8 cell coordinates [m, 3, H, W], in place, the
    copies doing the uint8 -> int32 casts."""
    address.copy_(cells[:, 0])
    scratch.copy_(cells[:, 1])
    torch.add(scratch, address, alpha=n, out=address)
    scratch.copy_(cells[:, 2])
    torch.add(scratch, address, alpha=n, out=address)


def adaptive_dither_table(nearest: Tensor, distance: Tensor, lut_bits: int) -> Tensor:
    """Per cell of the ``lut_bits`` cube, the undithered index and whether its pixels are
    dithered, as one int16 table [n^3]: the cell's nearest palette index, plus 256 where that
    colour lies beyond 1.5x the cell's own reach (a pixel between palette colours, where ordered
    dither turns bands into a finer mix). Where the palette holds the colour, as far as the
    table can tell, the pixel keeps its nearest colour: dithering there would only add noise.
    On a 16-grey ramp only the pixels within about 2 levels of a palette grey go undithered,
    so its bands stay removed.

    ``nearest`` and ``distance`` are :func:`nearest_lut_and_distance`'s tables (the distance
    as 4x its square, exact integers, so the test is integer too)."""
    width = 1 << (8 - lut_bits)
    # reach = width / 2 * sqrt(3) is the farthest a pixel lies from its cell's centre;
    # distance / 4 > (1.5 reach)^2  <=>  distance > 27 width^2 / 4.
    beyond = distance.view(-1) * 4 > 27 * width * width
    return nearest.view(-1).to(torch.int16) + beyond.to(torch.int16) * 256


def _is_channels_last(frames: Tensor) -> bool:
    """True when the channel values of each pixel are adjacent in memory (NHWC storage)."""
    return frames.stride(1) == 1 and frames.shape[1] > 1 and not frames.is_contiguous()
