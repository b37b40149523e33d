"""``max_bytes``: the smallest loss that brings an image under a byte budget, found by measuring.

Nobody can say in advance how many bytes a clip takes at a setting (grain costs ten times what a
flat logo does), so the budget is met by encoding again: the job's decoded frames are kept and
re-rendered, never decoded again. What is given up comes in a fixed order, least visible first,
as a ladder of :class:`Rung` s (:func:`ladder`): for GIF how long a pixel keeps its colour and
the palette's colours (:data:`GIF_LOSSES`), for WebP and AVIF the encoder's quality
(:attr:`engine.encode.Format.qualities`); then the frame rate (every
2nd, then every 3rd instant, each frame shown as long as the ones it stands for, so the
animation keeps its length); then the size (3/4, 1/2, 1/3 of each side).

Bytes shrink down the ladder (not strictly: a smaller palette can dither into more bytes), so
the search is a binary search between the job's own encode (too big) and the ladder's last rung,
tried first: a budget even that rung misses fails at once with
``ErrorCode.MAX_BYTES_UNREACHABLE``, naming the smallest size reached. When the rung found drops
frames or size, its losses (colours and hold, or quality) are searched back up at that frame
rate and size (a second, short binary search: the search is two-dimensional where it pays); when
it keeps them, a GIF's hold slack or an encoder's quality is searched back (:func:`_settle`), and fewer colours
alone are tried too, keeping whichever of the two shows less error against the clip's frames
(:func:`_fewer_colours`). A GIF then tries one more way: its frames with the noise averaged out
over time (:mod:`animated_previews.kernels.denoise`) at a hold slack that fits
(:func:`_denoised`), kept when it shows less error or keeps frames the ladder had to drop. A
WebP likewise tries libwebp's other methods at the highest quality that fits
(:func:`_more_effort`), the decoded images compared. At most :data:`MAX_ENCODES` +
:data:`REGAIN_ENCODES` + :data:`COLOUR_ENCODES` + :data:`COLOUR_SETTLE` + :data:`DENOISE_ENCODES` +
:data:`DENOISE_SETTLE` encodes besides the first for a GIF, :data:`MAX_ENCODES` + :data:`REGAIN_ENCODES` +
(:data:`EFFORT_ENCODES` + :data:`EFFORT_SETTLE`) for each other effort of a WebP, whatever the ladder; only a setting that was encoded and
measured under the budget is ever chosen, so the result is never over it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..kernels.denoise import temporal_denoise
from ..kernels.hold import DEFAULT_HOLD_SLACK
from ..kernels.resize import resize
from .decode import DecodedClip
from .encode import Format, Frames, Setting
from .errors import EngineError, ErrorCode

GIF_LOSSES = ((255, 0.6), (128, 0.6), (255, 1.0), (128, 1.0), (64, 1.0), (64, 1.6), (32, 1.6), (16, 1.6))
"""What a GIF gives up before frames, in order: (palette colours, hold slack) pairs. The slack
(:func:`animated_previews.kernels.hold.hold_indices`, 0.35 by default) is how much worse a
pixel's previous colour may be and still stay on screen; a kept pixel is written as transparent
and costs next to nothing, so raising it takes the bytes of noise, grain and dither flicker,
where fewer colours take the bytes of flat graphics and text. Neither alone is best everywhere.
Measured on 15 jobs of the previews library (`bench/make_library.py`; each setting rendered,
encoded and scored as `bench.quality_library` scores, 2026-12-04), dB at bytes relative to the
job's own image: the talking head at its own size keeps 41.7 dB at 0.47x through the slack
(1.0), 41.1 dB at 0.63x through colours (64, the ladder's second step when it had colours
only); low light 35.4 dB at 0.34x with both (128, 1.0) against 35.8 at 0.54x with 64 colours;
screen text loses 0.7 dB at 0.93x through colours (128) but 3.0 dB at 0.89x through the slack
(0.6). In this order the bytes fall at every step on 10 of the 14 jobs measured at every step;
on the other 4 (animation, pixel art, flat logo) 255 colours at 1.0 is 0.03-0.06x of the bytes
larger than 128 at 0.6, one step back."""
FPS_DIVISORS = (2, 3)
"""Every n-th output instant kept, after the losses (colours and hold, or quality) are spent."""
SCALES = (0.75, 0.5, 1 / 3)
"""Fractions of each side, last of all."""
MAX_ENCODES = 6
"""Encodes the ladder's search may add to the job's own: the floor, then a binary search over the
ladder's rungs (GIF has 13: at most 4)."""
REGAIN_ENCODES = 4
"""Encodes that may then win colours, hold or quality back at the chosen frame rate and size:
four resolve a GIF's 8 levels (its own setting and the losses before the floor). With three, a
resized pixel-art GIF under a twentieth of its bytes stayed at 16 colours where 32 fitted
(every 3rd frame at half size: 18.2 dB at 146 KB of 257 KB; with four, 19.8 dB at 219 KB)."""
COLOURS_ALONE = (128, 64, 32)
"""Palette sizes a GIF at every frame may also try at its own hold slack (:func:`_fewer_colours`)."""
COLOUR_ENCODES = 2
"""Encodes that search :data:`COLOURS_ALONE`: 64 first, then 128 or 32."""
COLOUR_SETTLE = 2
"""Encodes that then search the palette sizes between the one found and the one before it. The
library's GIF jobs under gifski's bytes (the run at b82234d, each again with the search): a
greyscale film 32 -> 40 colours, 42.17 -> 44.59 dB (gifski 42.81); film grain 64 -> 56 colours
at full hold, 44.00 -> 45.43 dB at its own size, 42.38 -> 42.75 resized; screen text 50.00 dB
with 112 (48.72 with 64); fast motion +0.13 and +0.38; the other 7 budgeted jobs the same image."""
DENOISED_HOLDS = (0.1, 0.2, 0.35, 0.6, 1.0, 1.6)
"""Hold slacks a GIF's denoised frames are tried at (:func:`_denoised`), most kept first. Averaged
frames hold most pixels at any slack, so the route starts below the format's own 0.35: the
talking head at its own size, denoised, is 1.22 MB at 42.37 dB at 0.2 and 0.97 MB at 42.24 at
0.35 (its plain GIF at 1.35 MB: 41.73 dB)."""
DENOISE_ENCODES = 3
"""Encodes that search :data:`DENOISED_HOLDS` (three resolve its six)."""
DENOISE_SETTLE = 2
"""Encodes that then search the slack between the one found and the one before it: 2 s of the
previews library's talking head at 480x270 under 200 KB fitted at 1.0 (156 KB) where 0.6 did
not; with the search, 0.7 (190 KB)."""
EFFORT_QUALITIES = (90, 75, 60, 45, 35, 27, 20, 12, 5)
"""Qualities a format's other encoder efforts (WebP: libwebp's methods 2 and 4) are each tried at
(:func:`_more_effort`), most first. Its quality numbers do not mean the same picture as the
default effort's: at quality 45, method 4 coded screen text in 1.30 MB at 37.93 dB where
method 1 took 1.66 MB for 38.11, but the talking head in 134 KB at 36.17 dB where method 1
took 205 KB for 37.82 and 194 KB at quality 40 for 37.36 (method 4 at 70: 174 KB, 36.69; the
previews library at source size, 2026-12-04). So both ways are searched and what is seen
decides: at ffmpeg's WebP bytes, screen text took method 4 at quality 75 (40.68 dB, where
method 1 had to go down to 34: 36.93), the talking head method 1 at 40."""
EFFORT_ENCODES = 4
"""Encodes that search :data:`EFFORT_QUALITIES` (four resolve its nine)."""
EFFORT_SETTLE = 2
"""Encodes that then search the whole-number qualities between the one found and the one above."""

