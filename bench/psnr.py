"""Quality scoring for the benchmark: PSNR of what a viewer sees against one common reference.

The reference is built the same way for every side (engine, ffmpeg), so the sides are judged by
the same yardstick and a side that picks the wrong source frames, drops, merges or repeats frames,
or gets the timing wrong pays for it in PSNR:

* **Reference frame k** is the source frame on screen at instant ``seek + k/fps`` on the file's
  presentation timeline (the last decoded frame whose timestamp is ``<= t``; timestamps are taken
  relative to the container's start time, which is how ``ffmpeg -ss`` counts; or, with
  ``origin="stream"``, relative to the video stream's first timestamp), decoded
  with PyAV, converted to RGB24 as a player shows it (:func:`source_rgb`: chroma interpolated,
  exact rounding) and resized to the output's size with Pillow LANCZOS.
* **Displayed frame k** of an output is decoded with Pillow (frames composited as a viewer would,
  over black where transparent) and chosen by the output's own per-frame delays: the frame whose
  display interval ``[start, start + delay)`` contains instant ``k/fps`` (modulo the animation's total
  length, since previews loop). GIF delays under 20 ms are shown as 100 ms by browsers; that rule is
  applied and flagged.
* **PSNR** per frame is over all RGB samples (peak 255); identical frames are capped at 100 dB.
  The summary reports the mean of per-frame PSNR (each displayed instant weighs the same), the
  minimum, and a pooled PSNR from the mean MSE over all frames.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

PLAYER_CONVERSION = 0x4 | 0x2000 | 0x40000
"""swscale's flags for the reference's Y'CbCr -> RGB: SWS_BICUBIC | SWS_FULL_CHR_H_INT |
SWS_ACCURATE_RND, the picture as players show it (their shaders interpolate chroma and round
exactly). swscale's default unscaled converter, the only reading until 2026-12-05, repeats chroma
over 2x2 pixels and rounds down: about one level dark on every channel, 43-47 dB from 4:4:4 masters
made 4:2:0 by zimg where this conversion is 51-54 (bench/colour_conversion.py)."""
CHROMA_READINGS: dict[str, int | None] = {"players": PLAYER_CONVERSION, "ffmpeg": None}
"""The ways the reference reads a source's Y'CbCr, each what some tool gives its viewers:
``players`` (:data:`PLAYER_CONVERSION`: chroma interpolated, as players show video) and
``ffmpeg`` (swscale's default: chroma repeated, rounded down, as the ffmpeg command hands frames
to its filters and to gifski). They differ little on camera footage (41-46 dB apart) and a great
deal on pixel art whose cells sit on the chroma grid (16 dB on the library's pixel_life, where
repeating chroma gives back the cells' colours and interpolating smears them): a tool is not
wrong for either, so :func:`decode_conventions` gives both, as it gives each sampling rule."""

PSNR_CAP_DB = 100.0
DURATION_TOLERANCE_MS = 10.0
BROWSER_MIN_GIF_DELAY_MS = 20  # delays below this are shown as 100 ms by browsers
BROWSER_DEFAULT_GIF_DELAY_MS = 100


def instants(seek: float, duration: float, fps: float) -> list[Fraction]:
    """Output instants ``seek + k/fps`` (seconds, exact), k = 0 .. round(duration*fps)-1."""
    fps_q = Fraction(str(fps))
    n = max(1, round(Fraction(str(duration)) * fps_q))
    seek_q = Fraction(str(seek))
    return [seek_q + Fraction(k) / fps_q for k in range(n)]


def pick_video_stream(container: av.container.InputContainer):
    """The stream ffmpeg picks by default: the video stream with the most pixels (first on ties)."""
    streams = [s for s in container.streams.video]
    if not streams:
        raise ValueError("no video stream")
    return max(streams, key=lambda s: (s.codec_context.width or 0) * (s.codec_context.height or 0))


def container_start(container: av.container.InputContainer) -> Fraction:
    """The container's start time in seconds (0 when it states none)."""
    if container.start_time is None:
        return Fraction(0)
    return Fraction(container.start_time, av.time_base)


@dataclass
class SourceFrames:
    """Full-size RGB source frames on screen at each requested instant."""

    frames: list[np.ndarray]  # [H,W,3] uint8, one per instant (shared objects where repeated)
    source_times: list[float]  # timestamp (s, container-relative) of the frame picked per instant
    notes: list[str] = field(default_factory=list)


def time_origin(container: av.container.InputContainer, stream, origin: str) -> Fraction:
    """Time zero of user times: the container's start ("container", as ``ffmpeg -ss`` counts)
    or the video stream's first timestamp ("stream")."""
    if origin == "stream" and stream.start_time is not None:
        return Fraction(stream.start_time) * stream.time_base
    return container_start(container)


def decode_on_screen(path: Path, times: list[Fraction], origin: str = "container") -> SourceFrames:
    """Decode ``path`` and keep, for every instant in ``times`` (seconds from the time origin, see
    :func:`time_origin`), the last frame whose timestamp is <= the instant. Instants before the
    first frame get the first frame; instants after the last frame get the last frame (noted)."""
    notes: list[str] = []
    with av.open(str(path)) as container:
        stream = pick_video_stream(container)
        stream.thread_type = "AUTO"
        start = time_origin(container, stream, origin)
        tb = stream.time_base
        t_first, t_last = times[0], times[-1]

        def collect(seek_to: Fraction | None):
            if seek_to is not None and seek_to > 0:
                container.seek(int((start + seek_to) / tb), stream=stream, backward=True,
                               any_frame=False)
            picked: list = [None] * len(times)
            picked_t: list = [None] * len(times)
            first_time = None
            prev = prev_t = prev_arr = None
            i = 0
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                ft = Fraction(frame.pts) * tb - start
                if first_time is None:
                    first_time = ft
                # every instant before this frame is shown by the previous frame
                while i < len(times) and times[i] < ft:
                    if prev is not None:
                        if prev_arr is None:  # convert only frames that are picked
                            prev_arr = source_rgb(prev)
                        picked[i], picked_t[i] = prev_arr, prev_t
                    i += 1
                if i >= len(times):
                    break
                prev, prev_t, prev_arr = frame, ft, None
            while i < len(times):  # past the end of the stream: the last frame stays on screen
                if prev is not None and prev_arr is None:
                    prev_arr = source_rgb(prev)
                picked[i], picked_t[i] = prev_arr, prev_t
                i += 1
            return picked, picked_t, first_time

        # Seek one second before the first instant so the keyframe search lands before it; if
        # the demuxer still lands after it, fall back to decoding from the start.
        picked, picked_t, first_time = collect(t_first - 1 if t_first > 1 else None)
        if first_time is not None and first_time > t_first and t_first > 1:
            notes.append("seek landed after the first instant; decoded from the start")
            container.seek(0, stream=stream, backward=True, any_frame=False)
            picked, picked_t, first_time = collect(None)
        if picked[0] is None:
            # instants before the first frame: a player shows the first frame
            first_real = next((k for k, p in enumerate(picked) if p is not None), None)
            if first_real is None:
                raise ValueError(f"no frame decoded from {path}")
            for k in range(first_real):
                picked[k], picked_t[k] = picked[first_real], picked_t[first_real]
            notes.append("instants before the first frame use the first frame")
        if picked_t[-1] is not None and t_last - picked_t[-1] > 1:
            notes.append("instants past the end of the stream use its last frame")
    return SourceFrames(picked, [float(t) for t in picked_t], notes)


CONVENTIONS = ("on_screen", "nearest", "mid_slot")
"""Ways of sampling a source at an output instant t (output rate fps), each what some tool does:

* ``on_screen``: the last frame whose timestamp is <= t (what a player shows at t; the engine's
  rule, and :func:`decode_on_screen`'s);
* ``nearest``: the frame whose timestamp is closest to t (ties: the later one);
* ``mid_slot``: the last frame whose timestamp is < t + 1/(2 fps), i.e. the frame on screen in the
  middle of the output slot: what ffmpeg's ``fps`` filter takes (it rounds each frame's timestamp
  to the nearest output tick, and the last frame rounded to a tick wins it). From 25 to 15 fps it
  differs from ``nearest`` at every third instant.

A tool is not wrong for following any of them; :func:`score_best` scores against each and keeps
the better."""


def source_rgb(frame: av.VideoFrame, flags: int | None = PLAYER_CONVERSION) -> np.ndarray:
    """RGB24 of a decoded source frame, by default as a player shows it: its own matrix and range
    (PyAV reads the frame's tags), swscale's ``flags`` (None: its default, :data:`CHROMA_READINGS`)."""
    if flags is None:
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", interpolation=flags)


def _upright(frame, rotate: bool, flags: int | None = PLAYER_CONVERSION) -> np.ndarray:
    """RGB24 of a decoded frame (:func:`source_rgb`, as :func:`decode_on_screen`), turned upright by
    its display rotation when ``rotate`` (as players, ffmpeg's autorotate and the engine do)."""
    rgb = source_rgb(frame, flags)
    turns = round((frame.rotation or 0) / 90) % 4 if rotate else 0
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb


def decode_conventions(path: Path, times: list[Fraction], origin: str = "container", rotate: bool = True,
                       fps: float | None = None, readings: dict[str, int | None] = CHROMA_READINGS
                       ) -> dict[str, SourceFrames]:
    """One decode of ``path``: the source frames at ``times`` under each of :data:`CONVENTIONS`
    (``mid_slot`` only when the output rate ``fps`` is given) and each of ``readings``
    (:data:`CHROMA_READINGS`): keyed by the convention for the first reading, "CONVENTION+READING"
    for the others.

    ``on_screen`` picks what :func:`decode_on_screen` picks. Instants before the first frame take
    the first frame, instants after the last take the last (noted). ``rotate``: frames are turned
    upright by their display rotation (:func:`decode_on_screen` leaves them as coded)."""
    n = len(times)
    queries: dict[str, tuple[str, list[Fraction]]] = {"on_screen": ("le", list(times)), "nearest": ("near", list(times))}
    if fps:
        half = 1 / (2 * Fraction(str(fps)))
        queries["mid_slot"] = ("lt", [t + half for t in times])
    picks = {name: [None] * n for name in queries}  # the (serial, time, frame) each instant takes
    stamps = {name: [None] * n for name in queries}
    notes: list[str] = []
    with av.open(str(path)) as container:
        stream = pick_video_stream(container)
        stream.thread_type = "AUTO"
        start = time_origin(container, stream, origin)
        tb = stream.time_base

        def collect(seek_to: Fraction | None):
            if seek_to is not None and seek_to > 0:
                container.seek(int((start + seek_to) / tb), stream=stream, backward=True, any_frame=False)
            for name in queries:
                picks[name][:] = [None] * n
                stamps[name][:] = [None] * n
            pos = {name: 0 for name in queries}
            prev = None  # (serial, time, frame)
            first_time = None
            serial = 0
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                cur = (serial, Fraction(frame.pts) * tb - start, frame)
                serial += 1
                if first_time is None:
                    first_time = cur[1]
                for name, (rule, qs) in queries.items():
                    i = pos[name]
                    # the instants this frame closes: those shown by the previous frame (or nearer it)
                    while i < n and (qs[i] < cur[1] or (rule == "lt" and qs[i] == cur[1])):
                        if prev is not None:
                            pick = prev
                            if rule == "near" and not (qs[i] - prev[1] < cur[1] - qs[i]):
                                pick = cur
                            picks[name][i], stamps[name][i] = pick, pick[1]
                        i += 1
                    pos[name] = i
                if all(i >= n for i in pos.values()):
                    break
                prev = cur
            if prev is not None:  # past the last frame: it stays on screen
                for name in queries:
                    for i in range(pos[name], n):
                        picks[name][i], stamps[name][i] = prev, prev[1]
            return first_time

        first_time = collect(times[0] - 1 if times[0] > 1 else None)
        if first_time is not None and first_time > times[0] and times[0] > 1:
            notes.append("seek landed after the first instant; decoded from the start")
            container.seek(0, stream=stream, backward=True, any_frame=False)
            first_time = collect(None)
        if first_time is None:
            raise ValueError(f"no frame decoded from {path}")
        if picks["on_screen"][0] is None:
            notes.append("instants before the first frame use the first frame")
        for name in queries:  # instants before the first frame: a player shows the first frame
            frames = picks[name]
            first_real = next((k for k in range(n) if frames[k] is not None), None)
            if first_real is None:
                raise ValueError(f"no frame decoded from {path} at the instants asked")
            for k in range(first_real):
                frames[k], stamps[name][k] = frames[first_real], stamps[name][first_real]
        if times[-1] - stamps["on_screen"][-1] > 1:
            notes.append("instants past the end of the stream use its last frame")
    out = {}
    for number, (reading, flags) in enumerate(readings.items()):
        cache: dict[int, np.ndarray] = {}  # frame serial -> RGB, converted once and only when picked
        for name in queries:
            for pick in picks[name]:
                if pick[0] not in cache:
                    cache[pick[0]] = _upright(pick[2], rotate, flags)
            frames = [cache[pick[0]] for pick in picks[name]]
            key = name if number == 0 else f"{name}+{reading}"
            out[key] = SourceFrames(frames, [float(t) for t in stamps[name]], list(notes))
    return out


def resize_reference(src: SourceFrames, size: tuple[int, int]) -> list[np.ndarray]:
    """Resize each distinct source frame once to ``size`` (w, h) with Pillow LANCZOS."""
    cache: dict[int, np.ndarray] = {}
    out = []
    for f in src.frames:
        key = id(f)
        if key not in cache:
            img = Image.fromarray(f)
            if img.size != size:
                img = img.resize(size, Image.Resampling.LANCZOS)
            cache[key] = np.asarray(img, dtype=np.uint8)
        out.append(cache[key])
    return out


@dataclass
class Animation:
    frames: list[np.ndarray]  # composited RGB frames as displayed
    delays_ms: list[float]  # per-frame display time as a viewer shows it
    raw_delays_ms: list[float]  # as stored in the file
    size: tuple[int, int]
    format: str
    loop: int | None
    notes: list[str]


def decode_animation(path: Path) -> Animation:
    """Decode every frame of an animated GIF/WebP with Pillow, composited as displayed."""
    notes: list[str] = []
    with Image.open(path) as im:
        fmt = (im.format or "").upper()
        n = getattr(im, "n_frames", 1)
        frames, delays, raw = [], [], []
        timestamps = []
        for i in range(n):
            im.seek(i)
            rgba = im.convert("RGBA")
            if rgba.getextrema()[3][0] < 255:  # some transparency left: composite over black
                bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                rgba = Image.alpha_composite(bg, rgba)
            frames.append(np.asarray(rgba.convert("RGB"), dtype=np.uint8))
            d = im.info.get("duration")
            raw.append(float(d) if d is not None else float("nan"))
            if "timestamp" in im.info:
                timestamps.append(float(im.info["timestamp"]))
        loop = im.info.get("loop")
        size = im.size
    if fmt == "WEBP" and timestamps and any(math.isnan(d) for d in raw):
        # Pillow reports the end timestamp of each frame; delays are the differences
        prev = 0.0
        raw = []
        for t in timestamps:
            raw.append(t - prev)
            prev = t
    for d in raw:
        if math.isnan(d):
            delays.append(float(BROWSER_DEFAULT_GIF_DELAY_MS))
            notes.append("frame without delay (shown as 100 ms)")
        elif fmt == "GIF" and d < BROWSER_MIN_GIF_DELAY_MS:
            delays.append(float(BROWSER_DEFAULT_GIF_DELAY_MS))
            notes.append(f"GIF delay {d:g} ms is shown as 100 ms by browsers")
        else:
            delays.append(d)
    return Animation(frames, delays, raw, size, fmt, loop, sorted(set(notes)))


def displayed_indices(delays_ms: list[float], n: int, fps: float, sample: str = "middle") -> list[int]:
    """Index of the frame on screen in output slot k (k < n), the animation looping.

    ``sample="start"`` looks at instant k/fps itself; ``"middle"`` (default) at (k + 1/2)/fps, the
    middle of the slot, so that delays rounded to the format's resolution (GIF: 10 ms, so 1/15 s
    must be stored as 70/60/70 ms) do not count as wrong frames, while a dropped, merged, repeated
    or mistimed frame still does."""
    offset = Fraction(1, 2) if sample == "middle" else Fraction(0)
    starts = [0.0]
    for d in delays_ms:
        starts.append(starts[-1] + d)
    total = starts[-1]
    fps_q = Fraction(str(fps))
    out = []
    for k in range(n):
        t = 1000 * (k + offset) / fps_q
        if total > 0:
            t = t % Fraction(total).limit_denominator(10**6)
        i = bisect.bisect_right(starts, float(t) + 1e-9) - 1
        out.append(min(max(i, 0), len(delays_ms) - 1))
    return out


def frame_psnr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(PSNR dB capped at PSNR_CAP_DB, MSE) over all RGB samples."""
    diff = a.astype(np.float32) - b.astype(np.float32)
    mse = float(np.mean(diff * diff))
    if mse == 0:
        return PSNR_CAP_DB, 0.0
    return min(PSNR_CAP_DB, 10 * math.log10(255.0 ** 2 / mse)), mse


def score(output: Path, source: SourceFrames, fps: float, duration: float,
          requested_size: tuple[int | None, int | None] = (None, None),
          sample: str = "middle") -> dict:
    """Score one output against the source frames on screen at its instants."""
    return score_animation(decode_animation(output), source, fps, duration, requested_size, sample)


def score_best(anim: Animation, sources: dict[str, SourceFrames], fps: float, duration: float,
               requested_size: tuple[int | None, int | None] = (None, None), sample: str = "middle") -> dict:
    """:func:`score_animation` against each convention's source frames (:func:`decode_conventions`),
    the better one kept (highest mean PSNR), with ``convention`` naming it and
    ``psnr_mean_db_by_convention`` giving every convention's mean."""
    scored = {name: score_animation(anim, src, fps, duration, requested_size, sample) for name, src in sources.items()}
    best = max(scored, key=lambda name: scored[name]["psnr_mean_db"])
    return {**scored[best], "convention": best,
            "psnr_mean_db_by_convention": {name: s["psnr_mean_db"] for name, s in scored.items()}}


def score_animation(anim: Animation, source: SourceFrames, fps: float, duration: float,
                    requested_size: tuple[int | None, int | None] = (None, None),
                    sample: str = "middle") -> dict:
    """:func:`score` of an animation already decoded (:func:`decode_animation`)."""
    n = len(source.frames)
    ref = resize_reference(source, anim.size)
    shown = displayed_indices(anim.delays_ms, n, fps, sample)
    psnrs, mses = [], []
    for k in range(n):
        p, m = frame_psnr(anim.frames[shown[k]], ref[k])
        psnrs.append(p)
        mses.append(m)
    total_ms = sum(anim.delays_ms)
    want_ms = 1000.0 * duration
    flags = list(anim.notes)
    if abs(total_ms - want_ms) > DURATION_TOLERANCE_MS:
        flags.append(f"duration {total_ms:.0f} ms != requested {want_ms:.0f} ms")
    if len(anim.frames) != n:
        flags.append(f"{len(anim.frames)} frames stored, {n} expected")
    distinct_shown = len(set(shown))
    if distinct_shown != len(anim.frames):
        flags.append(f"{len(anim.frames) - distinct_shown} stored frames never on screen at an instant")
    rw, rh = requested_size
    if (rw is not None and rw != anim.size[0]) or (rh is not None and rh != anim.size[1]):
        flags.append(f"size {anim.size[0]}x{anim.size[1]} != requested {rw}x{rh}")
    if anim.loop != 0:
        flags.append(f"loop={anim.loop} (not forever)")
    mean_mse = float(np.mean(mses))
    pooled = PSNR_CAP_DB if mean_mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(255.0 ** 2 / mean_mse))
    return {
        "psnr_mean_db": float(np.mean(psnrs)),
        "psnr_min_db": float(np.min(psnrs)),
        "psnr_pooled_db": pooled,
        "psnr_per_frame_db": [round(p, 3) for p in psnrs],
        "frames_stored": len(anim.frames),
        "frames_compared": n,
        "shown_index": shown,
        "total_duration_ms": total_ms,
        "delays_ms": anim.raw_delays_ms,
        "width": anim.size[0],
        "height": anim.size[1],
        "loop": anim.loop,
        "format": anim.format,
        "sample": sample,
        "flags": flags,
    }
