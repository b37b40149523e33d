"""``seek: "auto"``: where the liveliest ``duration`` seconds of a video start, from a cheap pass.

The pass costs the same whatever the video's length: at most :data:`MAX_SAMPLES` instants, spread
evenly over the video, each decoded with at most :data:`FRAME_BUDGET` / samples frames (a
sample near the one before is reached by decoding forward, one further away by a seek to the key
frame before it; when that key frame is further back than the budget reaches, the key frame is
the sample, with its own time, and samples landing on one key frame count once), and two frames
a sample shrunk to :data:`SAMPLE_WIDTH` pixels wide. So a 2-hour film
costs about what a 30-second clip does: dozens of seeks and a few hundred decoded frames.
:mod:`kernels.liveliness` judges the samples (black, fades, still frames, credits) and picks
the window; this module decodes and words the note that says what was chosen and why.

When the video is shorter than the span, or no span avoids every bad sample, or the pass cannot
read the video, the job starts at 0 as it would without ``seek`` and the note says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np
import torch

from ..kernels.liveliness import SampleScore, cells, liveliest_window, score_samples
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


def sample_video(media: MediaInfo) -> tuple[list[float], np.ndarray, np.ndarray]:
    """(times, frames, following): the sampled instants' actual times (seconds from the video's
    start), their frames and the frame decoded just after each (N, H, W, 3 uint8)."""
    count = max(1, min(MAX_SAMPLES, int(media.duration / MIN_SPACING)))
    targets = [(i + 0.5) * media.duration / count for i in range(count)]
    cap = max(2, FRAME_BUDGET // count)
    rate = media.fps or 25.0
    container = open_container(media.path)
    times: list[float] = []
    shots: list[np.ndarray] = []
    after: list[np.ndarray] = []
    try:
        stream = container.streams[media.stream_index]
        stream.codec_context.thread_type = "AUTO"
        tb = stream.time_base
        frames = None
        position = -math.inf
        for target in targets:
            sought = frames is None or not 0 <= (target - position) * rate <= cap
            if sought:
                container.seek(int((target + media.start_time) / tb), stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
            chosen = None
            for decoded, frame in enumerate(frames, start=1):
                if frame.time is None:
                    continue
                chosen = frame
                position = frame.time - media.start_time
                if position >= target - 0.5 / rate or decoded >= cap:
                    break
                if sought and decoded == 1 and (target - position) * rate > cap:
                    break  # the key frame is further back than the budget reaches: it is the sample
            if chosen is None:  # the stream ended: nothing more to sample
                break
            nxt = next(frames, None)
            if nxt is not None and nxt.time is not None:
                position = nxt.time - media.start_time
            when = chosen.time - media.start_time
            if times and when <= times[-1] + 1e-6:
                continue  # the seek landed on a key frame already sampled
            times.append(when)
            shots.append(_small(chosen))
            after.append(_small(nxt) if nxt is not None else shots[-1])
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
        reason = f"avoided {avoided}" if avoided else "too few samples"
        return AutoStart(0.0, f"seek auto: 0 s (no {_seconds(span)} s span qualifies: {reason}; started at 0)",
                         tuple(scores))
    why = f"liveliest {_seconds(span)} s of {len(scores)} samples" + (f"; avoided {avoided}" if avoided else "")
    return AutoStart(window.start, f"seek auto: {_seconds(window.start)} s ({why})", tuple(scores))
