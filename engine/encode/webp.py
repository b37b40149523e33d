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

Inside the box, 8x8 blocks whose pixels are all within :data:`SEE_THROUGH_THRESHOLD` of the
canvas may be left see-through (alpha 0, the frame alpha-blended onto the canvas): libwebp
flattens fully transparent 8x8 blocks before coding, so they cost almost nothing. That is what
made libwebp's animation encoder smaller on still footage (a film where the whole picture moves a
little but most blocks repeat exactly: ours stored 34 of 45 frames whole). Such frames are coded
with libwebp's loop filter off, as its animation encoder codes the frames it blends (the filter
would smooth across the flattened blocks' edges into the opaque pixels beside them;
:mod:`.libwebp`). It is done only when the blocks left see-through hold at least
:data:`SEE_THROUGH_DETAIL` of the box's detail (the sum of the pixel-to-pixel differences),
because a frame with transparency is coded worse where it is opaque, which smooth still blocks
(sky, a flat background) do not pay back: their coded bytes were few. Measured at method 1 frame
by frame against every frame coded opaque, each way's quality raised until it filled the opaque
coding's bytes at quality 45 (notes/quality-per-byte.md): the still film +2.05 dB, colour bars
+0.74, flat logo +0.77, 1080p animation +0.07, VP9 animation, screen text and the live camera
within 0.01 dB; without the detail rule the 1080p animation -0.46 and flat logo -0.64. And only
when the clip's first see-through frames (:data:`SEE_THROUGH_TRIAL`), coded both ways, come out
smaller than opaque: on smooth footage the flattened blocks' edges and the alpha plane cost more
than the still blocks did (the talking head at 480 px: its see-through frames 1.01-1.21x the
opaque ones' bytes at method 1, 1.13-1.32x at method 4, 10th to 90th percentile, and its file at
ffmpeg's bytes 35.5 dB instead of 38.9 at method 4). When the trial says no, the frames are
planned again without see-through blocks (about 6% of the talking head's encode time).

Lossy at quality 45, libwebp's method 1, by default: chosen by measurement against ffmpeg's
``libwebp_anim -quality 75`` (its default) on the 14-clip previews library
(``python -m bench.quality_library --sides engine-webp,ffmpeg-webp``, bench/make_library.py). At the
clips' own size, the mean over 14 clips: quality 75 method 2 (the old default) 34.28 dB at 1.18 MB
(26% more bytes than ffmpeg's 934 KB, its PSNR 30.40 dB); 60/2 33.57 dB at 1.00 MB; 50/2 33.09 dB at
900 KB; 50/1 33.30 dB at 989 KB; 45/1 33.03 dB at 929 KB in 0.56 s a clip against ffmpeg's 0.90 s.
Resized to 480 px: 45/1 31.73 dB at 462 KB against ffmpeg's 29.98 dB at 502 KB. So the same
frames look better than libwebp's animation encoder makes them at its default, in fewer bytes,
1.3-1.6x as fast. Per clip it was not uniform: on film grain and on screen text ffmpeg's frames
scored higher (-0.9 to -2.7 dB; screen text at equal bytes +1.01 / +0.15 at source size / resized
since the mixed-detail setting below), on flat graphics and colour bars ours take more bytes for
+3 to +7 dB (bench/results/quality-library.md). Footage that mixes flat and busy areas (text,
graphics, a face before a plain wall) is coded at method 2, quality 60 instead
(:func:`chosen_setting`): there libwebp's block analysis, which method 1 skips, is worth more
than its time.
"""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ...kernels import canvas_scan, compiled
from . import libwebp

DEFAULT_QUALITY = 45
"""libwebp's quality, 0..100 (see the module docstring for how 45 was chosen)."""
DEFAULT_METHOD = 1
"""libwebp's effort (0 fast .. 6 small) for most footage (:data:`MIXED_DETAIL_SETTING` for the
rest). ffmpeg's default is 4; on the benchmark clip method 2 coded frames 2.3x as fast as 4 for
6 % more bytes (45 stills: 0.33 s vs 0.77 s, 619 vs 582 KB); on the library method 1 is about 10% faster again for about 10% more bytes at equal quality, and
the encoder is the slowest stage of a WebP job. A byte budget (``max_bytes``) also tries methods 2
and 4 (``Format.efforts``, engine/byte_budget.py ``_more_effort``): at quality 45, method 4 codes
screen text 1.66 MB -> 1.30 MB (38.11 -> 37.93 dB), film grain 1.15 -> 0.95 MB (32.46 -> 32.19
dB), but the talking head 205 -> 134 KB at 37.82 -> 36.17 dB, for 2.5x the encoding time (the
previews library at source size, 2026-12-04): what its decoded frames show decides. Method 2
joined with the see-through blocks: at ffmpeg's bytes it took colour bars from 31.55 to 33.26 dB
and the talking head from 37.36 to 38.80 (the library's WebP pair, 2026-12-04)."""
MIXED_DETAIL_SETTING = (60, 2)
"""(quality, method) for footage whose macroblocks mix flat and busy areas (:func:`detail_spread` at
least :data:`MIXED_DETAIL_SPREAD`): text, graphics and bars on flat ground, a face before a plain
wall, a still film. libwebp's methods 0 and 1 skip its per-macroblock analysis, so every block
gets one quantizer; from method 2 it sorts blocks into segments by activity and shifts bits from
busy ones (where noise hides the error) to flat ones. On such footage that is worth +0.7 to +2.5
dB at the same bytes for 1.16-1.39x the coding time; on footage busy all over (grain, sport, pixel art,
the PQ clip) -0.4 to +0.3 dB. Quality 60 because method 2's quality numbers make fewer bytes:
on the 15 library jobs above the line, method 2 at 60 made 1-21% fewer bytes than method 1 at 45
at +0.27 to +0.92 dB (``python -m bench.webp_methods``, bench/results/webp-methods.md, 2026-12-05)."""
MIXED_DETAIL_SPREAD = 3.4
"""The :func:`detail_spread` from which a clip is coded at :data:`MIXED_DETAIL_SETTING`. On the
previews library's 32 jobs (16 clips, source size and 480 px), method 2 at equal bytes gained
+0.68 to +2.49 dB on the 15 at 3.42-5.85, and -0.38 to +0.85 on the 17 at 1.54-3.38 (5 of them
+0.49 to +0.85: the 1080p and VP9 animations at source size, low light resized, the rotated
clip; left at method 1, the cheaper mistake; bench/results/webp-methods.md)."""
CHANGE_THRESHOLD = 6
"""A pixel counts as changed when a channel differs from the canvas by more than this (0-255)."""
CODING_THREADS: int | None = None
"""Stills :func:`encode_webp` codes at once when not told: None, the job's compute threads
(``torch.get_num_threads()``, which the process executors set to each job's share of the cores);
the GPU node executor sets 1, its pool of encoder threads being the parallelism there."""
SEE_THROUGH_THRESHOLD = 5
"""An 8x8 block may be left see-through when no channel of its pixels is more than this (0-255)
from the canvas. The canvas keeps its old pixels there, so no error accumulates beyond it. 5
(libwebp's animation encoder allows 5 at its quality 75) rather than 2: the still film at ffmpeg's
bytes +0.58 dB instead of -1.19 (source; resized +0.06 instead of -1.56), colour bars +7.01
instead of +6.69; at 8 the engine's own files lose more quality than they save bytes (the film
-0.44). The library's WebP pair, 2026-12-05 (notes/quality-per-byte.md)."""
SEE_THROUGH_DETAIL = 0.4
"""Blocks are left see-through only when they hold at least this share of the box's detail (see
the module docstring); below it the frame is coded opaque."""
SEE_THROUGH_TRIAL = 3
"""How many of a clip's first see-through frames are also coded opaque; see-through frames are kept
only if these came out smaller in total (else every frame is planned opaque)."""
_FULL_FRAME_SHARE = 0.75
"""Above this share of the canvas a changed box is coded as the whole frame (simpler, no seams)."""
_BLOCK = 8
"""libwebp's flattening unit for transparent areas of a lossy frame, and ours for see-through blocks."""


@dataclass(frozen=True, eq=False)
class PlannedFrame:
    """One stored frame of the animation: the box of the canvas it codes, how long it stays on
    screen, which input frame it shows, and the box's whole 8x8 blocks it leaves see-through
    (``see_through[r, c]`` for the block at row ``8 r``, column ``8 c`` of the box; None: opaque)."""

    box: tuple[int, int, int, int]
    duration_ms: int
    index: int
    see_through: np.ndarray | None = None


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def _still_bitstream(rgb: np.ndarray, alpha: np.ndarray | None, quality: int, method: int) -> bytes:
    """The image-data chunks (VP8, or ALPH + VP8) of one frame coded as a still WebP. A frame with
    see-through blocks (``alpha``) is coded with libwebp's loop filter off, as libwebp's animation
    encoder codes the frames it blends (:mod:`.libwebp` says why); through Pillow, with the filter
    on, where that module cannot load libwebp."""
    if libwebp.unavailable() is None:
        data = libwebp.encode_still(rgb, alpha, quality, method, loop_filter=alpha is None)
    else:
        height, width, _ = rgb.shape
        image = Image.frombuffer("RGB", (width, height), np.ascontiguousarray(rgb), "raw", "RGB", 0, 1)
        if alpha is not None:
            image.putalpha(Image.frombuffer("L", (width, height), alpha, "raw", "L", 0, 1))
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


def _distance(frame: np.ndarray, canvas: np.ndarray) -> np.ndarray:
    """|frame - canvas| per channel, in uint8 (max - min): no int16 copies of the frame."""
    distance = np.maximum(frame, canvas)
    distance -= np.minimum(frame, canvas)
    return distance


def _rgb_rows(pixels: np.ndarray) -> np.ndarray:
    """[H, W, 3] bytes as the [H, W x 3] rows the compiled loops read: a view (:func:`plan_frames`
    hands the loops C-ordered, writable frames, which their signatures require)."""
    return pixels.reshape(pixels.shape[0], -1)


def _compiled() -> bool:
    """Whether the planner's questions go to :mod:`kernels.canvas_scan`'s loops (else to NumPy)."""
    return canvas_scan.SCAN_CHANGED_BOX is not None and compiled.ENABLED


def _changed_box(frame: np.ndarray, canvas: np.ndarray, threshold: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the pixels of ``frame`` that a channel puts more than ``threshold``
    from ``canvas``, x0/y0 even (ANMF stores offsets halved); None if none."""
    if _compiled():
        box = np.zeros(4, np.int64)
        if not canvas_scan.SCAN_CHANGED_BOX(_rgb_rows(frame), _rgb_rows(canvas), threshold, box):
            return None
        x0, y0, x1, y1 = (int(value) for value in box)
        return x0, y0, x1, y1
    moved = _distance(frame, canvas) > threshold  # reduced along rows first: a few passes over the bytes
    rows = np.flatnonzero(moved.reshape(moved.shape[0], -1).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(moved[rows[0]:rows[-1] + 1].any(axis=0).any(axis=1))
    return int(cols[0]) & ~1, int(rows[0]) & ~1, int(cols[-1]) + 1, int(rows[-1]) + 1


def _blocks(pixels: np.ndarray) -> np.ndarray:
    """A view of the whole 8x8 blocks of ``pixels`` [H, W, ...] as [rows, 8, cols, 8, ...] (the
    partial blocks at the right and bottom edges left out): writing to it writes ``pixels``, also
    for a crop of a larger array, since splitting axes never needs a copy."""
    rows, cols = pixels.shape[0] // _BLOCK, pixels.shape[1] // _BLOCK
    return pixels[:rows * _BLOCK, :cols * _BLOCK].reshape(rows, _BLOCK, cols, _BLOCK, *pixels.shape[2:])


def _across_block(values: np.ndarray, combine: np.ufunc) -> np.ndarray:
    """``combine`` reduced over the short last axis of [rows, cols, n], one whole-array step per
    element of it: numpy's own reduction over a short contiguous axis is several times slower."""
    out = values[..., 0].copy()
    for i in range(1, values.shape[-1]):
        combine(out, values[..., i], out=out)
    return out


def _still_blocks(crop: np.ndarray, region: np.ndarray, threshold: int) -> np.ndarray:
    """[rows, cols] bool: whether each whole 8x8 block of ``crop`` is within ``threshold`` of the
    canvas's ``region`` in every channel."""
    rows, cols = crop.shape[0] // _BLOCK, crop.shape[1] // _BLOCK
    near = _distance(crop[:rows * _BLOCK, :cols * _BLOCK], region[:rows * _BLOCK, :cols * _BLOCK])
    near = near.reshape(rows, _BLOCK, -1).max(axis=1)
    return _across_block(near.reshape(rows, cols, -1), np.maximum) <= threshold


def _block_detail(crop: np.ndarray) -> np.ndarray:
    """[rows, cols] int64: each whole 8x8 block's share of the box's detail (horizontal and vertical
    neighbour differences of the channel sum, on every other pixel: an estimate of what the block
    would cost to code)."""
    rows, cols = crop.shape[0] // _BLOCK, crop.shape[1] // _BLOCK
    sampled = crop[:rows * _BLOCK:2, :cols * _BLOCK:2]
    level = sampled[..., 0].astype(np.int16)  # channel by channel: a sum over axis 2 is 10x slower
    level += sampled[..., 1]
    level += sampled[..., 2]
    edges = np.zeros(level.shape, np.int16)  # at most 2 x 765
    np.abs(level[:, 1:] - level[:, :-1], out=edges[:, 1:])
    edges[1:] += np.abs(level[1:] - level[:-1])
    half = _BLOCK // 2
    return _across_block(edges.reshape(rows, half, -1).sum(axis=1).reshape(rows, cols, half), np.add)


def _see_through_blocks(frame: np.ndarray, canvas: np.ndarray, box: tuple[int, int, int, int],
                        threshold: int, detail: float) -> np.ndarray | None:
    """The box's whole 8x8 blocks to leave see-through ([rows, cols] bool), or None to code the
    box opaque: blocks within ``threshold`` of the canvas, when they hold at least ``detail`` of
    the box's detail (:func:`_block_detail`)."""
    x0, y0, x1, y1 = box
    rows, cols = (y1 - y0) // _BLOCK, (x1 - x0) // _BLOCK
    if rows == 0 or cols == 0:
        return None
    if _compiled():
        frame_rows = _rgb_rows(frame)
        still = np.empty((rows, cols), np.bool_)
        canvas_scan.SCAN_STILL_BLOCKS(frame_rows, _rgb_rows(canvas), x0, y0, threshold, still)
        if not still.any():
            return None
        per_block = np.empty((rows, cols), np.int64)
        canvas_scan.SCAN_BLOCK_DETAIL(frame_rows, x0, y0, per_block)
    else:
        crop = frame[y0:y1, x0:x1]
        still = _still_blocks(crop, canvas[y0:y1, x0:x1], threshold)
        if not still.any():
            return None
        per_block = _block_detail(crop)
    total = int(per_block.sum())
    if total == 0 or int(per_block[still].sum()) < detail * total:
        return None
    return still


def detail_spread(frames: np.ndarray, samples: int = 4) -> float:
    """How unevenly detail is spread over the picture: the standard deviation, over its 16x16
    macroblocks, of log2(1 + the block's variance), the median over ``samples`` frames spread
    through the clip (one title card or fade does not decide). Green stands in for luma and every
    other row is read (3 ms a 1080p frame). About 1-2.5 on footage busy all over, 3-3.4 on
    ordinary scenes, 3.5-6 on flat ground with sharp detail (:data:`MIXED_DETAIL_SPREAD`)."""
    count, height, width, _ = frames.shape
    rows, cols = height // 16, width // 16
    if count == 0 or rows == 0 or cols == 0:
        return 0.0
    spreads = []
    for k in np.linspace(0, count - 1, min(samples, count)).round().astype(int):
        green = frames[k, :rows * 16:2, :cols * 16, 1].astype(np.float32).reshape(rows, 8, cols, 16)
        mean = green.mean(axis=(1, 3))
        variance = np.maximum((green * green).mean(axis=(1, 3)) - mean * mean, 0.0)
        spreads.append(float(np.log2(1.0 + variance).std()))
    return float(np.median(spreads))


def chosen_setting(frames: np.ndarray) -> tuple[int, int]:
    """The (quality, method) a clip is coded at when the caller names neither: :data:`MIXED_DETAIL_SETTING`
    for mixed flat and busy footage, else :data:`DEFAULT_QUALITY` at :data:`DEFAULT_METHOD`."""
    if detail_spread(frames) >= MIXED_DETAIL_SPREAD:
        return MIXED_DETAIL_SETTING
    return DEFAULT_QUALITY, DEFAULT_METHOD


def plan_frames(
    frames: np.ndarray,
    delays_ms: tuple[int, ...] | list[int],
    change_threshold: int = CHANGE_THRESHOLD,
    see_through_threshold: int | None = SEE_THROUGH_THRESHOLD,
    see_through_detail: float = SEE_THROUGH_DETAIL,
) -> list[PlannedFrame]:
    """Which frames to store, which box of the canvas each codes and which of its blocks it leaves
    see-through (``see_through_threshold`` None: none), tracking the canvas of source pixels."""
    count, height, width, _ = frames.shape
    if _compiled() and not (frames.flags.c_contiguous and frames.flags.writeable):
        frames = np.array(frames, order="C")  # once for the clip, not per frame and question
    canvas = np.array(frames[0], order="C")  # C-ordered whatever the frames are: the loops paint it in place
    planned: list[PlannedFrame] = []
    for k in range(count):
        box = (0, 0, width, height) if k == 0 else _changed_box(frames[k], canvas, change_threshold)
        if box is None:  # nothing moved: the previous frame simply stays longer
            planned[-1] = replace(planned[-1], duration_ms=planned[-1].duration_ms + int(delays_ms[k]))
            continue
        x0, y0, x1, y1 = box
        if (x1 - x0) * (y1 - y0) > _FULL_FRAME_SHARE * width * height:
            x0, y0, x1, y1 = 0, 0, width, height
        crop, region = frames[k, y0:y1, x0:x1], canvas[y0:y1, x0:x1]
        see_through = None
        if k > 0 and see_through_threshold is not None:
            see_through = _see_through_blocks(frames[k], canvas, (x0, y0, x1, y1), see_through_threshold,
                                              see_through_detail)
        if see_through is None:
            region[...] = crop
        elif _compiled():  # the canvas keeps its pixels where the viewer's does
            canvas_scan.SCAN_PAINT_CANVAS(_rgb_rows(frames[k]), _rgb_rows(canvas), x0, y0, x1, y1, see_through)
        else:
            rows, cols = see_through.shape
            region[rows * _BLOCK:] = crop[rows * _BLOCK:]
            region[:rows * _BLOCK, cols * _BLOCK:] = crop[:rows * _BLOCK, cols * _BLOCK:]
            np.copyto(_blocks(region), _blocks(crop), where=~see_through[:, None, :, None, None])
        planned.append(PlannedFrame((x0, y0, x1, y1), int(delays_ms[k]), k, see_through))
    return planned


def _alpha_plane(plan: PlannedFrame) -> np.ndarray | None:
    """The box's alpha: 0 in its see-through blocks, 255 elsewhere; None for an opaque frame."""
    if plan.see_through is None:
        return None
    x0, y0, x1, y1 = plan.box
    alpha = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    opaque = np.where(plan.see_through, np.uint8(0), np.uint8(255))
    _blocks(alpha)[...] = opaque[:, None, :, None]  # a broadcast copy: 0.5 ms a 720p frame, a masked one 1.1
    return alpha


def encode_webp(
    frames: np.ndarray,
    delays_ms: tuple[int, ...] | list[int],
    *,
    quality: int | None = None,
    method: int | None = None,
    change_threshold: int = CHANGE_THRESHOLD,
    see_through_threshold: int | None = SEE_THROUGH_THRESHOLD,
    threads: int | None = None,
) -> bytes:
    """Encode ``frames`` (uint8 [N, H, W, 3]) as a lossy animated WebP that loops forever.

    ``delays_ms[k]`` is how long frame ``k`` stays on screen, in milliseconds. ``threads``: stills
    coded at once (None: :data:`CODING_THREADS`, else the job's compute threads). libwebp runs
    without the GIL, so a job alone on two cores codes its frames in about half the time (8
    frames of 960x540: method 1 0.245 -> 0.153 s, method 4 0.772 -> 0.370 s), the same bytes; a
    pool with a job per core gives each one thread, as before. ``see_through_threshold``: see
    :func:`plan_frames` (None: every stored frame opaque). ``method`` None: the frames choose
    (:func:`chosen_setting`), and so does ``quality`` if it is None too; a ``method`` given alone
    codes at :data:`DEFAULT_QUALITY`.
    """
    count, height, width, _ = frames.shape
    if len(delays_ms) != count:
        raise ValueError(f"{count} frames but {len(delays_ms)} delays")
    if method is None:
        chosen_quality, method = chosen_setting(frames)
        quality = chosen_quality if quality is None else quality
    elif quality is None:
        quality = DEFAULT_QUALITY
    planned = plan_frames(frames, delays_ms, change_threshold, see_through_threshold)

    if threads is None:
        threads = CODING_THREADS
    if threads is None:
        import torch  # the executors' per-job thread count; torch is loaded in every engine process

        threads = torch.get_num_threads()

    def code(plan: PlannedFrame) -> bytes:
        x0, y0, x1, y1 = plan.box
        return _still_bitstream(frames[plan.index, y0:y1, x0:x1], _alpha_plane(plan), quality, method)

    def code_all(plans: list[PlannedFrame]) -> list[bytes]:
        if threads > 1 and len(plans) > 1:
            with ThreadPoolExecutor(max_workers=min(threads, len(plans)), thread_name_prefix="webp") as pool:
                return list(pool.map(code, plans))
        return [code(plan) for plan in plans]

    def key(plan: PlannedFrame) -> tuple:  # what a stored frame's bytes depend on, quality and method aside
        return plan.index, plan.box, plan.see_through is not None

    coded: dict[tuple, bytes] = {}
    trial = [plan for plan in planned if plan.see_through is not None][:SEE_THROUGH_TRIAL]
    if trial:  # see-through frames are worth it only if smaller: the first few coded both ways decide
        opaque = [replace(plan, see_through=None) for plan in trial]
        coded.update(zip(map(key, trial + opaque), code_all(trial + opaque)))
        if sum(len(coded[key(plan)]) for plan in trial) >= sum(len(coded[key(plan)]) for plan in opaque):
            planned = plan_frames(frames, delays_ms, change_threshold, None)
    todo = [plan for plan in planned if key(plan) not in coded]
    coded.update(zip(map(key, todo), code_all(todo)))
    body = []
    for plan in planned:
        image_data = coded[key(plan)]
        x0, y0, x1, y1 = plan.box
        blending = 0 if plan.see_through is not None else 0b10  # alpha-blend onto the canvas, or replace
        header = (_u24(x0 // 2) + _u24(y0 // 2) + _u24(x1 - x0 - 1) + _u24(y1 - y0 - 1)
                  + _u24(min(plan.duration_ms, 0xFFFFFF)) + bytes([blending]))  # never disposed
        body.append(_chunk(b"ANMF", header + image_data))
    alpha = 0x10 if any(plan.see_through is not None for plan in planned) else 0
    vp8x = _chunk(b"VP8X", bytes([0b10 | alpha, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))  # animation
    anim = _chunk(b"ANIM", b"\0\0\0\0" + struct.pack("<H", 0))  # background, loop forever
    payload = b"WEBP" + vp8x + anim + b"".join(body)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload
