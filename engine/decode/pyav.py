"""CPU decoding with PyAV (FFmpeg's decoders).

Seeks to the keyframe at or before the first instant and decodes forward only until the frame on
screen at the last instant is known, so a clip at minute 50 never decodes minutes 0-49. Only the
frames actually shown are converted to RGB; frames passed over on the way are decoded where later
frames are predicted from them, and dropped undecoded where none is (:class:`_Unshown`).

Colour: conversion to RGB uses the frame's own matrix and range tags; an untagged frame, the
matrix the stream's header (a container's ``colr``) says; with no word anywhere, HD video (720 rows
or more) is taken as BT.709 and smaller video as BT.601, which is what players assume.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Iterator, Sequence

import av
import numpy as np
import torch

from . import FIT_CHUNK, FIT_CHUNK_BYTES, CodedFit, DecodedClip, Fit, YUVPlanes, unreadable
from .frame_tags import (MATRIX_BY_COLORSPACE, colorspace_of, content_peak, gamut_of, hdr_primaries, hdr_transfer,
                         orientation)
from .key_frames import KeyFrame, key_frame_before
from ..errors import EngineError, ErrorCode
from ..probe import MediaInfo, open_container
from ..time_jumps import Placer, seek_to_byte

_SEEK_BACKOFF = (0.0, 1.0, 5.0, 30.0)
"""Seconds to step back when a demuxer's seek lands after the wanted time (imprecise indexes)."""


def _to_rgb(frame: av.VideoFrame, transfer: str | None, turns: int, mirrored: bool,
            media: MediaInfo | None = None, gamut: str | None = None) -> tuple[np.ndarray, bool]:
    """RGB array of a frame, honouring its colour matrix and range; flipped left-right as coded
    when ``mirrored``, then turned ``turns`` quarter turns (0 for a :class:`CodedFit`, which
    turns it after shrinking it): the frame's :func:`orientation`, read once by the caller. SDR
    frames come as RGB24; HDR ones (``transfer``, :func:`hdr_transfer`) as 16-bit BT.2020
    R'G'B' (channels last, read from FFmpeg's planar GBR: 1.6 ms a 960x540 frame against 2.9 for
    packed RGB48, and a little closer to the exact matrix), for the tone map that runs once they
    are shrunk (:class:`_FrameCollector`). The matrix: :func:`colorspace_of` (the header's,
    in ``media``, for an untagged frame). ``gamut``: the wide primaries of an SDR frame
    (:func:`gamut_of`), mapped to BT.709's (:mod:`kernels.gamut`). Also says whether any pixel was see-through
    (:func:`over_black`)."""
    colorspace = colorspace_of(frame, media, hdr=transfer is not None)
    deep = transfer is not None or gamut is not None
    alpha = has_alpha(frame)
    converted = frame.reformat(
        # HDR: 16 bits per channel into the tone map, as planar RGB: FFmpeg's packed RGB48 output
        # of 4:2:0 frames of odd width has the wrong colours (whole frames blue or magenta);
        # wide-gamut SDR as 16 bits too, which the gamut map needs near black (kernels/gamut.py)
        format=("gbrap16le" if alpha else "gbrp16le") if deep else ("rgba" if alpha else "rgb24"),
        src_colorspace=colorspace,
        src_color_range=frame.color_range or None,
        dst_color_range=av.video.reformatter.ColorRange.JPEG,
        threads=1,
    ).to_ndarray()
    see_through = False
    if alpha:
        converted, see_through = over_black(converted)
    if gamut is not None:
        from ...kernels.gamut import sdr_to_bt709  # imports the tone map's loop: only when needed

        converted = sdr_to_bt709(torch.from_numpy(converted).permute(2, 0, 1)[None], gamut)[0].permute(1, 2, 0).numpy()
    rgb = _keep_top_field(converted) if frame.interlaced_frame else converted
    if mirrored:
        rgb = rgb[:, ::-1]
    if turns:
        rgb = np.rot90(rgb, k=turns)
    return np.ascontiguousarray(rgb), see_through


