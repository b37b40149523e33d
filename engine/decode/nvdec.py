"""GPU decoding with NVDEC through PyNvVideoCodec: frames stay in GPU memory as CUDA tensors.

A thin adapter. The work that can be checked without a GPU lives elsewhere and is tested on CPU:
which frame numbers to fetch (:mod:`engine.decode.frame_index`, from the container's real
timestamps), which colour matrix, range, transfer and rotation apply (the CPU path's rules, read
once per file), the NV12/P016 -> RGB conversion (:mod:`kernels.colour`), and for HDR and BT.2020
SDR the CPU path's tone and gamut maps on the decoder's planes (:mod:`engine.decode.wide_colour`). This module asks a
``SimpleDecoder`` for those frame numbers in ascending order (it seeks to the keyframe before the
first one and decodes no further than the last), takes each frame over with DLPack (no copy),
checks that the frame is the one asked for by its timestamp, and converts each batch to RGB on
the GPU.

Written against PyNvVideoCodec 2.0.x and 2.2.x (their Python wrappers agree on what is used here),
and shaped by an audit of both (issue 14, ../shared/reference/nvdec-audit.md):

* Streams: the decoder is never given ``cuda_stream=0``. In 2.0.x that keeps the NULL stream and
  synchronises the device after every frame, which serialises every decode thread of the process.
  It gets the thread's current stream when that is not the default one (the GPU node executor
  gives each decode thread its own), else a stream of this thread's own
  (:func:`decode_stream`); DLPack imports, colour kernels and resizes run on that stream, and it
  is synchronised before the decoder's buffers are reused by the next fetch.
* Decoders: one long-lived ``SimpleDecoder`` per (thread, GPU), moved to the next clip with
  ``reconfigure_decoder(path)`` (creation and teardown per clip is the dominant per-request cost
  in NVIDIA's own cached-decoder benchmark); created anew only when reconfiguring raises. A
  decoder is used by one thread at a time, so threads never share one.
* The index list given to ``get_batch_frames_by_index`` is never empty (2.0.x indexes its first
  element unchecked), and never holds a number the decoder does not count: 2.2.x's wrapper drops
  such numbers with a warning, and an all-dropped list reaches the C++ side empty.

Output colour: the decoder's own RGB output is not used. It is always 8-bit, applies its own
matrix defaults to untagged video and its own chroma filter, so it could not follow the CPU
path's rules; the NATIVE surfaces (NV12 / P016) through kernels.colour can, at the cost of one
kernel per batch.

Every failure that is about the GPU path rather than the video (an import error, a codec the GPU
refuses at the first fetch, a frame numbering that disagrees with the timestamps) surfaces as an
exception; the job then decodes the clip on the CPU and notes why (engine/job.py).

Run on a GPU once (an H200, bench/results/gpu-session-nvidia-h200.md), before the HDR steps were
added: notes/gpu-path.md lists every GPU-only line and what it showed, and
tests/engine/test_gpu_parity.py holds what a GPU session must check.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Protocol, Sequence, TypeVar

import torch

from . import DecodedClip, DecoderUnavailable, Fit
from .frame_index import FrameSelection, read_stream_tags, select_frames
from .frame_tags import StreamTags
from .nvdec_caps import largest_picture, pynvvideocodec
from .wide_colour import wide_colour
from ..probe import MediaInfo
from ...kernels.colour import split_nv12, yuv420_to_rgb

FETCH_BATCH = 32
"""Frames asked of the decoder per call. Each call hands back frames in buffers the next call may
reuse, so a batch is copied out (one stack) before the next: 32 1080p NV12 surfaces are ~100 MB."""

MAX_WIDTH, MAX_HEIGHT = 3840, 2160
"""The picture size a reused decoder is created for (``max_width``/``max_height``; a larger first
clip raises them to its own size). NVDEC then moves between clips up to this size by
reconfiguring, without rebuilding: UHD covers the sources this engine sees (1080p, 4K landscape,
phone video coded landscape or 1080x1920 portrait). Larger is not free: decode surfaces are
allocated at this size, about 12 MB each for 8-bit UHD (24 MB for 10-bit), some twenty per H.264
decoder, i.e. 0.25-0.5 GB per decoder and 3.5-7 GB for the 14 decode threads of an H200 node
(of 141 GB). 8K, or portrait UHD coded 2160x3840, goes beyond it: PyNvVideoCodec then picks or
builds another decoder from its own cache, and only if that raises is ours created anew."""


class DecodeStream(Protocol):
    """The CUDA stream one thread decodes on, as this adapter uses it."""

    handle: int | None
    """The ``cudaStream_t`` value given to the decoder as ``cuda_stream`` (never 0); None on a
    CPU device (tests with the stand-in decoder), where no stream is given."""

    def activate(self) -> ContextManager[Any]:
        """Make it torch's current stream: DLPack imports and kernels are queued on it."""

    def synchronize(self) -> None:
        """Wait for its work: the copies out of the decoder's buffers before they are reused."""

    def hand_over(self, tensor: torch.Tensor) -> None:
        """``tensor`` (made on this stream) goes on to be used on the caller's stream, which is
        made to wait for the work that made it."""


