"""From decoded frames to what the format's encoder takes: shrink, palette, remap, copy to the host.

The stages after decoding that run as tensor kernels on the decoder's device (CPU tensors, or the
CUDA tensors NVDEC filled):

* :class:`Fitter` is the decode's ``fit`` (:data:`engine.decode.Fit`): decoders hand it every
  chunk of upright frames as they convert them, and it shrinks each to the output size, so a job
  holds one chunk at source size however long the clip. The output size is chosen here, once,
  from the first chunk's upright shape (rotation is only known once a frame is decoded), and the
  seconds spent are the job's "kernels" time, not decoding's. With ``fit`` ``cover`` or ``pad``
  it crops or pads as it shrinks (:func:`animated_previews.kernels.fit.fit`, in the display
  shape: rotation and non-square pixels first); ``contain`` is a plain resize to the size
  :mod:`engine.geometry` chose.
  16-bit HDR chunks (uint16 codes, before their tone map) become floats in [0, 1] only when
  they are shrunk, cropped or padded; at the source size they pass through as they are.
* :func:`render` turns the clip (already at the output size) into the encoder's input: palette-
  indexed frames for a format with a palette (:attr:`engine.encode.Format.palette_colours`), RGB
  frames otherwise, copied to host memory (pinned, one DMA copy, from a GPU).

Why a callback rather than the decoder returning chunks: the decoder decides when a chunk is full
(count and bytes) and keeps its own bookkeeping of which frame is shown at which instant across
chunks; giving it one function to call keeps both backends' loops as they are.
"""

from __future__ import annotations

import bisect
import io
import time
from typing import Sequence

import numpy as np
import torch

from ..kernels.fit import cover_crop, fill_outside, fit, pad, pad_placement
from ..kernels.flicker import flicker_share
from ..kernels.histogram import colour_histogram
from ..kernels.hold import DEFAULT_HOLD_SLACK, KEEP, hold_indices
from ..kernels.nearest import blocks_in_histogram
from ..kernels.palette import palettes_from_histograms
from ..kernels.remap import remap
from ..kernels.resize import resize
from ..kernels.scenes import palette_runs
from ..kernels.yuv import yuv_to_rgb
from .decode import DecodedClip, YUVPlanes
from .encode import Format, Frames, IndexedFrames, RGBFrames
from .geometry import display_size, output_size
from .probe import MediaInfo
from .spec import JobSpec

PALETTE_SAMPLE_STRIDE = 2
"""The palette histogram reads every 2nd pixel of every 2nd row, starting one frame in four at
each of the four phases (:func:`kernels.histogram.colour_histogram`): half the median-cut time
for the same PSNR on the benchmark clip (36.56 dB either way), and on a test pattern whose thin
lines and text sit on odd rows the turning phase is worth 4 dB over a fixed one (every pixel of
a still picture is counted once over four frames)."""

HISTOGRAM_BITS = 5
"""Bins per channel of the palette histograms (32^3): also where remap looks for the clip's
colours first (:func:`kernels.nearest.blocks_in_histogram`)."""
FINE_HISTOGRAM_BITS = 6
"""Bins per channel (64^3) for a clip of few exact colours (:func:`_histograms`)."""
FINE_MAX_FLICKER = 0.08
"""Most :func:`kernels.flicker.flicker_share` a clip may have for :data:`FINE_HISTOGRAM_BITS`.
Measured (every 2nd pixel; the rule samples every 4th): the clips of few bins at 0.001-0.020
(bar chart, glow, credits, sky gradient) or 0.22-0.44 (AV1 film, film grain, near-black
footage); of the others flat logo 0.025, phone feed 0.025, colour bars 0.107, screen text 0.116."""
FINE_MAX_RUNS = 4
"""Most palette runs histogrammed at :data:`FINE_HISTOGRAM_BITS`: 5 MiB a histogram kept (counts and
colour sums; the 5-bit one 0.6 MiB), and making one raised a process's peak RSS by 16.9 MiB (the
5-bit one 0.4; /tmp/pf/mem.py, 2026-12-06), so four take up to about 32 MiB more than a 5-bit
render, which :data:`engine.job.JOB_OVERHEAD` (64 MiB, about 61 of it counted before) does not
yet include."""