MIN_MAX_BYTES = 1024
"""The smallest budget a job may ask for: below it not even a one-frame GIF header fits."""


@dataclass(frozen=True)
class Rung:
    """One setting of the ladder: what is kept of the job's own image."""

    colours: int | None = None
    """GIF palette size (None: the format's own)."""
    hold: float | None = None
    """GIF hold slack (None: the format's own, :attr:`engine.encode.Format.hold_slack`)."""
    quality: int | None = None
    """Encoder quality (None: the job's own, :meth:`engine.encode.Format.setting_for`)."""
    effort: int | None = None
    """Encoder effort (None: the job's own; :attr:`engine.encode.Format.efforts`)."""
    every: int = 1
    """Keep every n-th output instant."""
    scale: float = 1.0
    """Fraction of each side kept."""
    denoised: bool = False
    """Rendered from the frames with their noise averaged out over time
    (:func:`animated_previews.kernels.denoise.temporal_denoise`)."""

    def describe(self, fmt: Format, own: Setting | None = None) -> str:
        """What was given up, each loss with what the job's own image had (``own``, the job's
        setting; None: the format's :attr:`~engine.encode.Format.default_setting`). A quality or
        effort equal to the job's own is no loss and is not named."""
        own = own or fmt.default_setting
        parts = ["noise averaged out over frames"] if self.denoised else []
        if self.effort is not None and self.effort != own.effort:
            parts.append(f"speed (encoder effort {self.effort}, from {own.effort})")
        if self.hold is not None:
            parts.append(f"hold slack {self.hold:g} (from {_own_slack(fmt):g})")
        if self.colours is not None:
            parts.append(f"{self.colours} colours (from {fmt.palette_colours})")
        if self.quality is not None and self.quality != own.quality:
            parts.append(f"quality {self.quality} (from {own.quality})")
        if self.every > 1:
            parts.append(f"every {'2nd' if self.every == 2 else f'{self.every}rd'} frame")
        if self.scale != 1.0:
            parts.append(f"{self.scale:.2g} of the size")
        return ", ".join(parts) or "nothing"


