"""Nearest-palette-colour lookup table over a quantised RGB cube.

Mapping every pixel to its nearest palette colour directly costs K distance evaluations per
pixel (255 x 10 M for a short clip). Instead the colour cube is cut into 2^lut_bits cells
per channel, the nearest colour is found once per cell, and pixels just index the table.

Brute force over all 2^18 cells of a 6-bit table is itself 67 M distances (~120 ms on one
CPU core), so cells are grouped into 4x4x4 blocks and each block only considers candidate
colours: take the colour q nearest the block centre; a colour p can be nearest somewhere
in the block only if the half-space where p beats q reaches into the block (a linear test
on the block's corners). Real palettes leave ~3 candidates per block on average but a few
dense blocks (dark tones) have dozens, so to keep shapes static the work comes in tiers
(``_TIERS``): every block compares its cells with its 8 most promising candidates, the
1/16 most crowded blocks are redone with 32, and the 1/128 most crowded with the whole
palette. The table is exact unless more than 1/16 of the blocks have over 8 candidates or
more than 1/128 over 32 (then those blocks use their closest candidates, still a near
colour). On the Big Buck Bunny benchmark palette 160 of 4,096 blocks have over 8
candidates and 2 over 32, and the table matches brute force exactly (~15-20 ms).

Distances are exact integers (cell centres and colours doubled), so near-ties are decided
correctly and always in favour of the lower palette index.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .compiled import runs
from .nearest_scan import SCAN

__all__ = ["nearest_index_lut", "nearest_lut_and_distance", "cell_centres", "UNSEARCHED", "fill_blocks",
           "blocks_in_histogram"]

# (share, k): the 1/share most crowded blocks compare their cells with their k most
# promising candidates; later tiers overwrite earlier ones. The last tier uses the whole
# palette, so the table is exact unless more than 1/16 of the blocks have over 8
# candidates or more than 1/128 over 32.
_TIERS = ((1, 8), (16, 32), (128, 256))
# Tables with at most this many cell-colour pairs are brute-forced (4 Mi, a 16 MB key tensor).
_CHUNK_ELEMENTS = 1 << 22
# Key elements materialised at once when comparing cells with candidates (8 MB).
_GROUP_ELEMENTS = 1 << 21


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
    return nearest_lut_and_distance(palette, lut_bits)[0]


UNSEARCHED = 255
"""The index a cell holds in a table searched only in some blocks (``blocks``) until its block is
searched: never a palette index there (such palettes have at most 255 colours)."""


def nearest_lut_and_distance(palette: Tensor, lut_bits: int = 6, blocks: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`nearest_index_lut` and, for every cell, 4x the squared distance (in 8-bit levels)
    from its centre to that colour, int32 [n, n, n]: exact, and free (the search has it).

    ``blocks`` (bool [(n/4)^3], blocks of 4x4x4 cells in (r, g, b) order): search only those;
    every other cell holds :data:`UNSEARCHED` (distance 0) until :func:`fill_blocks` searches
    its block. A clip's colours touch a fraction of the cube (10-45 % of the blocks on the
    previews library, after widening by the dither's reach), so a caller that knows where
    its pixels lie, and can tell when one lands elsewhere, pays for that fraction."""
    if palette.dim() != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
        raise ValueError(f"palette must be [K, 3] with 1 <= K <= 256, got {tuple(palette.shape)}")
    if palette.dtype != torch.uint8:
        raise ValueError(f"palette must be uint8, got {palette.dtype}")
    if not 1 <= lut_bits <= 8:
        raise ValueError(f"lut_bits must be in 1..8, got {lut_bits}")
    n = 1 << lut_bits
    device = palette.device
    if blocks is None and runs(SCAN, device):  # exact, compiled: every block through fill_blocks' loop
        nearest = torch.empty((n, n, n), dtype=torch.uint8)
        distance = torch.empty((n, n, n), dtype=torch.int32)
        fill_blocks(nearest, distance, palette, torch.arange((n // _block_edge(lut_bits)) ** 3))
        return nearest, distance
    if blocks is None:
        best, distance = _search(palette, lut_bits, None)
        return _to_cube(best, lut_bits).to(torch.uint8), _to_cube(distance, lut_bits)
    if palette.shape[0] > UNSEARCHED or lut_bits < 2:
        raise ValueError("a table searched by blocks needs lut_bits >= 2 and at most 255 colours")
    if blocks.shape != ((n // 4) ** 3,):
        raise ValueError(f"blocks must be bool [{(n // 4) ** 3}], got {tuple(blocks.shape)}")
    nearest = torch.full((n, n, n), UNSEARCHED, dtype=torch.uint8, device=device)
    distance = torch.zeros((n, n, n), dtype=torch.int32, device=device)
    fill_blocks(nearest, distance, palette, blocks.nonzero().squeeze(1))
    return nearest, distance


def fill_blocks(nearest: Tensor, distance: Tensor, palette: Tensor, blocks: Tensor) -> None:
    """Search the blocks numbered ``blocks`` (int64 [S], (r * nb + g) * nb + b) and write their
    cells into ``nearest`` and ``distance`` ([n, n, n] tables of
    :func:`nearest_lut_and_distance`), in place."""
    if blocks.numel() == 0:
        return
    n = nearest.shape[0]
    lut_bits = n.bit_length() - 1
    if runs(SCAN, nearest.device):  # exact, compiled (kernels/nearest_scan.py)
        SCAN(palette.contiguous().numpy(), lut_bits, blocks.to(torch.int64).contiguous().numpy(),
             nearest.view(-1).numpy(), distance.view(-1).numpy())
        return
    nb = n // 4
    best, found = _search(palette, lut_bits, blocks)  # [64, S]
    block_r, block_g, block_b = blocks // (nb * nb), blocks // nb % nb, blocks % nb
    cell = torch.arange(4, device=blocks.device)
    r = (block_r.view(1, 1, 1, -1) * 4 + cell.view(4, 1, 1, 1))
    g = (block_g.view(1, 1, 1, -1) * 4 + cell.view(1, 4, 1, 1))
    b = (block_b.view(1, 1, 1, -1) * 4 + cell.view(1, 1, 4, 1))
    address = ((r * n + g) * n + b).reshape(64, -1)  # cell (i, j, k) of a block is row (i * 4 + j) * 4 + k
    nearest.view(-1)[address] = best.to(torch.uint8)
    distance.view(-1)[address] = found


def blocks_in_histogram(counts: Tensor, bits: int, lut_bits: int = 6) -> Tensor | None:
    """The blocks (of :func:`nearest_lut_and_distance`) that a colour histogram's occupied bins
    (``counts`` [2^(3 bits)], as :func:`kernels.histogram.colour_histogram` counts them) fall in,
    bool [(2^lut_bits / 4)^3]; None when the histogram's bins are coarser than the blocks."""
    grid = 1 << max(0, lut_bits - 2)  # blocks per channel
    if bits < lut_bits - 2 or lut_bits < 2:
        return None
    per = 1 << (bits - (lut_bits - 2))  # bins per block edge
    occupied = (counts > 0).view(grid, per, grid, per, grid, per)
    return occupied.any(5).any(3).any(1).reshape(-1)


def _search(palette: Tensor, lut_bits: int, blocks: Tensor | None) -> tuple[Tensor, Tensor]:
    """Nearest colour and distance for every cell of the chosen blocks (None: all), in block
    layout [f^3, S]."""
    device = palette.device
    n_colours = palette.shape[0]
    n = 1 << lut_bits
    f = _block_edge(lut_bits)
    nb = n // f  # blocks per channel
    # Doubled cell centres of every block along each channel, int32 [3, f, B]; blocks are
    # innermost so that every per-block operation runs over long contiguous rows.
    corner = torch.cartesian_prod(*(torch.arange(nb, device=device),) * 3)  # [B, 3]
    if blocks is not None:
        corner = corner[blocks]
    block_cells = _doubled_centres(lut_bits, device).view(nb, f)[corner].permute(1, 2, 0).contiguous()
    doubled_palette = palette.to(torch.int32) * 2  # [K, 3]
    n_blocks = block_cells.shape[2]

    if n**3 * n_colours <= _CHUNK_ELEMENTS:
        # Small tables (coarse grids, whose big blocks would hold many candidates each) are
        # cheapest by brute force.
        everyone = torch.arange(n_colours, device=device).unsqueeze(1).expand(n_colours, n_blocks)
        return _nearest_in_blocks(block_cells, doubled_palette, everyone)
    return _nearest_by_tiers(block_cells, palette, doubled_palette, nb**3)


def _block_edge(lut_bits: int) -> int:
    """Cells along each edge of a block: 4, or 2 in a table of 1 bit a channel (one block)."""
    return 1 << min(2, lut_bits)


def _to_cube(per_block: Tensor, lut_bits: int) -> Tensor:
    """[f^3, B] in block layout -> [n, n, n] (via [f, f, f, nb, nb, nb] -> [nb, f, nb, f, nb, f])."""
    n = 1 << lut_bits
    f = _block_edge(lut_bits)
    nb = n // f
    return per_block.view(f, f, f, nb, nb, nb).permute(3, 0, 4, 1, 5, 2).reshape(n, n, n)


def _nearest_by_tiers(block_cells: Tensor, palette: Tensor, doubled_palette: Tensor,
                      table_blocks: int) -> tuple[Tensor, Tensor]:
    """Nearest colour per cell [f^3, B] and its doubled squared distance, from "all blocks, few
    candidates" tiers up to "most crowded blocks, whole palette" (see the module docstring and
    ``_TIERS``). The tiers' shares are of the whole table's ``table_blocks``, also when B is a
    part of it: the blocks a clip's colours fall in are the crowded ones, so a part gets as many
    well-searched blocks as the whole table would, and every block is at least as exact."""
    device = palette.device
    n_colours = palette.shape[0]
    n_blocks = block_cells.shape[2]
    key = _candidate_key(block_cells, palette.to(torch.float32))  # [B, K]
    crowding = torch.isfinite(key).sum(1)
    best = torch.empty((block_cells.shape[1] ** 3, n_blocks), dtype=torch.int64, device=device)
    distance = torch.empty((block_cells.shape[1] ** 3, n_blocks), dtype=torch.int32, device=device)
    for share, k in _TIERS:
        k = min(k, n_colours)
        count = min(n_blocks, max(1, table_blocks // share))
        rows = None if count == n_blocks else torch.topk(crowding, count, sorted=False).indices
        if k == n_colours:
            candidates = torch.arange(n_colours, device=device).unsqueeze(1).expand(n_colours, count)
        else:
            chosen = torch.topk(key if rows is None else key[rows], k, dim=1, largest=False, sorted=False).indices
            candidates = chosen.sort(dim=1).values.T  # ascending: the lower index wins ties
        if rows is None:
            best, distance = _nearest_in_blocks(block_cells, doubled_palette, candidates)
        else:
            best[:, rows], distance[:, rows] = _nearest_in_blocks(block_cells[:, :, rows], doubled_palette, candidates)
        if k == n_colours:
            break
    return best, distance


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
    q_index = to_centre.min(1, keepdim=True).indices  # [B, 1]; argmin, 2.5x as fast on the CPU
    l1 = torch.cdist(colours, colours, p=1.0)  # [K, K]
    slack = l1.index_select(0, q_index.squeeze(1)).mul_(2.0 * half)
    slack += to_centre.gather(1, q_index)
    slack -= to_centre
    # Tolerance in squared levels: float32 rounding (~0.1 at these magnitudes) must never
    # drop a real candidate; a spurious extra candidate only costs a comparison.
    return to_centre.masked_fill_(slack < -1.0, float("inf"))


def _nearest_in_blocks(block_cells: Tensor, doubled_palette: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """For each block's f^3 cells, the nearest of that block's candidates, int64 [f^3, B], and
    its squared distance in doubled coordinates (4x the squared distance in levels), int32.

    block_cells: int32 [3, f, B] doubled centres; candidates: [k, B] palette indices in
    ascending order, k <= 256. Squared distances are separable: per channel
    (2x - 2p)^2 is an int32 [k, f, B] table, and the [k, f, f, f, B] distances are two
    broadcast adds. Distances are exact integers < 2^20, so ``distance << 8 | slot`` is a
    key whose minimum over the k slots (a plain elementwise min, cheap on any device)
    gives the nearest candidate, lowest slot first on ties. Slots are processed in groups
    sized to keep the key tensor cache-sized, with a running minimum across groups.
    """
    _, f, n_blocks = block_cells.shape
    k = candidates.shape[0]
    device = block_cells.device
    # Explicit output tensors throughout: with broadcast inputs TensorIterator may otherwise
    # pick a layout with k innermost, which made the reduction over k ~20x slower.
    cand_colour = doubled_palette.T.contiguous()[:, candidates]  # [3, k, B]
    per_channel = torch.empty((3, k, f, n_blocks), dtype=torch.int32, device=device)
    torch.sub(block_cells.unsqueeze(1), cand_colour.unsqueeze(2), out=per_channel).square_()
    # key = (d_r + d_g) << 8  +  (d_b << 8 | slot): the slot sits in the lowest 8 bits.
    blue_slot = per_channel[2].bitwise_left_shift_(8)
    blue_slot |= torch.arange(k, dtype=torch.int32, device=device).view(k, 1, 1)
    red_green = torch.empty((k, f, f, n_blocks), dtype=torch.int32, device=device)
    torch.add(per_channel[0].unsqueeze(2), per_channel[1].unsqueeze(1), out=red_green).bitwise_left_shift_(8)
    group = max(1, _GROUP_ELEMENTS // (f**3 * n_blocks))
    key = torch.empty((min(group, k), f, f, f, n_blocks), dtype=torch.int32, device=device)
    nearest = None
    for start in range(0, k, group):
        g = min(group, k - start)
        torch.add(red_green[start : start + g].unsqueeze(3), blue_slot[start : start + g, None, None], out=key[:g])
        group_min = key[:g].amin(0)
        nearest = group_min if nearest is None else torch.minimum(nearest, group_min, out=nearest)
    nearest = nearest.view(f**3, n_blocks)
    local = (nearest & 0xFF).to(torch.int64)
    return candidates.gather(0, local), nearest.bitwise_right_shift(8)