class Fitter:
    """The decode's ``fit`` for one job: picks the output size from the first chunk's upright
    shape and its rotation, then fits every chunk to it (resize; crop or bars for ``cover`` and
    ``pad``), timing itself. Call :meth:`finish` on the decoded clip.

    It is a :class:`engine.decode.CodedFit`: a decoder may hand it frames as coded, and a
    rotated clip is then cropped and shrunk first and turned upright at the output size (a 1080p
    frame turned on the CPU costs 20-27 ms, five times its shrinking to 480 px; ``cover``'s crop
    and ``pad``'s bars are worked out in the display shape, as for upright frames); and HDR
    frames as their YUV planes."""

    def __init__(self, spec: JobSpec, media: MediaInfo) -> None:
        self.spec, self.media = spec, media
        self.size: tuple[int, int] | None = None
        """(width, height) of the output, once the first chunk came."""
        self.seconds = 0.0
        self._bars: tuple[int, int, int, int] | None = None
        """``pad``: (left, top, width, height) of the picture on the canvas, once known."""
        self._repaint = False
        """A float (HDR) chunk was padded: its bars went through the tone map after this fit."""

    def _display(self, width: int, height: int, rotation: int) -> tuple[int, int]:
        """The display size of upright frames ``width`` x ``height``; sets :attr:`size` the
        first time."""
        coded = (height, width) if rotation % 2 else (width, height)
        display = display_size(*coded, self.media.sample_aspect_ratio, rotation)
        if self.size is None:
            self.size = output_size(self.spec, display)
        return display

    def _coded_size(self, width: int, height: int, rotation: int) -> tuple[int, int]:
        """For frames coded ``width`` x ``height``: (height, width) of the output before
        ``rotation`` turns it upright (sets :attr:`size` the first time)."""
        self._display(*((height, width) if rotation % 2 else (width, height)), rotation)
        return (self.size[0], self.size[1]) if rotation % 2 else (self.size[1], self.size[0])

    @property
    def _mode(self) -> str:
        return self.spec.fit if self.spec.width and self.spec.height else "fill"

    def takes_planes(self, width: int, height: int, rotation: int) -> bool:
        """16-bit HDR frames coded ``width`` x ``height`` come as YUV planes when they are only
        resized: cropping and bars stay on RGB, and frames kept at their size are cheaper
        through the scaler's 16-bit RGB than through a chroma upsampling here."""
        size = self._coded_size(width, height, rotation)
        return self._mode not in ("cover", "pad") and size != (height, width)

    def fit_planes(self, planes: YUVPlanes, rotation: int) -> torch.Tensor:
        """Upright float R'G'B' at the output size from the coded planes of HDR frames
        (:func:`kernels.yuv.yuv_to_rgb`: each plane resized as it is, converted at the end)."""
        started = time.perf_counter()
        height, width = self._coded_size(planes.luma.shape[-1], planes.luma.shape[-2], rotation)
        with torch.inference_mode():
            out = _upright(yuv_to_rgb(planes.luma, planes.chroma, height, width, matrix=planes.matrix,
                                      bits=planes.bits, full_range=planes.full_range), rotation)
        self.seconds += time.perf_counter() - started
        return out

    def fit_coded(self, chunk: torch.Tensor, rotation: int) -> torch.Tensor:
        """:meth:`__call__` for frames as coded that ``rotation`` quarter turns make upright: the
        same crop (``cover``) or bars (``pad``) as on upright frames, worked out in the display
        shape, but the frames are cropped and shrunk as coded and only the small picture is
        turned."""
        if not rotation % 4:
            return self(chunk, 0)
        started = time.perf_counter()
        coded_height, coded_width = chunk.shape[-2:]
        upright = (coded_height, coded_width) if rotation % 2 else (coded_width, coded_height)
        display = self._display(*upright, rotation)
        mode = self._mode
        with torch.inference_mode():
            if mode == "cover":
                rows, cols = _coded_box(cover_crop(*upright, *self.size, display), rotation, coded_height, coded_width)
                cropped = chunk[:, :, rows, cols]
                height, width = self._coded_size(coded_width, coded_height, rotation)
                out = _upright(_resized(_floats(cropped), height, width), rotation)
            elif mode == "pad":
                left, top, inner_width, inner_height = pad_placement(*display, *self.size)
                inner = (inner_width, inner_height) if rotation % 2 else (inner_height, inner_width)
                picture = _upright(_resized(_floats(chunk), *inner), rotation)
                out = pad(picture, self.size[1], self.size[0], left, top, self.spec.pad_rgb)
                self._bars = (left, top, inner_width, inner_height)
                self._repaint = self._repaint or out.is_floating_point()
            else:
                height, width = self._coded_size(coded_width, coded_height, rotation)
                out = _upright(_resized(chunk, height, width), rotation)
        self.seconds += time.perf_counter() - started
        return out

    def __call__(self, chunk: torch.Tensor, rotation: int) -> torch.Tensor:
        started = time.perf_counter()
        height, width = chunk.shape[-2:]
        display = self._display(width, height, rotation)
        mode = self._mode
        with torch.inference_mode():
            if mode in ("cover", "pad"):
                chunk = _floats(chunk)
                out = fit(chunk, self.size[1], self.size[0], mode, pad_colour=self.spec.pad_rgb, display=display)
                if mode == "pad":
                    self._bars = pad_placement(*display, *self.size)
                    self._repaint = self._repaint or chunk.is_floating_point()
            else:  # fill, and contain at the size geometry chose
                out = _resized(chunk, self.size[1], self.size[0])
        self.seconds += time.perf_counter() - started
        return out

    def finish(self, clip: DecodedClip) -> DecodedClip:
        """``clip`` ready to render. HDR chunks are fitted before their tone map, which turns
        ``pad_colour`` bars into another colour (black stays black): their bars are painted
        again here, in place, on the clip's frames."""
        if self._repaint and self._bars is not None:
            started = time.perf_counter()
            with torch.inference_mode():
                fill_outside(clip.frames, *self._bars, self.spec.pad_rgb)
            self.seconds += time.perf_counter() - started
        return clip


