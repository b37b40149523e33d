"""MPEG-TS and MPEG-PS files whose times jump back: recordings joined end to end, played as one.

A transport or program stream carries its own clock and may restart it: DVR segments or clips
joined with ``cat``, DVD titles copied cell by cell. FFmpeg's demuxer hands the times over as
they are, so such a file's frames reach a time twice, once per recording; its header length is
the last recording's end less the first's start (5 s for two joined 5 s recordings), and a seek
by time lands in whichever recording the search finds (a sweep: seek 2.3 s showed the first
recording, 2.4 s the second; a span ran on into the other recording's last frame). The ffmpeg
command line, when it plays such a file, shifts each part to follow the one before; so does this
engine, so that every time names one frame:

- :func:`find_jumps` (called by the probe) reads the first packet's time at 16 places spread over
  the file by bytes (a few milliseconds) and, only when those go back, demuxes the whole video
  stream (packets read, nothing decoded) into :class:`Joined`: each part's shift and the key
  frames' times on the one timeline with their byte positions.
- The CPU decoder seeks by byte to the key frame before a span and shifts each frame's time by
  its part's (:class:`Placer`); ``seek: "auto"`` does not sample such a file (its seeks are by time).

Jumps forward are left as FFmpeg reads them (the file's length includes the gap, as ffprobe says).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import NamedTuple

import av

JUMP_BACK = 1.0
"""Seconds a time must go back, in decoding order, to start a new part (B-frames reorder by less)."""
SAMPLES = 16
"""Places, spread over the file by bytes, whose first packet's time is read to see whether times go back."""
FORMATS = ("mpegts", "mpeg")
"""Containers whose clock may restart mid-file (FFmpeg's names: transport and program streams)."""


class PartKey(NamedTuple):
    """A key frame of a joined file: its time on the one timeline, its byte position, its part."""

    time: float
    pos: int
    part: int


@dataclass(frozen=True)
class Joined:
    """A file whose times jump back, laid out as one timeline (seconds from the container's start).

    ``shifts[p]`` is added to the times of part ``p`` (the stretch after the ``p``-th jump);
    ``keys`` are the key frames, in file order;
    ``length`` is the timeline's length."""

    shifts: tuple[float, ...]
    keys: tuple[PartKey, ...]
    length: float

    @property
    def jumps(self) -> int:
        return len(self.shifts) - 1

    def key_before(self, instant: float) -> PartKey | None:
        """The last key frame shown at or before ``instant`` on the timeline (the first one for an
        instant before it); None when the scan found no key frame."""
        if not self.keys:
            return None
        times = [key.time for key in self.keys]
        return self.keys[max(0, bisect_right(times, instant + 1e-6) - 1)]

    def note(self) -> str:
        return (f"the video's times jump back {self.jumps} time(s) (recordings joined end to end): its parts are "
                f"played one after another, {self.length:.3f} s in all, as the ffmpeg command plays them")


class Placer:
    """Frame times (seconds from the container's start, in display order) onto the timeline,
    starting in part ``part``: each time that goes back by more than :data:`JUMP_BACK` begins
    the next part."""

    def __init__(self, joined: Joined, part: int = 0) -> None:
        self._shifts = joined.shifts
        self._part = part
        self._last: float | None = None

    def __call__(self, t: float) -> float:
        if self._last is not None and t < self._last - JUMP_BACK and self._part + 1 < len(self._shifts):
            self._part += 1
        self._last = t
        return t + self._shifts[self._part]


def _goes_back(container, stream, start: float, size: int) -> bool:
    """Whether the first packet's time at :data:`SAMPLES` byte positions of the file's ``size``
    ever goes back by more than :data:`JUMP_BACK` (the cheap test: a short part between two
    samples can hide)."""
    tb = stream.time_base
    last = None
    for k in range(SAMPLES):
        container.seek(size * k // SAMPLES, any_frame=True, backward=False, unsupported_byte_offset=True)
        packet = next((p for p in container.demux(stream) if p.pts is not None), None)
        if packet is None:
            break
        t = float(packet.pts * tb) - start
        if last is not None and t < last - JUMP_BACK:
            return True
        last = t
    return False


def _scan(container, stream, start: float, fps: float | None) -> Joined | None:
    """The whole video stream demuxed from the start: its parts and key frames; None when its
    times never go back after all."""
    tb = stream.time_base
    container.seek(0, any_frame=True, backward=False, unsupported_byte_offset=True)
    shifts = [0.0]
    keys: list[PartKey] = []
    decoded_last = None
    part_end = None  # the current part's end, in its own times
    for packet in container.demux(stream):
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is None:
            continue
        decoded_at = float(stamp * tb) - start
        shown = None if packet.pts is None else float(packet.pts * tb) - start
        if decoded_last is not None and decoded_at < decoded_last - JUMP_BACK and part_end is not None:
            first = shown if shown is not None else decoded_at
            shifts.append(shifts[-1] + part_end - first)
            part_end = None
        decoded_last = decoded_at
        if shown is None:
            continue
        period = float(packet.duration * tb) if packet.duration else 1.0 / (fps or 25.0)
        part_end = shown + period if part_end is None else max(part_end, shown + period)
        if packet.is_keyframe and packet.pos is not None and packet.pos >= 0:
            keys.append(PartKey(shown + shifts[-1], int(packet.pos), len(shifts) - 1))
    if len(shifts) == 1 or part_end is None:
        return None
    return Joined(shifts=tuple(shifts), keys=tuple(keys), length=part_end + shifts[-1])


def find_jumps(container, stream, start: float, fps: float | None, size: int) -> Joined | None:
    """The file laid out as one timeline when its times jump back (see the module's doc), else None.
    Only MPEG-TS/PS are looked at; a file that cannot be sought by bytes is taken as it is."""
    if container.format.name not in FORMATS:
        return None
    try:
        if size <= 0 or not _goes_back(container, stream, start, size):
            return None
        return _scan(container, stream, start, fps)
    except (av.error.FFmpegError, OSError):
        return None
