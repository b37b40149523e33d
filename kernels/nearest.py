"""Nearest-palette-colour lookup table over a quantised RGB cube.

Mapping every pixel to its nearest palette colour directly costs K distance evaluations per
pixel (255 x 10 M for a short clip). Instead the colour cube is cut into 2^lut_bits cells
per channel, the nearest colour is found once per cell, and pixels just index the table.

Brute force over all 2^18 cells is itself 67 M distances (~120 ms on one CPU core), so
cells are grouped into 4x4x4 blocks and each block only considers candidate colours: take
the colour q nearest the block centre; a colour p can be nearest somewhere in the block
only if the half-space where p beats q reaches into the block (a separable linear test on
the block's corners). Real palettes leave ~3 candidates per block on average but a few
dense blocks (dark tones) have dozens, so shapes stay static with two tiers:

* every block compares its cells with its first ``_FEW`` candidates;
* the ``1/_CROWDED_SHARE`` blocks with the most candidates are redone against the whole
  palette.

The table is exact unless more than that share of blocks has over ``_FEW`` candidates
(then the extra blocks use their first ``_FEW`` candidates, by palette index, still a close
colour); on a Big Buck Bunny palette the 257th most crowded block has fewer than 10.
Distances are summed per channel from exact squared differences (no |a|^2 - 2ab + |b|^2
cancellation), so near-ties are decided correctly.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["nearest_index_lut", "cell_centres"]

# (share, k): the 1/share most crowded blocks compare their cells with their k most
# promising candidates; later tiers overwrite earlier ones. The last tier uses the whole
# palette, so the table is exact unless more than 1/16 of the blocks have over 8
# candidates or more than 1/128 over 32.
_TIERS = ((1, 8), (16, 32), (128, 256))
# Scratch budget for a distance tensor, in float32 elements (16 MB).
_CHUNK_ELEMENTS = 1 << 22


def cell_centres(lut_bits: int, device: torch.device | str | None = None) -> Tensor:
    """Centre value of each cell along one channel, float32 [2^lut_bits].

    Cell k holds the 8-bit values k*w .. k*w + w - 1 (w = 2^(8 - lut_bits)), so its centre
    is k*w + (w - 1)/2. Using k*w instead would bias every lookup by half a cell (1.5 levels
    at lut_bits=6) towards darker colours.
    """
    return _doubled_centres(lut_bits, device).to(torch.float32) / 2


def _doubled_centres(lut_bits: int, device: torch.device | str | None) -> Tensor:
    """Twice the cell centres, int32 [2^lut_bits]: integers, so distances are exact."""
    width = 1 << (8 - lut_bits)
    return torch.arange(1 << lut_bits, dtype=torch.int32, device=device) * (2 * width) + (width - 1)


def nearest_index_lut(palette: Tensor, lut_bits: int = 6) -> Tensor:
    """Index of the nearest palette colour for every cell centre, uint8 [n, n, n] (r, g, b).

    palette: uint8 [K, 3] with 1 <= K <= 256, on any device; n = 2^lut_bits. Ties go to
    the lower palette index, so a padded palette whose unused rows repeat an earlier colour
    never selects a padding row.
    """
    if palette.dim() != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
        raise ValueError(f"palette must be [K, 3] with 1 <= K <= 256, got {tuple(palette.shape)}")
    if palette.dtype != torch.uint8:
        raise ValueError(f"palette must be uint8, got {palette.dtype}")
    if not 1 <= lut_bits <= 8:
        raise ValueError(f"lut_bits must be in 1..8, got {lut_bits}")
    device = palette.device
    n_colours = palette.shape[0]
    n = 1 << lut_bits
    f = 1 << min(2, lut_bits)  # cells per block edge
    nb = n // f  # blocks per channel
    n_blocks = nb**3
    # Doubled cell centres of every block along each channel, int32 [3, f, B]; blocks are
    # innermost so that every per-block operation runs over long contiguous rows.
    corner = torch.cartesian_prod(*(torch.arange(nb, device=device),) * 3)  # [B, 3]
    block_cells = _doubled_centres(lut_bits, device).view(nb, f)[corner].permute(1, 2, 0).contiguous()
    doubled_palette = palette.to(torch.int32) * 2  # [K, 3]

    colours = palette.to(torch.float32)
    key = _candidate_key(block_cells, colours)  # [B, K]
    crowding = torch.isfinite(key).sum(1)
    best = torch.empty((f**3, n_blocks), dtype=torch.int64, device=device)
    # Tiers from "all blocks, few candidates" to "most crowded blocks, whole palette".
    for share, k in _TIERS:
        k = min(k, n_colours)
        count = max(1, n_blocks // share)
        rows = None if count == n_blocks else torch.topk(crowding, count, sorted=False).indices
        if k == n_colours:
            candidates = torch.arange(n_colours, device=device).unsqueeze(1).expand(n_colours, count)
        else:
            sub_key = key if rows is None else key[rows]
            candidates = torch.topk(sub_key, k, dim=1, largest=False, sorted=False).indices
            candidates = candidates.sort(dim=1).values.T  # ascending: lower index wins ties
        if rows is None:
            best = _nearest_in_blocks(block_cells, doubled_palette, candidates)
        else:
            best[:, rows] = _nearest_in_blocks(block_cells[:, :, rows], doubled_palette, candidates)
        if k == n_colours:
            break
    # [f, f, f, nb, nb, nb] -> [nb, f, nb, f, nb, f] -> [n, n, n]
    lut = best.view(f, f, f, nb, nb, nb).permute(3, 0, 4, 1, 5, 2).reshape(n, n, n)
    return lut.to(torch.uint8)


def _candidate_key(block_cells: Tensor, colours: Tensor) -> Tensor:
    """Per block and colour: |p - z|^2 - |z|^2 if p may be nearest somewhere in the block, else inf.

    q = colour nearest the block centre z. p can beat q at a point x only where
    |x - p|^2 <= |x - q|^2, i.e. 2 x.(q - p) <= |q|^2 - |p|^2; over the block (centre z,
    half-width h per channel) the left side is smallest at 2 z.(q - p) - 2 h |q - p|_1,
    so p is a candidate iff slack = |q|^2 - 2 z.q - (|p|^2 - 2 z.p) + 2 h |q - p|_1 >= 0.
    |q - p|_1 is a lookup in the palette's own K x K L1 distance matrix. Smaller finite
    keys (closer to the block centre) are the more promising candidates.
    """
    cells = block_cells.to(torch.float32) / 2  # [3, f, B]
    centre = cells.mean(1).T  # [B, 3]
    half = (cells[0, -1, 0] - cells[0, 0, 0]) / 2
    sq = colours.square().sum(1)  # [K]
    to_centre = torch.addmm(sq.unsqueeze(0), centre, colours.T, alpha=-2.0)  # [B, K] |p|^2 - 2 z.p
    q_index = to_centre.argmin(1, keepdim=True)  # [B, 1]
    l1 = torch.cdist(colours, colours, p=1.0)  # [K, K]
    slack = torch.addcmul(to_centre.gather(1, q_index), l1[q_index.squeeze(1)], half * 2.0)
    slack -= to_centre
    # Tolerance in squared levels: rounding must never drop a real candidate.
    return torch.where(slack >= -1e-2, to_centre, torch.full_like(to_centre, float("inf")))


def _nearest_in_blocks(block_cells: Tensor, doubled_palette: Tensor, candidates: Tensor) -> Tensor:
    """For each block's f^3 cells, the nearest of that block's candidates, int64 [f^3, B].

    block_cells: int32 [3, f, B] doubled centres; candidates: [k, B] palette indices in
    ascending order, k <= 256. Squared distances are separable: per channel
    (2x - 2p)^2 is an int32 [k, f, B] table, and the [k, f, f, f, B] distances are two
    broadcast adds. Distances are exact integers < 2^20, so ``distance << 8 | slot`` is a
    key whose minimum over the k slots (a plain elementwise min, cheap on any device)
    gives the nearest candidate, lowest slot first on ties.
    """
    _, f, n_blocks = block_cells.shape
    k = candidates.shape[0]
    slot = torch.arange(k, dtype=torch.int32, device=block_cells.device).view(k, 1, 1)
    best = torch.empty((f**3, n_blocks), dtype=torch.int64, device=block_cells.device)
    chunk = max(1, _CHUNK_ELEMENTS // (f**3 * k))
    for start in range(0, n_blocks, chunk):
        cells = block_cells[:, :, start : start + chunk]  # [3, f, b]
        cand = candidates[:, start : start + chunk]  # [k, b]
        b = cand.shape[1]
        cand_colour = doubled_palette[cand]  # [k, b, 3]
        per_channel = [(cells[c].unsqueeze(0) - cand_colour[:, :, c].unsqueeze(1)).square_() for c in range(3)]
        # key = (d_r + d_g) << 8  +  (d_b << 8 | slot): the slot sits in the lowest 8 bits.
        red_green = per_channel[0][:, :, None, None, :] + per_channel[1][:, None, :, None, :]
        red_green <<= 8
        blue_slot = (per_channel[2] << 8) | slot
        key = red_green + blue_slot[:, None, None, :, :]  # [k, f, f, f, b]
        local = key.view(k, f**3, b).amin(0) & 0xFF  # [f^3, b]
        best[:, start : start + chunk] = cand.gather(0, local.to(torch.int64))
    return best
