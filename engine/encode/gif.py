"""GIF bytes from palette-indexed frames: the container written here, the LZW codes by Pillow.

One palette serves the whole clip (the clip-wide median cut), or, where the clip's colours drift
(kernels/scenes.py), each run of frames has its own. The palette most frames use is the global
colour table; a frame with another palette carries it as a local table. Each frame after the first
is stored as the rectangle that changed since the one before, the unchanged pixels inside it set
to a transparent index (an LZW run of one code); a frame identical to the one before is not
stored, its delay added to that one's. Frames are never disposed (disposal 1). A pixel may be
:data:`KEEP` (index 255): it shows what the frame before showed, whatever that frame's palette
(the kernels keep the previous palette's colours this way after a change of palette), and is
written transparent; the writer follows, per pixel, the index each palette last showed, so a
change of palette compares the colours really on screen.

Why not Pillow's writer (used until 2026-12): it rebuilt every frame's palette by colour matching
(``_normalize_palette``, a third of the GIF encode time on the previews library), compared frames
as RGB images, and always wrote 8-bit LZW codes and 256-entry tables. Here the frames' own indices
are compared (colours only across a change of palette); each table is as small as the highest
index of the frames using it, and each frame's LZW code size as small as its own highest index: a
palette of 40 colours codes in 6 bits. Pillow's C LZW encoder
(``Image.tobytes("gif", ...)``, public API) still makes the image data.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
from PIL import Image

from . import KEEP  # written as the transparent index

MAX_COLOURS = 255
"""Colours a palette may hold: one slot of the 256 a GIF table has is kept for transparency."""


_MAX_DELAY_CS = 0xFFFF
"""A frame's delay field is 16 bits of centiseconds; an identical frame is only merged below it."""


@dataclasses.dataclass
class _Frame:
    """One stored frame before its delay is final (identical frames that follow add theirs)."""

    delay: int
    image: bytes
    """Image descriptor, local table if any, LZW data and terminator."""
    transparent: int | None


@dataclasses.dataclass(frozen=True)
class _Table:
    """A palette as written: ``bits`` per index (2^bits entries), the first ``colours`` of them
    the palette's, the slot ``colours`` free for transparency."""

    rgb: bytes
    bits: int
    colours: int


def encode_gif(indices: np.ndarray, palette: np.ndarray, delays_cs: tuple[int, ...] | list[int]) -> bytes:
    """Encode ``indices`` (uint8 [N, H, W]) with ``palette`` (uint8 [K<=255, 3], or [N, K, 3]:
    one per frame), looping forever.

    ``delays_cs`` holds each frame's display time in centiseconds (the GIF clock).
    """
    count, height, width = indices.shape
    if len(delays_cs) != count:
        raise ValueError(f"{count} frames but {len(delays_cs)} delays")
    if palette.shape[-2] > MAX_COLOURS:
        raise ValueError("a GIF palette here holds at most 255 colours (one slot is kept for transparency)")
    if palette.ndim == 3 and palette.shape[0] != count:
        raise ValueError(f"{count} frames but {palette.shape[0]} palettes")
    if count == 0:
        raise ValueError("a GIF needs at least one frame")
    if not (0 < width <= 0xFFFF and 0 < height <= 0xFFFF):
        raise ValueError(f"a GIF is at most 65535 pixels a side, got {width}x{height}")
    keys, tables, keeping = _tables(indices, palette)
    if keeping and keeping[0] == 0:
        raise ValueError("the first frame keeps colours (index 255) but nothing is on screen yet")
    keeps = set(keeping)
    global_key = max(dict.fromkeys(keys), key=keys.count)  # the palette most frames use (ties: the first)
    out = bytearray(b"GIF89a")
    top = tables[global_key]
    out += struct.pack("<HHBBB", width, height, 0x80 | 0x70 | (top.bits - 1), 0, 0)
    out += top.rgb
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever

    stored: list[_Frame] = []
    start = None  # packed colours on screen when the current palette's frames began (None: the first)
    last = indices[0]  # per pixel, the index this palette last showed (KEEP: still ``start``'s colour)
    for k in range(count):
        key, frame = keys[k], indices[k]
        if k == 0:
            changed = None  # the first frame is whole
        elif key == keys[k - 1]:  # one palette: equal indices show equal colours
            changed = frame != indices[k - 1]
            if k in keeps:
                changed &= frame != KEEP
                last = np.where(frame == KEEP, last, frame)
            else:
                last = frame
        else:  # another palette: compare the colours shown
            before = _packed(palette, k - 1, last, start)
            changed = _packed(palette, k, frame, before if k in keeps else None) != before
            start, last = before, frame
        if changed is not None and not changed.any():
            if stored[-1].delay + int(delays_cs[k]) <= _MAX_DELAY_CS:
                stored[-1].delay += int(delays_cs[k])
                continue
            changed = np.zeros_like(changed)
            changed[0, 0] = True  # one pixel (transparent if kept), so the frame is a frame of its own
        stored.append(_image(frame, changed, tables[key], local=key != global_key, delay=int(delays_cs[k])))

    for entry in stored:
        flags = 0x04 | (0x01 if entry.transparent is not None else 0)  # disposal 1: leave in place
        out += struct.pack("<BBBBHBB", 0x21, 0xF9, 4, flags, entry.delay, entry.transparent or 0, 0)
        out += entry.image
    out += b"\x3b"
    return bytes(out)