@dataclass
class _TorchStream:
    stream: Any
    """The torch.cuda.Stream decoded on."""
    caller: Any
    """The stream current when the clip was asked for."""

    @property
    def handle(self) -> int:
        return int(self.stream.cuda_stream)

    def activate(self) -> ContextManager[Any]:
        return torch.cuda.stream(self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def hand_over(self, tensor: torch.Tensor) -> None:
        # The last kernels (the batches' cat) may still run on our stream: the caller's stream
        # waits for them; and the caching allocator must not give this memory to the next clip on
        # our stream while the caller's stream may still be reading it.
        if self.stream != self.caller:
            self.caller.wait_stream(self.stream)
            tensor.record_stream(self.caller)


class _HostStream:
    """No stream: a CPU device (tests drive the adapter with a stand-in decoder)."""

    handle = None

    def activate(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        pass

    def hand_over(self, tensor: torch.Tensor) -> None:
        pass


S = TypeVar("S")


def choose_stream(current: S, default: S, dedicated: Callable[[], S]) -> S:
    """The stream to decode on: the current one unless it is the default stream (handle 0 for the
    decoder, which 2.0.x then synchronises after every frame), else the thread's ``dedicated`` one."""
    return current if current != default else dedicated()


def decode_stream(device: torch.device, held: threading.local) -> DecodeStream:
    """The stream this thread decodes on (``held``: this thread's state, where a dedicated stream
    is kept for its next clips). A seam: CPU tests replace it to check the handle passed."""
    if device.type != "cuda":
        return _HostStream()

    def dedicated() -> Any:
        if getattr(held, "stream", None) is None:
            held.stream = torch.cuda.Stream(device=device)
        return held.stream

    current = torch.cuda.current_stream(device)
    return _TorchStream(choose_stream(current, torch.cuda.default_stream(device), dedicated), current)


@dataclass
class _HeldDecoder:
    decoder: Any
    stream: int | None
    """The stream handle it was created with (a decoder stays on its stream)."""


class NvdecDecoder:
    """The GPU backend: NVDEC decodes, frames become uint8 [U, 3, H, W] tensors on ``cuda:N``."""

    name = "nvdec"

    def __init__(self, gpu: int = 0, device: torch.device | None = None) -> None:
        """``gpu``: the GPU NVDEC runs on. ``device``: where frames go, ``cuda:gpu`` by default; a
        CPU device lets tests drive this adapter with a stand-in PyNvVideoCodec on machines
        without a GPU."""
        self.gpu = gpu
        self.device = device if device is not None else torch.device("cuda", gpu)
        self._held = threading.local()
        """Per thread: its dedicated stream and its decoder (one object per GPU, so per (thread, GPU))."""

    def decode_frames(self, media: MediaInfo, instants: Sequence[float], fit: Fit | None = None) -> DecodedClip:
        if not instants:  # as for every backend, a timeline has at least one instant (plan_timeline)
            raise ValueError("no instants to decode")
        nvc = pynvvideocodec()
        selection = select_frames(media, instants)
        by_decode_order = stamps_in_decode_order(str(getattr(nvc, "__version__", "")))
        if by_decode_order and None in selection.decode_stamps:
            raise DecoderUnavailable(
                f"the container gives no decode timestamps for frames {selection.numbers[0]}..{selection.numbers[-1]} "
                "(Matroska with reordered frames has none), so nvdec's frame numbering cannot be checked"
            )
        tags = read_stream_tags(media)
        on_gpu = self.device.type == "cuda"
        chroma = "nearest" if tags.bits == 8 else "bilinear"  # follows swscale's filter per bit depth

        def finish(y: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
            """A batch's planes to upright RGB bytes, shrunk: GPU memory holds one batch at source
            size, not the clip. HDR and BT.2020 SDR frames take the CPU path's colour steps."""
            if tags.transfer is not None or tags.wide_gamut:
                return wide_colour(y, uv, tags, fit)
            batch = yuv420_to_rgb(y, uv, matrix=tags.matrix, full_range=tags.full_range, chroma=chroma)
            if tags.mirrored:
                batch = batch.flip(3)
            if tags.turns:
                batch = torch.rot90(batch, k=tags.turns, dims=(2, 3))
            return fit(batch, tags.turns) if fit is not None else batch

        with torch.cuda.device(self.device) if on_gpu else contextlib.nullcontext():
            stream = decode_stream(self.device, self._held)
            frames = self._fetch(nvc, media, selection, tags, finish, stream, by_decode_order)
        return DecodedClip(
            frames=frames,
            index=torch.tensor(selection.rows, dtype=torch.int64, device=self.device),
            source_times=selection.source_times,
            frames_decoded=selection.frames_decoded,
            rotation=tags.turns,
            tone_mapped=tags.transfer,
            hdr_primaries=tags.hdr_primaries,
            gamut_mapped=tags.wide_gamut,
        )

    def _decoder(self, nvc: Any, media: MediaInfo, stream: DecodeStream) -> Any:
        """This thread's decoder, moved to ``media``'s file; created only when there is none on
        this stream yet or reconfiguring it raised."""
        held: _HeldDecoder | None = getattr(self._held, "decoder", None)
        self._held.decoder = None  # until it is known to work on this file
        if held is not None and held.stream == stream.handle:
            try:
                held.decoder.reconfigure_decoder(str(media.path))
            except Exception:
                held = None  # a new one below
        else:
            held = None
        if held is None:
            held = _HeldDecoder(self._create(nvc, media, stream), stream.handle)
        self._held.decoder = held
        return held.decoder

    def _create(self, nvc: Any, media: MediaInfo, stream: DecodeStream) -> Any:
        widest, tallest = largest_picture(media)
        options: dict[str, Any] = dict(
            gpu_id=self.gpu,
            use_device_memory=True,
            max_width=max(min(MAX_WIDTH, widest), media.width),
            max_height=max(min(MAX_HEIGHT, tallest), media.height),
            output_color_type=nvc.OutputColorType.NATIVE,
        )
        if stream.handle is not None:
            options["cuda_stream"] = stream.handle
        return nvc.SimpleDecoder(str(media.path), **options)

    def _fetch(self, nvc, media: MediaInfo, selection: FrameSelection, tags: StreamTags,
               finish: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], stream: DecodeStream,
               by_decode_order: bool) -> torch.Tensor:
        decoder = self._decoder(nvc, media, stream)
        try:
            frames = self._fetch_all(decoder, media, selection, tags, finish, stream, by_decode_order)
        except DecoderUnavailable:
            raise  # about this file (its numbering, its frame count): the decoder serves the next one
        except BaseException:
            self._held.decoder = None  # the decoder's state is unknown: the next clip gets a new one
            raise
        stream.hand_over(frames)
        return frames

    def _fetch_all(self, decoder: Any, media: MediaInfo, selection: FrameSelection, tags: StreamTags,
                   finish: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], stream: DecodeStream,
                   by_decode_order: bool) -> torch.Tensor:
        counted = len(decoder)
        if selection.numbers[-1] >= counted:
            raise DecoderUnavailable(
                f"nvdec counts {counted} frames in the video, frame {selection.numbers[-1]} is needed; "
                "its numbering differs from the timestamps"
            )
        done: list[torch.Tensor] = []
        with stream.activate():
            for start in range(0, len(selection.numbers), FETCH_BATCH):
                numbers = list(selection.numbers[start : start + FETCH_BATCH])
                fetched = _fetch_batch(decoder, numbers)
                expected = selection.decode_stamps if by_decode_order else selection.pts
                _check_timestamps(fetched, numbers, expected[start : start + len(numbers)], by_decode_order)
                surfaces = torch.stack([_surface(torch.from_dlpack(frame), media.height, tags.bits) for frame in fetched])
                y, uv = split_nv12(surfaces, round(surfaces.shape[1] / 1.5), media.width)
                y, uv = y[:, : media.height], uv[:, : (media.height + 1) // 2]  # a surface taller than the picture
                done.append(finish(y, uv))
                stream.synchronize()  # the copy must be done before the next call reuses the decoder's buffers
            return done[0] if len(done) == 1 else torch.cat(done)


def _fetch_batch(decoder: Any, numbers: list[int]) -> list[Any]:
    """One ``get_batch_frames_by_index`` call, never with an empty list (undefined behaviour in
    2.0.x's C++ side), answered with one frame per number."""
    if not numbers:
        raise ValueError("no frame numbers to fetch")
    fetched = decoder.get_batch_frames_by_index(numbers)
    if len(fetched) != len(numbers):
        raise DecoderUnavailable(f"nvdec returned {len(fetched)} frames for {len(numbers)} frame numbers")
    return fetched


DECODE_ORDER_STAMPS_FROM = (2, 2)
"""The PyNvVideoCodec version from which a frame's ``timestamp`` is taken to be the decode timestamp
of the stream's packet with its number in decode order: what 2.2.4 reported on an H200 (a B-frame
mp4 or mov: the pts minus two frames; variable frame rate: an irregular offset; the pictures right
to the bit, bench/results/gpu-session-nvidia-h200.md). Before it, the frame's pts, as 2.0.0's
source reads (not seen on a GPU)."""


def stamps_in_decode_order(version: str) -> bool:
    """Whether PyNvVideoCodec ``version`` stamps frame n with packet n's decode timestamp (True for
    :data:`DECODE_ORDER_STAMPS_FROM` and later, and for a version it cannot read)."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is None or (int(match[1]), int(match[2])) >= DECODE_ORDER_STAMPS_FROM


def _check_timestamps(fetched: Sequence[Any], numbers: Sequence[int], expected: Sequence[int | None],
                      by_decode_order: bool) -> None:
    """Each frame is the one asked for: its stamp is what this PyNvVideoCodec stamps frame n with
    (:func:`stamps_in_decode_order`: packet n's decode timestamp, or the frame's pts). One
    convention per version, never either: in a B-frame stream the pts of frame n - 2 is the decode
    timestamp of packet n, so accepting both would take a frame two early. A frame dropped or added
    before the one asked for shifts the stamps, and the job goes to the CPU path."""
    said = "decode timestamp" if by_decode_order else "pts"
    for frame, number, stamp in zip(fetched, numbers, expected):
        got = int(frame.timestamp)
        if got != stamp:
            raise DecoderUnavailable(
                f"nvdec's frame {number} has timestamp {got}, the container's frame {number} has {said} {stamp}; "
                "its frame numbering differs from the container's"
            )


def _surface(plane: torch.Tensor, height: int, bits: int) -> torch.Tensor:
    """One NATIVE frame as a [rows, W] tensor with unit column stride, whatever the exporter said.

    PyNvVideoCodec 2.0.x exports P016 frames as uint16 (1.5 H, W) with strides (W, 2), bytes
    given as elements: the buffer itself is a plain (1.5 H, W) array of words, so it is viewed
    again with strides (W, 1) (within the exported extent). 2.2.x reports element strides
    ((pitch, 1)), which are used as they are: only exactly (W, 2) says the 2.0.x layout, and any
    other column stride is a layout nobody documented, refused rather than guessed at. A
    producer that exports words as bytes ((1.5 H, 2 W) uint8) is viewed as int16 words. Words go
    on as int16 (the same bits), which kernels.colour reads as unsigned.
    """
    if plane.dim() != 2 or round(plane.shape[0] / 1.5) < height:
        raise DecoderUnavailable(f"nvdec handed a frame of shape {tuple(plane.shape)} for a picture {height} rows high")
    rows, cols = plane.shape
    if bits > 8 and plane.element_size() == 1:
        plane = plane.contiguous().view(torch.int16)
    elif plane.stride() == (cols, 2) and plane.element_size() == 2:  # 2.0.x's P016 export
        plane = plane.as_strided((rows, cols), (cols, 1))
    elif plane.stride()[1] != 1:
        raise DecoderUnavailable(f"nvdec handed a frame with strides {plane.stride()} for shape {tuple(plane.shape)}")
    if plane.dtype == torch.uint16:  # int16 has full support (stack, copies) on CUDA; uint16 does not
        plane = plane.view(torch.int16)
    return plane


@functools.cache
def nvdec_decoder(gpu: int) -> NvdecDecoder:
    """One decoder object per GPU per process; it keeps a SimpleDecoder per thread."""
    return NvdecDecoder(gpu)