def losses(fmt: Format) -> list[Rung]:
    """What the format gives up before frames, least first, at every frame and full size: its
    encoder's qualities below the default, or a palette format's :data:`GIF_LOSSES`."""
    if fmt.qualities:
        return [Rung(quality=q) for q in fmt.qualities[1:]]
    if fmt.palette_colours is not None:
        return [Rung(colours=c if c < fmt.palette_colours else None, hold=h) for c, h in GIF_LOSSES]
    return []


def ladder(fmt: Format) -> list[Rung]:
    """The rungs below the job's own setting, least given up first (module docstring)."""
    first = losses(fmt)
    floor = {"quality": first[-1].quality, "colours": first[-1].colours, "hold": first[-1].hold} if first else {}
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
    error: float | None = None
    """The image's :func:`engine.render.shown_error` where it was measured (a GIF setting at
    every frame and full size that fitted), else None."""

    def note(self, fmt: Format, max_bytes: int, first_size: int, own: Setting | None = None) -> str | None:
        """The result's note on what the budget gave up (None when nothing was); ``own``: see
        :meth:`Rung.describe`."""
        if self.rung is None:
            return None
        return (f"max_bytes {max_bytes}: {first_size} bytes as asked; gave up {self.rung.describe(fmt, own)} "
                f"-> {len(self.data)} bytes ({self.encodes} encodes)")


