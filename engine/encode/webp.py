"""Animated WebP bytes from RGB frames (libwebp's animation encoder, through Pillow).

Lossy at quality 75 by default, the same setting users know from ``ffmpeg -c:v libwebp_anim
-quality 75``. WebP runs on CPU workers: libwebp has no GPU encoder.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

DEFAULT_QUALITY = 75
DEFAULT_METHOD = 2
"""libwebp's effort (0 fast .. 6 small). ffmpeg's default is 4; on the benchmark clip (bench/)
method 2 encodes about twice as fast for about 7 % more bytes at the same or better PSNR, and the
encoder is the slowest stage of a WebP job."""
KEYFRAME_SPACING = (2, 3)
"""(kmin, kmax): a full keyframe at least every 3 frames. Lossy sub-frames are coded against the
previous *decoded* canvas, so small errors drift until a keyframe; frequent keyframes keep PSNR up
(+0.5 dB on the benchmark clip against libwebp's keyframe-free default) at no cost in bytes."""


def encode_webp(
    frames: np.ndarray,
    delays_ms: tuple[int, ...] | list[int],
    *,
    quality: int = DEFAULT_QUALITY,
    method: int = DEFAULT_METHOD,
) -> bytes:
    """Encode ``frames`` (uint8 [N, H, W, 3]) as an animated WebP that loops forever."""
    count, height, width, _ = frames.shape
    if len(delays_ms) != count:
        raise ValueError(f"{count} frames but {len(delays_ms)} delays")
    images = [Image.frombuffer("RGB", (width, height), np.ascontiguousarray(f), "raw", "RGB", 0, 1) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=[int(d) for d in delays_ms],
        loop=0,
        quality=quality,
        method=method,
        lossless=False,
        kmin=KEYFRAME_SPACING[0],
        kmax=KEYFRAME_SPACING[1],
    )
    return buffer.getvalue()
