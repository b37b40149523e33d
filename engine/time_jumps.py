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
  the file by bytes and one just before its end (0.3-1.2 ms on TS/PS of 66 KB to 126 MB) and,
  only when those go back, demuxes the whole video stream (packets read, nothing decoded) into
  :class:`Joined`: each part's shift and the key frames' times on the one timeline with their
  byte positions.
- The CPU decoder, and ``seek: "auto"``'s sampling pass, seek by byte to the key frame before an
  instant and shift each frame's time by its part's (:class:`Placer`).

Jumps forward are left as FFmpeg reads them (the file's length includes the gap, as ffprobe says).
"""

from __future__ import annotations

import functools
import math
import os
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av

JUMP_BACK = 1.0
"""Seconds a time must go back, in decoding order, to start a new part (B-frames reorder by less)."""
SETTLE = 5
"""Packets after a jump back (and before it) that must agree for it to begin a new part."""
LEAD = 20
"""Packets at a part's start among which its earliest displayed time is looked for."""
SAMPLES = 16
"""Places, spread over the file by bytes, whose first packet's time is read to see whether times go back."""
TAIL = 64 * 1024
"""Bytes before the file's end of the last sample (a quarter of the last stretch in a small file):
a short last recording is found too."""
KEPT = 8
"""Scanned files whose layout a process keeps (:func:`find_jumps`)."""
FORMATS = ("mpegts", "mpeg")
"""Containers whose clock may restart mid-file (FFmpeg's names: transport and program streams)."""


_SCANNED: OrderedDict[tuple, Joined | None] = OrderedDict()
_LOCK = threading.Lock()


class PartKey(NamedTuple):
    """A key frame of a joined file: its time on the one timeline, its byte position, its part."""

    time: float
    pos: int
    part: int


@dataclass(frozen=True)
class Joined:
    """A file whose times jump back, laid out as one timeline (seconds from the container's start).

    ``shifts[p]`` is added to the times of part ``p`` (the stretch after the ``p``-th jump), whose
    own times start at ``firsts[p]``; ``keys`` are the key frames, in file order;
    ``length`` is the timeline's length."""

    shifts: tuple[float, ...]
    firsts: tuple[float, ...]
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
        return self.keys[max(0, bisect_right(self._key_times, instant + 1e-6) - 1)]

    @functools.cached_property
    def _key_times(self) -> tuple[float, ...]:
        return tuple(key.time for key in self.keys)

    def note(self) -> str:
        return (f"the video's times jump back {self.jumps} time(s) (recordings joined end to end): its parts are "
                f"played one after another, {self.length:.3f} s in all, as the ffmpeg command plays them")


class Placer:
    """Frame times (seconds from the container's start, in display order) onto the timeline,
    starting in part ``part``: a time that goes back by more than :data:`JUMP_BACK` to where the
    next part starts begins it (one that goes back elsewhere is a damaged time, left as it is)."""

    def __init__(self, joined: Joined, part: int = 0) -> None:
        self._joined = joined
        self._part = part
        self._last: float | None = None

    def __call__(self, t: float) -> float:
        following = self._part + 1
        if (self._last is not None and t < self._last - JUMP_BACK and following < len(self._joined.shifts)
                and abs(t - self._joined.firsts[following]) <= JUMP_BACK):
            self._part = following
        self._last = t
        return t + self._joined.shifts[self._part]


def seek_to_byte(container, position: int) -> None:
    """Seek ``container`` to a byte position (MPEG-TS/PS resynchronise on the next packet there)."""
    container.seek(position, any_frame=True, backward=False, unsupported_byte_offset=True)


def _goes_back(container, stream, start: float, size: int) -> bool:
    """Whether the first packet's time at :data:`SAMPLES` byte positions of the file's ``size``,
    and :data:`TAIL` bytes before its end, ever goes back by more than :data:`JUMP_BACK` (the
    cheap test: a short part between two samples can hide, unless it is the last)."""
    tb = stream.time_base
    last = None
    places = [size * k // SAMPLES for k in range(SAMPLES)]
    # the last one in file order too: in a small file TAIL bytes from the end would lie before the
    # place above, and seem to go back (every small TS was scanned whole)
    places.append(size - min(TAIL, (size - places[-1]) // 4))
    for at in places:
        seek_to_byte(container, at)
        packet = next((p for p in container.demux(stream) if p.pts is not None), None)
        if packet is None:
            break
        t = float(packet.pts * tb) - start
        if last is not None and t < last - JUMP_BACK:
            return True
        last = t
    return False


def _part_starts(decoded: array) -> list[int]:
    """Where parts begin: packets whose decoding time, and that of the :data:`SETTLE` packets
    after them, lies more than :data:`JUMP_BACK` below every one of the :data:`SETTLE` before.
    One packet with a wild time (damage) starts no part, whether it is too low or too high."""
    starts = []
    for i in range(1, len(decoded)):
        if decoded[i] < decoded[i - 1] - JUMP_BACK:
            floor = min(decoded[max(0, i - SETTLE):i]) - JUMP_BACK
            if all(t < floor for t in decoded[i:i + SETTLE]):
                starts.append(i)
    return starts


def _scan(container, stream, start: float, fps: float | None) -> Joined | None:
    """The whole video stream demuxed from the start (packets read, nothing decoded): its parts
    and key frames; None when its times do not go back after all (a damaged timestamp)."""
    tb = stream.time_base
    seek_to_byte(container, 0)
    decoded, shown, ends, positions = array("d"), array("d"), array("d"), array("q")
    for packet in container.demux(stream):
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is None:
            continue
        decoded.append(float(stamp * tb) - start)
        at = float(packet.pts * tb) - start if packet.pts is not None else math.nan
        shown.append(at)
        ends.append(at + (float(packet.duration * tb) if packet.duration else 1.0 / (fps or 25.0)))
        key = packet.is_keyframe and packet.pts is not None and packet.pos is not None and packet.pos >= 0
        positions.append(int(packet.pos) if key else -1)
    bounds = _part_starts(decoded)
    if not bounds:
        return None
    shifts, firsts, keys, end = [], [], [], 0.0
    for part, (lo, hi) in enumerate(zip([0, *bounds], [*bounds, len(decoded)])):
        times = [t for t in shown[lo:lo + LEAD] if not math.isnan(t)]  # B-frames: the earliest shown leads
        if not times:  # a part of packets without a presentation time: laid on the one before
            times = [firsts[-1] if firsts else 0.0]
        first = min(times)
        shifts.append(0.0 if part == 0 else end - first)
        firsts.append(first)
        keys += [PartKey(shown[i] + shifts[-1], positions[i], part) for i in range(lo, hi) if positions[i] >= 0]
        end = max([end] + [e + shifts[-1] for e in ends[lo:hi] if not math.isnan(e)])
    return Joined(shifts=tuple(shifts), firsts=tuple(firsts), keys=tuple(keys), length=end)


def find_jumps(container, stream, start: float, fps: float | None, path: Path, facts: os.stat_result) -> Joined | None:
    """The file laid out as one timeline when its times jump back (see the module's doc), else None.
    Only MPEG-TS/PS are looked at; a file that cannot be sought by bytes is taken as it is.

    The whole-stream scan (seconds for hours of video) is kept for the last :data:`KEPT` files a
    process scanned, by path, size and modification time (``facts``, the file's stat): every job on
    a file probes it."""
    if container.format.name not in FORMATS:
        return None
    try:
        if facts.st_size <= 0 or not _goes_back(container, stream, start, facts.st_size):
            return None
        key = (str(path), stream.index, facts.st_size, facts.st_mtime_ns)
        with _LOCK:
            if key in _SCANNED:
                _SCANNED.move_to_end(key)
                return _SCANNED[key]
        joined = _scan(container, stream, start, fps)
        with _LOCK:
            _SCANNED[key] = joined
            while len(_SCANNED) > KEPT:
                _SCANNED.popitem(last=False)
        return joined
    except (av.error.FFmpegError, OSError):
        return None
