"""Animated WebP bytes from RGB frames: libwebp (through Pillow) codes each frame, and this module
writes the animation container (RIFF/WEBP with VP8X, ANIM and one ANMF chunk per frame) itself.

Why not libwebp's animation encoder (``Image.save(save_all=True)``)? On the benchmark clip it
spends 1.6x as long for the same frames (0.555 s against 0.34 s for 45 frames at method 2): it
codes many frames twice (a key-frame candidate and a sub-frame candidate) and works on an ARGB
canvas with alpha blending. Coding each frame
once, as a still image, is the cheapest way to the same pictures, and it cannot drift: a lossy
sub-frame in libwebp's encoder is blended onto the previous *decoded* canvas, so small errors
persist until the next key frame.

What the animation encoder did buy, skipping unchanged areas, is kept in a simpler form: each
frame is compared with what the viewer's canvas holds (the source pixels last written there), and
only the bounding box of pixels that moved by more than ``change_threshold`` is coded, as a
sub-frame without blending. A frame with no change just extends the previous frame's duration.
Comparing with the canvas, not with the previous frame, means a slow fade is still refreshed once
its pixels have drifted past the threshold, so no error accumulates beyond it.

Lossy at quality 45, libwebp's method 1, by default: chosen by measurement against ffmpeg's
``libwebp_anim -quality 75`` (its default) on the 14-clip previews library
(``python -m bench.quality_library --sides engine-webp,ffmpeg-webp``, bench/make_library.py). At the
clips' own size, the mean over 14 clips: quality 75 method 2 (the old default) 34.28 dB at 1.18 MB
(26% more bytes than ffmpeg's 934 KB, its PSNR 30.40 dB); 60/2 33.57 dB at 1.00 MB; 50/2 33.09 dB at
900 KB; 50/1 33.30 dB at 989 KB; 45/1 33.03 dB at 929 KB in 0.56 s a clip against ffmpeg's 0.90 s.
Resized to 480 px: 45/1 31.73 dB at 462 KB against ffmpeg's 29.98 dB at 502 KB. So the same
frames look better than libwebp's animation encoder makes them at its default, in fewer bytes,
1.3-1.6x as fast. Per clip it is not uniform: on film grain and on screen text ffmpeg's frames
score higher (-0.9 to -2.7 dB), on flat graphics and colour bars ours take more bytes for
+3 to +7 dB (bench/results/quality-library.md).
"""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

DEFAULT_QUALITY = 45
"""libwebp's quality, 0..100 (see the module docstring for how 45 was chosen)."""
DEFAULT_METHOD = 1
"""libwebp's effort (0 fast .. 6 small). ffmpeg's default is 4; on the benchmark clip method 2
coded frames 2.3x as fast as 4 for 6 % more bytes (45 stills: 0.33 s vs 0.77 s, 619 vs 582 KB);
on the library method 1 is about 10% faster again for about 10% more bytes at equal quality, and
the encoder is the slowest stage of a WebP job. A byte budget (``max_bytes``) also tries method 4
(``Format.efforts``, engine/byte_budget.py ``_more_effort``): at quality 45, screen text 1.66 MB
-> 1.30 MB (38.11 -> 37.93 dB), film grain 1.15 -> 0.95 MB (32.46 -> 32.19 dB), but the talking
head 205 -> 134 KB at 37.82 -> 36.17 dB, for 2.5x the encoding time (the previews library at
source size, 2026-12-04): what its decoded frames show decides."""
CHANGE_THRESHOLD = 6
"""A pixel counts as changed when a channel differs from the canvas by more than this (0-255)."""
CODING_THREADS: int | None = None
"""Stills :func:`encode_webp` codes at once when not told: None, the job's compute threads
(``torch.get_num_threads()``, which the process executors set to each job's share of the cores);
the GPU node executor sets 1, its pool of encoder threads being the parallelism there."""
_FULL_FRAME_SHARE = 0.75
"""Above this share of the canvas a changed box is coded as the whole frame (simpler, no seams)."""


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def _still_bitstream(rgb: np.ndarray, quality: int, method: int) -> bytes:
    """The image-data chunks (VP8, or ALPH + VP8) of one frame coded as a still WebP."""
    height, width, _ = rgb.shape
    image = Image.frombuffer("RGB", (width, height), np.ascontiguousarray(rgb), "raw", "RGB", 0, 1)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality, method=method, lossless=False)
    data = buffer.getvalue()
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        fourcc, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        if fourcc in (b"VP8 ", b"ALPH"):
            chunks.append(data[offset:offset + 8 + size + (size & 1)])
        offset += 8 + size + (size & 1)
    if not chunks:  # pragma: no cover - libwebp always writes a VP8 chunk for lossy RGB
        raise RuntimeError("libwebp returned no image data")
    return b"".join(chunks)


