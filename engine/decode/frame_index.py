"""From a timeline's instants to the stream's frame numbers, using the container's real timestamps.

Decoders that fetch frames by number (NVDEC's SimpleDecoder) number them in presentation order
from the stream's first frame, and would turn a time into a number as ``round(fps * t)``: right
only for constant frame rate, and wrong for 29.97 fps material when the rate is kept as an
integer. Here the video's packets are demuxed (read, never decoded) from the start up to the
last instant, their presentation timestamps sorted, and each instant mapped to the frame on screen
then, by the same rule as the CPU decoder: the last frame whose time is at or before the instant
(the first frame for instants before it, the last one after the end).

The selection also carries each chosen frame's raw timestamp, so a backend can check that the
frame it got back is the one that was meant, and fall back when its numbering disagrees.

:func:`read_stream_tags` learns what the CPU path reads from each decoded frame (display
rotation, colour matrix and range, bit depth) by decoding the first frame on the CPU: PyAV (18.1)
exposes the display matrix only on decoded frames (a stream has setters for it, no getter; an MP4
with a rotation carries none on its packets), and H.264/HEVC may carry it in an SEI message that
only decoding reads, so the codec context's colour tags alone cannot stand in for the frame.

Both are cached per file (:class:`_FileCache`, keyed by path, size and mtime, a few dozen files):
every GPU job used to pay a demux from the file's start and a first-frame decode on the CPU before
the GPU started, and jobs on one file (several spans, several formats, a retried batch) repeat
them. The timestamps are kept (in presentation order, looked up without sorting) as far as they
were read, and read again, well further, when a later job needs more; a changed file (size or
mtime) is a different key. A file's first job opens it once for both: the demux that reads the
timestamps also hands its first packets to the decoder until the first frame comes out
(:class:`_FirstFrame`), which is the frame the tags are read from.

What the codec context says (colorspace, color_range, pixel format) agrees with the first frame
on every clip the tests make and on ../shared/corpus, except where it says nothing: VP8 leaves the
colorspace unspecified in the context and tags its frames BT.470BG, so the context's answer would
change the matrix at 720 rows and up. Rotation has no source but a frame in PyAV 18.1. Decoding
one frame is therefore the only reading that matches the CPU path; it is paid once per file.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from typing import Hashable, Sequence

import av

from . import DecoderUnavailable, unreadable
from ..errors import EngineError, ErrorCode
from ..probe import MediaInfo, open_container
from .frame_tags import StreamTags, tags_of

NO_TIMESTAMP = -(2**63)
"""FFmpeg's AV_NOPTS_VALUE: what a packet without a timestamp carries (and PyNvVideoCodec reports)."""
_TOLERANCE = 1e-6
"""Seconds of slack when comparing a frame's time with an instant (as the CPU decoder does)."""
_REORDER_MARGIN = 5.0
"""Seconds to read past the last instant when packets carry no decode timestamp: frames shown
before the instant may come that much later in decode order (B-frame reordering)."""
_READ_AHEAD = 30.0
"""When a job needs a file's table further than it was read, it is read at least this many seconds
further (and at least twice as far): a file with jobs at two spans likely has jobs at more, and
each read starts again from the file's start. The first job on a file reads only what it needs."""

CACHED_FILES = 32
"""Files whose timestamps and tags are kept. Timestamps cost about 24 bytes a frame read (a
ten-minute 30 fps file: 0.4 MB; a two-hour one read to its end: 5 MB), so this bounds the cache
to tens of MB for usual files and under 200 MB in the worst case, per process that decodes on
the GPU, while covering the files a GPU node's jobs in flight share (one per decode thread)."""


