"""Fitting frames into a width x height box: stretch, fit inside, crop to fill, or pad with bars.

Four modes, on uint8 frames [N, 3, h, w] (float frames too: HDR values before their tone map):

* ``fill``: resize to exactly ``width`` x ``height``, stretched when the aspect ratios differ;
* ``contain``: resize to the largest size inside the box with the frames' display aspect ratio
  (:func:`contained_size`): one side is the box's, the other smaller;
* ``cover``: crop the middle of the frames to the box's aspect ratio (:func:`cover_crop`), then
  resize the crop to exactly ``width`` x ``height``: the overflow is cut off, evenly on both sides;
* ``pad``: resize to the ``contain`` size, then centre that on a ``width`` x ``height`` canvas of
  ``pad_colour`` (:func:`pad_placement`): bars on two sides.

``display`` is the (width, height) the frames stand for, when their pixels are not square (a
decoder's frames before the sample aspect ratio is applied: 720x576 shown as 768x576); aspect
ratios are always those of ``display``, and a crop is computed in display units, then mapped back
to the frames' pixels. Default: the frames' own size (square pixels).

Rounding (no even-dimension rule: GIF and WebP take any size, odd ones included):

* ``contain``: the limiting side is the box's; the other is ``round(box side x aspect)``, Python's
  ``round`` (a half goes to the even neighbour), at least 1 and at most the box's. Where the
  source is exactly as wide as the box (in aspect) both sides are the box's. This is the same
  rule as one side given alone (:mod:`engine.geometry`), so ``contain`` into W x H is the
  one-side size on whichever side limits.
* ``cover``: the crop keeps the whole of one side and ``round(...)`` pixels of the other, at
  least 1, at most all of it; it starts at ``(extra) // 2``, so an odd leftover pixel is cut on
  the right or the bottom.
* ``pad``: the picture (the ``contain`` size) starts ``(box - picture) // 2`` from the left and
  the top, so an odd leftover pixel makes the right or bottom bar one pixel wider.

Pure tensor ops on the frames' device; no value is read back to the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .resize import resize

__all__ = ["FIT_MODES", "contained_size", "cover_crop", "fill_outside", "fit", "pad", "pad_placement"]

FIT_MODES = ("fill", "contain", "cover", "pad")


def contained_size(display_width: int, display_height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """(width, height) of the largest picture with the aspect ratio ``display_width`` :
    ``display_height`` inside ``box_width`` x ``box_height`` (rounding: see the module)."""
    if min(display_width, display_height, box_width, box_height) < 1:
        raise ValueError(f"sizes must be positive, got display {display_width}x{display_height}, "
                         f"box {box_width}x{box_height}")
    if box_width * display_height <= box_height * display_width:  # as wide as the box or wider: width limits
        return box_width, min(box_height, max(1, round(box_width * display_height / display_width)))
    return min(box_width, max(1, round(box_height * display_width / display_height))), box_height


def cover_crop(frame_width: int, frame_height: int, box_width: int, box_height: int,
               display: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """(left, top, width, height), in the frames' pixels, of the middle part of a
    ``frame_width`` x ``frame_height`` frame (shown at ``display``) with the box's aspect ratio."""
    display_width, display_height = display or (frame_width, frame_height)
    if display_width * box_height > box_width * display_height:  # wider than the box: keep the height
        # shown width kept: display_height * box_width / box_height, in frame pixels x frame_width / display_width
        width = round(frame_width * display_height * box_width / (display_width * box_height))
        width = min(frame_width, max(1, width))
        return (frame_width - width) // 2, 0, width, frame_height
    height = round(frame_height * display_width * box_height / (display_height * box_width))
    height = min(frame_height, max(1, height))
    return 0, (frame_height - height) // 2, frame_width, height


def pad_placement(display_width: int, display_height: int, box_width: int,
                  box_height: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the picture on a ``box_width`` x ``box_height`` canvas in
    ``pad`` mode: the :func:`contained_size`, centred (rounding: see the module)."""
    width, height = contained_size(display_width, display_height, box_width, box_height)
    return (box_width - width) // 2, (box_height - height) // 2, width, height


def _colour_value(frames: Tensor, value: int) -> float | int:
    """A 0-255 colour component in the frames' scale: as is for uint8, /255 for float frames."""
    return value / 255 if frames.is_floating_point() else value


def _check_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    colour = tuple(colour)
    if len(colour) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in colour):
        raise ValueError(f"pad_colour must be three integers 0-255 (R, G, B), got {colour!r}")
    return colour  # type: ignore[return-value]


