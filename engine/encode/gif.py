"""GIF bytes from palette-indexed frames (Pillow's LZW writer).

One global palette serves the whole clip (it comes from the clip-wide median cut). Pillow's
writer then stores each frame as the rectangle that changed since the previous one, with
unchanged pixels inside that rectangle set to a transparent index, and merges frames identical to
their predecessor by adding up their delays. For that it needs one free palette slot, so the
palette given here must hold at most 255 colours.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

TRANSPARENT_INDEX = 255
"""Palette slot kept free for the unchanged-pixel transparency of delta frames."""


def encode_gif(indices: np.ndarray, palette: np.ndarray, delays_cs: tuple[int, ...] | list[int]) -> bytes:
    """Encode ``indices`` (uint8 [N, H, W]) with ``palette`` (uint8 [K<=255, 3]), looping forever.

    ``delays_cs`` holds each frame's display time in centiseconds (the GIF clock).
    """
    count, height, width = indices.shape
    if len(delays_cs) != count:
        raise ValueError(f"{count} frames but {len(delays_cs)} delays")
    if palette.shape[0] > TRANSPARENT_INDEX:
        raise ValueError("a GIF palette here holds at most 255 colours (one slot is kept for transparency)")
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: palette.shape[0]] = palette
    # The reserved slot gets a colour no frame uses, so palette lookups by colour stay unambiguous.
    table[TRANSPARENT_INDEX] = _unused_colour(palette)
    flat_palette = table.tobytes()
    images = []
    for frame in indices:
        image = Image.frombuffer("P", (width, height), np.ascontiguousarray(frame), "raw", "P", 0, 1)
        image.putpalette(flat_palette)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=[int(d) * 10 for d in delays_cs],  # Pillow takes ms and writes ms // 10
        loop=0,
        disposal=1,
        optimize=True,
        transparency=TRANSPARENT_INDEX,
        palette=flat_palette,
    )
    return buffer.getvalue()


def _unused_colour(palette: np.ndarray) -> np.ndarray:
    """A colour not present in ``palette`` (there are 2**24 candidates and at most 255 taken)."""
    taken = {tuple(int(v) for v in c) for c in palette}
    for candidate in ((255, 0, 255), (1, 2, 3), (254, 1, 253)):
        if candidate not in taken:
            return np.array(candidate, dtype=np.uint8)
    for value in range(256):  # pragma: no cover - needs a palette holding all three candidates
        if (value, 255 - value, value) not in taken:
            return np.array((value, 255 - value, value), dtype=np.uint8)
    raise AssertionError("unreachable")