def fewer_instants(index: torch.Tensor, delays: Sequence[int], every: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Every ``every``-th instant of ``index``, each shown as long as the instants it stands for."""
    if every <= 1:
        return index, tuple(delays)
    kept = index[::every]
    merged = tuple(int(sum(delays[k:k + every])) for k in range(0, len(delays), every))
    return kept, merged


def fit_budget(fmt: Format, clip: DecodedClip, delays: Sequence[int], max_bytes: int,
               render: Callable[[Format, DecodedClip], Frames], first: bytes,
               error: Callable[[Frames, DecodedClip], float] | None = None,
               image_error: Callable[[bytes, DecodedClip, Sequence[float]], float] | None = None,
               own: Setting | None = None) -> Fitted:
    """The job's image under ``max_bytes``: ``first`` (the job's own encode) if it fits, else the
    least-loss rung that does (module docstring). ``render`` is :func:`engine.render.render`;
    ``error`` (:func:`engine.render.shown_error`), for a format with a palette, lets a GIF that
    kept every frame choose between holding colours longer, fewer colours and denoised frames by
    what is seen (:func:`_fewer_colours`, :func:`_denoised`); it is always measured against
    ``clip``'s own frames. ``image_error`` (:func:`engine.render.decoded_error`: an encoded
    image decoded, against the clip at each instant, the delays in milliseconds) lets a format
    with other encoder efforts choose between them and the job's own (:func:`_more_effort`).
    ``own``: the job's setting (:meth:`engine.encode.Format.setting_for`; None: the format's
    default), which ``first`` was encoded at: every rung keeps what it does not give up of it (a
    WebP's libwebp method stays the job's on every step of the ladder, even where dropped frames
    or a smaller size would have chosen another), the search back up from the ladder's first
    quality runs towards its quality (:func:`_settle`), and the other efforts tried are those
    other than its own."""
    delays = tuple(delays)
    own = own or fmt.default_setting
    as_asked = Fitted(first, None, delays, len(clip.index), clip.width, clip.height, 1)
    if len(first) <= max_bytes:
        return as_asked
    rungs = ladder(fmt)
    encodes = 1
    tried: dict[int, Fitted] = {}
    measure = error is not None and fmt.palette_colours is not None
    smoothed: list[DecodedClip] = []  # the denoised clip, made once when a rung first asks

    def source(rung: Rung) -> DecodedClip:
        if not rung.denoised:
            return clip
        if not smoothed:
            smoothed.append(dataclasses.replace(clip, frames=temporal_denoise(clip.frames)))
        return smoothed[0]

    def attempt_rung(rung: Rung) -> Fitted:
        nonlocal encodes
        shaped, rung_delays = _shape(source(rung), delays, rung)
        frames = render(_rendered_as(fmt, rung), shaped)
        setting = Setting(rung.quality if rung.quality is not None else own.quality,
                          rung.effort if rung.effort is not None else own.effort)
        data = fmt.encode(frames, rung_delays, **setting.options())
        encodes += 1
        measured = (error(frames, clip) if measure and len(data) <= max_bytes and rung.every == 1
                    and rung.scale == 1.0 else None)
        return Fitted(data, rung, rung_delays, len(shaped.index), shaped.width, shaped.height, encodes, measured)

    def attempt(at: int) -> Fitted:
        tried[at] = attempt_rung(rungs[at])
        return tried[at]

    floor = attempt(len(rungs) - 1)
    if len(floor.data) > max_bytes:
        raise EngineError(ErrorCode.MAX_BYTES_UNREACHABLE, (
            f"max_bytes {max_bytes} cannot be met: the smallest image reached is {len(floor.data)} bytes "
            f"({floor.rung.describe(fmt, own) if floor.rung else ''}, {floor.width}x{floor.height}, {floor.frames} frames; "
            f"the image as asked: {len(first)} bytes); raise max_bytes, or shorten the duration or lower the size"))
    low, high = -1, len(rungs) - 1  # rungs[high] fits; everything at or before low did not (or the own encode)
    while high - low > 1 and encodes - 1 < MAX_ENCODES:
        middle = (low + high) // 2
        if len(attempt(middle).data) <= max_bytes:
            high = middle
        else:
            low = middle
    chosen = _regain(tried[high], fmt, max_bytes, attempt_rung, own)
    if measure:
        chosen = _less_error(chosen, _fewer_colours(chosen, fmt, max_bytes, attempt_rung))
        chosen = _less_error(chosen, _denoised(fmt, clip, max_bytes, attempt_rung))
    if image_error is not None and fmt.qualities:
        milliseconds = [d * 1000 / fmt.ticks_per_second for d in delays]
        for effort in (effort for effort in fmt.efforts if effort != own.effort):
            other = _more_effort(effort, max_bytes, attempt_rung)
            if other is None:
                continue
            # decoded only now: one measure per way, not one per attempt
            other = dataclasses.replace(other, error=image_error(other.data, clip, milliseconds))
            if chosen.error is None and chosen.frames == len(clip.index) and chosen.width == clip.width \
                    and chosen.height == clip.height:
                chosen = dataclasses.replace(chosen, error=image_error(chosen.data, clip, milliseconds))
            chosen = _less_error(chosen, other)
    return dataclasses.replace(chosen, encodes=encodes)


def _less_error(chosen: Fitted, other: Fitted | None) -> Fitted:
    """``other`` (a second way to the size, at every frame and full size, its error measured)
    when it shows less error than ``chosen``, or when ``chosen`` was not measured because it
    dropped frames or size; else ``chosen``."""
    if other is None or other.error is None:
        return chosen
    return other if chosen.error is None or other.error < chosen.error else chosen


def _regain(chosen: Fitted, fmt: Format, max_bytes: int, attempt: Callable[[Rung], Fitted], own: Setting) -> Fitted:
    """Once frames or size had to go, the losses need not stay at the floor: at the
    chosen frame rate and size, binary-search them back up (at most :data:`REGAIN_ENCODES`
    encodes), keeping the best that was measured under the budget. Without it a budget just
    below one rung's size drops to the next rung's floor quality and leaves a third of the
    budget unused."""
    rung = chosen.rung
    if rung is None:
        return chosen
    if rung.every == 1 and rung.scale == 1.0:
        return _settle(chosen, fmt, max_bytes, attempt, own)
    steps = losses(fmt)
    if not steps:
        return chosen
    levels = [dataclasses.replace(rung, quality=level.quality, colours=level.colours, hold=level.hold)
              for level in [Rung(), *steps[:-1]]]
    # the floor (past the end of the levels) fits
    return _first_that_fits(levels, attempt, max_bytes, REGAIN_ENCODES, chosen) or chosen


def _first_that_fits(levels: list[Rung], attempt: Callable[[Rung], Fitted], max_bytes: int, encodes: int,
                     otherwise: Fitted | None) -> Fitted | None:
    """Binary search of ``levels`` (most kept first, bytes falling) for the first that fits, in at
    most ``encodes`` encodes: the first measured under ``max_bytes``, or ``otherwise`` when none
    of those tried fits (what stands past the end of ``levels``)."""
    low, high, best = -1, len(levels), otherwise  # levels[low] and before did not fit
    for _ in range(encodes):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        found = attempt(levels[middle])
        if len(found.data) <= max_bytes:
            high, best = middle, found
        else:
            low = middle
    return best


def _settle(chosen: Fitted, fmt: Format, max_bytes: int, attempt: Callable[[Rung], Fitted], own: Setting) -> Fitted:
    """A rung found at every frame and full size may give up more than it needs: its setting is
    continuous where the ladder has steps, and the ladder's steps can be half the bytes apart
    (film grain as GIF: 0.74x -> 0.32x of its own image from 64 to 32 colours). So between the
    rung's setting (fits) and the one before it (did not, or was not tried) binary-search the
    least loss that fits (at most :data:`REGAIN_ENCODES` encodes): a GIF's hold slack down
    towards the format's own at the rung's colours, an encoder's quality up towards the quality
    before it (whole numbers; before the ladder's first step, the job's ``own`` quality, which
    the frames may have chosen above the format's default). Without it a budget just under one step drops to the next and leaves that much of
    the budget unused."""
    rung = chosen.rung
    if rung is None:
        return chosen
    if rung.hold is not None:
        return _bisect(chosen, rung.hold, _own_slack(fmt), lambda h: round(h, 3),
                       lambda h: dataclasses.replace(rung, hold=h), attempt, max_bytes)
    if rung.quality is not None and rung.quality in fmt.qualities[1:]:
        step = fmt.qualities.index(rung.quality)
        before = own.quality if step == 1 and own.quality is not None else fmt.qualities[step - 1]
        return _bisect(chosen, rung.quality, before, round, lambda q: dataclasses.replace(rung, quality=q),
                       attempt, max_bytes)
    return chosen


def _bisect(chosen: Fitted, fits: float, misses: float, snap: Callable[[float], float],
            rung_at: Callable[[float], Rung], attempt: Callable[[Rung], Fitted], max_bytes: int,
            encodes: int = REGAIN_ENCODES) -> Fitted:
    """``chosen`` (at setting ``fits``) or the attempt nearest ``misses`` that fits, halving the
    interval between them ``encodes`` times, or until ``snap`` (the setting's rounding) gives
    nothing strictly inside."""
    best = chosen
    for _ in range(encodes):
        middle = snap((fits + misses) / 2)
        if not min(fits, misses) < middle < max(fits, misses):
            break
        found = attempt(rung_at(middle))
        if len(found.data) <= max_bytes:
            fits, best = middle, found
        else:
            misses = middle
    return best


def _fewer_colours(chosen: Fitted, fmt: Format, max_bytes: int, attempt: Callable[[Rung], Fitted]) -> Fitted | None:
    """The other way to a GIF's size at every frame: only fewer colours, at the format's own
    hold slack. Where the ladder's rung held colours longer, the most colours of
    :data:`COLOURS_ALONE` that fit (a binary search of at most :data:`COLOUR_ENCODES` encodes),
    then the most between it and the step above (:data:`COLOUR_SETTLE` halvings; above 128, the
    format's own palette size, which missed: fast-moving gradients under gifski's 2.12 MB took
    128 colours and 1.79 MB before, 160 and 2.03 MB since), or None when none of those tried
    fits. Text and flat graphics lose less to fewer colours than to held ones (screen text at
    gifski's bytes: 48.7 dB with 64 colours, 47.9 with the slack at 0.54; 50.0 with 112, found
    between the steps); the caller keeps whichever shows less error."""
    rung = chosen.rung
    if rung is None or rung.hold is None or rung.every != 1 or rung.scale != 1.0:
        return None
    if fmt.palette_colours is None:
        return None
    values = [c for c in COLOURS_ALONE if c < fmt.palette_colours]
    return _fit_then_settle(values, lambda c: Rung(colours=int(c)), round, attempt, max_bytes, COLOUR_ENCODES,
                            COLOUR_SETTLE, missed=fmt.palette_colours)


def _denoised(fmt: Format, clip: DecodedClip, max_bytes: int, attempt: Callable[[Rung], Fitted]) -> Fitted | None:
    """A GIF's other way to its size: every frame at full size, rendered from the frames with
    their noise averaged out over time, at the least hold slack of :data:`DENOISED_HOLDS` that
    fits (a binary search of at most :data:`DENOISE_ENCODES` encodes), or None when none of those
    tried fits or the clip has one frame. Noise on a still scene is most of a GIF's bytes, and
    a held colour from averaged frames is nearer every frame than one frame's own: the talking
    head at its own size under gifski's 1.39 MB, 41.73 dB through the hold slack alone (1.0),
    about 42.4 dB so (:mod:`animated_previews.kernels.denoise`). Where the noise is the picture
    (film grain) it shows more error than the ladder's way, and the caller keeps that."""
    if clip.frames.shape[0] < 2:
        return None
    own = _own_slack(fmt)
    return _fit_then_settle(DENOISED_HOLDS, lambda h: Rung(denoised=True, hold=None if h == own else h),
                            lambda h: round(h, 3), attempt, max_bytes, DENOISE_ENCODES, DENOISE_SETTLE)


def _more_effort(effort: int, max_bytes: int, attempt: Callable[[Rung], Fitted]) -> Fitted | None:
    """A format's other way to its size at every frame and full size: one of its encoder efforts
    other than the job's own (:attr:`engine.encode.Format.efforts`) at the highest of
    :data:`EFFORT_QUALITIES` that fits (at most :data:`EFFORT_ENCODES` encodes), then the
    highest whole-number quality below the next one up that fits (:data:`EFFORT_SETTLE`
    encodes); None when none tried fits. The caller compares what each way shows."""
    return _fit_then_settle(EFFORT_QUALITIES, lambda q: Rung(quality=int(q), effort=effort),
                            round, attempt, max_bytes, EFFORT_ENCODES, EFFORT_SETTLE)


def _fit_then_settle(values: Sequence[float], rung_at: Callable[[float], Rung], snap: Callable[[float], float],
                     attempt: Callable[[Rung], Fitted], max_bytes: int, encodes: int, settle: int,
                     missed: float | None = None) -> Fitted | None:
    """The first of ``values`` (most kept first) whose rung fits, a binary search of at most
    ``encodes`` encodes, then the setting between it and the value before it (which missed, or
    was not tried) in at most ``settle`` halvings (:func:`_bisect`); None when none tried fits.
    ``missed``: a setting before ``values[0]`` known not to fit (the format's own), searched
    towards when the first value fits."""
    levels = [rung_at(value) for value in values]
    found = _first_that_fits(levels, attempt, max_bytes, encodes, None)
    if found is None:
        return None
    place = levels.index(found.rung)
    above = values[place - 1] if place else missed
    if above is None:
        return found
    return _bisect(found, values[place], above, snap, rung_at, attempt, max_bytes, encodes=settle)


def _own_slack(fmt: Format) -> float:
    """The hold slack ``fmt`` renders with when no rung changes it."""
    return DEFAULT_HOLD_SLACK if fmt.hold_slack is None else fmt.hold_slack


def _rendered_as(fmt: Format, rung: Rung) -> Format:
    """``fmt`` with the rung's palette colours and hold slack, for :func:`engine.render.render`."""
    changes: dict = {}
    if rung.colours is not None:
        changes["palette_colours"] = rung.colours
    if rung.hold is not None:
        changes["hold_slack"] = rung.hold
    return dataclasses.replace(fmt, **changes) if changes else fmt


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
