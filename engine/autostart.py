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
from .decode.key_frames import KeyFrame, key_frames
from .probe import MediaInfo, open_container
from .time_jumps import PartKey, Placer, seek_to_byte

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


def _groups(targets: list[float], keys: list[KeyFrame | PartKey]) -> list[tuple[KeyFrame | PartKey, list[float]]]:
    """The targets grouped by the key frame their seek lands on, in time order: one seek per
    group (to where it lands on that key frame), then decoding forward through its targets."""
    groups: list[tuple[KeyFrame | PartKey, list[float]]] = []
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
    is no key frame, as in MPEG-TS, it demuxes back to the one before:
    :func:`engine.decode.key_frames.key_frames`). The
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
        joined = media.joined
        if joined is None:
            keys: list[KeyFrame | PartKey] = key_frames(container, stream, targets, media)
        else:  # recordings joined end to end: by byte to the key frame on the one timeline
            keys = [joined.key_before(target) for target in targets] if joined.keys else []  # type: ignore[misc]
            targets = targets if keys else []
        left = FRAME_BUDGET
        for g, (key, group) in enumerate(groups := _groups(targets, keys)):
            share = max(2, left // (len(groups) - g))
            place = None
            if isinstance(key, PartKey):
                seek_to_byte(container, key.pos)
                place = Placer(joined, key.part)
            else:
                container.seek(key.seek, stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
            decoded = 0
            for target in group:
                chosen, when = None, 0.0
                for frame in frames:
                    decoded += 1
                    if frame.time is None:
                        continue
                    chosen, when = frame, frame.time - media.start_time
                    when = place(when) if place is not None else when
                    if when >= target - 0.5 / rate or decoded >= share - 1:
                        break
                if chosen is None:  # the stream ended
                    break
                nxt = next(frames, None)
                decoded += nxt is not None
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