@dataclass(frozen=True)
class FrameSelection:
    """The frames to fetch for a timeline, by presentation number, and which one each instant shows."""

    numbers: tuple[int, ...]
    """Distinct frame numbers (0 = the stream's first frame in presentation order), ascending."""
    pts: tuple[int, ...]
    """Each fetched frame's presentation timestamp, in the stream's time base (the raw value)."""
    decode_stamps: tuple[int | None, ...]
    """For each fetched number n, the decode timestamp of the stream's n-th packet in decode order
    (None where the container gives none, or only guesses: Matroska stores none, and FFmpeg's
    guesses for reordered frames differ between versions). PyNvVideoCodec 2.2.4 stamps the n-th
    frame it hands out with this, not with the frame's pts (seen on an H200: mp4, mov and variable
    frame rate; engine/decode/nvdec.py ``stamps_in_decode_order``)."""
    rows: tuple[int, ...]
    """For each instant, the position in ``numbers`` of the frame shown then."""
    source_times: tuple[float, ...]
    """For each instant, the time (s from the video's start) of the frame shown."""
    keyframe: int
    """Number of the keyframe at or before ``numbers[0]``, where decoding has to start."""

    @property
    def frames_decoded(self) -> int:
        """Frames a decoder goes through: from the keyframe to the last frame fetched."""
        return self.numbers[-1] - self.keyframe + 1


def select_frames(media: MediaInfo, instants: Sequence[float]) -> FrameSelection:
    """Map ``instants`` (ascending, s from the video's start) to frame numbers by real timestamps.

    Raises DecoderUnavailable when the stream's timestamps cannot be used (missing or repeated),
    and EngineError(InvalidTimeRange) when the first instant lies past the last frame although
    the header says the video lasts that long (as the CPU decoder does).
    """
    if not instants:
        raise ValueError("no instants to select frames for")
    index = _timestamps(media, instants[-1])
    times = index.shown_times
    period = 1.0 / (media.fps or 25.0)
    if index.reached_end and instants[0] > times[-1] + 2 * period:
        raise EngineError(
            ErrorCode.INVALID_TIME_RANGE,
            f"the video's frames end at {times[-1]:.3f} s although its header says {media.duration:.3f} s; "
            f"seek {instants[0]:.3f} s is past the last frame",
        )
    chosen: list[int] = []  # position in the shown frames per instant
    for instant in instants:
        chosen.append(max(0, bisect.bisect_right(times, instant + _TOLERANCE) - 1))
    distinct = sorted(set(chosen))
    row_of = {position: row for row, position in enumerate(distinct)}
    numbers = tuple(index.shown_numbers[p] for p in distinct)
    before = bisect.bisect_right(index.keyframes, numbers[0]) - 1
    return FrameSelection(
        numbers=numbers,
        pts=tuple(index.pts[n] for n in numbers),
        decode_stamps=tuple(None if index.dts[n] == NO_TIMESTAMP else index.dts[n] for n in numbers),
        rows=tuple(row_of[p] for p in chosen),
        source_times=tuple(times[p] for p in chosen),
        keyframe=index.keyframes[before] if before >= 0 else 0,
    )


@dataclass(frozen=True)
class _PresentationIndex:
    """A stream's timestamps in presentation order: what each job on the file looks its instants
    up in, built once per read and cached per file (sorting a long file's table per job would cost
    more than the lookups; of the packets in decode order only their decode timestamps are kept)."""

    pts: array
    """Presentation timestamps, ascending: frame number n has ``pts[n]``."""
    dts: array
    """Decode timestamps in decode order (:data:`NO_TIMESTAMP` where a packet has none, and for
    every packet of a Matroska stream whose frames are reordered: :func:`_stored_decode_stamps`)."""
    shown_numbers: array
    """Numbers of the frames the CPU decoder shows (not dropped by an edit list), ascending."""
    shown_times: array
    """Their times, s from the video's start."""
    keyframes: array
    """Numbers of the keyframes, ascending."""
    reached_end: bool
    """The whole stream was read."""
    covers: float
    """Instants up to this (s from the video's start) can be served from this index."""


def _stored_decode_stamps(media: MediaInfo, table: _Timestamps) -> array:
    """The packets' decode timestamps as the file stores them: Matroska stores none, and where its
    frames are reordered (B-frames) FFmpeg guesses them, differently from one version to another
    (PyAV's and PyNvVideoCodec's told 433 and 467 for one frame on an H200), so those count as
    none (:data:`NO_TIMESTAMP`)."""
    reordered = any(later < earlier for earlier, later in zip(table.pts, table.pts[1:]))
    if media.container.startswith("matroska") and reordered:
        return array("q", [NO_TIMESTAMP]) * len(table.pts)
    return table.dts


