"""What NVDEC can decode here: the one module that imports PyNvVideoCodec.

It answers three questions, each asked lazily and cached once per process: does PyNvVideoCodec
import (:func:`nvdec_status`, with the exact error when it does not and, for the failures
PyNvVideoCodec 2.2 is known to raise, what to do about it; :func:`pynvvideocodec` hands the module
to :mod:`engine.decode.nvdec`), what does NVDEC on a GPU decode (:func:`decoder_caps`,
PyNvVideoCodec's ``GetDecoderCaps``, or :data:`HOPPER_NVDEC`, NVDEC on H100/H200 from the NVDEC
application note, where the GPU cannot be asked; :func:`nvdec_codecs` lists it for ``engine
doctor``), and why the GPU path cannot take one video (:func:`nvdec_refusal`). The choice of
device itself is made by :mod:`engine.device`, which asks this module.

Facts about PyNvVideoCodec 2.2.4 this module is built on (read from its wheel and its 2.0.0
sources; ../shared/reference/nvdec-audit.md has the evidence):

- ``import PyNvVideoCodec`` dlopens the driver's encoder library ``libnvidia-encode.so.1`` (even to
  decode) and refuses an NVENC API below 12.1: a container started without ``video`` in
  NVIDIA_DRIVER_CAPABILITIES, or an old driver, has no GPU path at all (:func:`import_advice`).
- ``GetDecoderCaps(gpuid=N)`` asks GPU 0 whatever N is, creating and destroying a CUDA context
  each call: it is asked once per codec and bit depth per process, and the answer is GPU 0's.
- SimpleDecoder seeks MOV ('qt  ' brand), FLV and MKV/WebM by frame number x ``r_frame_rate``
  and opens a file whose header lacks a frame count or duration by demuxing all of it; NVDEC
  deinterlaces interlaced streams adaptively. :func:`nvdec_refusal` sends those videos to the
  CPU path, whose answers differ or which opens them faster.

Importing this module imports neither PyNvVideoCodec nor torch: the first question asked does.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from dataclasses import dataclass
from types import ModuleType

from ..probe import MediaInfo


@dataclass(frozen=True)
class NvdecStatus:
    version: str | None
    """PyNvVideoCodec's version when it imports."""
    error: str | None
    """The exception its import raised, as "Type: message" (first line), when it does not."""
    advice: str | None = None
    """What to do about ``error``, for the failures PyNvVideoCodec is known to raise (None otherwise)."""


@dataclass(frozen=True)
class NvdecLimits:
    """What NVDEC decodes for one codec (4:2:0 only: the GPU colour kernel takes NV12/P016)."""

    cuvid: str
    """PyNvVideoCodec's ``cudaVideoCodec`` member name."""
    bits: tuple[int, ...]
    max_size: tuple[int, int]
    min_size: tuple[int, int]


HOPPER_NVDEC: dict[str, NvdecLimits] = {
    "h264": NvdecLimits("H264", (8,), (4096, 4096), (48, 16)),
    "hevc": NvdecLimits("HEVC", (8, 10, 12), (8192, 8192), (144, 144)),
    "vp9": NvdecLimits("VP9", (8,), (8192, 8192), (128, 128)),
    "vp8": NvdecLimits("VP8", (8,), (4096, 4096), (48, 16)),
    "mpeg1video": NvdecLimits("MPEG1", (8,), (4080, 4080), (48, 16)),
    "mpeg2video": NvdecLimits("MPEG2", (8,), (4080, 4080), (48, 16)),
    "mpeg4": NvdecLimits("MPEG4", (8,), (2032, 2032), (48, 16)),
    "vc1": NvdecLimits("VC1", (8,), (2048, 1024), (48, 16)),
    "av1": NvdecLimits("AV1", (), (8192, 8192), (128, 128)),
}
"""NVDEC on Hopper (H100/H200): no AV1 and no 10-bit H.264 (newer GPUs have them; GetDecoderCaps
says so where it is available). Used only when the GPU cannot be asked."""

