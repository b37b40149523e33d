"""What NVDEC can decode here: the one module that imports PyNvVideoCodec.

It answers three questions, each asked lazily and cached once per process: does PyNvVideoCodec
import (:func:`nvdec_status`, with the exact error when it does not; :func:`pynvvideocodec` hands
the module to :mod:`engine.decode.nvdec`), what does NVDEC on a GPU decode (:func:`decoder_caps`,
PyNvVideoCodec's ``GetDecoderCaps``, or :data:`HOPPER_NVDEC`, NVDEC on H100/H200 from the NVDEC
application note, where the GPU cannot be asked; :func:`nvdec_codecs` lists it for ``engine
doctor``), and why the GPU path cannot take one video (:func:`nvdec_refusal`). The choice of
device itself is made by :mod:`engine.device`, which asks this module.

Importing this module imports neither PyNvVideoCodec nor torch: the first question asked does.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from types import ModuleType

from ..probe import MediaInfo


@dataclass(frozen=True)
class NvdecStatus:
    version: str | None
    """PyNvVideoCodec's version when it imports."""
    error: str | None
    """The exception its import raised, as "Type: message", when it does not."""


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


# --------------------------------------------------------------------------------------------
# PyNvVideoCodec: imported once per process, on first use
# --------------------------------------------------------------------------------------------


def _import_pynvvideocodec() -> ModuleType:
    """Import PyNvVideoCodec (its own error logging silenced: the caller reports the failure)."""
    logging.getLogger("PyNvVideoCodec").addHandler(logging.NullHandler())
    return importlib.import_module("PyNvVideoCodec")


@functools.cache
def _pynvvideocodec() -> tuple[ModuleType | None, str | None]:
    try:
        return _import_pynvvideocodec(), None
    except Exception as exc:  # ImportError, or OSError/RuntimeError when the driver's video libraries are missing
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def nvdec_status() -> NvdecStatus:
    """Whether PyNvVideoCodec imports here (cached), with the exact error when it does not."""
    module, error = _pynvvideocodec()
    if module is None:
        return NvdecStatus(None, error)
    return NvdecStatus(str(getattr(module, "__version__", "unknown")), None)


def pynvvideocodec() -> ModuleType:
    """The imported PyNvVideoCodec module, or DecoderUnavailable with the import error."""
    from . import DecoderUnavailable

    module, error = _pynvvideocodec()
    if module is None:
        raise DecoderUnavailable(f"PyNvVideoCodec cannot be imported ({error})")
    return module


@functools.cache
def decoder_caps(gpu: int, cuvid: str, chroma: str, bits: int) -> dict[str, int] | None:
    """NVDEC's answer for a codec/chroma/bit depth on GPU ``gpu`` (``GetDecoderCaps``), or None
    when the installed PyNvVideoCodec cannot ask (then :data:`HOPPER_NVDEC` decides)."""
    module, _ = _pynvvideocodec()
    if module is None:
        return None
    try:
        codec = getattr(module.cudaVideoCodec, cuvid)
        chroma_format = getattr(module.cudaVideoChromaFormat, chroma)
        caps = module.GetDecoderCaps(gpuid=gpu, codec=codec, chromaformat=chroma_format, bitdepth=bits)
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
    from .frame_index import pixel_bits

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


def nvdec_refusal(media: MediaInfo, gpu: int, gpu_name: str = "this GPU") -> str | None:
    """Why NVDEC on GPU ``gpu`` cannot serve this video through the GPU path, or None if it can."""
    if media.transfer is not None:
        return f"{media.transfer.upper()} HDR is tone-mapped to SDR on the CPU path only"
    limits = HOPPER_NVDEC.get(media.codec)
    if limits is None:
        return f"nvdec does not decode {media.codec}"
    if media.container not in RANDOM_ACCESS_CONTAINERS:
        return f"nvdec's frame access needs an MP4/MOV, MKV/WebM, AVI or FLV file, not {media.container}"
    chroma, bits = chroma_and_bits(media.pixel_format)
    if chroma != "420":
        return f"the GPU path takes 4:2:0 video only, not {media.pixel_format}"
    caps = decoder_caps(gpu, limits.cuvid, chroma, bits)
    if caps is not None:
        if not caps.get("supported"):
            return f"nvdec does not decode {bits}-bit {media.codec} on this GPU ({gpu_name})"
        low = (caps.get("width_min", 0), caps.get("height_min", 0))
        high = (caps.get("width_max", 1 << 30), caps.get("height_max", 1 << 30))
        max_blocks = caps.get("mb_num_max", 1 << 30)
        source = f"on this GPU ({gpu_name})"
    else:
        if bits not in limits.bits:
            return f"nvdec does not decode {bits}-bit {media.codec} on Hopper GPUs (H100/H200)"
        low, high, max_blocks = limits.min_size, limits.max_size, 1 << 30
        source = "on Hopper GPUs"
    if media.width > high[0] or media.height > high[1]:
        return f"nvdec decodes {media.codec} up to {high[0]}x{high[1]} {source}; this video is {media.width}x{media.height}"
    if media.width < low[0] or media.height < low[1]:
        return f"nvdec decodes {media.codec} from {low[0]}x{low[1]} {source}; this video is {media.width}x{media.height}"
    blocks = ((media.width + 15) // 16) * ((media.height + 15) // 16)
    if blocks > max_blocks:
        return f"nvdec decodes {media.codec} up to {max_blocks} macroblocks {source}; this video has {blocks}"
    return None


@dataclass(frozen=True)
class CodecSupport:
    """One row of what NVDEC takes: a codec at a bit depth (4:2:0)."""

    codec: str
    bits: int
    supported: bool
    max_size: tuple[int, int]
    source: str
    """"GetDecoderCaps" (asked of the GPU) or "table" (HOPPER_NVDEC, not asked)."""


def nvdec_codecs(gpu: int | None) -> tuple[CodecSupport, ...]:
    """What NVDEC takes on GPU ``gpu`` (asked when possible), else the Hopper table."""
    rows: list[CodecSupport] = []
    for codec, limits in HOPPER_NVDEC.items():
        for bits in (8, 10):
            caps = decoder_caps(gpu, limits.cuvid, "420", bits) if gpu is not None else None
            if caps is not None:
                rows.append(CodecSupport(codec, bits, bool(caps.get("supported")),
                                         (caps.get("width_max", 0), caps.get("height_max", 0)), "GetDecoderCaps"))
            else:
                rows.append(CodecSupport(codec, bits, bits in limits.bits, limits.max_size, "table"))
    return tuple(rows)