def _tables(indices: np.ndarray, palette: np.ndarray) -> tuple[list[bytes], dict[bytes, _Table], list[int]]:
    """Each frame's palette key; per key the table written: as many colours as the highest
    index of the frames using it needs (padding rows past it are never written), one more slot for
    transparency, rounded up to a power of two; and the frames that hold :data:`KEEP`."""
    per_frame = palette.ndim == 3
    keys = [(palette[k] if per_frame else palette).tobytes() for k in range(indices.shape[0])]
    highest: dict[bytes, int] = {}
    keeping = []
    for k, (key, frame) in enumerate(zip(keys, indices)):
        top = int(frame.max())
        if top == KEEP:  # kept pixels are not the palette's
            keeping.append(k)
            top = max(0, int((frame + np.uint8(1)).max()) - 1)  # KEEP (255) wraps to 0: 8x a masked max
        highest[key] = max(highest.get(key, 0), top)
    tables = {}
    for key, top in highest.items():
        colours = np.frombuffer(key, dtype=np.uint8).reshape(-1, 3)
        if top >= len(colours):
            raise ValueError(f"index {top} is past the palette's {len(colours)} colours")
        bits = max(1, (top + 1).bit_length())  # room for 0..top and the transparent slot top + 1
        table = np.zeros((1 << bits, 3), dtype=np.uint8)
        table[: top + 1] = colours[: top + 1]
        tables[key] = _Table(table.tobytes(), bits, top + 1)
    return keys, tables, keeping


def _packed(palette: np.ndarray, k: int, frame: np.ndarray, screen: np.ndarray | None) -> np.ndarray:
    """The colours frame ``k`` shows, packed as 0xRRGGBB (uint32 [H, W]): its palette's, and
    ``screen``'s where it keeps them (:data:`KEEP`; ``screen`` None: the frame keeps none)."""
    colours = (palette[k] if palette.ndim == 3 else palette).astype(np.uint32)
    table = np.zeros(KEEP + 1, dtype=np.uint32)
    table[: len(colours)] = colours[:, 0] << 16 | colours[:, 1] << 8 | colours[:, 2]
    shown = table.take(frame)
    if screen is not None:
        np.copyto(shown, screen, where=frame == KEEP)
    return shown


def _image(frame: np.ndarray, changed: np.ndarray | None, table: _Table, *, local: bool, delay: int) -> _Frame:
    """A frame as stored: the rectangle around ``changed`` (the whole frame when None), its
    unchanged pixels transparent."""
    if changed is None:
        left, top, part, transparent = 0, 0, frame, None
    else:
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        part = frame[top:bottom, left:right]
        keep = changed[top:bottom, left:right] & (part != KEEP)
        transparent = None
        if not keep.all():
            transparent = table.colours
            part = np.where(keep, part, np.uint8(transparent))
    height, width = part.shape
    highest = int(part.max()) if transparent is None else transparent
    code_bits = max(2, highest.bit_length())  # LZW's minimum code size: 2 at least
    picture = Image.frombuffer("P", (width, height), np.ascontiguousarray(part), "raw", "P", 0, 1)
    flags = (0x80 | (table.bits - 1)) if local else 0
    head = struct.pack("<BHHHHB", 0x2C, left, top, width, height, flags)
    body = table.rgb if local else b""
    data = picture.tobytes("gif", "P", code_bits, 0)  # LZW codes in sub-blocks
    return _Frame(delay, head + body + bytes([code_bits]) + data + b"\x00", transparent)
