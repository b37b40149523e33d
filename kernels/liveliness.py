"""How lively each sampled instant of a video is, and which span of a given length is the liveliest.

Pure tensor ops on a few dozen small frames (e.g. 64 px wide RGB): no files, no jobs. The pipeline
(:mod:`engine.autostart`) decodes the samples; this module judges them.

Each sample is a pair: the frame at the instant and the frame decoded just after it. From them:

* ``luma`` (mean BT.601 luma, 0-255), ``dark`` (fraction of pixels below :data:`DARK_LUMA`),
  ``bright`` (fraction above :data:`BRIGHT_LUMA`), ``contrast`` (luma standard deviation) and
  ``colour`` (Hasler and Suesstrunk's colourfulness);
* ``motion``: mean absolute luma difference to the frame just after (what moves on screen);
* ``change``: the same to the neighbouring samples (a still section does not change between them).

A sample's verdict is one of :data:`VERDICTS`: black (nothing brighter than dark grey), credits
(mostly black with sparse, colourless bright pixels: white text over black), fade (dim, beside a
black sample, and the steps of brightness leading away from it), still (neither moving nor changing), or ok. Thresholds are on 0-255 luma of
frames a few dozen pixels wide, where encoder noise stays well under 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["VERDICTS", "SampleScore", "Window", "cells", "least_bad_window", "liveliest_window",
           "score_samples"]

VERDICTS = ("ok", "black", "fade", "still", "credits")
DARK_LUMA = 40.0
"""Luma below which a pixel is near-black."""
BRIGHT_LUMA = 150.0
"""Luma above which a pixel is bright (text over black)."""
BLACK_P99 = 40.0
"""A frame whose 99th luma percentile is below this shows nothing but (near-)black."""
FADE_LUMA = 45.0
"""A frame dimmer than this, next to a black one, is part of a fade."""
FADE_STEP = 0.85
"""A sample beside a fading one, darker than this share of its other neighbour, is fading too."""
STILL_MOTION = 0.6
"""Mean absolute luma difference to the next frame below which nothing moves."""
STILL_CHANGE = 1.5
"""Mean absolute luma difference to the nearer neighbouring sample below which nothing changed."""


@dataclass(frozen=True)
class SampleScore:
    """One sampled instant, its measures and verdict (one of :data:`VERDICTS`)."""

    time: float
    luma: float
    dark: float
    bright: float
    contrast: float
    colour: float
    motion: float
    change: float
    verdict: str
    liveliness: float


@dataclass(frozen=True)
class Window:
    """The chosen span: its start (seconds) and mean liveliness."""

    start: float
    liveliness: float
    bad_seconds: float = 0.0
    """How much of the span lies in bad samples' cells (0 for a window that avoids them all)."""