def _resized(chunk: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """:func:`kernels.resize.resize`, also of 16-bit HDR codes: those come back as they are at
    their own size (the tone map reads the codes), else as floats in [0, 1], shrunk."""
    if chunk.dtype == torch.uint16 and tuple(chunk.shape[-2:]) == (height, width):
        return chunk
    return resize(_floats(chunk), height, width)


def _floats(chunk: torch.Tensor) -> torch.Tensor:
    """16-bit HDR codes as planar float in [0, 1] (the decoder's channels-last layout made the
    float resize 2x slower); any other chunk as it is. Cropping, bars and resizing work on floats."""
    if chunk.dtype != torch.uint16:
        return chunk
    return torch.empty(chunk.shape, dtype=torch.float32, device=chunk.device).copy_(chunk).mul_(1 / 65535)


def _coded_box(box: tuple[int, int, int, int], rotation: int, coded_height: int,
               coded_width: int) -> tuple[slice, slice]:
    """(rows, columns) of coded frames ``coded_height`` x ``coded_width`` that the rectangle
    ``box`` (left, top, width, height) of the picture turned upright by ``rotation`` quarter
    turns counter-clockwise (``np.rot90``) comes from."""
    left, top, width, height = box
    turns = rotation % 4
    if turns == 1:  # upright[r, c] = coded[c, W - 1 - r]
        return slice(left, left + width), slice(coded_width - top - height, coded_width - top)
    if turns == 2:  # upright[r, c] = coded[H - 1 - r, W - 1 - c]
        return slice(coded_height - top - height, coded_height - top), slice(coded_width - left - width, coded_width - left)
    if turns == 3:  # upright[r, c] = coded[H - 1 - c, r]
        return slice(coded_height - left - width, coded_height - left), slice(top, top + height)
    return slice(top, top + height), slice(left, left + width)


def _upright(frames: torch.Tensor, rotation: int) -> torch.Tensor:
    """Frames [N, 3, H, W] turned ``rotation`` quarter turns counter-clockwise (as
    ``np.rot90`` turns a picture), bytes channels-last as the rest of the pipeline reads them.
    16-bit codes turn as int16 (the same bits; torch flips no uint16 on the CPU)."""
    if not rotation % 4:
        return frames
    if frames.dtype == torch.uint16:
        return _upright(frames.view(torch.int16), rotation).view(torch.uint16)
    layout = torch.channels_last if frames.dtype == torch.uint8 else torch.contiguous_format
    return torch.rot90(frames, k=rotation % 4, dims=(2, 3)).contiguous(memory_format=layout)


def render(fmt: Format, clip: DecodedClip) -> Frames:
    """The encoder input of ``fmt`` from ``clip`` (frames at the output size): one palette of
    ``fmt.palette_colours`` for the whole clip and every frame remapped to it (ordered dither),
    each pixel keeping the previous frame's index while that colour is nearly as good
    (:mod:`kernels.hold`: fewer bytes, no flicker), or RGB frames; one row per output instant,
    on the host."""
    with torch.inference_mode():
        if fmt.palette_colours is not None:
            return _indexed(clip, fmt.palette_colours, fmt.keeps_screen, fmt.hold_slack)
        return RGBFrames(to_host(_rows(clip.frames.permute(0, 2, 3, 1), clip.index)))


def _rows(frames: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``frames[index]`` as one contiguous tensor: the frames themselves when every row is shown
    once in order, else one copy. ``frames`` [U, H, W, 3] is the clip's channels-last memory seen
    as is; gathering it as [U, 3, H, W] and then permuting made two copies, one of them
    transposing (45 frames at 1080p: 0.33 s)."""
    if index.numel() == frames.shape[0] and frames.is_contiguous() and torch.equal(
            index, torch.arange(frames.shape[0], device=index.device)):
        return frames
    return frames.contiguous().index_select(0, index.to(frames.device))


def _indexed(clip: DecodedClip, colours: int, keeps_screen: bool = False,
             slack: float | None = None) -> IndexedFrames:
    """Palette indices per instant, with one palette for the clip, or one per run of frames
    where the clip's colours drift (:func:`kernels.scenes.palette_runs`: cuts, animation).
    Each run is remapped to its own palette and holds indices within itself; for a format that
    ``keeps_screen``, a pixel of a later run keeps the colour the previous run left on screen
    (:data:`KEEP`) while the new palette does not show it clearly better, so a change of palette
    is not a whole new frame (and the colours accumulate: on 1080p animation, runs of 8 frames
    with it gave +0.6 dB for 1% more bytes; without it, +0.3 dB for 19% more). The frames are
    histogrammed once per run (twice for a clip of few still colours: :func:`_histograms`)."""
    runs, histograms, bits = _histograms(clip.frames, colours)
    rows = clip.index.tolist()  # non-decreasing: a run's instants are one stretch
    indices = torch.empty((len(rows), clip.height, clip.width), dtype=torch.uint8, device=clip.frames.device)
    stretches = []
    screen = None  # the colours on screen at the end of the previous run, [3, H, W]
    palettes = palettes_from_histograms(histograms, max_colours=colours, occupied_only=clip.frames.device.type == "cpu")
    for run, histogram, (palette, valid) in zip(runs, histograms, palettes):
        if len(runs) == 1:
            palette = palette[valid]  # the one host synchronisation: K colours, not the padded slots
        first, end = bisect.bisect_left(rows, run.start), bisect.bisect_left(rows, run.stop)
        if first == end:
            continue
        fresh = remap(clip.frames[run], palette, blocks=blocks_in_histogram(histogram[0], bits))
        hold_indices(clip.frames[run], fresh, clip.index[first:end] - run.start, palette,
                     slack=DEFAULT_HOLD_SLACK if slack is None else slack, out=indices[first:end], before=screen)
        stretches.append((first, end, palette))
        if keeps_screen and end < len(rows):
            screen = _shown(indices[end - 1], palette, screen)
    if len(runs) == 1:
        return IndexedFrames(to_host(indices), to_host(stretches[0][2]))
    palettes = torch.empty((len(rows), colours, 3), dtype=torch.uint8, device=clip.frames.device)
    for first, end, palette in stretches:  # padded slots repeat a colour: remap never picks them
        palettes[first:end] = palette
    return IndexedFrames(to_host(indices), to_host(palettes))


def _histograms(frames: torch.Tensor, colours: int) -> tuple[list[slice], list[tuple[torch.Tensor, torch.Tensor]], int]:
    """The clip's palette runs (:func:`kernels.scenes.palette_runs`), each run's colour histogram
    and its bins per channel. :data:`HISTOGRAM_BITS` unless every run occupies fewer of its bins
    than the palette has colours and the clip hardly flickers (:mod:`kernels.flicker`): then the
    palette would be the bins' means, colours up to 4 levels a channel off, with slots to spare,
    and :data:`FINE_HISTOGRAM_BITS` places them (a chart, credits, a slide; on a GPU this
    decision reads a count per run and the flicker back to the host: up to five reads a render)."""
    runs, histograms = palette_runs(frames, bits=HISTOGRAM_BITS, sample_stride=PALETTE_SAMPLE_STRIDE)
    if len(runs) > FINE_MAX_RUNS or any(int(torch.count_nonzero(counts)) >= colours for counts, _ in histograms):
        return runs, histograms, HISTOGRAM_BITS
    if float(flicker_share(frames)) > FINE_MAX_FLICKER:
        return runs, histograms, HISTOGRAM_BITS
    fine = [colour_histogram(frames[run], bits=FINE_HISTOGRAM_BITS, sample_stride=PALETTE_SAMPLE_STRIDE) for run in runs]
    return runs, fine, FINE_HISTOGRAM_BITS


def _shown(indices: torch.Tensor, palette: torch.Tensor, before: torch.Tensor | None) -> torch.Tensor:
    """The colours a frame of ``indices`` [H, W] leaves on screen, [3, H, W]: its palette's,
    and ``before``'s where it keeps them (:data:`KEEP`)."""
    table = torch.zeros((KEEP + 1, 3), dtype=torch.uint8, device=indices.device)
    table[: palette.shape[0]] = palette
    height, width = indices.shape
    # index_select with int32 indices: half the time of ``table[indices.long()]`` (1080p: 19 vs 36 ms)
    shown = torch.index_select(table, 0, indices.reshape(-1).int()).view(height, width, 3).permute(2, 0, 1)
    if before is None:
        return shown.contiguous()
    return torch.where((indices == KEEP).unsqueeze(0), before, shown).contiguous()


def shown_error(frames: IndexedFrames, clip: DecodedClip, stride: int = 2) -> float:
    """Mean squared error (per channel, in 8-bit levels) of what a viewer sees at each instant of
    ``frames`` (palette colours, and the colour kept on screen where an index is :data:`KEEP`)
    against ``clip``'s frames at the same instants and size, on every ``stride``-th row and
    column: how a byte budget compares two ways to its size (fewer colours, or colours held
    longer), which bytes alone cannot say. A quarter of the pixels is enough to rank settings:
    about 0.1 s a measure for 72 frames at 640x360, where a render takes 0.26 s (low light
    clip, one thread)."""
    rows = clip.index.tolist()
    if frames.indices.shape != (len(rows), clip.height, clip.width):
        raise ValueError(f"frames {frames.indices.shape} are not the clip's {len(rows)} x {clip.height} x {clip.width}")
    with torch.inference_mode():
        source = _sampled(clip, stride)
        indices = torch.from_numpy(frames.indices[:, ::stride, ::stride].copy())
        per_frame = frames.palette.ndim == 3
        palettes = torch.from_numpy(frames.palette)
        screen = None
        total = 0.0
        for k, row in enumerate(rows):
            shown = _shown(indices[k], palettes[k] if per_frame else palettes, screen)  # [3, h, w]
            screen = shown
            difference = shown.permute(1, 2, 0).float() - source[row].float()
            total += float(torch.dot(difference.reshape(-1), difference.reshape(-1)))
    return total / (len(rows) * source[0].numel()) if rows else 0.0


def decoded_error(data: bytes, clip: DecodedClip, delays_ms: Sequence[float], stride: int = 2) -> float:
    """Mean squared error (per channel, in 8-bit levels) of an encoded animation (WebP, AVIF:
    decoded by Pillow, the canvas as a viewer sees it) against ``clip``'s frames at each instant
    (``delays_ms``: how long each instant lasts; the file may have merged instants that did not
    change into one longer frame), on every ``stride``-th row and column: how a WebP byte budget
    compares two encoder efforts, whose quality numbers do not mean the same picture. 0.12-0.15 s
    for 45 frames at 640x360 (one thread)."""
    from PIL import Image

    rows = clip.index.tolist()
    if len(delays_ms) != len(rows):
        raise ValueError(f"{len(delays_ms)} delays for {len(rows)} instants")
    with torch.inference_mode():
        source = _sampled(clip, stride).numpy()
    total, now = 0.0, 0.0
    with Image.open(io.BytesIO(data)) as image:
        if image.size != (clip.width, clip.height):
            raise ValueError(f"the image is {image.size[0]}x{image.size[1]}, the clip {clip.width}x{clip.height}")
        frame, frame_end, shown = -1, 0.0, None
        for row, delay in zip(rows, delays_ms):
            while now >= frame_end - 1e-6 and frame + 1 < image.n_frames:  # the file's frame on screen now
                frame += 1
                image.seek(frame)
                shown = np.asarray(image.convert("RGB"))[::stride, ::stride].astype(np.float32)
                frame_end += float(image.info.get("duration", 0))
            difference = shown - source[row]
            total += float(np.dot(difference.reshape(-1), difference.reshape(-1)))
            now += delay
    return total / (len(rows) * source[0].size) if rows else 0.0


def _sampled(clip: DecodedClip, stride: int) -> torch.Tensor:
    """The clip's distinct frames on every ``stride``-th row and column, [U, h, w, 3] on the host:
    what :func:`shown_error` and :func:`decoded_error` compare with."""
    return clip.frames[:, :, ::stride, ::stride].permute(0, 2, 3, 1).cpu()


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor as an array (no copy); a CUDA tensor through pinned memory (one DMA copy)."""
    if tensor.device.type == "cpu":
        return tensor.numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return host.numpy()
