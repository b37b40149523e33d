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

import dataclasses
import time
from pathlib import Path

import av

from .decode import FIT_CHUNK, FIT_CHUNK_BYTES, DecodedClip, Decoder, DecoderUnavailable, open_decoder
from .device import DeviceChoice, DeviceRequest, choose_device
from .encode import Format, Frames, get_format
from .errors import EngineError, ErrorCode
from .geometry import largest_output_size
from .memory import Budget, job_budget
from .output import resolve_output, write_atomic
from .probe import MediaInfo, probe
from .autostart import choose_start
from .byte_budget import fit_budget
from .render import Fitter, decoded_error, render, shown_error
from .result import Result
from .spec import JobSpec
from .timeline import Timeline, plan_timeline

FRAME_MEMORY_BUDGET: int | None = None
"""Bytes one job may hold (:func:`job_memory_estimate`); None: this machine's share per worker,
:func:`engine.memory.job_budget` (memory x 0.75 / workers in flight - a worker's own 400 MiB, or
``$ENGINE_JOB_MEMORY``). A job past it is refused up front rather than left to exhaust the
worker's memory (and be killed by the kernel)."""

JOB_OVERHEAD = 64 * 2**20
"""Bytes a job holds whatever its size: the palette's histogram tables and scratch (about 45 MB),
the remap's scratch (16 MB), the encoders' state."""


