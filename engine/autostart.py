"""``seek: "auto"``: where the liveliest ``duration`` seconds of a video start, from a cheap pass.

The pass costs the same whatever the video's length: at most :data:`MAX_SAMPLES` instants, spread
evenly over the video. A first pass seeks to each and reads one packet (where the key frames
are; in MPEG-TS, whose seeks land on any packet, it demuxes back from the instant to the key
frame before it); a second decodes forward from each key frame once, through the instants that
land on it, all of them together at most :data:`FRAME_BUDGET` frames (see :func:`sample_video`),
each sample and the frame after it shrunk to :data:`SAMPLE_WIDTH` pixels wide. So a 2-hour film
costs about what a 30-second clip does: about a hundred seeks and a few hundred decoded frames.
:mod:`kernels.liveliness` judges the samples (black, fades, still frames, credits) and picks
the window; this module decodes and words the note that says what was chosen and why.

When no span avoids every bad sample, the one with the fewest seconds of them is taken (a 6 s
span over a 5 s burst between black stretches starts at the burst) and the note says so. When
the video is shorter than the span, or no sample is good, or the pass cannot read the video, the
job starts at 0 as it would without ``seek`` and the note says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import torch

from ..kernels.liveliness import SampleScore, cells, least_bad_window, liveliest_window, score_samples
from .probe import MediaInfo, open_container

MAX_SAMPLES = 48
"""Most instants sampled, whatever the video's length."""
MIN_SPACING = 0.25
"""Seconds between samples at least (a short clip gets fewer samples)."""
FRAME_BUDGET = 720
"""Most frames decoded in the whole pass (the samples share it)."""
SAMPLE_WIDTH = 64
"""Width in pixels each sampled frame is shrunk to before it is judged."""

_WORDS = {"black": "black", "fade": "fade", "still": "still", "credits": "credits"}


@dataclass(frozen=True)
class AutoStart:
    """The chosen start (seconds from the video's start) and the note saying why."""

    seek: float
    note: str
    samples: tuple[SampleScore, ...] = ()


def _small(frame: av.VideoFrame) -> np.ndarray:
    height = max(2, round(SAMPLE_WIDTH * frame.height / max(1, frame.width)))
    return frame.reformat(width=SAMPLE_WIDTH, height=height, format="rgb24").to_ndarray()


@dataclass(frozen=True)
class _Key:
    """The key frame a target's decoding starts from: ``time`` (seconds from the video's start)
    groups the targets sharing it; ``seek`` (in the stream's time base) is where a seek lands on it."""

    time: float
    seek: int


SCAN_BACK = 1.0
"""Seconds read back from a target at first when looking for its key frame by demuxing (doubled
until one is found or the previous target is reached)."""
REORDER = 0.5
"""Seconds a key frame's decoding time may precede its display time (B-frames): a backward scan
starts this much earlier so a key frame displayed at the window's start is not missed."""


def _first_packet(container, stream, at: int):
    """The first packet with a time after seeking to ``at`` (stream time base), or None at the end."""
    container.seek(at, stream=stream, backward=True, any_frame=False)
    return next((packet for packet in container.demux(stream) if packet.pts is not None), None)


def _last_key_before(container, stream, target: float, lo: float, hi: float, media: MediaInfo) -> _Key | None:
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
            found = _Key(max(0.0, shown), decoded_at)
    return found


def _scan_back(container, stream, target: float, floor: float, media: MediaInfo) -> _Key | None:
    """The key frame at or before ``target`` and after ``floor`` (the previous target; 0 for the
    first), found by demuxing back from ``target`` in windows doubling from :data:`SCAN_BACK`
    seconds, each read only up to where the last began; None when there is none.

    For a container whose seeks do not land on key frames (MPEG-TS: no index, FFmpeg seeks by
    timestamp to any packet). Its ``seek`` is the key frame's own decoding time, where a seek
    lands on it exactly (its display time is later, after B-frames, and lands past it)."""
    back, hi = SCAN_BACK, target
    while True:
        lo = max(floor, target - back)
        key = _last_key_before(container, stream, target, lo, hi, media)
        if key is not None or lo <= floor:
            return key
        back, hi = back * 2, lo


def _key_frames(container, stream, targets: list[float], media: MediaInfo) -> list[_Key]:
    """Where decoding for each target starts: the key frame at or before it.

    Asked first by seeking to the target and reading one packet (a few kilobytes): a container with
    an index (MP4, Matroska) lands on the key frame. MPEG-TS has none, and FFmpeg's seek there
    lands on whatever packet is near the time; decoding from it, the H.264 decoder drops every
    frame up to the next key frame, so each target was sampled at the next key frame's time or
    dropped as its duplicate (the sweep: 9 samples of a 20 s TS with key frames 2 s apart, where
    its MP4 copy gives 48; none at all of a 3 s TS with one key frame, which then started at 0).
    Such a target's key frame is found by demuxing back from it (:func:`_scan_back`)."""
    tb = stream.time_base
    keys: list[_Key] = []
    known: _Key | None = None  # the last key frame found, at or before the previous target
    for k, target in enumerate(targets):
        at = int((target + media.start_time) / tb)
        packet = _first_packet(container, stream, at)
        landed = None if packet is None else float(packet.pts * tb) - media.start_time
        if landed is not None and packet.is_keyframe and landed <= target + 1e-6:
            known = _Key(min(target, max(0.0, landed)), at)
        elif landed is not None:
            known = _scan_back(container, stream, target, targets[k - 1] if k else 0.0, media) or known
        # no key frame yet (a stream cut mid-GOP) or past the end: on its own, landing where it may, as before
        keys.append(known if landed is not None and known is not None else _Key(target, at))
    return keys


