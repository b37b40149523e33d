"""Animated AVIF bytes from RGB frames: libavif (through Pillow's ``save_all``) codes the frames as
one AV1 sequence, so a frame that barely changed costs a few bytes as an inter frame, where the
WebP writer codes every changed rectangle as a still picture.

The clock: Pillow creates libavif's encoder with a timescale of 1000, and a frame's ``duration``
is handed to ``avifEncoderAddImage`` in those units, so delays are whole milliseconds, as WebP's.
Loop: libavif's default repetition count is infinite (an ``elst`` box with the repeat flag), which
is what the engine's ``loop=0`` means; Pillow's AVIF writer has no ``loop`` option to set.

Colour: 8 bits, full range, the BT.601 matrix with BT.709 primaries and the sRGB transfer (what
Pillow writes for an RGB image without an ICC profile), and chroma at full resolution (4:4:4, AV1's
High profile, avifenc's own default for 8-bit input) rather than WebP's 4:2:0.

Quality 65, speed 8 and 4:4:4 are measured, not guessed: ``bench/avif_quality.py`` encodes the
frames of four real clips at every setting of a grid next to the engine's WebP and keeps the one
with the fewest bytes whose PSNR is at least WebP's on every clip, within twice WebP's encode
time; ``bench/results/avif-vs-webp.md`` has the table. In short: speeds 7-10 run libaom in its
real-time mode (speed 6 and below, its good-quality mode, made files about half the size but
took 12-15 times WebP's encode time and about 300 bytes of encoder memory per pixel of a frame,
which the job's memory estimate does not count); at 4:2:0 the colour detail of one clip held AVIF
below WebP's PSNR until quality 90, where 4:4:4 matches it at quality 65.

Memory: at speed 8 libaom holds about 65-150 bytes per pixel of a frame (150 on noise), whatever
the frame count (measured: 60 and 300 frames of 640x360 alike), and this writer hands it one
frame at a time (see :class:`_FrameSequence`).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import EngineError, ErrorCode
from . import avif_unavailable

DEFAULT_QUALITY = 65
"""libavif's quality, 0 (worst) .. 100 (lossless). See bench/results/avif-vs-webp.md."""
DEFAULT_SPEED = 8
"""libavif's speed, 0 (slowest, smallest) .. 10 (fastest). See bench/results/avif-vs-webp.md."""
DEFAULT_SUBSAMPLING = "4:4:4"
"""Chroma resolution: "4:4:4" keeps colour at full resolution (AV1's High profile), "4:2:0" halves it
both ways (Main profile), as WebP always does. See bench/results/avif-vs-webp.md."""
THREADS = 1
"""Encoder threads per job: the batch runs one job per core side by side (a worker gets one compute
thread), as the WebP encoder does with its single thread; libavif's default, every core, would
oversubscribe the machine N times over."""


class _FrameSequence(Image.Image):
    """The frames as one multi-frame Pillow image whose frames are made when read.

    Pillow's AVIF writer takes ``append_images`` as a list, and a Pillow RGB image holds 4 bytes a
    pixel: a list of N images would be 4N bytes a pixel more than the frames themselves. Pillow
    reads a multi-frame image by ``seek``ing through it instead, so this image makes frame k's
    pixels only when frame k is read (``load``, which ``tobytes`` calls): one Pillow copy at a time.
    """

    def __init__(self, frames: np.ndarray) -> None:
        super().__init__()
        count, height, width, _ = frames.shape
        self._frames = frames
        self._mode = "RGB"
        self._size = (width, height)
        self.n_frames = count
        self.is_animated = count > 1
        self._index = 0
        self._made = -1

    def seek(self, frame: int) -> None:
        if not 0 <= frame < self.n_frames:
            raise EOFError("no more frames")
        self._index = frame

    def tell(self) -> int:
        return self._index

    def load(self):
        if self._made != self._index:
            self.im = Image.fromarray(np.ascontiguousarray(self._frames[self._index]), "RGB").im
            self._made = self._index
        return super().load()


def encode_avif(
    frames: np.ndarray,
    delays_ms: tuple[int, ...] | list[int],
    *,
    quality: int = DEFAULT_QUALITY,
    speed: int = DEFAULT_SPEED,
    subsampling: str = DEFAULT_SUBSAMPLING,
    threads: int = THREADS,
) -> bytes:
    """Encode ``frames`` (uint8 [N, H, W, 3]) as a lossy animated AVIF that loops forever.

    ``delays_ms[k]`` is how long frame ``k`` stays on screen, in milliseconds (whole, at least 1).
    Every frame is kept (an unchanged one costs a few bytes as an AV1 inter frame), so the file
    holds exactly N frames with exactly these durations. One frame is written as a still AVIF
    (libavif does so whatever it is asked): it shows for as long as the page does, no duration.
    """
    count = frames.shape[0]
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    if len(delays_ms) != count:
        raise ValueError(f"{count} frames but {len(delays_ms)} delays")
    durations = [int(d) for d in delays_ms]
    if count == 0 or min(durations) < 1:
        raise ValueError("an AVIF animation needs at least one frame and delays of at least 1 ms")
    missing = avif_unavailable()
    if missing:
        raise EngineError(ErrorCode.FORMAT_UNAVAILABLE, missing)
    buffer = io.BytesIO()
    _FrameSequence(frames).save(buffer, format="AVIF", save_all=True, duration=durations, quality=quality,
                                speed=speed, max_threads=threads, subsampling=subsampling)
    return buffer.getvalue()