def job_memory_estimate(*, palette: bool, frames: int, distinct: int, width: int, height: int,
                        source_width: int, source_height: int, hdr: bool = False, deep: bool = False) -> int:
    """Bytes a job holds at its peak, over what its worker held before it (an upper bound).

    ``frames`` (N) output frames of ``width`` x ``height`` (P pixels) from at most ``distinct`` (U)
    distinct source frames of ``source_width`` x ``source_height`` (S pixels); ``palette``: the
    format takes indexed frames (GIF) rather than RGB (WebP); ``hdr``: PQ/HLG frames, decoded to
    16 bits and tone-mapped; ``deep``: the decoder's frames have more than 8 bits a sample. What
    is alive, stage by stage:

    * decode: the U frames at output size (3 bytes a pixel), twice while the decoder joins its
      chunks into one tensor (6UP); one chunk of k frames at source size, twice while it is
      stacked (6S a frame; k = :data:`engine.decode.FIT_CHUNK`, or fewer to stay near
      :data:`engine.decode.FIT_CHUNK_BYTES`); HDR: 16-bit frames, their float copies and the
      joined float chunk (36S a frame, k counted on 6 bytes a pixel) and the tone map's float
      copies at output size (60P a frame); the decoder's reference frames (12S, 24S when deep).
    * render: GIF: the U frames (3UP), their palette indices (UP) and the indices gathered per
      output instant (NP); WebP: the U frames and the RGB gathered per output instant (3NP).
    * encode (the U frames released): GIF: the N index frames, Pillow's copy of each frame that
      differs from the one before (at most U) and the file, at most 1.5 bytes a pixel of those,
      twice when handed over: at most NP + 4UP; WebP: the N RGB frames, one frame's canvas,
      Pillow image and libwebp buffers, and the (small) file.

    So GIF ``max(6U, 4U + N) P``, WebP ``3 (U + N) P``, plus 10P (one frame's working copies),
    the chunk, the decoder's frames and :data:`JOB_OVERHEAD`. Every output instant is a frame the
    job holds: a 1 fps source sampled at 60 fps has 60 times fewer distinct frames than output
    frames, and its WebP holds 3NP all the same.

    Measured: peak RSS (VmHWM) over the RSS before the job, one job per fresh process after a
    warm-up job (as in a worker), 1 thread unless said; GiB, measured / this estimate:

    =====================================================================  ===========
    1 fps 1024x1024 -> WebP 1024x1024, 60 fps, 10 s (U=10, N=600)          1.79 / 1.97
    1 fps 1024x1024 -> WebP 512x512, 60 fps, 25 s (U=25, N=1500)           1.14 / 1.29
    1 fps 1024x1024 -> GIF 1024x1024, 50 fps, 10 s (U=10, N=500)           0.53 / 0.71
    1 fps 2048x2048 -> GIF 2048x2048, 50 fps, 11 s (U=11, N=550)           2.35 / 2.63
    1 fps 2048x2048 -> WebP 2048x2048, 60 fps, 4 s (U=4, N=240)            2.88 / 3.16
    30 fps 640x480 H.264 -> GIF 640x480, 30 fps, 10 s (U=N=300)            0.52 / 0.61
    30 fps 640x480 H.264 -> WebP 640x480, the same                         0.52 / 0.61
    25 fps 1280x720 H.264 -> GIF 1280x720, 25 fps, 10 s (U=N=250)          1.32 / 1.45
    25 fps 1280x720 H.264 -> WebP, the same (2 threads: 1.30)              1.31 / 1.45
    Big Buck Bunny 720p VP8 -> GIF 1280x720, 24 fps, 10 s (U=N=240)        1.23 / 1.40
    Big Buck Bunny 720p VP8 -> WebP, the same                              1.24 / 1.40
    Big Buck Bunny 720p VP8 -> GIF 640x360, 15 fps, 3 s (the bench job)    0.08 / 0.21
    3840x2160 H.264 -> GIF 320x180, 25 fps, 2.9 s (2 threads: 0.16)        0.16 / 0.32
    3840x2160 H.264 -> WebP 3840x2160, 25 fps, 1 s (U=N=25)                1.19 / 1.53
    1920x1080 interlaced H.264 -> GIF 640x360, 25 fps, 2.9 s               0.19 / 0.31
    HDR PQ HEVC 10-bit 1920x1080 -> GIF 320x180, 2.9 s (2 threads: 0.48)   0.48 / 0.57
    HDR PQ HEVC 10-bit 1920x1080 -> WebP 1920x1080, 1 s                    1.20 / 1.53
    HDR HLG HEVC 10-bit 1920x1080 -> GIF 320x180, 2.9 s                    0.47 / 0.57
    HDR HLG HEVC 10-bit 1920x1080 -> WebP 1920x1080, 1 s                   1.26 / 1.53
    =====================================================================  ===========

    The worker itself held 256-345 MiB before its job (:data:`engine.memory.WORKER_BASE`).
    """
    pixels, source = width * height, source_width * source_height
    n, u = max(1, frames), max(1, min(distinct, frames))
    if palette:
        held = max(6 * u, 4 * u + n) * pixels
    else:
        held = 3 * (u + n) * pixels
    if hdr:
        per_chunk = min(FIT_CHUNK, -(-FIT_CHUNK_BYTES // (6 * source)))
        chunk = per_chunk * (36 * source + 60 * pixels)
    else:
        per_chunk = min(FIT_CHUNK, -(-FIT_CHUNK_BYTES // (3 * source)))
        chunk = per_chunk * 6 * source
    decoder = (24 if hdr or deep else 12) * source
    return held + 10 * pixels + chunk + decoder + JOB_OVERHEAD


def _deep(pixel_format: str) -> bool:
    """Whether the decoder's frames carry more than 8 bits a sample (``yuv420p10le``: 2 bytes)."""
    try:
        return max(component.bits for component in av.VideoFormat(pixel_format).components) > 8
    except (ValueError, TypeError, av.error.FFmpegError):  # a name this FFmpeg does not know: assume the worst
        return True


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def _check_frame_memory(spec: JobSpec, fmt: Format, media: MediaInfo, timeline: Timeline) -> None:
    """Refuse jobs whose :func:`job_memory_estimate` passes the budget (:data:`FRAME_MEMORY_BUDGET`).

    The rotation is only known once a frame is decoded, and it matters: with one side given, a
    portrait phone video (coded landscape, rotated) is taller at the same width. So the bound is
    the larger of the two orientations' output sizes. Distinct source frames are at most the
    source's frames in the clip's span (a 1 fps source sampled at 60 fps has a sixtieth as many
    distinct frames as output frames), but every output frame is held by the encoder."""
    span = timeline.instants[-1] - timeline.instants[0]
    distinct = min(timeline.frame_count, int(span * (media.fps or timeline.fps)) + 2)
    width, height = largest_output_size(spec, media.width, media.height, media.sample_aspect_ratio)
    palette = fmt.palette_colours is not None
    needed = job_memory_estimate(palette=palette, frames=timeline.frame_count, distinct=distinct, width=width,
                                 height=height, source_width=media.width, source_height=media.height,
                                 hdr=media.transfer is not None, deep=_deep(media.pixel_format))
    if spec.max_bytes is not None:  # the distinct frames stay through the encode, to be rendered again
        needed += 3 * distinct * width * height
        if palette:  # and a GIF's budget may render them denoised, a second copy (engine/byte_budget.py)
            needed += 3 * distinct * width * height
    budget = Budget(FRAME_MEMORY_BUDGET, "FRAME_MEMORY_BUDGET") if FRAME_MEMORY_BUDGET is not None else job_budget()
    if needed > budget.bytes:
        held = "palette indices, 1 byte a pixel" if palette else "RGB, 3 bytes a pixel"
        raise EngineError(
            ErrorCode.INVALID_PARAMETER,
            f"the job needs about {_gib(needed)} of memory: {timeline.frame_count} output frames of {width}x{height} "
            f"({held}, each held until encoded) from {distinct} distinct source frames of "
            f"{media.width}x{media.height}; "
            f"at most {_gib(budget.bytes)} per job here ({budget.source}): "
            f"shorten the duration, lower fps or the output size",
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
                       watch: _Stopwatch, t: float) -> tuple[DecodedClip, Frames, Timeline, float]:
    """Decode the clip, shrunk chunk by chunk, and render it on the decoder's device; laps the
    stopwatch (shrinking counts as kernels). The timeline comes back shortened when the video's
    frames end well before its header says (:func:`_cut_to_frames`)."""
    fitter = Fitter(spec, media)
    clip = fitter.finish(decoder.decode_frames(media, timeline.instants, fit=fitter))
    clip, timeline = _cut_to_frames(spec, media, timeline, clip)
    t = watch.lap("decode", t)
    watch.move(fitter.seconds, "decode", "kernels")
    frames = render(fmt, clip)
    t = watch.lap("kernels", t)
    return clip, frames, timeline, t


START_DIGITS = 6
"""Decimals of a result's ``start``: a microsecond, within the decoder's tolerance when a frame's
time is compared with an instant (1e-6 s), so the start ``seek: "auto"`` chose (a frame's own time,
1.8685352 s at 29.97 fps), asked for again, shows the same frame first; four decimals named the
instant before it."""

FRAMES_END_SLACK = 0.5
"""Seconds the last frame may stay on screen past the stream's end (a video track a little
shorter than its audio) before the clip is cut where the frames end instead."""

GAMUT_NAMES = {"bt2020": "BT.2020", "p3": "Display P3", "bt709": "BT.709"}
"""How a job's notes name the primaries its frames were mapped from (``DecodedClip.gamut_mapped``
for SDR frames, ``DecodedClip.hdr_primaries`` for tone-mapped ones)."""


def _cut_to_frames(spec: JobSpec, media: MediaInfo, timeline: Timeline, clip: DecodedClip) -> tuple[DecodedClip, Timeline]:
    """The clip and timeline planned again for where the frames really end, when a header that
    lies about the length (a Matroska duration of 100 s on 3 s of video) planned instants far
    past them: a trim-from-end job would otherwise hold the last frame for 97 s. Unchanged when
    the frames reached the last instant or ended within :data:`FRAMES_END_SLACK` of it. A span
    that starts at or after their end has nothing of the video in it: refused as the decoder
    refuses a seek further past the last frame (it lets one frame period through), rather than
    a last frame held for the whole span (found by a frame-timing sweep, 2026-12-05: seek 6.02 s
    into 6.007 s of frames under an 8 s header made 2 s of one frame, 6.06 s was refused)."""
    end = clip.frames_end
    if end is None or timeline.instants[-1] < end + FRAMES_END_SLACK:
        return clip, timeline
    short = f"the video's frames end at {end:.3f} s although its header says {media.duration:.3f} s"
    if spec.seek >= end:
        raise EngineError(ErrorCode.INVALID_TIME_RANGE,
                          f"{short}; seek {spec.seek:g} s is at or past their end; use a seek below {end:.3f}")
    cut = plan_timeline(spec, dataclasses.replace(media, duration=end))
    count = cut.frame_count
    note = f"clamped: {short}; the span was planned for where they end, lasting {cut.duration:.3f} s"
    # the first plan's notes (what the request met in the header) and this one; not the new plan's
    # own clamp, which would say the same as this note from a duration no header gave
    cut = dataclasses.replace(cut, notes=timeline.notes + (note,))
    return dataclasses.replace(clip, index=clip.index[:count], source_times=clip.source_times[:count]), cut


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
    The job is :func:`decode_job` then :func:`encode_job`, in this thread.
    """
    half = decode_job(spec, out_dir, decoder, line=line, device=device)
    return half if isinstance(half, Result) else encode_job(half)


@dataclasses.dataclass
class RenderedJob:
    """A job between its two halves: decoded and rendered (:func:`decode_job`), not yet encoded
    and written (:func:`encode_job`). An executor can hand it from the thread that decodes (on
    the GPU) to a pool that encodes (on the CPU), so the decoder goes on with the next clip.
    Not frozen: :func:`encode_job` lets go of ``frames`` once encoded when a byte budget keeps
    ``kept`` for its re-renders, as a job run in one piece does."""

    spec: JobSpec
    fmt: Format
    destination: Path
    timeline: Timeline
    frames: Frames | None
    kept: DecodedClip | None
    """The distinct frames, kept for the byte budget's re-renders (None without ``max_bytes``)."""
    width: int
    height: int
    decoded: int
    watch: _Stopwatch
    base: dict
    notes: list[str]
    t: float
    """When the render's lap ended: where the encode lap starts."""


def _failed(spec: JobSpec, exc: Exception, watch: _Stopwatch, notes: list[str], base: dict) -> Result:
    """The failed Result of an exception either half raised."""
    if isinstance(exc, EngineError):
        error = exc
    elif isinstance(exc, MemoryError):
        error = EngineError(ErrorCode.RESOURCE_EXHAUSTED, "out of memory: lower the output size, fps or duration")
    else:  # a bug or an unforeseen library error: report it, keep the batch going
        error = EngineError(ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
    return Result.failure(spec.id, error, timings=watch.totals(), notes=tuple(notes), **base)


def decode_job(spec: JobSpec, out_dir: Path, decoder: Decoder, *, line: int | None = None,
               device: str | DeviceRequest = "cpu") -> RenderedJob | Result:
    """The first half of :func:`run_job` (probe, plan, decode, kernels): the rendered job, or its
    failed Result (never an exception)."""
    watch = _Stopwatch()
    base = dict(line=line, input=str(spec.input), format=spec.format, device=decoder.name)
    notes: list[str] = []
    try:
        t = time.perf_counter()
        fmt = get_format(spec.format)
        missing = fmt.unavailable()
        if missing:
            raise EngineError(ErrorCode.FORMAT_UNAVAILABLE, missing)
        destination = resolve_output(spec, out_dir)
        media = probe(spec.input)
        base["source"] = {"codec": media.codec, "width": media.display_width, "height": media.height,
                          "fps": media.fps, "duration": round(media.duration, 3),
                          "bytes": spec.input.stat().st_size}
        if spec.seek_auto:  # the cheap pass picks the start; its time is the "autostart" stage
            t = watch.lap("probe", t)
            assert spec.duration is not None  # parse_job refuses "auto" without a duration
            start = choose_start(media, spec.duration)
            spec = dataclasses.replace(spec, seek=start.seek)
            notes.append(start.note)
            t = watch.lap("autostart", t)
        timeline = plan_timeline(spec, media)
        _check_frame_memory(spec, fmt, media, timeline)
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
        clip, frames, timeline, t = done
        width, height, decoded = clip.width, clip.height, clip.frames_decoded
        if clip.tone_mapped is not None:  # as the frames said, which the header may not
            primaries = GAMUT_NAMES.get(clip.hdr_primaries, clip.hdr_primaries)
            notes.append(f"HDR ({clip.tone_mapped.upper()}, {primaries}) tone-mapped to SDR BT.709")
        if clip.gamut_mapped is not None:
            notes.append(f"SDR with {GAMUT_NAMES.get(clip.gamut_mapped, clip.gamut_mapped)} primaries: colours converted to BT.709's")
        if clip.over_black:
            notes.append("the source carries transparency (an alpha channel or palette): see-through areas are shown over black")
        if media.joined is not None:
            notes.append(media.joined.note())
        if clip.deinterlaced:
            notes.append("interlaced source: each frame shows its top field (the lines between interpolated)")
        if clip.damaged_packets:
            notes.append(f"damaged source: {clip.damaged_packets} packet(s) of invalid data skipped while decoding; "
                         "frames after one may show decoding errors until the next key frame")
        kept = clip if spec.max_bytes is not None else None  # a byte budget renders them again
        del clip, done  # the distinct frames are rendered: let them go before the encoder's copies come
    except Exception as exc:
        return _failed(spec, exc, watch, notes, base)
    return RenderedJob(spec, fmt, destination, timeline, frames, kept, width, height, decoded, watch, base, notes, t)


def encode_job(job: RenderedJob, *, waited: bool = False) -> Result:
    """The second half of :func:`run_job` (encode, byte budget, write): the job's Result, never an
    exception. ``waited``: the job waited for an encoder after :func:`decode_job` (an executor's
    pool); that wait is then its own "queued" stage rather than counted as encoding."""
    spec, fmt, timeline, watch, notes, base = job.spec, job.fmt, job.timeline, job.watch, job.notes, job.base
    width, height = job.width, job.height
    try:
        t = watch.lap("queued", job.t) if waited else job.t
        assert job.frames is not None, "a rendered job is encoded once"
        setting = fmt.setting_for(job.frames)  # chosen once: the budget's encodes keep what they do not give up
        data = fmt.encode(job.frames, timeline.delays, **setting.options())
        t = watch.lap("encode", t)
        frame_count, fps, delays = timeline.frame_count, timeline.fps, timeline.delays
        if job.kept is not None:
            job.frames = None
            fitted = fit_budget(fmt, job.kept, timeline.delays, spec.max_bytes, render, data, error=shown_error,
                                image_error=decoded_error, own=setting)
            job.kept = None
            note = fitted.note(fmt, spec.max_bytes, len(data), setting)
            if note:
                notes.append(note)
            data, delays, width, height = fitted.data, fitted.delays, fitted.width, fitted.height
            fps = fps / fitted.rung.every if fitted.rung is not None else fps
            frame_count = fitted.frames
            t = watch.lap("budget", t)  # the re-renders and re-encodes the byte budget took

        write_atomic(job.destination, data)
        watch.lap("write", t)
    except Exception as exc:
        return _failed(spec, exc, watch, notes, base)
    return Result(
        id=spec.id,
        status="success",
        output=str(job.destination),
        width=width,
        height=height,
        frames=frame_count,
        fps=fps,
        duration=round(sum(delays) * timeline.tick, 4),
        bytes=len(data),
        notes=timeline.notes + tuple(notes),
        timings=watch.totals(),
        source_frames_decoded=job.decoded,
        start=round(spec.seek, START_DIGITS),
        **base,
    )