def _changed_box(frame: np.ndarray, canvas: np.ndarray, threshold: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around pixels differing from the canvas, x0/y0 even; None if none.

    Works in uint8 (|a - b| as max - min) and reduces along rows first: a few passes over the
    frame's bytes, not the int16 copies a plain ``abs(a - b)`` would make.
    """
    distance = np.maximum(frame, canvas)
    distance -= np.minimum(frame, canvas)
    moved = distance > threshold
    rows = np.flatnonzero(moved.reshape(moved.shape[0], -1).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(moved[rows[0]:rows[-1] + 1].any(axis=0).any(axis=1))
    x0, y0 = int(cols[0]) & ~1, int(rows[0]) & ~1  # ANMF stores offsets halved
    return x0, y0, int(cols[-1]) + 1, int(rows[-1]) + 1


def encode_webp(
    frames: np.ndarray,
    delays_ms: tuple[int, ...] | list[int],
    *,
    quality: int = DEFAULT_QUALITY,
    method: int = DEFAULT_METHOD,
    change_threshold: int = CHANGE_THRESHOLD,
    threads: int | None = None,
) -> bytes:
    """Encode ``frames`` (uint8 [N, H, W, 3]) as a lossy animated WebP that loops forever.

    ``delays_ms[k]`` is how long frame ``k`` stays on screen, in milliseconds. ``threads``: stills
    coded at once (None: :data:`CODING_THREADS`, else the job's compute threads). libwebp runs
    without the GIL, so a job alone on two cores codes its frames in about half the time (8
    frames of 960x540: method 1 0.245 -> 0.153 s, method 4 0.772 -> 0.370 s), the same bytes; a
    pool with a job per core gives each one thread, as before.
    """
    count, height, width, _ = frames.shape
    if len(delays_ms) != count:
        raise ValueError(f"{count} frames but {len(delays_ms)} delays")
    canvas = frames[0].copy()
    planned: list[list] = []  # [x0, y0, x1, y1, duration, frame index]
    for k in range(count):
        box = (0, 0, width, height) if k == 0 else _changed_box(frames[k], canvas, change_threshold)
        if box is None:  # nothing moved: the previous frame simply stays longer
            planned[-1][4] += int(delays_ms[k])
            continue
        x0, y0, x1, y1 = box
        if (x1 - x0) * (y1 - y0) > _FULL_FRAME_SHARE * width * height:
            x0, y0, x1, y1 = 0, 0, width, height
        canvas[y0:y1, x0:x1] = frames[k, y0:y1, x0:x1]
        planned.append([x0, y0, x1, y1, int(delays_ms[k]), k])

    if threads is None:
        threads = CODING_THREADS
    if threads is None:
        import torch  # the executors' per-job thread count; torch is loaded in every engine process

        threads = torch.get_num_threads()
    crops = [frames[k, y0:y1, x0:x1] for x0, y0, x1, y1, _, k in planned]
    if threads > 1 and len(crops) > 1:
        with ThreadPoolExecutor(max_workers=min(threads, len(crops)), thread_name_prefix="webp") as pool:
            coded = list(pool.map(lambda crop: _still_bitstream(crop, quality, method), crops))
    else:
        coded = [_still_bitstream(crop, quality, method) for crop in crops]
    body = []
    for (x0, y0, x1, y1, duration, k), image_data in zip(planned, coded):
        header = (_u24(x0 // 2) + _u24(y0 // 2) + _u24(x1 - x0 - 1) + _u24(y1 - y0 - 1)
                  + _u24(min(duration, 0xFFFFFF)) + bytes([0b10]))  # no blending, no disposal
        body.append(_chunk(b"ANMF", header + image_data))
    vp8x = _chunk(b"VP8X", bytes([0b10, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))  # animation flag
    anim = _chunk(b"ANIM", b"\0\0\0\0" + struct.pack("<H", 0))  # background, loop forever
    payload = b"WEBP" + vp8x + anim + b"".join(body)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload
