"""Synthetic test clips whose every frame shows its own index.

The picture of frame ``i`` (``render_frame(i, width, height)``) is:

* a *code band* over the top 40 % of the frame: two rows of 16 equal columns,
  each cell pure black or pure white.  Row A holds, left to right, a white
  sentinel, the 14 bits of ``i`` (most significant first) and a black
  sentinel; row B is the exact complement of row A.  A reader accepts a frame
  only when every cell is clearly black or clearly white *and* row B is the
  complement of row A *and* both sentinels are right, so a misread, a blend
  of two frames (cross-fade, temporal interpolation), a crop, a mirror or a
  wrong rotation is reported as unreadable instead of as a wrong index.
* a smooth, moving YCbCr colour gradient over the bottom 60 %, kept to luma
  95..165 so that it never looks like a code cell and gives palette
  quantisers and inter-frame prediction something to do.

Indices go up to ``MAX_INDEX`` (16383).  ``read_index`` reads the index back
from any full frame, including frames downscaled to 1/4 of 320x240, passed
through lossy codecs and colour conversion, or quantised to a 64-colour
dithered palette.  It assumes the image is the *whole* frame (no padding,
letterbox or crop); pass ``box=`` to read a sub-rectangle.  The reader needs
roughly 3 pixels per cell, i.e. an image at least ~48 px wide.

``make_clip`` encodes such frames with PyAV (h264, hevc, vp9, vp8, mpeg4, av1,
8- or 10-bit, fixed GOP, explicit variable-frame-rate timestamps, optional
audio, optional display-matrix rotation).  ``make_audio_only``,
``make_not_media`` and ``make_truncated`` make the bad-input cases.

Nothing here imports pytest, so benchmarks can use it too.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

__all__ = [
    "CODECS",
    "VARIANTS",
    "variant_available",
    "MAX_INDEX",
    "available_codecs",
    "encoder_for",
    "render_frame",
    "read_index",
    "find_index",
    "make_clip",
    "make_audio_only",
    "make_not_media",
    "make_truncated",
    "decode_indices",
    "source_frames",
    "psnr_to_source",
    "psnr",
]

# --------------------------------------------------------------------------
# Frame pattern
# --------------------------------------------------------------------------

N_COLS = 16
N_BITS = N_COLS - 2  # two sentinel columns
MAX_INDEX = (1 << N_BITS) - 1
BAND = 0.4  # fraction of the height taken by the code band (two rows)
ROW_H = BAND / 2

_BLACK_MAX = 64.0  # a cell whose mean luma is below this reads as black
_WHITE_MIN = 192.0  # ... above this reads as white
_GRAD_Y = (95.0, 165.0)  # luma range of the gradient area


def _row_a_bits(index: int) -> list[int]:
    data = [(index >> (N_BITS - 1 - b)) & 1 for b in range(N_BITS)]
    return [1] + data + [0]


def _col_edges(width: int) -> np.ndarray:
    return np.round(np.linspace(0, width, N_COLS + 1)).astype(int)


@functools.lru_cache(maxsize=16)
def _gradient_phases(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = (np.arange(width, dtype=np.float32) + 0.5) / width
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    xx, yy = np.meshgrid(x, y)
    two_pi = np.float32(2 * np.pi)
    return (
        two_pi * (xx * 0.8 + yy * 0.3),
        two_pi * (yy * 0.9 - xx * 0.2),
        two_pi * (xx * 0.6 + yy * 0.5),
    )


def _gradient(index: int, width: int, height: int) -> np.ndarray:
    """Smooth colour gradient (uint8 RGB, height x width) that drifts with index."""
    if height <= 0:
        return np.zeros((0, width, 3), np.uint8)
    p_y, p_cb, p_cr = _gradient_phases(width, height)
    phase = np.float32(index * 0.07)
    lo, hi = _GRAD_Y
    yl = lo + (hi - lo) * (0.5 + 0.5 * np.sin(p_y + phase))
    cb = 60.0 * np.sin(p_cb - phase * 0.7)
    cr = 60.0 * np.cos(p_cr + phase * 1.3)
    rgb = np.empty((height, width, 3), np.float32)
    rgb[..., 0] = yl + 1.402 * cr
    rgb[..., 1] = yl - 0.344136 * cb - 0.714136 * cr
    rgb[..., 2] = yl + 1.772 * cb
    np.clip(rgb, 0, 255, out=rgb)
    # Clipping can move luma a little; pull it back into the allowed range.
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    rgb += (np.clip(luma, lo, hi) - luma)[..., None]
    np.clip(rgb, 0, 255, out=rgb)
    return (rgb + 0.5).astype(np.uint8)


def render_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """The RGB picture (uint8, height x width x 3) of frame ``index``."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"index {index} outside 0..{MAX_INDEX}")
    img = np.empty((height, width, 3), np.uint8)
    band_split = int(round(height * ROW_H))
    band_end = int(round(height * BAND))
    edges = _col_edges(width)
    bits = _row_a_bits(index)
    for c in range(N_COLS):
        a = 255 if bits[c] else 0
        img[0:band_split, edges[c]:edges[c + 1]] = a
        img[band_split:band_end, edges[c]:edges[c + 1]] = 255 - a
    img[band_end:] = _gradient(index, width, height - band_end)
    return img


