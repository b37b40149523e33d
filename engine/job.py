"""One job through every stage: spec -> probe -> timeline -> decode -> kernels -> encode -> write.

:func:`run_job` never raises for a bad input: every failure becomes a failed :class:`Result`
with an error code, so the batch runner can go on with the next job.

Device: after probing, :func:`engine.device.choose_device` picks the path for this video. On the
GPU path NVDEC decodes into GPU memory, the kernels run on those CUDA tensors, and only what the
encoder needs comes back to the host (GIF: indexed frames and the palette; WebP: RGB frames,
through pinned memory). If the GPU path fails for any reason, the job is decoded and rendered
again on the CPU and its notes say why; the CPU path itself is the same code as without a GPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .decode import DecodedClip, Decoder, DecoderUnavailable, open_decoder
from .device import DeviceChoice, DeviceRequest, choose_device
from .encode import Frames, IndexedFrames, RGBFrames, get_format
from .errors import EngineError, ErrorCode
from .geometry import display_size, output_size
from .output import resolve_output, write_atomic
from .probe import MediaInfo, probe
from .result import Result
from .spec import JobSpec
from .timeline import Timeline, plan_timeline
from ..kernels.palette import median_cut
from ..kernels.remap import remap
from ..kernels.resize import resize

PALETTE_SAMPLE_STRIDE = 2
"""The palette histogram reads every 2nd pixel of every 2nd row: half the median-cut time for the
same PSNR on the benchmark clip (36.56 dB either way, measured when the kernel was written)."""


FRAME_MEMORY_BUDGET = 6 * 2**30
"""Bytes of frames one job may hold. Decoders shrink every chunk of source frames to the output
size as they go (:data:`engine.decode.FIT_CHUNK`), so what grows with the clip is its frames at
output size: 3000 frames of 1280x720 are 7.7 GiB. A job past this is refused up front rather than
left to exhaust the worker's memory."""


def _check_frame_memory(spec: JobSpec, media: MediaInfo, timeline: Timeline) -> None:
    """Refuse clips whose frames at output size would not fit in :data:`FRAME_MEMORY_BUDGET`.
    (Rotation swaps width and height, not the area, so the unrotated display size serves.)"""
    span = timeline.instants[-1] - timeline.instants[0]
    distinct = min(timeline.frame_count, int(span * (media.fps or timeline.fps)) + 2)
    width, height = output_size(spec, display_size(media.width, media.height, media.sample_aspect_ratio, 0))
    needed = distinct * width * height * 3
    if needed > FRAME_MEMORY_BUDGET:
        raise EngineError(
            ErrorCode.INVALID_PARAMETER,
            f"the clip needs about {needed / 2**30:.1f} GiB for {distinct} frames of {width}x{height}; at most "
            f"{FRAME_MEMORY_BUDGET / 2**30:.0f} GiB per job: shorten the duration, lower fps or the output size",
        )


class _Stopwatch:
    """Accumulates seconds per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()
        self.last = self._start
        """When the latest lap ended."""

    def lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        self.last = now
        return now

    def move(self, seconds: float, source: str, destination: str) -> None:
        """Count ``seconds`` spent inside ``source``'s lap under ``destination`` instead."""
        self.seconds[source] = self.seconds.get(source, 0.0) - seconds
        self.seconds[destination] = self.seconds.get(destination, 0.0) + seconds

    def totals(self) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in self.seconds.items()}
        out["total"] = round(time.perf_counter() - self._start, 4)
        return out