def fill_outside(frames: Tensor, left: int, top: int, width: int, height: int,
                 colour: tuple[int, int, int]) -> Tensor:
    """Paint everything outside the rectangle (``left``, ``top``, ``width``, ``height``) of
    ``frames`` [N, 3, H, W] with ``colour`` (0-255 R, G, B; /255 for float frames), in place;
    returns ``frames``. Used to draw bars, and to draw them again after a step (a tone map) that
    changed their colour."""
    colour = _check_colour(colour)
    full_height, full_width = frames.shape[-2:]
    bottom, right = top + height, left + width
    for channel, value in enumerate(colour):
        value = _colour_value(frames, value)
        plane = frames[:, channel]
        plane[:, :top, :].fill_(value)
        plane[:, bottom:, :].fill_(value)
        plane[:, top:bottom, :left].fill_(value)
        plane[:, top:bottom, right:].fill_(value)
    return frames


def pad(frames: Tensor, height: int, width: int, left: int, top: int, colour: tuple[int, int, int]) -> Tensor:
    """``frames`` [N, 3, h, w] placed at (``left``, ``top``) on a new ``height`` x ``width``
    canvas of ``colour``, in the frames' memory format (channels-last stays channels-last)."""
    colour = _check_colour(colour)
    n, channels, inner_height, inner_width = frames.shape
    if left < 0 or top < 0 or left + inner_width > width or top + inner_height > height:
        raise ValueError(f"a {inner_width}x{inner_height} picture at ({left}, {top}) does not fit on {width}x{height}")
    layout = torch.channels_last if frames.is_contiguous(memory_format=torch.channels_last) and not \
        frames.is_contiguous() else torch.contiguous_format
    canvas = torch.empty((n, channels, height, width), dtype=frames.dtype, device=frames.device, memory_format=layout)
    fill_outside(canvas, left, top, inner_width, inner_height, colour)
    canvas[:, :, top:top + inner_height, left:left + inner_width] = frames
    return canvas


def fit(frames: Tensor, height: int, width: int, mode: str = "fill", *, pad_colour: tuple[int, int, int] = (0, 0, 0),
        display: tuple[int, int] | None = None) -> Tensor:
    """``frames`` [N, 3, h, w] (uint8, or float HDR values) fitted into ``width`` x ``height`` by
    ``mode`` (see the module): exactly that size for ``fill``, ``cover`` and ``pad``, the
    :func:`contained_size` for ``contain``. ``pad_colour`` is R, G, B 0-255 (``pad`` only);
    ``display`` the (width, height) the frames are shown at, when their pixels are not square.

    ``cover`` crops before resizing (fewer pixels to resize) and ``pad`` resizes before padding.
    The result never shares memory with a cropped input (a crop that needs no resize is copied),
    so holding it does not hold the whole source frames."""
    if mode not in FIT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FIT_MODES)}, got {mode!r}")
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [N, 3, H, W], got {tuple(frames.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    frame_height, frame_width = frames.shape[-2:]
    display_width, display_height = display or (frame_width, frame_height)
    if mode == "fill":
        return resize(frames, height, width)
    if mode == "contain":
        inner_width, inner_height = contained_size(display_width, display_height, width, height)
        return resize(frames, inner_height, inner_width)
    if mode == "cover":
        left, top, crop_width, crop_height = cover_crop(frame_width, frame_height, width, height,
                                                        (display_width, display_height))
        cropped = frames[:, :, top:top + crop_height, left:left + crop_width]
        out = resize(cropped, height, width)
        if out is cropped and (crop_width, crop_height) != (frame_width, frame_height):
            out = cropped.clone()
        return out
    left, top, inner_width, inner_height = pad_placement(display_width, display_height, width, height)
    return pad(resize(frames, inner_height, inner_width), height, width, left, top, pad_colour)