def _groups(targets: list[float], keys: list[_Key]) -> list[tuple[_Key, list[float]]]:
    """The targets grouped by the key frame their seek lands on, in time order: one seek per
    group (to where it lands on that key frame), then decoding forward through its targets."""
    groups: list[tuple[_Key, list[float]]] = []
    for k, (target, key) in enumerate(zip(targets, keys)):
        if k and abs(key.time - keys[k - 1].time) < 1e-6:
            groups[-1][1].append(target)
        else:
            groups.append((key, [target]))
    return groups


def sample_video(media: MediaInfo) -> tuple[list[float], np.ndarray, np.ndarray]:
    """(times, frames, following): the sampled instants' actual times (seconds from the video's
    start), their frames and the frame decoded just after each (N, H, W, 3 uint8).

    Two passes over at most :data:`MAX_SAMPLES` evenly spread targets. The first seeks to each
    and reads only the next packet's time, which tells where the key frames are (where that packet
    is no key frame, as in MPEG-TS, it demuxes back to the one before: :func:`_key_frames`). The
    second visits
    each key frame once (targets landing on the same key frame share it) and decodes forward
    through its targets, each key frame given an equal share of what is left of
    :data:`FRAME_BUDGET` (a share left unspent passes on). A target the share does not reach is
    sampled where the decoding stopped, at that frame's own time, so each sample's cell
    (:func:`kernels.liveliness.cells`) is where it really is, even with key frames 10 s apart."""
    count = max(1, min(MAX_SAMPLES, int(media.duration / MIN_SPACING)))
    targets = [(i + 0.5) * media.duration / count for i in range(count)]
    rate = media.fps or 25.0
    container = open_container(media.path)
    times: list[float] = []
    shots: list[np.ndarray] = []
    after: list[np.ndarray] = []
    try:
        stream = container.streams[media.stream_index]
        stream.codec_context.thread_type = "AUTO"
        groups = _groups(targets, _key_frames(container, stream, targets, media))
        left = FRAME_BUDGET
        for g, (key, group) in enumerate(groups):
            share = max(2, left // (len(groups) - g))
            container.seek(key.seek, stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
            decoded = 0
            for target in group:
                chosen = None
                for frame in frames:
                    decoded += 1
                    if frame.time is None:
                        continue
                    chosen = frame
                    if frame.time - media.start_time >= target - 0.5 / rate or decoded >= share - 1:
                        break
                if chosen is None:  # the stream ended
                    break
                nxt = next(frames, None)
                decoded += nxt is not None
                when = chosen.time - media.start_time
                if not times or when > times[-1] + 1e-6:
                    times.append(when)
                    shots.append(_small(chosen))
                    after.append(_small(nxt) if nxt is not None and nxt.time is not None else shots[-1])
                if decoded >= share - 1 or nxt is None:
                    break  # this key frame's share is spent: its later targets go unsampled
            left = max(0, left - decoded)
    finally:
        container.close()
    if not shots:
        return [], np.zeros((0, 1, SAMPLE_WIDTH, 3), np.uint8), np.zeros((0, 1, SAMPLE_WIDTH, 3), np.uint8)
    return times, np.stack(shots), np.stack(after)


def _seconds(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _avoided(scores: list[SampleScore], length: float) -> str:
    """``black 0-2 s, credits from 41 s``: the runs of bad samples, by their cells."""
    spans = cells([s.time for s in scores], length)
    runs: list[list] = []
    for score, (lo, hi) in zip(scores, spans):
        if score.verdict == "ok":
            continue
        if runs and runs[-1][0] == score.verdict and abs(runs[-1][2] - lo) < 1e-9:
            runs[-1][2] = hi
        else:
            runs.append([score.verdict, lo, hi])
    words = [f"{_WORDS[kind]} from {_seconds(lo)} s" if hi >= length - 1e-6 and lo > 0 else
             f"{_WORDS[kind]} {_seconds(lo)}-{_seconds(hi)} s" for kind, lo, hi in runs]
    if len(words) > 5:
        words = words[:5] + [f"{len(words) - 5} more"]
    return ", ".join(words)


def choose_start(media: MediaInfo, span: float) -> AutoStart:
    """Where the liveliest ``span`` seconds of ``media`` start, and why (see the module's doc)."""
    length = media.duration
    if span >= length - 1e-6:
        return AutoStart(0.0, f"seek auto: 0 s (the video, {_seconds(length)} s, is not longer than the "
                              f"{_seconds(span)} s asked; started at 0)")
    try:
        times, shots, after = sample_video(media)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return AutoStart(0.0, f"seek auto: 0 s (the sampling pass could not read the video: {type(exc).__name__}; "
                              f"started at 0)")
    scores = score_samples(torch.from_numpy(shots), torch.from_numpy(after), times)
    window = liveliest_window(scores, length, span)
    avoided = _avoided(scores, length)
    if window is None:
        nearest = least_bad_window(scores, length, span)
        reason = f"avoided {avoided}" if avoided else "too few samples"
        if nearest is None:
            return AutoStart(0.0, f"seek auto: 0 s (no {_seconds(span)} s span qualifies: {reason}; no good sample, "
                                  f"started at 0)", tuple(scores))
        return AutoStart(nearest.start, f"seek auto: {_seconds(nearest.start)} s (no {_seconds(span)} s span avoids "
                                        f"every bad sample: {reason}; took the one with the least, about "
                                        f"{_seconds(nearest.bad_seconds)} s)", tuple(scores))
    why = f"liveliest {_seconds(span)} s of {len(scores)} samples" + (f"; avoided {avoided}" if avoided else "")
    return AutoStart(window.start, f"seek auto: {_seconds(window.start)} s ({why})", tuple(scores))