def has_alpha(frame: av.VideoFrame) -> bool:
    """Whether the frame carries transparency: an alpha plane (ProRes 4444, QuickTime Animation,
    PNG/APNG, GIF as FFmpeg decodes it) or a palette, whose entries may be see-through."""
    return frame.format.has_palette or any(component.is_alpha for component in frame.format.components)


def over_black(rgba: np.ndarray) -> tuple[np.ndarray, bool]:
    """RGBA (8 or 16 bits, channels last) as the picture it shows over black: each colour times
    its opacity; and whether any pixel was see-through (FFmpeg decodes every GIF as BGRA, most of
    them opaque: only those that are not get the job's note). Converted straight to RGB, a
    see-through pixel shows whatever colour was left under it (random noise in a sweep's QuickTime Animation file, 2026-12-05). Black rather than
    white or a checkerboard: overlay graphics (titles, lower thirds) are mostly light, and a
    player with nothing behind a video shows black. Opaque pixels are unchanged."""
    top = np.iinfo(rgba.dtype).max
    rgb, opacity = rgba[..., :3], rgba[..., 3:]
    # 16-bit alpha scaled from 8 bits by FFmpeg comes out a few steps short of the top (65532)
    if (opacity >= top - top // 256).all():
        return rgb, False
    wide = np.uint32 if top == 255 else np.uint64
    return ((rgb.astype(wide) * opacity + top // 2) // top).astype(rgba.dtype), True


def _keep_top_field(rgb: np.ndarray) -> np.ndarray:
    """An interlaced frame holds two moments, one per field (every other line); shown as is,
    anything moving is combed, and shrunk it turns into a double image. Keep the top field and
    fill the lines between with the mean of their neighbours: one moment, at the frame's size.
    (Top rather than first-in-time: a bottom-first source then shows its second field, 1/50 s
    later, which no preview can tell.) Applied to every frame flagged interlaced: content that is
    progressive but coded as interlaced loses half its vertical detail, which a preview less
    than half the source's height does not have room for anyway."""
    even = rgb[0::2]
    odd_rows = rgb.shape[0] // 2
    below = np.concatenate([even[1:], even[-1:]])[:odd_rows]
    out = rgb.copy()
    out[1::2] = ((even[:odd_rows].astype(np.uint32) + below + 1) >> 1).astype(rgb.dtype)
    return out


_PLANAR_YUV_BITS = {f"yuv{sub}p{bits}le": bits for sub in ("420", "422", "444") for bits in (10, 12, 16)}
"""Pixel formats whose planes :func:`_yuv_planes` reads as they are: three planes of 16-bit words."""


def _yuv_planes(frame: av.VideoFrame, mirrored: bool = False,
                media: MediaInfo | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, int, bool]] | None:
    """An HDR frame's planes as decoded (as coded, not turned; flipped left-right when
    ``mirrored``): luma uint16 [H, W], chroma [2, h, w] (Cb, Cr), and (matrix, bits, full
    range); None when they cannot be read that way (another pixel format, an interlaced frame),
    and the frame goes through :func:`_to_rgb` instead. The matrix as :func:`_to_rgb` takes it
    (:func:`colorspace_of`). The words are copied once, out of the decoder's reused buffers."""
    bits = _PLANAR_YUV_BITS.get(frame.format.name)
    if bits is None or frame.interlaced_frame:
        return None
    matrix = MATRIX_BY_COLORSPACE.get(colorspace_of(frame, media, hdr=True), "bt601")
    planes = [np.frombuffer(plane, dtype=np.uint16).reshape(plane.height, plane.line_size // 2)[:, : plane.width]
              for plane in frame.planes]
    full_range = int(frame.color_range or 0) == int(av.video.reformatter.ColorRange.JPEG)
    if mirrored:
        planes = [plane[:, ::-1] for plane in planes]
    return planes[0].copy(), np.stack(planes[1:3]), (matrix, bits, full_range)


class PyAVDecoder:
    """The CPU backend: FFmpeg decoders through PyAV, frames as CPU tensors."""

    name = "pyav"

    def __init__(self, threads: int = 1, skip_unshown: bool = True, key_frame_search: bool = True) -> None:
        self.threads = max(1, threads)
        self.skip_unshown = skip_unshown
        """Let the decoder drop frames no instant shows where nothing refers to them (:class:`_Unshown`)."""
        self.key_frame_search = key_frame_search
        """Start at the key frame before the first instant (:func:`.key_frames.key_frame_before`);
        False: only the seeks that step back (:data:`_SEEK_BACKOFF`), the A/B's other side in
        ``python -m bench.ts_seek``."""

    def decode_frames(self, media: MediaInfo, instants: Sequence[float], fit: Fit | None = None) -> DecodedClip:
        """The frames on screen at ``instants``: decoded from the key frame before the first one
        (:func:`.key_frames.key_frame_before`; in MPEG-TS found by demuxing back), else from
        ever earlier seeks (:data:`_SEEK_BACKOFF`), else from the start of a freshly opened file.
        A file whose times jump back (:mod:`engine.time_jumps`) is sought by byte, its frames
        placed on its one timeline."""
        try:
            with open_container(media.path) as container:
                stream = self._stream(container, media)
                for start in self._starts(container, stream, media, instants[0]):
                    result = self._decode_from(container, stream, media, instants, start, fit)
                    if result is not None:
                        return result
            # No seek landed early enough, or none gave a frame (a program stream whose seek to 0
            # lands on a later key frame): decode from the start, without seeking, in a demuxer
            # that never sought.
            with open_container(media.path) as container:
                result = self._decode_from(container, self._stream(container, media), media, instants, None, fit)
            assert result is not None
            return result
        except av.error.FFmpegError as exc:
            raise unreadable(media.path, "decoding", exc) from None

    def _starts(self, container, stream, media: MediaInfo, instant: float) -> list[_Start]:
        """Where to try decoding from, in turn, to show ``instant``."""
        if media.joined is not None:  # a seek by time is ambiguous there: by byte to the key frame
            key = media.joined.key_before(instant)
            return [] if key is None else [_Start(key.pos, by_byte=True, part=key.part)]
        tb = stream.time_base
        key = self._key_frame(container, stream, media, instant) if self.key_frame_search else None
        seeks = [] if key is None else [key.seek]
        seeks += [int((max(0.0, instant - back) + media.start_time) / tb) for back in _SEEK_BACKOFF]
        return [_Start(seek) for seek in dict.fromkeys(seeks)]

    @staticmethod
    def _key_frame(container, stream, media: MediaInfo, instant: float) -> KeyFrame | None:
        """The key frame before ``instant``, searched back as far as the seeks would step
        (:data:`_SEEK_BACKOFF`); None when none is found or the demuxer cannot seek."""
        try:
            return key_frame_before(container, stream, instant, max(0.0, instant - _SEEK_BACKOFF[-1]), media)
        except av.error.FFmpegError:
            return None

    def _stream(self, container: av.container.InputContainer, media: MediaInfo):
        """The job's video stream, its decoder set to this decoder's threads."""
        stream = container.streams[media.stream_index]
        ctx = stream.codec_context
        ctx.thread_count = self.threads
        ctx.thread_type = "AUTO" if self.threads > 1 else "SLICE"
        return stream

    def _decode_from(self, container, stream, media: MediaInfo, instants: Sequence[float], seek: _Start | None,
                     fit: Fit | None):
        """Decode from ``seek`` (None: from where a just-opened container starts).

        Returns None when the seek landed after ``instants[0]`` or gave no frame at all (then the
        caller seeks earlier, or decodes from the start).
        """
        tb = stream.time_base
        if seek is not None:
            try:  # PyAV flushes the decoder on seek, so a retry starts clean
                if seek.by_byte:
                    seek_to_byte(container, seek.at)
                else:
                    container.seek(seek.at, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                return None

        # at most the source's frames in the span (as the job's memory check counts them): a bound
        # that undercounts (variable frame rate) only sends the frames past it the chunked way
        distinct = int((instants[-1] - instants[0]) * (media.fps or 25.0)) + 2
        frames = _FrameCollector(fit, capacity=min(len(instants), distinct))
        times: list[float] = []
        index: list[int] = []
        decoded = 0
        k = 0
        n = len(instants)
        previous = None  # (frame, time) of the last frame seen, not yet converted
        previous_row = -1  # its row in ``frames`` once converted

        interlaced = False
        tone_mapped: str | None = None
        gamut_mapped: str | None = None
        see_through = False

        def show(shown: tuple, row: int) -> int:
            """Put ``shown`` (frame, time) on screen at the next instant, converting it once."""
            nonlocal interlaced, tone_mapped, gamut_mapped, see_through
            if row < 0:
                frame = shown[0]
                interlaced = interlaced or bool(frame.interlaced_frame)
                (turns, mirrored), transfer = orientation(frame), hdr_transfer(frame, media)
                if transfer is not None and tone_mapped is None:  # one mapping for the whole clip: no flicker
                    frames.peak_nits = content_peak(frame, transfer)
                    frames.hdr_primaries = hdr_primaries(frame, media)
                tone_mapped = tone_mapped or transfer
                gamut = gamut_of(frame, media) if transfer is None else None
                gamut_mapped = gamut_mapped or gamut
                planes = None
                if transfer is not None and frames.coded and fit.takes_planes(frame.width, frame.height, turns):
                    planes = _yuv_planes(frame, mirrored, media)
                if planes is not None:
                    row = frames.add_planes(*planes, turns, transfer)
                else:
                    rgb, clear = _to_rgb(frame, transfer, 0 if frames.coded else turns, mirrored, media, gamut)
                    see_through = see_through or clear
                    row = frames.add(rgb, turns, transfer)
                times.append(shown[1])
            index.append(row)
            return row

        first_time: float | None = None
        last_time = None
        damage = _Damage()
        clock = _BestEffortClock()
        unshown = (_Unshown(instants, tb, media.start_time)  # judges by packet times: not across jumps
                   if self.skip_unshown and media.joined is None and _Unshown.applies(container, stream) else None)
        place = Placer(media.joined, 0 if seek is None else seek.part) if media.joined is not None else None
        for frame in _decoded(container, stream, damage, unshown):
            decoded += 1
            stamp = clock.stamp(frame.pts, frame.dts)
            if stamp is not None:
                t = float(stamp * tb) - media.start_time
                t = place(t) if place is not None else t
            elif last_time is not None:
                t = last_time + 1.0 / (media.fps or 25.0)
            else:
                t = 0.0
            last_time = t
            if first_time is None:
                first_time = t
                # The seek overshot: the frame shown at the first instant lies before this one
                # (or, after a seek to 0, the stream's first frames were skipped).
                if seek is not None and t > instants[0] + 1e-6:
                    return None
            while k < n and instants[k] < t - 1e-6:
                if previous is None:  # instant before the first frame of the video: show that frame
                    previous, previous_row = (frame, t), -1
                previous_row = show(previous, previous_row)
                k += 1
            if k >= n:
                break
            previous, previous_row = (frame, t), -1
        if previous is None:
            if seek is not None:
                return None  # nothing after the seek point: let the caller try from earlier
            raise EngineError(
                ErrorCode.INVALID_VIDEO_FORMAT,
                f"no frame of {media.path.name} could be decoded; the file may be truncated or corrupt",
            )
        frame_period = 1.0 / (media.fps or 25.0)
        if k == 0 and instants[0] > previous[1] + 2 * frame_period:
            raise EngineError(
                ErrorCode.INVALID_TIME_RANGE,
                f"the video's frames end at {previous[1]:.3f} s although its header says {media.duration:.3f} s; "
                f"seek {instants[0]:.3f} s is past the last frame",
            )
        frames_end = previous[1] + frame_period if k < n else None
        while k < n:  # end of stream: the last frame stays on screen
            previous_row = show(previous, previous_row)
            k += 1
        return DecodedClip(
            frames=frames.tensor(),
            index=torch.tensor(index, dtype=torch.int64),
            source_times=tuple(times[i] for i in index),
            frames_decoded=decoded,
            rotation=orientation(previous[0])[0],
            deinterlaced=interlaced,
            damaged_packets=damage.packets,
            frames_end=frames_end,
            tone_mapped=tone_mapped,
            hdr_primaries=frames.hdr_primaries,
            gamut_mapped=gamut_mapped,
            over_black=see_through,
        )


@dataclass(frozen=True)
class _Start:
    """Where a decoding attempt seeks: ``at`` in the stream's time base, or a byte position
    (``by_byte``) whose frames belong to part ``part`` of a file whose times jump back."""

    at: int
    by_byte: bool = False
    part: int = 0


class _BestEffortClock:
    """A decoded frame's time as FFmpeg's ``best_effort_timestamp`` guesses it: its pts, unless
    the pts have gone backwards more often than the dts (then its dts). AVI files with packed
    B-frames (DivX/Xvid) hand frames over with pts that jump back and forth (3, 4, 6, 5, 7, 9,
    8...) while their dts count up: taken as they were, a preview showed frames up to 160 ms
    late and out of step. In ordinary streams the dts are the ones out of order, so the pts win."""

    def __init__(self) -> None:
        self._faulty_pts = self._faulty_dts = 0
        self._last_pts: int | None = None
        self._last_dts: int | None = None

    def stamp(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self._faulty_dts += self._last_dts is not None and dts <= self._last_dts
            self._last_dts = dts
        elif pts is not None:
            self._last_dts = pts
        if pts is not None:
            self._faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        elif dts is not None:
            self._last_pts = dts
        if pts is not None and (self._faulty_pts <= self._faulty_dts or dts is None):
            return pts
        return dts


DAMAGE_REFUSED_AFTER = 16
"""Damaged packets skipped before a stream where they are most of what was read is refused."""


class _Damage:
    """Packets of the stream the decoder rejected as invalid data, and packets read."""

    def __init__(self) -> None:
        self.packets = 0
        self.read = 0


class _Unshown:
    """Which packets hold a frame that no instant shows, so that the decoder may drop it.

    A preview at 15 fps of 24-60 fps footage shows a quarter to five eighths of the source's
    frames; the rest are decoded only because later frames are predicted from them, and in H.264
    and HEVC as encoders make them about half of all frames are predicted from by none (disposable
    B-frames). For a packet whose frame is not shown, the decoder is told FFmpeg's
    ``skip_frame = NONREF``: it drops the frame only if no other frame refers to it, and decodes
    it as usual otherwise, so the frames shown are decoded exactly as before. (ffmpeg's own
    ``-vf fps`` decodes every frame.) On the previews library's H.264 clips, dropping every
    disposable frame takes 27-49% off the decoding time; its 15 fps jobs drop fewer, and their
    decode stage took 0-20% less (/tmp A/B of ``bench.job_time``'s jobs, 2026-12-04). In a
    damaged stream the decoder's concealment of errors can differ, as a dropped frame is never
    decoded (on the odd-input sweep's four damaged files, as close or closer to the undamaged
    file).

    A frame is shown at the instants from its time up to the next frame's, as the decoding loop
    places them (same 1 µs tolerance), so deciding needs the next frame's time before decoding:
    the packets' presentation times are read :data:`WINDOW` packets ahead of the decoder and
    remembered as many behind (frames come out of order by fewer than that). Kept whenever
    unsure: a packet without a time, one whose next time is not in sight, and one earlier than
    any seen (it may be the first frame, which also shows at the instants before it).

    Only where the packets' times are the frames' (:data:`CONTAINERS`: AVI stores no presentation
    times, and FFmpeg's guesses for DivX's packed B-frames put a frame's time on its neighbour's
    packet) and for :data:`CODECS`, whose dropped frames tests/engine/test_decode.py checks change
    no frame shown (MPEG-4 Part 2 is left out: packed B-frames survive remuxing into Matroska;
    VP8, VP9 and AV1 as their encoders make them had no frame to drop)."""

    WINDOW = 16
    CODECS = frozenset({"h264", "hevc", "mpeg2video"})
    CONTAINERS = frozenset({"mov", "mp4", "matroska", "webm", "mpegts", "mpeg"})
    """FFmpeg's names for demuxers whose packets carry the presentation times stored in the file."""

    def __init__(self, instants: Sequence[float], time_base, start_time: float) -> None:
        self._instants = list(instants)
        self._time_base = time_base
        self._start_time = start_time

    @classmethod
    def applies(cls, container: av.container.InputContainer, stream) -> bool:
        """Whether frames of ``stream`` in ``container`` may be dropped this way."""
        return stream.codec_context.name in cls.CODECS and not cls.CONTAINERS.isdisjoint(container.format.name.split(","))

    def packets(self, demuxed: Iterator[av.Packet]) -> Iterator[tuple[av.Packet, bool]]:
        """``demuxed`` in order, each with whether its frame can be dropped."""
        ahead: deque[av.Packet] = deque()
        behind: deque[int] = deque(maxlen=self.WINDOW)
        for packet in demuxed:
            ahead.append(packet)
            if len(ahead) > self.WINDOW:
                yield self._judged(ahead, behind)
        while ahead:
            yield self._judged(ahead, behind)

    def _judged(self, ahead: deque, behind: deque) -> tuple[av.Packet, bool]:
        packet = ahead.popleft()
        pts = packet.pts
        if pts is None:
            return packet, False
        later = [q for q in behind if q > pts]
        earlier = any(q < pts for q in behind)
        for other in ahead:
            q = other.pts
            if q is not None:
                if q > pts:
                    later.append(q)
                elif q < pts:
                    earlier = True
        behind.append(pts)
        if not later or not earlier:
            return packet, False
        shown_from = float(pts * self._time_base) - self._start_time - 1e-6
        shown_until = float(min(later) * self._time_base) - self._start_time - 1e-6
        k = bisect_left(self._instants, shown_from)
        return packet, not (k < len(self._instants) and self._instants[k] < shown_until)


def _decoded(container: av.container.InputContainer, stream, damage: _Damage,
             unshown: _Unshown | None = None) -> Iterator[av.VideoFrame]:
    """The stream's frames, as ``container.decode(stream)`` gives them, except that a packet the
    decoder rejects as invalid data is skipped, as FFmpeg's command line does: a few damaged
    bytes (a bad sector, a broken download) cost the frames they held, not the job. The frames
    after one may show decoding errors until the next key frame. A stream whose damaged packets
    are past :data:`DAMAGE_REFUSED_AFTER` and most of those read is refused (the error raised).
    With ``unshown``, frames no instant shows are dropped where the decoder can (:class:`_Unshown`)."""
    ctx = stream.codec_context
    demuxed = container.demux(stream)
    judged = unshown.packets(demuxed) if unshown is not None else ((packet, False) for packet in demuxed)
    ctx.skip_frame = "DEFAULT"  # a retry after a seek may find it left at NONREF
    dropping = False
    for packet, drop in judged:
        if drop != dropping:
            ctx.skip_frame = "NONREF" if drop else "DEFAULT"
            dropping = drop
        damage.read += 1
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            damage.packets += 1
            if damage.packets > DAMAGE_REFUSED_AFTER and damage.packets * 2 > damage.read:
                raise
            continue
        yield from frames


class _FrameCollector:
    """The clip's distinct frames as they are converted. Without a fit they are kept at source
    size; with one, every :data:`FIT_CHUNK` frames (fewer when they pass :data:`FIT_CHUNK_BYTES`)
    are stacked and shrunk, so at most one chunk is held at source size. A :class:`CodedFit` is
    handed frames as coded (:attr:`coded`), HDR ones as YUV planes (:meth:`add_planes`) when it
    asks for them; any other fit, upright RGB frames.

    When the fit hands the first chunk back as it is (SDR frames kept at their size, upright),
    the frames from there on are stacked straight into one buffer of ``capacity`` frames (the
    distinct frames the job's memory check allows for; frames past it, or of another kind, size
    or rotation, go on the chunked way), so the clip is not copied once more by concatenating
    chunks at the end: on the 1080p library clip that copy (and the first touch of its 280 MB)
    took 0.24 s of a 3.2 s job."""

    def __init__(self, fit: Fit | None, capacity: int = 0) -> None:
        self._fit = fit
        self._capacity = capacity
        self._clip: np.ndarray | None = None
        """uint8 [capacity, H, W, 3]: the frames so far, while the fit keeps them as they are."""
        self._clip_rotation = 0
        self._filled = 0
        self.coded = isinstance(fit, CodedFit)
        """Frames are added as coded, for the fit to turn upright."""
        self._pending: list = []
        """Frames not yet fitted: RGB arrays, or (luma, chroma) planes; all of one kind."""
        self._pending_bytes = 0
        self._rotation = 0
        self._transfer: str | None = None
        self.peak_nits: float | None = None
        """The HDR frames' peak, cd/m², as the first one's metadata says (:func:`content_peak`); the
        tone map's default when None."""
        self.hdr_primaries = "bt2020"
        """The primaries the HDR frames are coded with, as the first one says (:func:`hdr_primaries`)."""
        self._layout: tuple[str, int, bool] | None = None
        """(matrix, bits, full range) while the pending frames are planes; None for RGB."""
        self._done: list[torch.Tensor] = []
        self._count = 0

    def add(self, rgb: np.ndarray, rotation: int, transfer: str | None = None) -> int:
        """Keep one converted frame (``transfer``: its HDR transfer, None for SDR); returns its
        row in the clip."""
        return self._keep(rgb, rgb.nbytes, rotation, transfer, None)

    def add_planes(self, luma: np.ndarray, chroma: np.ndarray, layout: tuple[str, int, bool], rotation: int,
                   transfer: str) -> int:
        """Keep one HDR frame as its planes, as coded (:func:`_yuv_planes`); returns its row in
        the clip."""
        return self._keep((luma, chroma), luma.nbytes + chroma.nbytes, rotation, transfer, layout)

    def _keep(self, frame, nbytes: int, rotation: int, transfer: str | None, layout) -> int:
        if (transfer, layout) != (self._transfer, self._layout):  # a chunk holds frames of one kind only
            self._flush()
            self._transfer, self._layout = transfer, layout
        self._pending.append(frame)
        self._pending_bytes += nbytes
        self._rotation = rotation
        self._count += 1
        if self._fit is not None and (len(self._pending) >= FIT_CHUNK or self._pending_bytes >= FIT_CHUNK_BYTES):
            self._flush()
        return self._count - 1

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._layout is not None:
            self._release_clip()
            self._flush_planes()
            return
        if self._transfer is not None:
            self._release_clip()
            self._flush_hdr()
            return
        if len({f.shape for f in self._pending}) > 1:  # resolution changes mid-stream
            self._pending = _conform(self._pending)
        if self._clip is not None:
            end = self._filled + len(self._pending)
            if self._pending[0].shape == self._clip.shape[1:] and self._rotation == self._clip_rotation \
                    and end <= self._clip.shape[0]:
                np.stack(self._pending, out=self._clip[self._filled:end])  # the fit would hand them back
                self._pending, self._pending_bytes, self._filled = [], 0, end
                return
            self._release_clip()
        # [U, 3, H, W] as a view of [U, H, W, 3] memory: channels-last is what the resize kernel
        # reads fastest on the CPU, and skipping the transposing copy saves as much as the
        # colour conversion costs.
        chunk = torch.from_numpy(np.stack(self._pending)).permute(0, 3, 1, 2)
        self._pending, self._pending_bytes = [], 0
        fitted = self._fitted(chunk)
        if fitted is chunk and self._fit is not None and not self._done and chunk.dtype == torch.uint8 \
                and self._capacity > chunk.shape[0]:  # kept as they are: the rest go straight into one buffer
            self._clip = np.empty((self._capacity, *chunk.shape[2:], 3), dtype=np.uint8)
            self._clip[: chunk.shape[0]] = chunk.permute(0, 2, 3, 1).numpy()
            self._filled, self._clip_rotation = chunk.shape[0], self._rotation
            return
        self._done.append(fitted)

    def _release_clip(self) -> None:
        """The buffered frames become a chunk of their own (frames of another kind or size follow)."""
        if self._clip is not None:
            self._done.append(torch.from_numpy(self._clip[: self._filled]).permute(0, 3, 1, 2))
            self._clip = None

    def _fitted(self, chunk: torch.Tensor) -> torch.Tensor:
        """``chunk`` through the fit (as coded, or upright: :attr:`coded`); as it is without one."""
        if self._fit is None:
            return chunk
        return self._fit.fit_coded(chunk, self._rotation) if self.coded else self._fit(chunk, self._rotation)

    def _flush_planes(self) -> None:
        """HDR frames as planes: the fit converts them at the output size and turns them upright
        (runs of one size at a time, should the resolution change mid-stream), then the tone map."""
        from ...kernels.tonemap import hdr_to_sdr

        assert isinstance(self._fit, CodedFit) and self._layout is not None
        matrix, bits, full_range = self._layout
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        start = 0
        while start < len(pending):
            end = start + 1
            while end < len(pending) and pending[end][0].shape == pending[start][0].shape:
                end += 1
            planes = YUVPlanes(luma=torch.from_numpy(np.stack([p[0] for p in pending[start:end]])).unsqueeze(1),
                               chroma=torch.from_numpy(np.stack([p[1] for p in pending[start:end]])),
                               matrix=matrix, bits=bits, full_range=full_range)
            self._done.append(hdr_to_sdr(self._fit.fit_planes(planes, self._rotation), self._transfer, self.peak_nits,
                                         self.hdr_primaries))
            start = end

    def _flush_hdr(self) -> None:
        """16-bit HDR frames as RGB (the scaler's 16-bit RGB: frames the fit keeps at their size, crops
        or pads, and pixel formats :func:`_yuv_planes` does not read): handed to the fit as uint16
        codes (it shrinks them as floats), then
        tone-mapped at the output size, where it costs a few ms a frame instead of 0.18 s per
        1080p frame. Resizing the PQ/HLG-encoded values before the per-pixel tone map is the same
        approximation as resizing SDR's gamma-encoded ones. At the source size no float copy of
        the frames is made at all (45 frames at 960x540: 0.85 s of conversion gone)."""
        from ...kernels.resize import resize
        from ...kernels.tonemap import hdr_to_sdr

        if len({f.shape for f in self._pending}) == 1:
            chunk = torch.from_numpy(np.stack(self._pending)).permute(0, 3, 1, 2)  # uint16, channels last
        else:  # resolution changes mid-stream: conform as floats
            frames = [torch.from_numpy(f).permute(2, 0, 1).unsqueeze(0).to(torch.float32).mul_(1 / 65535)
                      for f in self._pending]
            height, width = frames[0].shape[-2:]
            chunk = torch.cat([f if f.shape[-2:] == (height, width) else resize(f, height, width) for f in frames])
        self._pending, self._pending_bytes = [], 0
        self._done.append(hdr_to_sdr(self._fitted(chunk), self._transfer, self.peak_nits, self.hdr_primaries))

    def tensor(self) -> torch.Tensor:
        self._flush()
        self._release_clip()
        if len(self._done) == 1:
            return self._done[0]
        if len({tuple(t.shape[1:]) for t in self._done}) > 1:  # pragma: no cover - fit keeps one size
            raise ValueError("fit returned chunks of different sizes")
        return torch.cat(self._done).contiguous(memory_format=torch.channels_last)


def _conform(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Resize frames to the first one's size (streams that change resolution mid-way)."""
    from ...kernels.resize import resize

    h, w = frames[0].shape[:2]
    out = []
    for f in frames:
        if f.shape[:2] != (h, w):
            t = torch.from_numpy(f).permute(2, 0, 1).unsqueeze(0).contiguous()
            f = resize(t, h, w)[0].permute(1, 2, 0).numpy()
        out.append(f)
    return out
