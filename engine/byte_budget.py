"""``max_bytes``: the smallest loss that brings an image under a byte budget, found by measuring.

Nobody can say in advance how many bytes a clip takes at a setting (grain costs ten times what a
flat logo does), so the budget is met by encoding again: the job's decoded frames are kept and
re-rendered, never decoded again. What is given up comes in a fixed order, least visible first,
as a ladder of :class:`Rung` s (:func:`ladder`): for GIF the palette's colours, for WebP and
AVIF the encoder's quality (:attr:`engine.encode.Format.qualities`); then the frame rate (every
2nd, then every 3rd instant, each frame shown as long as the ones it stands for, so the
animation keeps its length); then the size (3/4, 1/2, 1/3 of each side).

Bytes shrink down the ladder (not strictly: a smaller palette can dither into more bytes), so
the search is a binary search between the job's own encode (too big) and the ladder's last rung,
tried first: a budget even that rung misses fails at once with
``ErrorCode.MAX_BYTES_UNREACHABLE``, naming the smallest size reached. When the rung found drops
frames or size, its colours or quality are searched back up at that frame rate and size (a second,
short binary search: the search is two-dimensional where it pays). At most :data:`MAX_ENCODES` +
:data:`REGAIN_ENCODES` encodes besides the first, whatever the ladder; only a setting that was
encoded and measured under the budget is ever chosen, so the result is never over it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..kernels.resize import resize
from .decode import DecodedClip
from .encode import Format, Frames
from .errors import EngineError, ErrorCode

GIF_COLOURS = (255, 128, 64, 32, 16)
"""Palette sizes a GIF steps down through (the first is the format's own)."""
FPS_DIVISORS = (2, 3)
"""Every n-th output instant kept, after the colours or quality are spent."""
SCALES = (0.75, 0.5, 1 / 3)
"""Fractions of each side, last of all."""
MAX_ENCODES = 6
"""Encodes the ladder's search may add to the job's own: the floor, then a binary search over the
ladder's 10 rungs (at most 4)."""
REGAIN_ENCODES = 3
"""Encodes that may then win colours or quality back at the chosen frame rate and size."""

MIN_MAX_BYTES = 1024
"""The smallest budget a job may ask for: below it not even a one-frame GIF header fits."""


@dataclass(frozen=True)
class Rung:
    """One setting of the ladder: what is kept of the job's own image."""

    colours: int | None = None
    """GIF palette size (None: the format's own)."""
    quality: int | None = None
    """Encoder quality (None: the format's default)."""
    every: int = 1
    """Keep every n-th output instant."""
    scale: float = 1.0
    """Fraction of each side kept."""

    def describe(self, fmt: Format) -> str:
        parts = []
        if self.colours is not None:
            parts.append(f"{self.colours} colours (from {fmt.palette_colours})")
        if self.quality is not None:
            parts.append(f"quality {self.quality} (from {fmt.qualities[0]})")
        if self.every > 1:
            parts.append(f"every {'2nd' if self.every == 2 else f'{self.every}rd'} frame")
        if self.scale != 1.0:
            parts.append(f"{self.scale:.2g} of the size")
        return ", ".join(parts) or "nothing"


def ladder(fmt: Format) -> list[Rung]:
    """The rungs below the job's own setting, least given up first (module docstring)."""
    if fmt.qualities:
        first = [Rung(quality=q) for q in fmt.qualities[1:]]
        floor: dict = {"quality": fmt.qualities[-1]}
    elif fmt.palette_colours is not None:
        first = [Rung(colours=c) for c in GIF_COLOURS[1:] if c < fmt.palette_colours]
        floor = {"colours": min(GIF_COLOURS)}
    else:
        first, floor = [], {}
    rungs = first + [Rung(every=n, **floor) for n in FPS_DIVISORS]
    return rungs + [Rung(every=FPS_DIVISORS[-1], scale=s, **floor) for s in SCALES]


@dataclass(frozen=True)
class Fitted:
    """What the search settled on: the bytes, the rung, the delays and the frame count and size."""

    data: bytes
    rung: Rung | None
    """None: the job's own setting fitted (the search did not run)."""
    delays: tuple[int, ...]
    frames: int
    width: int
    height: int
    encodes: int
    """Encodes made, the job's own included."""

    def note(self, fmt: Format, max_bytes: int, first_size: int) -> str | None:
        if self.rung is None:
            return None
        return (f"max_bytes {max_bytes}: {first_size} bytes as asked; gave up {self.rung.describe(fmt)} "
                f"-> {len(self.data)} bytes ({self.encodes} encodes)")


def fewer_instants(index: torch.Tensor, delays: Sequence[int], every: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Every ``every``-th instant of ``index``, each shown as long as the instants it stands for."""
    if every <= 1:
        return index, tuple(delays)
    kept = index[::every]
    merged = tuple(int(sum(delays[k:k + every])) for k in range(0, len(delays), every))
    return kept, merged


def fit_budget(fmt: Format, clip: DecodedClip, delays: Sequence[int], max_bytes: int,
               render: Callable[[Format, DecodedClip], Frames], first: bytes) -> Fitted:
    """The job's image under ``max_bytes``: ``first`` (the job's own encode) if it fits, else the
    least-loss rung that does (module docstring). ``render`` is :func:`engine.render.render`."""
    delays = tuple(delays)
    own = Fitted(first, None, delays, len(clip.index), clip.width, clip.height, 1)
    if len(first) <= max_bytes:
        return own
    rungs = ladder(fmt)
    encodes = 1
    tried: dict[int, Fitted] = {}

    def attempt_rung(rung: Rung) -> Fitted:
        nonlocal encodes
        shaped, rung_delays = _shape(clip, delays, rung)
        frames = render(dataclasses.replace(fmt, palette_colours=rung.colours) if rung.colours else fmt, shaped)
        data = fmt.encode(frames, rung_delays, quality=rung.quality) if rung.quality is not None \
            else fmt.encode(frames, rung_delays)
        encodes += 1
        return Fitted(data, rung, rung_delays, len(shaped.index), shaped.width, shaped.height, encodes)

    def attempt(at: int) -> Fitted:
        tried[at] = attempt_rung(rungs[at])
        return tried[at]

    floor = attempt(len(rungs) - 1)
    if len(floor.data) > max_bytes:
        raise EngineError(ErrorCode.MAX_BYTES_UNREACHABLE, (
            f"max_bytes {max_bytes} cannot be met: the smallest image reached is {len(floor.data)} bytes "
            f"({floor.rung.describe(fmt) if floor.rung else ''}, {floor.width}x{floor.height}, {floor.frames} frames; "
            f"the image as asked: {len(first)} bytes); raise max_bytes, or shorten the duration or lower the size"))
    low, high = -1, len(rungs) - 1  # rungs[high] fits; everything at or before low did not (or the own encode)
    while high - low > 1 and encodes - 1 < MAX_ENCODES:
        middle = (low + high) // 2
        if len(attempt(middle).data) <= max_bytes:
            high = middle
        else:
            low = middle
    chosen = _regain(tried[high], fmt, max_bytes, attempt_rung)
    return dataclasses.replace(chosen, encodes=encodes)


def _regain(chosen: Fitted, fmt: Format, max_bytes: int, attempt: Callable[[Rung], Fitted]) -> Fitted:
    """Once frames or size had to go, the colours or quality need not stay at the floor: at the
    chosen frame rate and size, binary-search them back up (at most :data:`REGAIN_ENCODES`
    encodes), keeping the best that was measured under the budget. Without it a budget just
    below one rung's size drops to the next rung's floor quality and leaves a third of the
    budget unused."""
    rung = chosen.rung
    if rung is None or (rung.every == 1 and rung.scale == 1.0):
        return chosen
    if fmt.qualities:
        levels = [dataclasses.replace(rung, quality=None if q == fmt.qualities[0] else q) for q in fmt.qualities[:-1]]
    elif fmt.palette_colours is not None:
        levels = [dataclasses.replace(rung, colours=None if c >= fmt.palette_colours else c)
                  for c in (fmt.palette_colours, *GIF_COLOURS[1:-1]) if c <= fmt.palette_colours]
    else:
        return chosen
    low, high, best = -1, len(levels), chosen  # levels[low] and better did not fit; the floor (high) did
    for _ in range(REGAIN_ENCODES):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        found = attempt(levels[middle])
        if len(found.data) <= max_bytes:
            high, best = middle, found
        else:
            low = middle
    return best


def _shape(clip: DecodedClip, delays: tuple[int, ...], rung: Rung) -> tuple[DecodedClip, tuple[int, ...]]:
    """``clip`` with the rung's instants and size (the distinct frames resized, not decoded again)."""
    index, rung_delays = fewer_instants(clip.index, delays, rung.every)
    frames = clip.frames
    if rung.scale != 1.0:
        height = max(1, math.floor(clip.height * rung.scale + 0.5))
        width = max(1, math.floor(clip.width * rung.scale + 0.5))
        with torch.inference_mode():
            frames = resize(frames, height, width)
    times = tuple(clip.source_times[::rung.every]) if rung.every > 1 else clip.source_times
    return dataclasses.replace(clip, frames=frames, index=index, source_times=times), rung_delays
