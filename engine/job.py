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

from engine.decode import DecodedClip, Decoder, DecoderUnavailable
from engine.device import DeviceChoice, DeviceRequest, choose_device
from engine.encode import encode_gif, encode_webp
from engine.errors import EngineError, ErrorCode
from engine.geometry import display_size, output_size
from engine.output import resolve_output, write_atomic
from engine.probe import MediaInfo, probe
from engine.result import Result
from engine.spec import JobSpec
from engine.timeline import Timeline, plan_timeline
from kernels.palette import median_cut
from kernels.remap import remap
from kernels.resize import resize

GIF_COLOURS = 255
"""Palette size for GIF: 256 minus the slot kept for the transparency of delta frames."""
PALETTE_SAMPLE_STRIDE = 2
"""The palette histogram reads every 2nd pixel of every 2nd row: half the median-cut time for the
same PSNR on the benchmark clip (36.56 dB either way, measured when the kernel was written)."""


DECODE_MEMORY_BUDGET = 6 * 2**30
"""Bytes of decoded source frames one job may hold. The decoders keep the clip's distinct frames
at source size until the resize (bench/results/scaling.md: 2.4 GiB per worker for 3 s of 4K), so
a long 4K clip could exhaust memory and kill its worker; such a job is refused up front instead."""


def _check_decode_memory(media: MediaInfo, timeline: Timeline) -> None:
    """Refuse clips whose decoded source frames would not fit in :data:`DECODE_MEMORY_BUDGET`."""
    span = timeline.instants[-1] - timeline.instants[0]
    distinct = min(timeline.frame_count, int(span * (media.fps or timeline.fps)) + 2)
    needed = distinct * media.width * media.height * 3
    if needed > DECODE_MEMORY_BUDGET:
        raise EngineError(
            ErrorCode.INVALID_PARAMETER,
            f"the clip needs about {needed / 2**30:.1f} GiB of decoded {media.width}x{media.height} frames "
            f"({distinct} frames); at most {DECODE_MEMORY_BUDGET / 2**30:.0f} GiB per job: shorten the duration or lower fps",
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

    def totals(self) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in self.seconds.items()}
        out["total"] = round(time.perf_counter() - self._start, 4)
        return out


def _render(spec: JobSpec, clip: DecodedClip, size: tuple[int, int]) -> tuple[str, object]:
    """Run the tensor kernels; returns what the encoder of ``spec.format`` takes."""
    width, height = size
    frames = resize(clip.frames, height, width)
    if spec.format == "gif":
        palette = median_cut(frames, max_colours=GIF_COLOURS, sample_stride=PALETTE_SAMPLE_STRIDE)
        indices = remap(frames, palette)[clip.index]
        return "gif", (_to_host(indices), _to_host(palette))
    rgb = frames[clip.index].permute(0, 2, 3, 1).contiguous()
    return "webp", _to_host(rgb)


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor as an array (no copy); a CUDA tensor through pinned memory (one DMA copy)."""
    if tensor.device.type == "cpu":
        return tensor.numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return host.numpy()


def _decode_and_render(spec: JobSpec, media: MediaInfo, timeline: Timeline, decoder: Decoder,
                       watch: _Stopwatch, t: float) -> tuple[DecodedClip, tuple[int, int], str, object, float]:
    """Decode the clip and run the kernels on the decoder's device; laps the stopwatch."""
    clip = decoder.decode_frames(media, timeline.instants)
    coded = (clip.height, clip.width) if clip.rotation % 2 else (clip.width, clip.height)
    size = output_size(spec, display_size(*coded, media.sample_aspect_ratio, clip.rotation))
    t = watch.lap("decode", t)

    with torch.inference_mode():
        kind, payload = _render(spec, clip, size)
    t = watch.lap("kernels", t)
    return clip, size, kind, payload, t


def _gpu_decoder(choice: DeviceChoice) -> Decoder:
    from engine.decode.nvdec import nvdec_decoder  # imported only where the GPU path is chosen

    return nvdec_decoder(int(choice.device.split(":")[1]))


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
        timeline = plan_timeline(spec, media)
        _check_decode_memory(media, timeline)
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

        if kind == "gif":
            indices, palette = payload
            data = encode_gif(indices, palette, timeline.delays)
        else:
            data = encode_webp(payload, timeline.delays)
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