RANDOM_ACCESS_CONTAINERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "flv")
"""Containers SimpleDecoder fetches frames from by number (it needs a seek index)."""

CAPS_GPU = 0
"""The GPU ``GetDecoderCaps`` answers for: PyNvVideoCodec (2.0.0 source, 2.2.4 binary) calls
``cuDeviceGet(&dev, 0)`` and only validates ``gpuid``. Other GPUs are assumed to be the same model."""

SCAN_LIMIT_BYTES = 256 * 2**20
"""Above this size, a file whose header declares no frame count (or no stream duration) goes to
the CPU path: SimpleDecoder would demux the whole file (``DecoderCommon::IsScanRequired``) before
handing over the first frame of a clip of a few seconds, which the CPU path reaches by one seek.
MKV/WebM and FLV never declare a frame count. The figure is a judgement: FFmpeg demuxes a cached
file at about 130 MiB/s (230,000 packets/s; PyAV, a 720p WebM, the 2-core development machine),
and a file not in the page cache is read at disk or network speed, so 256 MiB is one to a few
seconds, against tens of milliseconds for the CPU path's seek. Whether SimpleDecoder's first
fetch waits for its scan thread is unchecked (its ``len()`` and metadata do)."""

RATE_SEEKING = {"mov": "MOV", "flv": "FLV", "matroska,webm": "MKV/WebM"}
"""Containers where SimpleDecoder seeks by frame number x ``r_frame_rate`` (``FFmpegDemuxer::Seek``;
"mov" is an MP4-family file whose ``major_brand`` is 'qt  '). MP4 seeks by the index entry's
timestamp instead."""

VFR_TOLERANCE = 0.01
"""Relative difference between ``r_frame_rate`` and the average rate above which a stream counts
as variable frame rate (PyNvVideoCodec's own ``IsVFR`` compares exactly; averages computed from a
header's duration are often a fraction of a percent off a constant rate)."""


# --------------------------------------------------------------------------------------------
# PyNvVideoCodec: imported once per process, on first use
# --------------------------------------------------------------------------------------------


_LOGGER = "PyNvVideoCodec"
_NVENC_VERSION = re.compile(r"Supported NVENC Driver Version:\s*(\d+)")
NVENC_MINIMUM = (12, 1)
"""The lowest NVENC API PyNvVideoCodec 2.2 loads with (its ``__init__``: ``12 * 16 + 1``)."""


def _import_pynvvideocodec() -> ModuleType:
    """Import PyNvVideoCodec (the module itself; tests replace this with a stand-in)."""
    return importlib.import_module("PyNvVideoCodec")