def _as_rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected HxWx3 RGB (or HxW grey / HxWx4 RGBA), got shape {a.shape}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.max(initial=0) <= 1.0:
            a = a * 255.0
        a = np.clip(a, 0, 255)
    return a.astype(np.float32)


def read_index(rgb: np.ndarray, *, box: tuple[int, int, int, int] | None = None) -> int:
    """Read the frame index drawn by ``render_frame`` from an RGB image.

    ``rgb`` is uint8 HxWx3 (HxWx4 and HxW are accepted too) showing the whole
    frame in its coded orientation; ``box=(x0, y0, x1, y1)`` restricts reading
    to that rectangle (e.g. when the frame sits inside padding).  Raises
    ``ValueError`` when the pattern cannot be read with confidence.
    """
    a = _as_rgb(rgb)
    if box is not None:
        x0, y0, x1, y1 = box
        a = a[y0:y1, x0:x1]
    h, w = a.shape[:2]
    if w < N_COLS or h < 5:
        raise ValueError(f"image {w}x{h} too small to hold the index pattern")
    luma = a @ np.array([0.299, 0.587, 0.114], np.float32)
    edges = np.linspace(0.0, w, N_COLS + 1)
    rows = [(0.0, h * ROW_H), (h * ROW_H, h * BAND)]
    cells = np.empty((2, N_COLS), np.float32)
    for r, (ya, yb) in enumerate(rows):
        # central half of each cell, at least one pixel
        yc, yh = (ya + yb) / 2, (yb - ya) / 4
        y_lo = int(np.floor(yc - yh))
        y_hi = max(int(np.ceil(yc + yh)), y_lo + 1)
        for c in range(N_COLS):
            xa, xb = edges[c], edges[c + 1]
            xc, xh = (xa + xb) / 2, (xb - xa) / 4
            x_lo = int(np.floor(xc - xh))
            x_hi = max(int(np.ceil(xc + xh)), x_lo + 1)
            cells[r, c] = luma[y_lo:y_hi, x_lo:x_hi].mean()
    white = cells > _WHITE_MIN
    black = cells < _BLACK_MAX
    unclear = ~(white | black)
    if unclear.any():
        r, c = np.argwhere(unclear)[0]
        raise ValueError(
            f"index pattern unreadable: cell row {r} col {c} has mean luma "
            f"{cells[r, c]:.0f} (neither black <{_BLACK_MAX:.0f} nor white >{_WHITE_MIN:.0f})"
        )
    row_a, row_b = white[0], white[1]
    if np.any(row_a == row_b):
        c = int(np.argmax(row_a == row_b))
        raise ValueError(f"index pattern unreadable: check row disagrees at column {c}")
    if not row_a[0] or row_a[-1]:
        raise ValueError("index pattern unreadable: sentinels wrong (mirrored, rotated or not a test frame)")
    value = 0
    for bit in row_a[1:-1]:
        value = (value << 1) | int(bit)
    return value


def find_index(rgb: np.ndarray) -> tuple[int, int]:
    """Read the index from an image that may be rotated by a multiple of 90°.

    Returns ``(index, turns)`` where ``turns`` in 0..3 is such that the image
    equals ``np.rot90(coded_frame, turns)``, i.e. it shows the coded frame
    rotated ``90 * turns`` degrees counter-clockwise.  Raises ``ValueError``
    when no orientation reads.
    """
    a = np.asarray(rgb)
    errors = []
    for turns in range(4):
        try:
            return read_index(np.rot90(a, -turns)), turns
        except ValueError as exc:
            errors.append(f"{90 * turns}°: {exc}")
    raise ValueError("index pattern unreadable in every orientation; " + " | ".join(errors))