def _luma(frames: Tensor) -> Tensor:
    rgb = frames.to(torch.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _colourfulness(frames: Tensor) -> Tensor:
    """Hasler and Suesstrunk (2003): spread and mean of the opponent channels rg and yb."""
    rgb = frames.to(torch.float32).flatten(1, 2)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    spread = torch.sqrt(rg.std(dim=1, unbiased=False) ** 2 + yb.std(dim=1, unbiased=False) ** 2)
    centre = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return spread + 0.3 * centre


def score_samples(frames: Tensor, following: Tensor, times: Sequence[float]) -> list[SampleScore]:
    """Score ``frames`` (N, H, W, 3 uint8, in time order) taken at ``times``; ``following`` holds
    the frame decoded just after each one (the same frame where there was none).

    Liveliness is what a viewer notices first: motion, then change between samples (a cut counts,
    capped, so one cut does not outweigh seconds of motion), then contrast and colour as
    tie-breakers (of two equally moving spans the richer picture wins)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape != following.shape or len(times) != frames.shape[0]:
        raise ValueError(f"frames and following must be (N, H, W, 3) alike with N times, got {tuple(frames.shape)}, "
                         f"{tuple(following.shape)} and {len(times)} times")
    n = frames.shape[0]
    if n == 0:
        return []
    luma, after = _luma(frames), _luma(following)
    flat = luma.flatten(1)
    mean, contrast = flat.mean(dim=1), flat.std(dim=1, unbiased=False)
    dark = (flat < DARK_LUMA).float().mean(dim=1)
    bright = (flat > BRIGHT_LUMA).float().mean(dim=1)
    p99 = torch.quantile(flat, 0.99, dim=1)
    colour = _colourfulness(frames)
    motion = (luma - after).abs().flatten(1).mean(dim=1)
    step = (luma[1:] - luma[:-1]).abs().flatten(1).mean(dim=1) if n > 1 else torch.zeros(0)
    inf = torch.full((1,), float("inf"))
    to_prev, to_next = torch.cat([inf, step]), torch.cat([step, inf])
    nearer = torch.minimum(to_prev, to_next)
    change = torch.where(torch.isinf(nearer), torch.zeros_like(nearer), nearer)
    far = torch.maximum(torch.where(torch.isinf(to_prev), 0, to_prev), torch.where(torch.isinf(to_next), 0, to_next))

    verdicts: list[str] = []
    for i in range(n):
        if p99[i] < BLACK_P99:
            verdicts.append("black")
        elif dark[i] > 0.7 and 0.002 < bright[i] < 0.25 and colour[i] < 20:
            verdicts.append("credits")
        elif motion[i] < STILL_MOTION and change[i] < STILL_CHANGE:
            verdicts.append("still")
        else:
            verdicts.append("ok")
    for i in range(n):  # a dim frame beside a black one is fading in or out
        beside_black = any(0 <= j < n and verdicts[j] == "black" for j in (i - 1, i + 1))
        if verdicts[i] in ("ok", "still") and mean[i] < FADE_LUMA and beside_black:
            verdicts[i] = "fade"
    _spread_fades(verdicts, [float(m) for m in mean])
    lively = 3 * motion + 0.25 * far.clamp(max=20) + 0.02 * (contrast + colour)  # a cut counts, but not 20 times
    return [SampleScore(time=float(times[i]), luma=float(mean[i]), dark=float(dark[i]), bright=float(bright[i]),
                        contrast=float(contrast[i]), colour=float(colour[i]), motion=float(motion[i]),
                        change=float(change[i]), verdict=verdicts[i], liveliness=float(lively[i]))
            for i in range(n)]


def _spread_fades(verdicts: list[str], mean: list[float]) -> None:
    """Samples close together (key frames a few seconds apart are sampled between them) see a
    fade as several steps of brightness: a sample beside a black or fading one that is still
    clearly darker than its neighbour on the other side (below :data:`FADE_STEP` of it) is
    fading too. Spreads outward from each black sample, in place, until no sample changes."""
    n, changed = len(verdicts), True
    while changed:
        changed = False
        for i in range(n):
            if verdicts[i] not in ("ok", "still"):
                continue
            for near, far in ((i - 1, i + 1), (i + 1, i - 1)):
                if 0 <= near < n and 0 <= far < n and verdicts[near] in ("black", "fade") \
                        and verdicts[far] in ("ok", "still") and mean[i] < FADE_STEP * mean[far]:
                    verdicts[i], changed = "fade", True
                    break


def cells(times: Sequence[float], length: float) -> list[tuple[float, float]]:
    """The stretch of the video each sample stands for: from the midpoint with the one before to
    the midpoint with the one after (the first from 0, the last to ``length``)."""
    bounds = [0.0] + [(a + b) / 2 for a, b in zip(times, times[1:])] + [max(length, times[-1] if times else 0.0)]
    return list(zip(bounds, bounds[1:]))


def liveliest_window(scores: Sequence[SampleScore], length: float, span: float) -> Window | None:
    """The start of the ``span``-second window of a ``length``-second video that overlaps no bad
    sample's cell (:func:`cells`) and has the highest liveliness, weighted by overlap; None when
    no window qualifies. Candidate starts are the good samples' own instants (known good, where a
    cell's edge is only a guess); ties go to the earliest."""
    if not scores or span > length + 1e-6:
        return None
    spans = cells([s.time for s in scores], length)
    best: Window | None = None
    for candidate in scores:
        start = candidate.time
        if candidate.verdict != "ok" or start + span > length + 1e-6:
            continue
        end, weight, total, clean = start + span, 0.0, 0.0, True
        for score, (lo, hi) in zip(scores, spans):
            overlap = min(end, hi) - max(start, lo)
            if overlap <= 1e-9:
                continue
            if score.verdict != "ok":
                clean = False
                break
            weight += overlap
            total += overlap * score.liveliness
        if clean and weight > 0:
            mean = total / weight
            if best is None or mean > best.liveliness + 1e-9:
                best = Window(start=start, liveliness=mean)
    return best


def least_bad_window(scores: Sequence[SampleScore], length: float, span: float) -> Window | None:
    """When no window avoids every bad sample (:func:`liveliest_window` says None): the window
    starting at a good sample with the fewest seconds in bad samples' cells, the liveliest of
    those; None when no sample is good. A 6 s span over a 5 s burst between black stretches then
    starts at the burst, where starting at 0 would show black."""
    if not scores or span > length + 1e-6:
        return None
    spans = cells([s.time for s in scores], length)
    best: Window | None = None
    for candidate in scores:
        if candidate.verdict != "ok":
            continue
        start = min(candidate.time, max(0.0, length - span))
        end, bad, weight, total = start + span, 0.0, 0.0, 0.0
        for score, (lo, hi) in zip(scores, spans):
            overlap = min(end, hi) - max(start, lo)
            if overlap <= 1e-9:
                continue
            if score.verdict != "ok":
                bad += overlap
            else:
                weight += overlap
                total += overlap * score.liveliness
        mean = total / weight if weight > 0 else 0.0
        if best is None or bad < best.bad_seconds - 1e-6 or (
                abs(bad - best.bad_seconds) <= 1e-6 and mean > best.liveliness + 1e-9):
            best = Window(start=start, liveliness=mean, bad_seconds=bad)
    return best