class _Records(logging.Handler):
    """Keeps PyNvVideoCodec's log lines during its import: the driver's NVENC API version is only
    ever logged ("Supported NVENC Driver Version: 192"), never put in the exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def import_advice(error: str, log_lines: tuple[str, ...] = ()) -> str | None:
    """What to do about a failed ``import PyNvVideoCodec``, for the failures 2.2.x raises.

    ``error`` is the "Type: message" line; ``log_lines`` what PyNvVideoCodec logged while importing
    (it logs the driver's NVENC API version before it compares it)."""
    lowered = error.lower()
    missing = re.search(r"(libnvidia-encode\.so[.\d]*|libnvcuvid\.so[.\d]*)", error)
    if missing and ("cannot open" in lowered or "failed to load" in lowered or "not found" in lowered):
        return (f"the driver's video libraries are missing ({missing.group(1)} cannot be loaded): run the container "
                "with NVIDIA_DRIVER_CAPABILITIES including video (e.g. compute,utility,video), or install the "
                "driver's NVDEC/NVENC libraries (compute-only driver packages leave them out)")
    if "driver version is too old" in lowered:
        version = None
        for line in log_lines:
            match = _NVENC_VERSION.search(line)
            if match:
                value = int(match.group(1))
                version = f"{value >> 4}.{value & 15}"
        found = f"NVENC API {version} < {NVENC_MINIMUM[0]}.{NVENC_MINIMUM[1]}" if version else \
            f"NVENC API below {NVENC_MINIMUM[0]}.{NVENC_MINIMUM[1]}"
        return (f"driver too old: {found}, the lowest PyNvVideoCodec 2.2 loads with; update the NVIDIA driver "
                "(NVENC API 12.1 is Video Codec SDK 12.1's, R530 drivers and later)")
    if "libcuda.so" in error:
        return "no NVIDIA driver in this process's view (libcuda.so.1 cannot be loaded): run with the GPU passed through"
    return None


@functools.cache
def _pynvvideocodec() -> tuple[ModuleType | None, str | None, str | None]:
    """(module, None, None) or (None, "Type: message", advice), from one import per process."""
    logger = logging.getLogger(_LOGGER)
    records = _Records()
    logger.addHandler(records)
    propagate, logger.propagate = logger.propagate, False  # its error lines: the caller reports the failure
    level = logger.level
    logger.setLevel(logging.INFO)  # 2.2.4 sets INFO itself; a stand-in or another version may not
    try:
        return _import_pynvvideocodec(), None, None
    except Exception as exc:  # ImportError, or RuntimeError when the driver's video libraries are missing or old
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        return None, error, import_advice(error, tuple(records.lines))
    finally:
        logger.removeHandler(records)
        logger.propagate = propagate
        logger.setLevel(level)


def installed() -> bool:
    """Whether a PyNvVideoCodec distribution is installed, without importing it (no CUDA, no
    driver libraries touched): for callers that plan before any worker starts (the GPU node
    executor). Only :func:`nvdec_status` says whether it imports."""
    import importlib.util

    try:
        return importlib.util.find_spec("PyNvVideoCodec") is not None
    except (ImportError, ValueError):
        return False


def nvdec_status() -> NvdecStatus:
    """Whether PyNvVideoCodec imports here (cached), with the exact error (and the remedy, when
    known) when it does not."""
    module, error, advice = _pynvvideocodec()
    if module is None:
        return NvdecStatus(None, error, advice)
    return NvdecStatus(str(getattr(module, "__version__", "unknown")), None)


def unavailable_reason(status: NvdecStatus) -> str:
    """The fallback reason for a failed import: the exact error, then the remedy when known."""
    reason = f"PyNvVideoCodec cannot be imported ({status.error})"
    return f"{reason}; {status.advice}" if status.advice else reason


def pynvvideocodec() -> ModuleType:
    """The imported PyNvVideoCodec module, or DecoderUnavailable with the import error."""
    from . import DecoderUnavailable

    module, _, _ = _pynvvideocodec()
    if module is None:
        raise DecoderUnavailable(unavailable_reason(nvdec_status()))
    return module


@functools.cache
def decoder_caps(cuvid: str, chroma: str, bits: int) -> dict[str, int] | None:
    """NVDEC's answer for a codec/chroma/bit depth on GPU :data:`CAPS_GPU` (``GetDecoderCaps``), or
    None when the installed PyNvVideoCodec cannot ask (then :data:`HOPPER_NVDEC` decides).

    Asked once per process per codec, chroma and bit depth: each call creates and destroys a CUDA
    context on GPU 0, and passing another ``gpuid`` would not ask another GPU."""
    module, _, _ = _pynvvideocodec()
    if module is None:
        return None
    try:
        codec = getattr(module.cudaVideoCodec, cuvid)
        chroma_format = getattr(module.cudaVideoChromaFormat, chroma)
        caps = module.GetDecoderCaps(gpuid=CAPS_GPU, codec=codec, chromaformat=chroma_format, bitdepth=bits)
        return {str(key): int(value) for key, value in dict(caps).items()}
    except Exception:
        return None


def clear_caches() -> None:
    """Forget the import and every GetDecoderCaps answer (tests, and a process whose drivers changed)."""
    _pynvvideocodec.cache_clear()
    decoder_caps.cache_clear()


# --------------------------------------------------------------------------------------------
# What NVDEC takes
# --------------------------------------------------------------------------------------------


def chroma_and_bits(pixel_format: str) -> tuple[str | None, int]:
    """("420" | "422" | "444" | "400" | None, bits per sample) of an FFmpeg pixel format name."""
    from .frame_tags import pixel_bits

    name = pixel_format.lower()
    bits = pixel_bits(name)
    if "420" in name or name in ("nv12", "nv21") or name.startswith("p0"):
        return "420", bits
    if "422" in name or name in ("nv16", "yuyv422", "uyvy422") or name.startswith("p2"):
        return "422", bits
    if "444" in name or name in ("nv24", "nv42") or name.startswith("p4"):
        return "444", bits
    if name.startswith("gray"):
        return "400", bits
    return None, bits


def seek_container(media: MediaInfo) -> str:
    """The container as SimpleDecoder's demuxer names it (``FFmpegDemuxer::GetContainerName``):
    MP4-family files are "mov" when their ``major_brand`` is 'qt  ' (or, without a brand they
    know, when the file ends in .mov) and "mp4" otherwise; other formats keep FFmpeg's name."""
    if media.container != "mov,mp4,m4a,3gp,3g2,mj2":
        return media.container
    if media.brand == "qt  ":
        return "mov"
    if media.brand in ("mp42", "isom", "mp41"):
        return "mp4"
    return "mov" if media.path.suffix.lower() == ".mov" else "mp4"


def variable_rate(media: MediaInfo) -> bool:
    """True when the average frame rate is off ``r_frame_rate`` by more than :data:`VFR_TOLERANCE`."""
    if not media.fps or not media.base_fps:
        return False
    return abs(media.base_fps - media.fps) > VFR_TOLERANCE * media.base_fps


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def stream_refusal(media: MediaInfo) -> str | None:
    """Why SimpleDecoder's way of reading this file would give other frames than the CPU path, or
    reach them much later; None when it reads it as well as PyAV does. Needs no GPU."""
    if media.interlaced:
        return (f"interlaced ({media.field_order} field order): the CPU path's top-field rule; "
                "nvdec would deinterlace adaptively, another picture")
    if media.video_streams > 1:
        return (f"{media.video_streams} video streams: nvdec's demuxer picks one by its own rule, which may not be "
                f"stream {media.stream_index} (the one FFmpeg's command line and the CPU path take)")
    container = seek_container(media)
    if container in RATE_SEEKING and variable_rate(media):
        return (f"variable frame rate in {RATE_SEEKING[container]}: nvdec seeks there by frame number x "
                f"{media.base_fps:g} fps (r_frame_rate) and would land on other frames (average {media.fps:g} fps)")
    if (media.header_frames <= 0 or media.duration_source != "stream") and media.size > SCAN_LIMIT_BYTES:
        missing = "frame count" if media.header_frames <= 0 else "stream duration"
        return (f"the {media.container} header declares no {missing}: nvdec would demux the "
                f"whole {_mib(media.size)} file before the first frame (above {_mib(SCAN_LIMIT_BYTES)})")
    return None


def caps_source(gpu: int, gpu_name: str) -> str:
    """Whose limits GetDecoderCaps gave, as said in a refusal: GPU 0's, assumed for the others."""
    if gpu == CAPS_GPU:
        return f"on this GPU ({gpu_name})"
    return f"on cuda:{CAPS_GPU} (GetDecoderCaps asks GPU {CAPS_GPU} only; cuda:{gpu}, {gpu_name}, is assumed the same)"


def nvdec_refusal(media: MediaInfo, gpu: int, gpu_name: str = "this GPU") -> str | None:
    """Why NVDEC on GPU ``gpu`` cannot serve this video through the GPU path, or None if it can."""
    limits = HOPPER_NVDEC.get(media.codec)
    if limits is None:
        return f"nvdec does not decode {media.codec}"
    if media.container not in RANDOM_ACCESS_CONTAINERS:
        return f"nvdec's frame access needs an MP4/MOV, MKV/WebM, AVI or FLV file, not {media.container}"
    chroma, bits = chroma_and_bits(media.pixel_format)
    if chroma != "420":
        return f"the GPU path takes 4:2:0 video only, not {media.pixel_format}"
    refusal = stream_refusal(media)
    if refusal is not None:
        return refusal
    supported, low, high, max_blocks, asked = _picture_limits(limits, chroma, bits)
    source = caps_source(gpu, gpu_name) if asked else "on Hopper GPUs"
    if not supported:
        return f"nvdec does not decode {bits}-bit {media.codec} {source if asked else 'on Hopper GPUs (H100/H200)'}"
    if media.width > high[0] or media.height > high[1]:
        return f"nvdec decodes {media.codec} up to {high[0]}x{high[1]} {source}; this video is {media.width}x{media.height}"
    if media.width < low[0] or media.height < low[1]:
        return f"nvdec decodes {media.codec} from {low[0]}x{low[1]} {source}; this video is {media.width}x{media.height}"
    blocks = ((media.width + 15) // 16) * ((media.height + 15) // 16)
    if blocks > max_blocks:
        return f"nvdec decodes {media.codec} up to {max_blocks} macroblocks {source}; this video has {blocks}"
    return None


def largest_picture(media: MediaInfo) -> tuple[int, int]:
    """The largest picture NVDEC decodes in ``media``'s codec and bit depth (GetDecoderCaps, else
    the Hopper table): a decoder created with a larger maximum fails outright (MPEG-4 Part 2 on an
    H200: "Resolution not supported on this GPU", 3840x2176 asked, 2048x2048 the most)."""
    limits = HOPPER_NVDEC.get(media.codec)
    if limits is None:
        return (1 << 30, 1 << 30)
    chroma, bits = chroma_and_bits(media.pixel_format)
    if chroma is None:
        return limits.max_size
    supported, _, high, _, _ = _picture_limits(limits, chroma, bits)
    return high if supported else limits.max_size


def _picture_limits(limits: NvdecLimits, chroma: str, bits: int) -> tuple[bool, tuple[int, int], tuple[int, int], int, bool]:
    """(decoded at all, smallest and largest picture, most macroblocks, asked of the GPU) for a
    codec at a chroma format and bit depth: GetDecoderCaps' answer, else the Hopper table."""
    caps = decoder_caps(limits.cuvid, chroma, bits)
    if caps is not None:
        return (bool(caps.get("supported")), (caps.get("width_min", 0), caps.get("height_min", 0)),
                (caps.get("width_max", 1 << 30), caps.get("height_max", 1 << 30)), caps.get("mb_num_max", 1 << 30), True)
    return bits in limits.bits, limits.min_size, limits.max_size, 1 << 30, False


@dataclass(frozen=True)
class CodecSupport:
    """One row of what NVDEC takes: a codec at a bit depth (4:2:0)."""

    codec: str
    bits: int
    supported: bool
    max_size: tuple[int, int]
    source: str
    """"GetDecoderCaps" (asked of the GPU) or "table" (HOPPER_NVDEC, not asked)."""


def nvdec_codecs(ask: bool) -> tuple[CodecSupport, ...]:
    """What NVDEC takes: GPU :data:`CAPS_GPU`'s answers when ``ask`` (and PyNvVideoCodec answers),
    else the Hopper table. One GetDecoderCaps call per codec and bit depth per process."""
    rows: list[CodecSupport] = []
    for codec, limits in HOPPER_NVDEC.items():
        for bits in (8, 10):
            caps = decoder_caps(limits.cuvid, "420", bits) if ask else None
            if caps is not None:
                rows.append(CodecSupport(codec, bits, bool(caps.get("supported")),
                                         (caps.get("width_max", 0), caps.get("height_max", 0)), "GetDecoderCaps"))
            else:
                rows.append(CodecSupport(codec, bits, bits in limits.bits, limits.max_size, "table"))
    return tuple(rows)
