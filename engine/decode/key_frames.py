"""Where decoding must start to show a given time: the key frame shown at or before it.

Containers with an index (MP4, Matroska, WebM) land a backward seek on the key frame before the
time asked, so one seek and one packet read answer it. MPEG-TS and MPEG-PS have no index: FFmpeg
seeks there by timestamp to whatever packet is near the time, and decoding from that packet the
H.264 decoder drops every frame up to the next key frame, which may be seconds later. Here such a
time's key frame is found by demuxing back from it (packets read, nothing decoded), and decoding
starts from the key frame's own decoding time, where a seek lands on it exactly.

Two users: ``seek: "auto"`` (:mod:`engine.autostart`) asks for the key frames of dozens of sampled
instants; the CPU decoder (:mod:`engine.decode.pyav`) asks for the one before a job's first
instant, instead of decoding from ever earlier seeks until one lands early enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..probe import MediaInfo

SCAN_BACK = 1.0
"""Seconds read back from a target at first when looking for its key frame by demuxing (doubled
until one is found or the floor is reached)."""
REORDER = 0.5
"""Seconds a key frame's decoding time may precede its display time (B-frames): a backward scan
starts this much earlier so a key frame displayed at the window's start is not missed."""


@dataclass(frozen=True)
class KeyFrame:
    """The key frame a target's decoding starts from: ``time`` (seconds from the video's start)
    groups the targets sharing it; ``seek`` (in the stream's time base) is where a seek lands on it."""

    time: float
    seek: int


def first_packet(container, stream, at: int):
    """The first packet with a time after seeking to ``at`` (stream time base), or None at the end."""
    container.seek(at, stream=stream, backward=True, any_frame=False)
    return next((packet for packet in container.demux(stream) if packet.pts is not None), None)


def _last_key_before(container, stream, target: float, lo: float, hi: float, media: MediaInfo) -> KeyFrame | None:
    """The last key frame displayed at or before ``target`` among the packets decoded from ``lo``
    (less :data:`REORDER`) to ``hi`` seconds (from the video's start), demuxed, not decoded."""
    tb = stream.time_base
    found = None
    container.seek(int((lo - REORDER + media.start_time) / tb), stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        decoded_at = packet.dts if packet.dts is not None else packet.pts
        if decoded_at is None:
            continue
        if float(decoded_at * tb) - media.start_time > hi:
            break  # this and every later packet is shown after ``target``
        shown = None if packet.pts is None else float(packet.pts * tb) - media.start_time
        if packet.is_keyframe and shown is not None and shown <= target + 1e-6:
            found = KeyFrame(max(0.0, shown), decoded_at)
    return found


def scan_back(container, stream, target: float, floor: float, media: MediaInfo) -> KeyFrame | None:
    """The key frame at or before ``target`` and after ``floor`` (seconds from the video's start),
    found by demuxing back from ``target`` in windows doubling from :data:`SCAN_BACK` seconds, each
    read only up to where the last began; None when there is none.

    Its ``seek`` is the key frame's own decoding time, where a seek lands on it exactly (its
    display time is later, after B-frames, and a seek there lands past it)."""
    back, hi = SCAN_BACK, target
    while True:
        lo = max(floor, target - back)
        key = _last_key_before(container, stream, target, lo, hi, media)
        if key is not None or lo <= floor:
            return key
        back, hi = back * 2, lo


def key_frame_before(container, stream, target: float, floor: float, media: MediaInfo) -> KeyFrame | None:
    """Where decoding starts to show ``target``: a seek to it, when that lands on a key frame at or
    before it (indexed containers); else the key frame found by demuxing back no further than
    ``floor`` (:func:`scan_back`). None when the seek lands past the end, or no key frame lies
    between ``floor`` and ``target`` (a stream cut mid-GOP, intra refresh without key frames)."""
    at = int((target + media.start_time) / stream.time_base)
    packet = first_packet(container, stream, at)
    return None if packet is None else _from_landing(container, stream, packet, target, at, floor, media)


def _from_landing(container, stream, packet, target: float, at: int, floor: float, media: MediaInfo) -> KeyFrame | None:
    """:func:`key_frame_before` once a seek to ``at`` (``target``) has landed on ``packet``."""
    landed = float(packet.pts * stream.time_base) - media.start_time
    if packet.is_keyframe and landed <= target + 1e-6:
        return KeyFrame(min(target, max(0.0, landed)), at)
    return scan_back(container, stream, target, floor, media)


def key_frames(container, stream, targets: list[float], media: MediaInfo) -> list[KeyFrame]:
    """Where decoding for each of ``targets`` (ascending) starts: the key frame at or before it,
    each searched back no further than the previous target (:func:`key_frame_before`).

    A target with no key frame found since the previous one shares that one's; one with none at
    all (a stream cut mid-GOP) or past the end seeks to itself and lands where it may."""
    keys: list[KeyFrame] = []
    known: KeyFrame | None = None  # the last key frame found, at or before the previous target
    for k, target in enumerate(targets):
        at = int((target + media.start_time) / stream.time_base)
        packet = first_packet(container, stream, at)
        if packet is None:  # past the end
            keys.append(KeyFrame(target, at))
            continue
        known = _from_landing(container, stream, packet, target, at, targets[k - 1] if k else 0.0, media) or known
        keys.append(known if known is not None else KeyFrame(target, at))
    return keys
