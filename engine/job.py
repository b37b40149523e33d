"""One job through every stage: spec -> probe -> timeline -> decode (+ fit) -> render -> encode -> write.

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

from .decode import DecodedClip, Decoder, DecoderUnavailable, open_decoder
from .device import DeviceChoice, DeviceRequest, choose_device
from .encode import Format, Frames, get_format
from .errors import EngineError, ErrorCode
from .geometry import display_size, output_size
from .output import resolve_output, write_atomic
from .probe import MediaInfo, probe
from .render import Fitter, render
from .result import Result
from .spec import JobSpec
from .timeline import Timeline, plan_timeline

FRAME_MEMORY_BUDGET = 6 * 2**30
"""Bytes of frames one job may hold. Decoders shrink every chunk of source frames to the output
size as they go (:data:`engine.decode.FIT_CHUNK`), so what grows with the clip is its frames at
output size: 3000 frames of 1280x720 are 7.7 GiB. A job past this is refused up front rather than
left to exhaust the worker's memory."""


def _check_frame_memory(spec: JobSpec, media: MediaInfo, timeline: Timeline) -> None:
    """Refuse clips whose frames at output size would not fit in :data:`FRAME_MEMORY_BUDGET`.

    The rotation is only known once a frame is decoded, and it matters: with one side given, a
    portrait phone video (coded landscape, rotated) is taller at the same width. So the bound is
    the larger of the two orientations' output sizes."""
    span = timeline.instants[-1] - timeline.instants[0]
    distinct = min(timeline.frame_count, int(span * (media.fps or timeline.fps)) + 2)
    width, height = max((output_size(spec, display_size(media.width, media.height, media.sample_aspect_ratio, turns))
                         for turns in (0, 1)), key=lambda size: size[0] * size[1])
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


def _decode_and_render(fmt: Format, spec: JobSpec, media: MediaInfo, timeline: Timeline, decoder: Decoder,
                       watch: _Stopwatch, t: float) -> tuple[DecodedClip, Frames, float]:
    """Decode the clip, shrunk chunk by chunk, and render it on the decoder's device; laps the
    stopwatch (shrinking counts as kernels)."""
    fitter = Fitter(spec, media)
    clip = decoder.decode_frames(media, timeline.instants, fit=fitter)
    t = watch.lap("decode", t)
    watch.move(fitter.seconds, "decode", "kernels")
    frames = render(fmt, clip)
    t = watch.lap("kernels", t)
    return clip, frames, t


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
        fmt = get_format(spec.format)
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
                done = _decode_and_render(fmt, spec, media, timeline, _gpu_decoder(choice), watch, t)
                base["device"] = "nvdec"
            except Exception as exc:  # the GPU path could not take it: the CPU path will
                notes.append(f"fallback: the GPU path failed on {choice.device} ({_failure_summary(exc)}); decoded on the CPU")
                t = watch.lap("decode", max(t, watch.last))  # the time lost counts as decoding
        if done is None:
            done = _decode_and_render(fmt, spec, media, timeline, decoder, watch, t)
        clip, frames, t = done
        if clip.deinterlaced:
            notes.append("interlaced source: each frame shows its top field (the lines between interpolated)")

        data = fmt.encode(frames, timeline.delays)
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
        width=clip.width,
        height=clip.height,
        frames=timeline.frame_count,
        fps=timeline.fps,
        duration=round(sum(timeline.delays) * timeline.tick, 4),
        bytes=len(data),
        notes=timeline.notes + tuple(notes),
        timings=watch.totals(),
        source_frames_decoded=clip.frames_decoded,
        **base,
    )
