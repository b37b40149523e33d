"""Output picture size: what the user asked for, filled in from the source's display shape.

The source's display shape is its decoded size corrected for non-square pixels (the sample aspect
ratio) and for rotation metadata, i.e. what a player shows. Width and height both given: that
exact size. One given: the other follows the display aspect ratio. None: the display size.
"""

from __future__ import annotations

from fractions import Fraction

from .spec import JobSpec


def display_size(width: int, height: int, sample_aspect_ratio: Fraction, quarter_turns: int) -> tuple[int, int]:
    """(width, height) a player shows for coded ``width`` x ``height`` pixels."""
    shown_width = max(1, round(width * sample_aspect_ratio))
    if quarter_turns % 2:
        return height, shown_width
    return shown_width, height


def output_size(spec: JobSpec, display: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the animated image for ``spec`` given the source's display size."""
    shown_w, shown_h = display
    if spec.width and spec.height:
        return spec.width, spec.height
    if spec.width:
        return spec.width, max(1, round(spec.width * shown_h / shown_w))
    if spec.height:
        return max(1, round(spec.height * shown_w / shown_h)), spec.height
    return shown_w, shown_h