def _render(spec: JobSpec, clip: DecodedClip, size: tuple[int, int]) -> tuple[str, Frames]:
    """Run the tensor kernels; returns the format's name and the frames its encoder takes:
    indexed frames and a palette of the format's ``palette_colours`` if it has one, else RGB."""
    fmt = get_format(spec.format)
    width, height = size
    frames = resize(clip.frames, height, width)
    if fmt.palette_colours is not None:
        palette = median_cut(frames, max_colours=fmt.palette_colours, sample_stride=PALETTE_SAMPLE_STRIDE)
        indices = remap(frames, palette)[clip.index]
        return fmt.name, IndexedFrames(_to_host(indices), _to_host(palette))
    rgb = frames[clip.index].permute(0, 2, 3, 1).contiguous()
    return fmt.name, RGBFrames(_to_host(rgb))


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor as an array (no copy); a CUDA tensor through pinned memory (one DMA copy)."""
    if tensor.device.type == "cpu":
        return tensor.numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return host.numpy()


class _Fitter:
    """The decode's ``fit``: picks the output size from the first chunk's upright shape and its
    rotation, then resizes every chunk to it, timing itself (resizing is a kernel, not decoding)."""

    def __init__(self, spec: JobSpec, media: MediaInfo) -> None:
        self.spec, self.media = spec, media
        self.size: tuple[int, int] | None = None
        self.seconds = 0.0

    def __call__(self, chunk: torch.Tensor, rotation: int) -> torch.Tensor:
        started = time.perf_counter()
        if self.size is None:
            height, width = chunk.shape[-2:]
            coded = (height, width) if rotation % 2 else (width, height)
            self.size = output_size(self.spec, display_size(*coded, self.media.sample_aspect_ratio, rotation))
        with torch.inference_mode():
            out = resize(chunk, self.size[1], self.size[0])
        self.seconds += time.perf_counter() - started
        return out


def _decode_and_render(spec: JobSpec, media: MediaInfo, timeline: Timeline, decoder: Decoder,
                       watch: _Stopwatch, t: float) -> tuple[DecodedClip, tuple[int, int], str, object, float]:
    """Decode the clip, resized chunk by chunk, and run the kernels on the decoder's device; laps
    the stopwatch."""
    fitter = _Fitter(spec, media)
    clip = decoder.decode_frames(media, timeline.instants, fit=fitter)
    size = fitter.size if fitter.size is not None else (clip.width, clip.height)
    t = watch.lap("decode", t)
    watch.move(fitter.seconds, "decode", "kernels")

    with torch.inference_mode():
        kind, payload = _render(spec, clip, size)
    t = watch.lap("kernels", t)
    return clip, size, kind, payload, t


def _gpu_decoder(choice: DeviceChoice) -> Decoder:
    return open_decoder(choice.backend, device=choice.device)


def _failure_summary(exc: BaseException) -> str:
    if isinstance(exc, DecoderUnavailable):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def run_job(spec: JobSpec, out_dir: Path, decoder: Decoder, *, line: int | None = None,
            device: str | DeviceRequest = "cpu") -> Result:
    """Make one animated image; any failure comes back as a failed Result, never an exception.

    ``decoder`` is the CPU decoder. ``device`` is the --device request ("auto", "cpu", "cuda",
    "cuda:N"): where it allows, and the GPU path can take this video, the job runs there.
    """
    watch = _Stopwatch()
    base = dict(line=line, input=str(spec.input), format=spec.format, device=decoder.name)
    notes: list[str] = []
    try:
        t = time.perf_counter()
        destination = resolve_output(spec, out_dir)
        media = probe(spec.input)
        base["source"] = {"codec": media.codec, "width": media.display_width, "height": media.height,
                          "fps": media.fps, "duration": round(media.duration, 3),
                          "bytes": spec.input.stat().st_size}
        timeline = plan_timeline(spec, media)
        _check_frame_memory(spec, media, timeline)
        if media.transfer is not None:
            notes.append(f"HDR ({media.transfer.upper()}, BT.2020) tone-mapped to SDR BT.709")
        choice = choose_device(device, media)
        if choice.note:
            notes.append(choice.note)
        t = watch.lap("probe", t)

        done = None
        if choice.backend == "nvdec":
            try:
                done = _decode_and_render(spec, media, timeline, _gpu_decoder(choice), watch, t)
                base["device"] = "nvdec"
            except Exception as exc:  # the GPU path could not take it: the CPU path will
                notes.append(f"fallback: the GPU path failed on {choice.device} ({_failure_summary(exc)}); decoded on the CPU")
                t = watch.lap("decode", max(t, watch.last))  # the time lost counts as decoding
        if done is None:
            done = _decode_and_render(spec, media, timeline, decoder, watch, t)
        clip, size, kind, payload, t = done
        if clip.deinterlaced:
            notes.append("interlaced source: each frame shows its top field (the lines between interpolated)")

        data = get_format(kind).encode(payload, timeline.delays)
        t = watch.lap("encode", t)

        write_atomic(destination, data)
        watch.lap("write", t)
    except EngineError as error:
        return Result.failure(spec.id, error, timings=watch.totals(), notes=tuple(notes), **base)
    except MemoryError:
        return Result.failure(spec.id, EngineError(
            ErrorCode.INVALID_PARAMETER, "out of memory: lower the output size, fps or duration"),
            timings=watch.totals(), notes=tuple(notes), **base)
    except Exception as exc:  # a bug or an unforeseen library error: report it, keep the batch going
        return Result.failure(spec.id, EngineError(
            ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"), timings=watch.totals(), notes=tuple(notes), **base)
    return Result(
        id=spec.id,
        status="success",
        output=str(destination),
        width=size[0],
        height=size[1],
        frames=timeline.frame_count,
        fps=timeline.fps,
        duration=round(sum(timeline.delays) * timeline.tick, 4),
        bytes=len(data),
        notes=timeline.notes + tuple(notes),
        timings=watch.totals(),
        source_frames_decoded=clip.frames_decoded,
        **base,
    )
