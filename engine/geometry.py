"""Output picture size: what the user asked for, filled in from the source's display shape, and
checked against the limit. The one place that computes and checks an output size.

The source's display shape is its decoded size corrected for non-square pixels (the sample aspect
ratio) and for rotation metadata, i.e. what a player shows. Width and height both given: that
exact size, except with ``fit`` ``contain``, where it is the largest size inside width x height
with the display aspect ratio (:func:`animated_previews.kernels.fit.contained_size`: the limiting
side is the one asked, the other rounded as with one side alone), and ``cover`` and ``pad`` keep
the aspect ratio inside that exact size (crop, bars: :class:`engine.render.Fitter`). One given:
the other follows the display aspect ratio. None: the display size. The memory estimate and the
size limit both use this size.

Every side of an output is at most :data:`engine.spec.MAX_SIDE`. A side the request fixes is
checked with the request (:mod:`engine.spec`); a derived one (height 20 on a 4000x2 source gives a
width of 40 000) is checked here, as an ``InvalidParameter`` naming the computed size and the limit.
"""

from __future__ import annotations

from fractions import Fraction

from ..kernels.fit import contained_size
from .errors import EngineError, ErrorCode
from .spec import MAX_SIDE, JobSpec


def display_size(width: int, height: int, sample_aspect_ratio: Fraction, quarter_turns: int) -> tuple[int, int]:
    """(width, height) a player shows for coded ``width`` x ``height`` pixels."""
    shown_width = max(1, round(width * sample_aspect_ratio))
    if quarter_turns % 2:
        return height, shown_width
    return shown_width, height


def _fit(spec: JobSpec, display: tuple[int, int]) -> tuple[int, int]:
    shown_w, shown_h = display
    if spec.width and spec.height:
        if spec.fit == "contain":
            return contained_size(shown_w, shown_h, spec.width, spec.height)
        return spec.width, spec.height  # fill, cover, pad: exactly the box
    if spec.width:
        return spec.width, max(1, round(spec.width * shown_h / shown_w))
    if spec.height:
        return max(1, round(spec.height * shown_w / shown_h)), spec.height
    return shown_w, shown_h


def _too_large(spec: JobSpec, size: tuple[int, int], display: tuple[int, int]) -> EngineError:
    asked = (f"width {spec.width}" if spec.width else f"height {spec.height}" if spec.height
             else "no width or height, so the source's size")
    return EngineError(
        ErrorCode.INVALID_PARAMETER,
        f"the output would be {size[0]}x{size[1]} ({asked} on a {display[0]}x{display[1]} display size); each "
        f"side may be at most {MAX_SIDE}: give a smaller width or height, or both")


def output_size(spec: JobSpec, display: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the animated image for ``spec`` given the source's display size; raises
    EngineError(InvalidParameter) when a side would pass :data:`MAX_SIDE`."""
    size = _fit(spec, display)
    if max(size) > MAX_SIDE:
        raise _too_large(spec, size, display)
    return size


def largest_output_size(spec: JobSpec, width: int, height: int, sample_aspect_ratio: Fraction) -> tuple[int, int]:
    """The output size to budget for before decoding, when the rotation is not known yet (it is
    read from the first decoded frame): the larger of the two orientations' sizes that are within
    the limit. Raises EngineError(InvalidParameter) when neither is (the job cannot succeed,
    whichever way up the video is); one orientation over the limit is refused by
    :func:`output_size` at the first frame, if the video turns out to be that way up."""
    displays = [display_size(width, height, sample_aspect_ratio, turns) for turns in (0, 1)]
    sizes = [_fit(spec, display) for display in displays]
    fitting = [size for size in sizes if max(size) <= MAX_SIDE]
    if not fitting:
        raise _too_large(spec, sizes[0], displays[0])
    return max(fitting, key=lambda size: size[0] * size[1])
