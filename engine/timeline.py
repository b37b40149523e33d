"""From a request and a video to the instants to show: :func:`plan_timeline` -> :class:`Timeline`.

Output frame ``k`` shows the source frame on screen at ``seek + k / fps`` (seconds from the start
of the video), for ``n = max(1, round(duration * fps))`` frames. Frame ``k`` is displayed from
``k / fps`` until ``(k + 1) / fps``, and the last one until the requested duration, so the whole
animation lasts the requested duration; each format's delays are that schedule rounded to the
format's clock (centiseconds for GIF, milliseconds for WebP) at the boundaries, so rounding never
accumulates.

Each format's clock, fastest rate and shortest delay come from its entry in the format table
(:mod:`engine.encode`). A request faster than the format's ``max_fps`` is sampled at that rate
and the result says so in its notes: GIF delays are whole centiseconds and browsers show any
delay under 2 cs as 10 cs, so a GIF above 50 fps would play 5x slower than asked. WebP keeps
every rate the spec accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .encode import get_format
from .errors import EngineError, ErrorCode
from .probe import MediaInfo
from .spec import JobSpec

MAX_FRAMES = 3000
"""Most frames one job may produce (e.g. 60 s at 50 fps); guards memory against runaway requests."""


@dataclass(frozen=True)
class Timeline:
    """The instants to sample (seconds from the video's start) and how long each frame shows."""

    instants: tuple[float, ...]
    delays: tuple[int, ...]
    """Per-frame display time in the format's ticks (cs for GIF, ms for WebP)."""
    tick: float
    """Seconds per delay tick."""
    fps: float
    """The sampling rate actually used (the request's, capped at the format's ``max_fps``)."""
    duration: float
    """Seconds the animation lasts."""
    notes: tuple[str, ...] = ()

    @property
    def frame_count(self) -> int:
        return len(self.instants)


def _span(spec: JobSpec, media: MediaInfo) -> tuple[float, list[str]]:
    """Validated clip length in seconds, clamped to the video's end (with a note saying so)."""
    notes: list[str] = []
    length = media.duration
    if spec.seek >= length:
        raise EngineError(
            ErrorCode.INVALID_TIME_RANGE,
            f"seek {spec.seek:g} s is at or past the end of the video ({length:.3f} s long); use a seek below {length:.3f}",
        )
    if spec.trim_end is not None:
        duration = length - spec.trim_end - spec.seek
        if duration <= 0:
            raise EngineError(
                ErrorCode.INVALID_TIME_RANGE,
                f"seek {spec.seek:g} s + trim_end {spec.trim_end:g} s leave nothing of a {length:.3f} s video; "
                f"their sum must be below {length:.3f}",
            )
        return duration, notes
    assert spec.duration is not None
    duration = spec.duration
    if spec.seek + duration > length + 1e-6:
        duration = length - spec.seek
        notes.append(
            f"clamped: seek {spec.seek:g} s + duration {spec.duration:g} s ends after the video "
            f"({length:.3f} s); the clip stops at the end, lasting {duration:.3f} s"
        )
    return duration, notes


def _delays(fps: float, count: int, duration: float, ticks_per_second: int, minimum: int) -> tuple[int, ...]:
    """Delays whose boundaries are the exact schedule rounded to ticks, so the sum is the duration;
    none below ``minimum`` ticks (the format's ``min_delay``: shorter ones would play wrong)."""
    ends = [min((k + 1) / fps, duration) for k in range(count - 1)] + [duration]
    bounds = [0] + [round(t * ticks_per_second) for t in ends]
    return tuple(max(minimum, b - a) for a, b in zip(bounds, bounds[1:]))


FRAME_COUNT_DIGITS = 3
"""``duration × fps`` is rounded to this many decimals before it is rounded to a frame count: a
length worked out from times kept to the microsecond (a container's start, 0.066667 s, against a
stream's exact 2/30) is off by a few millionths of a frame, which tipped a span of exactly 7.5
frames to 7 where the same request on another file gave 8 (found by a frame-timing sweep)."""


def plan_timeline(spec: JobSpec, media: MediaInfo) -> Timeline:
    """Check the request's time span against the video and compute the sampling instants."""
    fmt = get_format(spec.format)
    duration, notes = _span(spec, media)
    fps = spec.fps
    if fps > fmt.max_fps:
        notes.append(f"fps {fps:g} lowered to {fmt.max_fps:g}: {fmt.max_fps_reason}")
        fps = fmt.max_fps
    count = max(1, round(round(duration * fps, FRAME_COUNT_DIGITS)))
    if count > MAX_FRAMES:
        raise EngineError(
            ErrorCode.INVALID_PARAMETER,
            f"the clip would have {count} frames ({duration:.3f} s at {fps:g} fps); at most {MAX_FRAMES} are allowed: "
            "shorten the duration or lower fps",
        )
    if count == 1 and duration * fps < 0.5:
        notes.append(f"the clip ({duration:.3f} s) is shorter than one frame at {fps:g} fps: one frame is produced")
    instants = tuple(spec.seek + k / fps for k in range(count))
    return Timeline(
        instants=instants,
        delays=_delays(fps, count, duration, fmt.ticks_per_second, fmt.min_delay),
        tick=fmt.tick,
        fps=fps,
        duration=duration,
        notes=tuple(notes),
    )