def _build_index(media: MediaInfo, table: _Timestamps) -> _PresentationIndex:
    """``table`` in presentation order; raises when its timestamps cannot number frames."""
    if not table.pts:
        raise EngineError(
            ErrorCode.INVALID_VIDEO_FORMAT,
            f"no frame of {media.path.name} could be read; the file may be truncated or corrupt",
        )
    order = sorted(range(len(table.pts)), key=table.pts.__getitem__)
    pts = array("q", (table.pts[i] for i in order))
    if any(a == b for a, b in zip(pts, pts[1:])):
        raise DecoderUnavailable("the video repeats frame timestamps, so its frames cannot be fetched by number")
    shown = array("q", (number for number, i in enumerate(order) if not table.discard[i]))
    if not shown:
        raise DecoderUnavailable("every frame of the video is marked to be discarded")
    tb = table.time_base
    return _PresentationIndex(
        pts=pts,
        dts=_stored_decode_stamps(media, table),
        shown_numbers=shown,
        shown_times=array("d", (float(pts[n] * tb) - media.start_time for n in shown)),
        keyframes=array("q", (number for number, i in enumerate(order) if table.keyframe[i])),
        reached_end=table.reached_end,
        covers=table.covers,
    )


@dataclass(frozen=True)
class _Timestamps:
    """A video stream's packets in decode order, read from the start."""

    pts: array
    """Presentation timestamps, in ``time_base`` units."""
    dts: array
    """Decode timestamps (:data:`NO_TIMESTAMP` where a packet has none)."""
    keyframe: bytes
    """1 per keyframe packet."""
    discard: bytes
    """1 per packet the decoder drops (an edit list's cut)."""
    time_base: Fraction
    reached_end: bool
    """The whole stream was read."""
    covers: float
    """Instants up to this (s from the video's start) can be served from this table."""