# --------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------

#: codec name -> encoder candidates (first one PyAV's FFmpeg has wins)
CODECS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264", "libopenh264"),
    "hevc": ("libx265",),
    "vp9": ("libvpx-vp9",),
    "vp8": ("libvpx",),
    "mpeg4": ("mpeg4",),
    "av1": ("libsvtav1", "libaom-av1", "librav1e"),
}

_DEFAULT_CONTAINER = {
    "h264": "mp4",
    "hevc": "mp4",
    "mpeg4": "mp4",
    "av1": "mp4",
    "vp9": "webm",
    "vp8": "webm",
}

_SUFFIX = {"mp4": ".mp4", "webm": ".webm", "matroska": ".mkv", "mov": ".mov", "avi": ".avi"}


#: named clip variants used by the tests and benchmarks: name -> make_clip kwargs
VARIANTS: dict[str, dict] = {
    "h264": {"codec": "h264"},
    "hevc": {"codec": "hevc"},
    "vp9": {"codec": "vp9"},
    "vp8": {"codec": "vp8"},
    "mpeg4": {"codec": "mpeg4"},
    "av1": {"codec": "av1"},
    "h264-10bit": {"codec": "h264", "pix_fmt": "yuv420p10le"},
    "hevc-10bit": {"codec": "hevc", "pix_fmt": "yuv420p10le"},
    "av1-10bit": {"codec": "av1", "pix_fmt": "yuv420p10le"},
}


def variant_available(name: str) -> bool:
    """True when this PyAV build can encode ``VARIANTS[name]``."""
    kw = VARIANTS[name]
    enc = encoder_for(kw["codec"])
    if enc is None:
        return False
    pix_fmt = kw.get("pix_fmt")
    if pix_fmt is None:
        return True
    formats = av.Codec(enc, "w").video_formats or []
    return any(f.name == pix_fmt for f in formats)


def encoder_for(codec: str) -> str | None:
    """Name of the PyAV encoder used for ``codec``, or None when none is available."""
    for name in CODECS.get(codec, (codec,)):
        try:
            av.Codec(name, "w")
        except Exception:
            continue
        return name
    return None


def available_codecs() -> list[str]:
    """The keys of ``CODECS`` that this PyAV build can encode."""
    return [c for c in CODECS if encoder_for(c) is not None]


def _as_fraction(x) -> Fraction:
    if isinstance(x, Fraction):
        return x
    return Fraction(x).limit_denominator(1001 * 1000)


