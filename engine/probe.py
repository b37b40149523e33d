"""Opening a container once to learn what the video is: :func:`probe` -> :class:`MediaInfo`.

Everything later stages need to plan a job (length, frame rate, start offset, which stream) is
read here, before any frame is decoded, so range errors are reported without decoding anything.
PyAV is read here (the container's facts) and in :mod:`engine.decode` (its frames), nowhere else.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from .errors import EngineError, ErrorCode
from .time_jumps import Joined, find_jumps


HDR_TRANSFERS = {16: "pq", 18: "hlg"}
"""FFmpeg's AVColorTransferCharacteristic values of the HDR transfers: SMPTE ST 2084 (PQ) and
ARIB STD-B67 (HLG). Frames so tagged are tone-mapped to SDR (kernels/tonemap.py)."""

FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
"""FFmpeg's AVFieldOrder values (0 is unknown)."""
INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


@dataclass(frozen=True)
class MediaInfo:
    """Facts about the chosen video stream. Times are seconds from the container's start."""

    path: Path
    container: str
    stream_index: int
    codec: str
    width: int
    height: int
    pixel_format: str
    sample_aspect_ratio: Fraction
    fps: float | None
    duration: float
    duration_source: str
    """Where ``duration`` came from: "stream", "container" or "scan" (demuxed to the end)."""
    start_time: float
    """The container's start time in seconds: user times count from it, and ``duration`` is the
    video stream's end measured from it."""
    video_streams: int
    """Video streams in the file, cover art not counted."""
    transfer: str | None = None
    """"pq" or "hlg" for an HDR stream (tone-mapped to SDR when decoded), None for SDR."""
    colorspace: int = 0
    """The stream's colour matrix as its header tags it (FFmpeg's AVColorSpace; 0 or 2: untold):
    what a frame the decoder hands over untagged is converted with (HEVC's decoder leaves the
    frames of a bitstream without colour tags untagged, whatever the container's ``colr`` says)."""
    primaries: int = 0
    """The stream's colour primaries as its header tags them (FFmpeg's AVColorPrimaries; 0 or 2:
    untold): what an untagged frame's primaries are taken to be, as the matrix is (a BT.2020 SDR
    stream tagged only in its MP4 ``colr`` box was shown unmapped, desaturated)."""
    # What the GPU path's refusals need (engine.decode.nvdec_caps.nvdec_refusal): all read from the
    # header FFmpeg already parsed, so they cost nothing here and spare a second open per job.
    field_order: str = "unknown"
    """The stream's field order from its codec parameters (FFmpeg's parser reads it from the
    sequence header, before any frame is decoded): "progressive", "tt", "bb", "tb", "bt"
    (interlaced) or "unknown" (some codecs, e.g. VP9, never say)."""
    brand: str | None = None
    """The MP4/MOV ``major_brand`` ("isom", "mp42", "qt  " for QuickTime...), None elsewhere."""
    header_frames: int = 0
    """The frame count the header declares (``nb_frames``); 0 when it declares none (MKV/WebM, FLV)."""
    base_fps: float | None = None
    """The stream's ``r_frame_rate``: the rate a constant-rate stream's timestamps step at (``fps``
    is the average); they differ for variable-frame-rate streams."""
    size: int = 0
    """The file's size in bytes (0: not known)."""
    joined: Joined | None = None
    """An MPEG-TS/PS file whose times jump back (recordings joined end to end), laid out as one
    timeline (:mod:`engine.time_jumps`); ``duration`` is then that timeline's length. None for
    every other file."""

    @property
    def interlaced(self) -> bool:
        """True when the header says the stream is interlaced (any field order but progressive/unknown)."""
        return self.field_order in INTERLACED_FIELD_ORDERS

    @property
    def display_width(self) -> int:
        """Width as shown on screen: coded width stretched by the sample aspect ratio."""
        return max(1, round(self.width * self.sample_aspect_ratio))


_UNREACHABLE = {errno.ENOENT: "does not exist", errno.ELOOP: "is a symbolic link loop",
                errno.ENAMETOOLONG: "has a name too long for the file system",
                errno.ENOTDIR: "does not exist (a folder on its path is a file)",
                errno.EACCES: "cannot be reached (permission denied on a folder)"}
"""Why a path's stat failed, by errno, as an input's error message says it."""