class _FileCache:
    """A small LRU of what was learned about files; shared by a process's threads (the GPU node
    executor runs several decode threads in one process)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_timestamp_cache = _FileCache(CACHED_FILES)
_tag_cache = _FileCache(CACHED_FILES)


def clear_cache() -> None:
    """Forget every file (tests; a process that knows its files changed in place within a second
    keeping their size, which the key cannot see)."""
    _timestamp_cache.clear()
    _tag_cache.clear()


def _file_key(media: MediaInfo) -> tuple[str, int, int, int] | None:
    """The file as it is now: path, size, mtime (ns), and which stream; None if it cannot be stat'ed
    (nothing is cached then: the open that follows reports the error)."""
    try:
        stat = os.stat(media.path)
    except OSError:
        return None
    return (os.fspath(media.path), stat.st_size, stat.st_mtime_ns, media.stream_index)


def _timestamps(media: MediaInfo, last_instant: float) -> _PresentationIndex:
    """The stream's timestamps, read far enough for ``last_instant``: from the cache when an
    earlier job on this file read that far, else demuxed (and cached, with the stream's tags when
    they were not known yet: the same open serves both)."""
    key = _file_key(media)
    cached = _timestamp_cache.get(key) if key is not None else None
    if isinstance(cached, _PresentationIndex) and last_instant <= cached.covers:
        return cached
    if isinstance(cached, _PresentationIndex):  # a later span than any before: later ones may follow
        last_instant += max(_READ_AHEAD, last_instant)
    want_tags = key is not None and _tag_cache.get(key) is None
    table, tags = _demux_timestamps(media, last_instant, want_tags)
    if key is not None and tags is not None:
        _tag_cache.put(key, tags)
    index = _build_index(media, table)
    if key is not None:
        _timestamp_cache.put(key, index)
    return index


class _FirstFrame:
    """Decodes a stream's first packets, as the demux hands them over, until a frame comes out;
    its tags are then what :func:`read_stream_tags` would decode the file again for.

    Decoding here is an extra, never a reason to fail: a decoder error leaves ``tags`` None and
    :func:`read_stream_tags` decodes on its own (and reports the error as a decoding error)."""

    def __init__(self, stream: av.video.stream.VideoStream, media: MediaInfo) -> None:
        self.context = stream.codec_context
        self.media = media  # what the header said of colour, for untagged frames
        _one_thread(self.context)
        self.tags: StreamTags | None = None
        self.failed = False

    @property
    def wanted(self) -> bool:
        return self.tags is None and not self.failed

    def feed(self, packet: av.Packet | None) -> None:
        """One packet (None: the stream ended, flush the frames the decoder holds back)."""
        try:
            frames = self.context.decode(packet)
        except av.error.FFmpegError:
            self.failed = True
            return
        if frames:
            self.tags = tags_of(frames[0], self.media)


def _one_thread(context: av.codec.context.CodecContext) -> None:
    """One decoding thread with slice threading: frame threading would decode several frames
    ahead to hand over the first one."""
    context.thread_type = "SLICE"
    context.thread_count = 1


def _demux_timestamps(media: MediaInfo, last_instant: float, want_tags: bool = False) -> tuple[_Timestamps, StreamTags | None]:
    """The stream's packets in decode order, read from the start until no later packet can be
    shown at or before ``last_instant``; with ``want_tags``, the first frame's tags too (None if
    the packets read gave no frame)."""
    container = open_container(media.path)
    try:
        stream = container.streams[media.stream_index]
        first = _FirstFrame(stream, media) if want_tags else None
        tb = stream.time_base
        pts, dts, keyframe, discard = array("q"), array("q"), bytearray(), bytearray()
        for packet in container.demux(stream):
            if packet.pts is None:
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    if first is not None and first.wanted:
                        first.feed(None)
                    continue
                raise DecoderUnavailable("the video has packets without timestamps, so its frames cannot be fetched by number")
            pts.append(packet.pts)
            dts.append(NO_TIMESTAMP if packet.dts is None else packet.dts)
            keyframe.append(packet.is_keyframe)
            discard.append(packet.is_discard)
            order_time = packet.dts if packet.dts is not None else packet.pts
            if first is not None and first.wanted:  # after its timestamps are read: decoding may rebase them
                first.feed(packet)
            # pts >= dts, so once a packet's dts is past the last instant no later packet is shown before it.
            margin = 0.0 if packet.dts is not None else _REORDER_MARGIN
            if float(order_time * tb) - media.start_time > last_instant + _TOLERANCE + margin:
                return _Timestamps(pts, dts, bytes(keyframe), bytes(discard), tb, False, last_instant), _tags(first)
        return _Timestamps(pts, dts, bytes(keyframe), bytes(discard), tb, True, math.inf), _tags(first)
    except av.error.FFmpegError as exc:
        raise unreadable(media.path, "reading", exc) from None
    finally:
        container.close()


def _tags(first: _FirstFrame | None) -> StreamTags | None:
    return first.tags if first is not None else None


def read_stream_tags(media: MediaInfo) -> StreamTags:
    """Rotation, colour matrix, range and bit depth, from the stream's first decoded frame (once
    per file: cached; after :func:`select_frames` on the file, already read by its demux)."""
    key = _file_key(media)
    cached = _tag_cache.get(key) if key is not None else None
    if isinstance(cached, StreamTags):
        return cached
    tags = _decode_stream_tags(media)
    if key is not None:
        _tag_cache.put(key, tags)
    return tags


def _decode_stream_tags(media: MediaInfo) -> StreamTags:
    """The tags of the stream's first frame, decoded on the CPU (one thread, slice threading)."""
    container = open_container(media.path)
    try:
        stream = container.streams[media.stream_index]
        _one_thread(stream.codec_context)
        frame = next(iter(container.decode(stream)), None)
    except av.error.FFmpegError as exc:
        raise unreadable(media.path, "decoding", exc) from None
    finally:
        container.close()
    if frame is None:
        raise EngineError(
            ErrorCode.INVALID_VIDEO_FORMAT,
            f"no frame of {media.path.name} could be decoded; the file may be truncated or corrupt",
        )
    return tags_of(frame, media)