def _encoder_options(encoder: str, gop: int | None) -> dict[str, str]:
    if encoder == "libx264":
        opts = {"preset": "veryfast", "crf": "18"}
        if gop is not None:
            opts["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        return opts
    if encoder == "libx265":
        params = ["log-level=error"]
        if gop is not None:
            params += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
        return {"preset": "ultrafast", "crf": "20", "x265-params": ":".join(params)}
    if encoder == "libvpx-vp9":
        return {"deadline": "good", "cpu-used": "8", "crf": "20", "b": "0", "row-mt": "1"}
    if encoder == "libvpx":
        return {"deadline": "good", "cpu-used": "8", "crf": "8", "b": "2M"}
    if encoder == "libsvtav1":
        params = []
        if gop is not None:
            params.append("scd=0")
        opts = {"preset": "8", "crf": "20"}
        if params:
            opts["svtav1-params"] = ":".join(params)
        return opts
    if encoder == "libaom-av1":
        return {"cpu-used": "8", "crf": "30", "usage": "realtime"}
    return {}


def make_clip(
    path,
    *,
    codec: str = "h264",
    fps=25,
    frames: int = 50,
    width: int = 320,
    height: int = 240,
    gop: int | None = None,
    pix_fmt: str | None = None,
    container: str | None = None,
    pts_seconds: Sequence[float] | None = None,
    audio: bool = False,
    rotation: int | None = None,
    faststart: bool = False,
    first_index: int = 0,
    encoder_options: dict[str, str] | None = None,
) -> Path:
    """Encode a clip whose frame ``k`` shows index ``first_index + k``.

    codec:       "h264", "hevc", "vp9", "vp8", "mpeg4", "av1" (see ``CODECS``)
                 or a raw PyAV encoder name.
    fps:         nominal frame rate (int, float or Fraction, e.g. Fraction(30000, 1001)).
    frames:      number of frames; ignored when ``pts_seconds`` is given.
    gop:         fixed keyframe interval in frames (scene-cut keyframes off);
                 None leaves the encoder's default (one keyframe for short clips).
    pix_fmt:     encoder pixel format, default "yuv420p"; "yuv420p10le" gives
                 10-bit (h264, hevc, av1).
    container:   FFmpeg muxer name ("mp4", "webm", "matroska", "mov", "avi");
                 None: from the path's suffix, or the codec's default
                 (mp4 / webm) when the path has no suffix (the suffix is added).
    pts_seconds: explicit presentation time of every frame (variable frame
                 rate); stored with a 1/1000 s time base.
    encoder_options: the encoder's options, over this module's (e.g. a frame
                 pattern: ``{"x264-params": "keyint=30:bframes=1"}``).
    audio:       add a 1 kHz-ish sine audio stream (aac; opus in webm) as long
                 as the video.
    rotation:    display-matrix rotation (multiple of 90) in degrees
                 counter-clockwise, as PyAV (``VideoFrame.rotation``) and
                 ffprobe report it.  A player shows
                 ``np.rot90(coded, rotation // 90)`` (rotation=-90: turn the
                 coded picture 90° clockwise, like a portrait phone clip).
                 Like a phone, the coded pictures are stored sideways so that
                 the *displayed* picture is upright: ``width`` x ``height``
                 are the coded size, the display is ``height`` x ``width`` for
                 ±90, and ``read_index`` reads the displayed frame while it
                 refuses the raw coded one (``find_index`` on the raw frame
                 gives turns == (-rotation // 90) % 4).
    faststart:   mp4/mov only: put the index (moov) in front, so a truncated
                 copy still opens and decodes up to the cut.
    first_index: index shown by the first frame.

    Returns the path written (with suffix added if it had none).
    """
    path = Path(path)
    encoder = encoder_for(codec) if codec in CODECS else codec
    if encoder is None:
        raise RuntimeError(f"no encoder for {codec!r} in this PyAV build (tried {CODECS[codec]})")
    if pts_seconds is not None:
        pts_seconds = [float(t) for t in pts_seconds]
        frames = len(pts_seconds)
        if any(b <= a for a, b in zip(pts_seconds, pts_seconds[1:])):
            raise ValueError("pts_seconds must be strictly increasing")
    if frames < 1:
        raise ValueError("need at least one frame")
    if first_index + frames - 1 > MAX_INDEX:
        raise ValueError(f"at most {MAX_INDEX + 1} distinct indices")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (4:2:0 chroma)")
    if container is None and not path.suffix:
        container = _DEFAULT_CONTAINER.get(codec, "matroska")
        path = path.with_suffix(_SUFFIX[container])
    path.parent.mkdir(parents=True, exist_ok=True)
    if encoder == "libsvtav1":
        # SVT-AV1 prints a banner per encoder unless told otherwise (1 = errors only).
        os.environ.setdefault("SVT_LOG", "1")

    turns = 0
    if rotation:
        if rotation % 90:
            raise ValueError("rotation must be a multiple of 90 degrees")
        turns = (rotation // 90) % 4

    rate = _as_fraction(fps)
    pix_fmt = pix_fmt or "yuv420p"
    time_base = Fraction(1, 1000) if pts_seconds is not None else 1 / rate

    open_opts = {}
    if faststart:
        open_opts["movflags"] = "+faststart"
    fmt = container or _guess_format(path)
    if fmt is None:
        raise ValueError(f"cannot tell the container from {path.name!r}; pass container=")
    tmp = path.with_name(path.name + ".part")
    out = av.open(str(tmp), mode="w", format=fmt, options=open_opts)
    try:
        vs = out.add_stream(encoder, rate=rate, options={**_encoder_options(encoder, gop), **(encoder_options or {})})
        vs.width = width
        vs.height = height
        vs.pix_fmt = pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        if gop is not None:
            vs.codec_context.gop_size = gop
        if encoder == "mpeg4":
            vs.codec_context.bit_rate = 4_000_000
            vs.codec_context.qmin = 2
            vs.codec_context.qmax = 4
        if encoder == "libvpx-vp9" and gop is not None:
            vs.codec_context.options = {**vs.codec_context.options, "keyint_min": str(gop)}
        if rotation:
            vs.set_display_rotation(rotation)

        astream = None
        if audio:
            a_enc, a_rate = ("libopus", 48000) if fmt in ("webm", "ogg") else ("aac", 44100)
            astream = out.add_stream(a_enc, rate=a_rate)
            astream.layout = "mono"
            a_total = frames / rate if pts_seconds is None else pts_seconds[-1] + 1.0 / float(rate)
            a_chunks = _sine_chunks(float(a_total), a_rate, astream.format.name)
            a_sent = 0.0

        for k in range(frames):
            if turns % 2:
                img = np.ascontiguousarray(np.rot90(render_frame(first_index + k, height, width), -turns))
            elif turns:
                img = np.ascontiguousarray(np.rot90(render_frame(first_index + k, width, height), -turns))
            else:
                img = render_frame(first_index + k, width, height)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_seconds is None:
                vf.pts = k
            else:
                vf.pts = int(round(pts_seconds[k] * 1000))
            vf.time_base = time_base
            out.mux(vs.encode(vf))
            if astream is not None:
                t_video = float(vf.pts * time_base)
                while a_sent <= t_video + 0.1:
                    chunk = next(a_chunks, None)
                    if chunk is None:
                        break
                    out.mux(astream.encode(chunk))
                    a_sent = float(chunk.pts + chunk.samples) / chunk.sample_rate
        out.mux(vs.encode(None))
        if astream is not None:
            for chunk in a_chunks:
                out.mux(astream.encode(chunk))
            out.mux(astream.encode(None))
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    out.close()
    os.replace(tmp, path)
    return path


def _guess_format(path: Path) -> str | None:
    return {
        ".mp4": "mp4",
        ".m4v": "mp4",
        ".mov": "mov",
        ".webm": "webm",
        ".mkv": "matroska",
        ".avi": "avi",
        ".m4a": "ipod",
        ".mp3": "mp3",
        ".wav": "wav",
        ".ogg": "ogg",
        ".opus": "ogg",
    }.get(path.suffix.lower())


def _sine_chunks(seconds: float, rate: int, fmt: str, freq: float = 997.0, chunk: int = 1024):
    """Yield mono AudioFrames of a sine wave in sample format ``fmt``."""
    total = max(1, int(round(seconds * rate)))
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float64)
        wave = 0.3 * np.sin(2 * np.pi * freq * t)
        if fmt in ("s16", "s16p"):
            data = (wave * 32767).astype(np.int16)[None, :]
        elif fmt in ("s32", "s32p"):
            data = (wave * 2147483647).astype(np.int32)[None, :]
        else:  # flt / fltp
            data = wave.astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def text_page(count: int = 6, height: int = 144, width: int = 256, density: float = 0.1) -> np.ndarray:
    """uint8 [count, height, width, 3]: dark glyph-like strokes in ``density`` of the 8x8 cells of a
    pale, nearly flat page, scrolling up 3 rows a frame: footage that mixes flat and busy blocks
    (the WebP writer's mixed-detail setting)."""
    rng = np.random.default_rng(3)
    ys, xs = np.mgrid[0:height, 0:width]
    ground = np.stack([200 + xs * 20 // width, 205 + ys * 20 // height, 190 + 0 * xs], axis=-1).astype(np.uint8)
    cells = np.kron(rng.random((height // 8, width // 8)) < density, np.ones((8, 8), bool))
    ink = cells & (rng.random((height, width)) < 0.5)
    frames = np.repeat(ground[None], count, axis=0)
    for k in range(count):
        frames[k][np.roll(ink, -3 * k, axis=0)] = (20, 30, 40)
    return frames


def plasma(count: int, height: int, width: int, *, scale: float = 1.0, step: float = 1.0) -> np.ndarray:
    """uint8 [count, height, width, 3]: three moving sine fields, one per channel (waves ``scale``
    times as wide, ``step`` of phase a frame): every hue, smooth, more colours than a palette's
    4,096 histogram entries hold (bench/library-holdout's plasma in small)."""
    y, x = np.mgrid[0:height, 0:width].astype(float)
    frames = []
    for k in range(count):
        t = step * k
        frames.append(np.stack([128 + 127 * np.sin(x / (9 * scale) + 1.1 * t),
                                128 + 127 * np.sin((x + y) / (13 * scale) + 1.7 * t),
                                128 + 127 * np.sin(np.hypot(x - width / 2, y - height / 2) / (7 * scale) - 2.3 * t)],
                               axis=-1))
    return np.stack(frames).round().astype(np.uint8)


def make_audio_only(path, *, seconds: float = 1.0) -> Path:
    """Write an audio-only file (sine) chosen by suffix: .m4a/.aac-in-mp4 (aac),
    .mp3 (libmp3lame), .wav (pcm_s16le), .ogg/.opus (libopus), .mka (aac)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower() or ".m4a"
    if not path.suffix:
        path = path.with_suffix(suffix)
    enc, rate, fmt = {
        ".m4a": ("aac", 44100, "ipod"),
        ".mp4": ("aac", 44100, "mp4"),
        ".mp3": ("libmp3lame", 44100, "mp3"),
        ".wav": ("pcm_s16le", 44100, "wav"),
        ".ogg": ("libopus", 48000, "ogg"),
        ".opus": ("libopus", 48000, "ogg"),
        ".mka": ("aac", 44100, "matroska"),
    }[suffix]
    with av.open(str(path), mode="w", format=fmt) as out:
        st = out.add_stream(enc, rate=rate)
        st.layout = "mono"
        for chunk in _sine_chunks(seconds, rate, st.format.name):
            out.mux(st.encode(chunk))
        out.mux(st.encode(None))
    return path


def make_not_media(path, *, size: int = 4096, seed: int = 0) -> Path:
    """Write ``size`` random bytes (not a media file, whatever the name says)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    # make sure no accidental container signature sits at the start
    data = b"\x00NOTMEDIA\x00" + data[10:]
    path.write_bytes(data)
    return path


def make_truncated(src, dst, fraction: float) -> Path:
    """Copy the first ``fraction`` (0..1) of ``src``'s bytes to ``dst``.

    An mp4 written without ``faststart`` keeps its index at the end, so any
    truncation makes it unopenable; with ``faststart=True`` (or webm/mkv) the
    truncated file opens and decodes until the cut.
    """
    src, dst = Path(src), Path(dst)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within 0..1")
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if fraction >= 1.0:
        shutil.copyfile(src, dst)
    else:
        dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def decode_indices(path, *, stream: int = 0) -> list[tuple[float, int]]:
    """Decode ``path`` with PyAV and return ``(time_seconds, index)`` per frame
    (index -1 when unreadable).  Handy for checking fixtures."""
    result = []
    with av.open(str(path)) as inp:
        vs = inp.streams.video[stream]
        for fr in inp.decode(vs):
            try:
                idx = read_index(fr.to_ndarray(format="rgb24"))
            except ValueError:
                idx = -1
            result.append((float(fr.time) if fr.time is not None else float("nan"), idx))
    return result


def source_frames(path) -> list[np.ndarray]:
    """Every frame of a generated clip as RGB, in presentation order (frame n draws index n)."""
    with av.open(str(path)) as inp:
        frames = sorted(inp.decode(video=0), key=lambda f: f.pts)
        return [f.to_ndarray(format="rgb24") for f in frames]


def psnr_to_source(shown: Sequence[np.ndarray], source: Sequence[np.ndarray]) -> float:
    """PSNR of frames a viewer sees (RGB, one size) against the source frame each one is, read from
    its drawn index and brought to the shown size by Pillow: one yardstick for outputs of one clip
    made different ways (the GPU and CPU paths), where their PSNR to each other would mislead (a
    GIF's palette and dither follow small input differences chaotically)."""
    from PIL import Image

    size = (shown[0].shape[1], shown[0].shape[0])
    refs = np.stack([np.asarray(Image.fromarray(source[read_index(f)]).resize(size, Image.LANCZOS)) for f in shown])
    return psnr(np.stack(shown), refs)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 arrays of one shape, in dB (inf when they are equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)



def with_display_matrix(source: Path, target: Path, matrix: tuple[int, int, int, int],
                        translate: tuple[int, int] = (0, 0)) -> Path:
    """``source`` (an MP4 with one video track) written to ``target`` with its track header's
    display matrix set to [[a, b], [c, d]] (whole numbers) moved by ``translate`` pixels, as
    phones and editors write rotations and mirrors."""
    data = bytearray(Path(source).read_bytes())
    at = data.index(b"tkhd") + 4
    offset = at + (52 if data[at] == 1 else 40)  # version 1 headers hold 64-bit times
    a, b, c, d = matrix
    values = [a << 16, b << 16, 0, c << 16, d << 16, 0, translate[0] << 16, translate[1] << 16, 1 << 30]
    data[offset:offset + 36] = b"".join(v.to_bytes(4, "big", signed=True) for v in values)
    Path(target).write_bytes(bytes(data))
    return Path(target)


def ffmpeg_can(*names: str) -> bool:
    """The ffmpeg on PATH has every one of these filters or encoders (False without ffmpeg)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    listing = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    encoders = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return all(f" {name} " in listing or f" {name} " in encoders for name in names)


HDR_CLIPS = ("zscale", "libx265")
"""What :func:`hdr_clip` needs of ffmpeg (``ffmpeg_can(*HDR_CLIPS)``)."""


def hdr_clip(path: Path, transfer: str, size: tuple[int, int] = (320, 240), primaries: str = "bt2020") -> Path:
    """2 s of testsrc2 converted by zimg from SDR to 10-bit ``transfer`` (an ffmpeg color_trc
    name: "smpte2084", "arib-std-b67") with ``primaries`` (BT.2020's, or e.g. "smpte432": P3-D65),
    tagged: HEVC, or VP9 profile 2 for an odd size (x265 codes 4:2:0 in even sizes only). Needs
    ffmpeg with zscale and libx265 (Debian's)."""
    if size[0] % 2 or size[1] % 2:
        codec = ["-c:v", "libvpx-vp9", "-profile:v", "2", "-deadline", "realtime", "-cpu-used", "8",
                 "-color_primaries", primaries, "-color_trc", transfer, "-colorspace", "bt2020nc"]
        path = path.with_suffix(".webm")
    else:
        codec = ["-c:v", "libx265", "-x265-params",
                 f"colorprim={primaries}:transfer={transfer}:colormatrix=bt2020nc:log-level=error"]
    even = (size[0] + size[0] % 2, size[1] + size[1] % 2)  # testsrc2 draws even sizes, zimg subsamples
    graph = (f"format=gbrp,crop={size[0]}:{size[1]}:0:0,format=yuv444p,"  # even ones only: 4:4:4, then 4:2:0
             f"zscale=tin=bt709:t={transfer}:pin=bt709:p={primaries}:min=bt709:m=bt2020nc:rin=tv:r=tv:npl=100,"
             "format=yuv444p10le,format=yuv420p10le")
    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={even[0]}x{even[1]}:rate=25:duration=2", "-vf", graph, *codec, str(path)],
                   check=True)
    return path


def pq_card(path: Path, x265_metadata: str = "") -> Path:
    """1 s of a 64x64 grey card (SDR code 0xBF: about half of white's light, 101 cd/m²) with a white
    32x32 patch in its top-left corner at 203 cd/m² (BT.2408's HDR reference white: SDR placed in
    PQ as ``zscale=npl=203`` does), lossless 10-bit PQ HEVC with ``x265_metadata`` (its SEI:
    max-cll, master-display) or none. Needs ffmpeg with zscale and libx265."""
    graph = ("format=yuv444p,drawbox=x=0:y=0:w=32:h=32:color=white:t=fill,"
             "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=smpte2084:m=bt2020nc:p=bt2020:r=tv:npl=203,"
             "format=yuv420p10le")
    params = "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:log-level=error:lossless=1"
    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=0xbfbfbf:s=64x64:r=5:d=1", "-vf", graph, "-c:v", "libx265", "-x265-params",
                    params + (":" + x265_metadata if x265_metadata else ""), str(path)], check=True)
    return path


def ts_and_mp4_copy(folder: Path, name: str, seconds: int, *x264: str) -> tuple[Path, Path]:
    """An MPEG-TS H.264 clip made by ffmpeg (testsrc2, 160x120, 25 fps; x264's defaults put key
    frames 10 s apart; its muxer starts the times at 1.4 s) and its stream copy to MP4: the same
    frames, one container indexed, the other not. Needs ffmpeg with testsrc2 and libx264."""
    ffmpeg = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-v", "error", "-y"]
    ts, mp4 = Path(folder) / f"{name}.ts", Path(folder) / f"{name}.mp4"
    subprocess.run([*ffmpeg, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", *x264, str(ts)], check=True)
    subprocess.run([*ffmpeg, "-i", str(ts), "-c", "copy", str(mp4)], check=True)
    return ts, mp4