def open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` for reading, turning every failure into an :class:`EngineError`."""
    try:
        info = os.stat(path)
    except OSError as exc:  # never a traceback: a loop or an over-long name is just no input
        raise EngineError(ErrorCode.INPUT_NOT_FOUND,
                          f"input {path} {_UNREACHABLE.get(exc.errno, 'cannot be read: ' + (exc.strerror or str(exc)))}") from None
    if not stat.S_ISREG(info.st_mode):
        raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"input {path} is not a file")
    if not os.access(path, os.R_OK):
        raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"input {path} cannot be read (permission denied)")
    if info.st_size == 0:
        raise EngineError(ErrorCode.INVALID_VIDEO_FORMAT, f"{path.name} is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if _mp4_without_index(path):
            raise EngineError(
                ErrorCode.INVALID_VIDEO_FORMAT,
                f"{path.name} is an MP4/QuickTime file without its index (no 'moov' box): it was cut off "
                "or never finished being written (a recording stopped, an upload broken off); "
                "copy it again from its source",
            ) from None
        raise EngineError(
            ErrorCode.INVALID_VIDEO_FORMAT,
            f"{path.name} is not a readable media file ({exc.strerror or exc}); check that it plays locally",
        ) from None


MP4_TOP_BOXES = frozenset({b"ftyp", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp", b"sidx", b"moof"})
"""Top-level box types an MP4 or QuickTime file may hold before or instead of its ``moov``."""


def _mp4_without_index(path: Path) -> bool:
    """Whether ``path`` reads as the top-level boxes of an MP4/QuickTime file (``ftyp``, ``mdat``,
    ...) ending without a ``moov``: the index a recorder writes last, which a file cut off
    while being written lacks (FFmpeg then says only "Invalid data found"; found by a sweep of
    odd files, 2026-12-05). Walks the box headers only, at most 64 of them."""
    try:
        with open(path, "rb") as f:
            seen = False
            for _ in range(64):
                header = f.read(8)
                if len(header) < 8:
                    return seen
                size, kind = int.from_bytes(header[:4], "big"), header[4:]
                if kind == b"moov":
                    return False
                if kind not in MP4_TOP_BOXES:
                    return False
                seen = True
                if size == 1:
                    large = f.read(8)
                    if len(large) < 8:
                        return seen
                    size = int.from_bytes(large, "big") - 8
                elif size == 0:  # the box runs to the end of the file
                    return seen
                if size < 8:
                    return False
                f.seek(size - 8, os.SEEK_CUR)
            return False
    except OSError:
        return False


DEFAULT_STREAM_PIXELS = 5_000_000
"""What the "default" flag is worth, in pixels, when choosing among video streams: FFmpeg's own
weight, so the flagged stream wins unless another is over 5 Mpixel larger (a 4K master beside
a flagged 480p proxy)."""


def video_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """The file's video streams, cover art (attached pictures) not counted."""
    return [s for s in container.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic) and s.codec_context is not None]


def pick_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The video stream FFmpeg's command line would take: the largest picture, the one flagged
    "default" counting :data:`DEFAULT_STREAM_PIXELS` larger, the first on a tie; cover art
    (attached pictures) never."""
    candidates = video_streams(container)
    if not candidates:
        raise EngineError(
            ErrorCode.INVALID_VIDEO_FORMAT,
            "the file has no video stream (audio only?); animated images need a video",
        )

    def score(s: av.video.stream.VideoStream) -> tuple[int, int]:
        default = DEFAULT_STREAM_PIXELS if s.disposition & av.stream.Disposition.default else 0
        return s.codec_context.width * s.codec_context.height + default, -s.index

    return max(candidates, key=score)


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _packet_end(packet: av.Packet, time_base: Fraction) -> float:
    """Seconds (on the stream's clock) at which a timed packet's frame stops being shown."""
    return float((packet.pts + (packet.duration or 0)) * time_base)


TAIL_PACKETS = 4096
"""At most this many packets are read after the seek to the end in :func:`_matroska_length` (a
file without cues may seek back to its start: then the header is taken as it is)."""


def _matroska_length(container: av.container.InputContainer, stream, start: float, header: float) -> float:
    """The length of a Matroska file whose timestamps start at ``start`` > 0, from its ``header``
    Duration. FFmpeg's Matroska muxer writes the last timestamp there (36003 s for 3 s of video
    made with ``-output_ts_offset 36000``), and its demuxer hands that on as a length, so a
    trim-from-end job planned 36001.5 s (found by a sweep of odd inputs, 2026-12-05); other
    muxers write a length. The stream's last packets decide which: their end lies near the
    header when it is an end time, near ``start`` + header when it is a length (a video track a
    little shorter than its audio is near neither, and counts as the closer one). Without
    them (no cues to seek by, nothing timed) the header is taken as a length, as before."""
    tb = stream.time_base
    if not tb:
        return header
    try:
        container.seek(int(header / tb), stream=stream, backward=True, any_frame=False)
        end = None
        for n, packet in enumerate(container.demux(stream)):
            if n >= TAIL_PACKETS:
                return header
            if packet.pts is not None:
                finish = _packet_end(packet, tb)
                end = finish if end is None else max(end, finish)
    except av.error.FFmpegError:
        return header
    if end is None or abs(end - header) >= abs(end - (start + header)):
        return header
    return header - start


def _scan_duration(path: Path, stream_index: int, start: float, fps: float | None) -> float | None:
    """Demux (no decoding) to the end to find the last packet's end, counted from ``start``.

    A raw elementary stream (``.h264``, ``.hevc`` from cameras, DVRs, drones) has no timestamps
    at all: its length is its packets' durations added up, or their count at ``fps`` (the rate
    the decoder will show them at, 25 when unknown, as FFmpeg assumes)."""
    end = None
    untimed = 0.0
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams[stream_index]
        tb = stream.time_base
        for packet in container.demux(stream):
            if packet.pts is None:
                if packet.size:
                    untimed += float(packet.duration * tb) if packet.duration and tb else 1.0 / (fps or 25.0)
                continue
            finish = _packet_end(packet, tb)
            end = finish if end is None else max(end, finish)
    if end is None:
        return untimed or None
    return end - start


def probe(path: Path) -> MediaInfo:
    """Read the container header and choose the video stream; never decodes a frame."""
    path = Path(path)
    container = open_container(path)
    try:
        stream = pick_video_stream(container)
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            if ctx.name == "webp":  # FFmpeg's WebP decoder reads stills; its demuxer leaves ANIM/ANMF unsized
                raise EngineError(ErrorCode.INVALID_VIDEO_FORMAT, "an animated WebP cannot be read as a video here "
                                  "(FFmpeg decodes still WebP only); give the video it was made from")
            raise EngineError(ErrorCode.INVALID_VIDEO_FORMAT, "the video stream has no picture size; the file may be corrupt")
        tb = stream.time_base
        stream_start = _seconds(stream.start_time, tb)
        # User times count from the container's start, as players' seek bars and ffmpeg -ss do
        # (a video stream may start a few ms after the audio, or seconds in, in MPEG-TS).
        start = container.start_time / av.time_base if container.start_time is not None else (stream_start or 0.0)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else None
        duration, source = None, "stream"
        stream_length = _seconds(stream.duration, tb)
        if stream_length and stream_length > 0:
            duration = (stream_start if stream_start is not None else start) + stream_length - start
        elif container.duration and container.duration > 0:
            duration, source = container.duration / av.time_base, "container"
            if start > 0 and container.format.name.startswith("matroska"):
                duration = _matroska_length(container, stream, start, duration)
        facts = path.stat()
        joined = find_jumps(container, stream, start, fps, path, facts)
        if joined is not None:
            duration, source = joined.length, "scan"
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
        info = dict(
            path=path, container=container.format.name, stream_index=stream.index, codec=ctx.name,
            width=ctx.width, height=ctx.height, pixel_format=ctx.pix_fmt or "unknown",
            sample_aspect_ratio=sar, fps=fps, start_time=start,
            video_streams=len(video_streams(container)),
            transfer=HDR_TRANSFERS.get(int(ctx.color_trc or 0)),
            colorspace=int(ctx.colorspace or 0), primaries=int(ctx.color_primaries or 0),
            field_order=FIELD_ORDERS.get(int(getattr(ctx, "field_order", 0) or 0), "unknown"),
            brand=(container.metadata or {}).get("major_brand") if container.format.name.startswith("mov,") else None,
            header_frames=max(0, int(stream.frames or 0)),
            base_fps=float(stream.base_rate) if stream.base_rate else None,
            size=facts.st_size, joined=joined,
        )
    except av.error.FFmpegError as exc:
        raise EngineError(ErrorCode.INVALID_VIDEO_FORMAT, f"{path.name} cannot be read ({exc.strerror or exc})") from None
    finally:
        container.close()
    if not duration or duration <= 0:
        try:
            duration, source = _scan_duration(path, info["stream_index"], start, fps), "scan"
        except av.error.FFmpegError as exc:
            raise EngineError(ErrorCode.INVALID_VIDEO_FORMAT, f"{path.name} cannot be read to its end ({exc})") from None
        if not duration or duration <= 0:
            raise EngineError(ErrorCode.INVALID_VIDEO_FORMAT, "the video stream holds no frames; the file may be corrupt or empty")
    return MediaInfo(duration=duration, duration_source=source, **info)
