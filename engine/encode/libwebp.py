"""One lossy WebP still from libwebp's advanced API, for the settings Pillow's writer does not pass on.

Why: a frame the animation alpha-blends onto the canvas (see-through blocks, engine/encode/webp.py)
codes its opaque pixels worse when libwebp's loop filter runs, because the filter smooths across
the edges of the flattened transparent blocks into the opaque pixels beside them (one 1080p frame,
76% see-through, quality 45, method 4, cwebp: opaque pixels 39.05 dB coded opaque, 36.95 dB with
the transparent blocks). libwebp's own animation encoder turns the filter off for every frame it
blends (``filter_strength`` and ``autofilter`` 0 in anim_encode.c's candidate coding); Pillow sets
quality, method and ``exact`` but not the filter. So the writer codes its stills here, through
ctypes, with the same library Pillow loaded: at the same settings the bytes are Pillow's
(tests/encode/test_libwebp.py), and the filter can be switched off per frame.

Which library: the libwebp that Pillow's WebP plugin is linked against, found in the process's
memory map once the plugin is imported (Pillow's wheels bundle it as ``pillow.libs/libwebp-*.so``),
else the system's (``ctypes.util.find_library``). Where neither loads (a Pillow built with libwebp
linked into its plugin, and no system libwebp), :func:`unavailable` says why and the writer codes through Pillow
with the filter on: valid files, a little less quality per byte on see-through frames.

The structures below are libwebp's public ``WebPConfig``, ``WebPPicture`` and
``WebPMemoryWriter`` (encode.h), whose layout is fixed within an ABI major version (0x02 for every
libwebp 1.x); ``WebPConfigInitInternal`` refuses another major version, which then counts as
unavailable. ctypes calls release the GIL, so stills code in parallel threads as through Pillow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re

import numpy as np

_ABI = 0x020F
"""WEBP_ENCODER_ABI_VERSION of libwebp 1.2-1.6; libwebp checks only its major byte (0x02). (qmin and
qmax, the config's last fields, were padding before 1.2; they are never set here.)"""
_FLOAT_FIELDS = ("quality", "target_PSNR")

_CONFIG_FIELDS = (
    "lossless", "quality", "method", "image_hint", "target_size", "target_PSNR", "segments", "sns_strength",
    "filter_strength", "filter_sharpness", "filter_type", "autofilter", "alpha_compression", "alpha_filtering",
    "alpha_quality", "pass_", "show_compressed", "preprocessing", "partitions", "partition_limit",
    "emulate_jpeg_size", "thread_level", "low_memory", "near_lossless", "exact", "use_delta_palette",
    "use_sharp_yuv", "qmin", "qmax",
)


class _Config(ctypes.Structure):
    _fields_ = [(name, ctypes.c_float if name in _FLOAT_FIELDS else ctypes.c_int) for name in _CONFIG_FIELDS]


class _Picture(ctypes.Structure):
    _fields_ = [
        ("use_argb", ctypes.c_int), ("colorspace", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
        ("y", ctypes.c_void_p), ("u", ctypes.c_void_p), ("v", ctypes.c_void_p),
        ("y_stride", ctypes.c_int), ("uv_stride", ctypes.c_int), ("a", ctypes.c_void_p), ("a_stride", ctypes.c_int),
        ("pad1", ctypes.c_uint32 * 2), ("argb", ctypes.c_void_p), ("argb_stride", ctypes.c_int),
        ("pad2", ctypes.c_uint32 * 3), ("writer", ctypes.c_void_p), ("custom_ptr", ctypes.c_void_p),
        ("extra_info_type", ctypes.c_int), ("extra_info", ctypes.c_void_p), ("stats", ctypes.c_void_p),
        ("error_code", ctypes.c_int), ("progress_hook", ctypes.c_void_p), ("user_data", ctypes.c_void_p),
        ("pad3", ctypes.c_uint32 * 3), ("pad4", ctypes.c_void_p), ("pad5", ctypes.c_void_p),
        ("pad6", ctypes.c_uint32 * 8), ("memory_", ctypes.c_void_p), ("memory_argb_", ctypes.c_void_p),
        ("pad7", ctypes.c_void_p * 2),
    ]


class _MemoryWriter(ctypes.Structure):
    _fields_ = [("mem", ctypes.POINTER(ctypes.c_uint8)), ("size", ctypes.c_size_t), ("max_size", ctypes.c_size_t),
                ("pad", ctypes.c_uint32 * 1)]


_ERRORS = {1: "out of memory", 2: "out of memory for the bitstream", 3: "null parameter", 4: "invalid configuration",
           5: "bad dimension (at most 16383 x 16383)", 6: "partition 0 overflow", 7: "partition overflow",
           8: "bad write", 9: "file too big (4 GiB)", 10: "cancelled"}
"""libwebp's WebPEncodingError values."""

_NAME = re.compile(r"libwebp(-[0-9a-f]+)?\.(so|dylib)")


def _pillows_libwebp() -> str | None:
    """The path of the libwebp Pillow's WebP plugin loaded into this process (Linux), or None."""
    try:
        from PIL import _webp  # noqa: F401  (loads the plugin and the libwebp it links)
    except ImportError:
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if _NAME.match(os.path.basename(path)):
                    return path
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL | None, str | None]:
    """(libwebp, None) once loaded and accepted, else (None, why not)."""
    path = _pillows_libwebp() or ctypes.util.find_library("webp")
    if path is None:
        return None, "no libwebp shared library found (Pillow's may be linked in statically)"
    try:
        lib = ctypes.CDLL(path)
        lib.WebPConfigInitInternal.argtypes = [ctypes.POINTER(_Config), ctypes.c_int, ctypes.c_float, ctypes.c_int]
        lib.WebPPictureInitInternal.argtypes = [ctypes.POINTER(_Picture), ctypes.c_int]
        lib.WebPPictureImportRGB.argtypes = [ctypes.POINTER(_Picture), ctypes.c_void_p, ctypes.c_int]
        lib.WebPPictureImportRGBA.argtypes = [ctypes.POINTER(_Picture), ctypes.c_void_p, ctypes.c_int]
        lib.WebPEncode.argtypes = [ctypes.POINTER(_Config), ctypes.POINTER(_Picture)]
        lib.WebPPictureFree.argtypes = [ctypes.POINTER(_Picture)]
        lib.WebPMemoryWriterInit.argtypes = [ctypes.POINTER(_MemoryWriter)]
        lib.WebPMemoryWriterClear.argtypes = [ctypes.POINTER(_MemoryWriter)]
        lib.WebPGetEncoderVersion.restype = ctypes.c_int
    except (OSError, AttributeError) as error:
        return None, f"{path}: {error}"
    version = lib.WebPGetEncoderVersion()
    if version < 0x000600:  # the fields set here, and the structures' sizes, are as above from 0.6 on
        return None, f"{path} is libwebp {version >> 16}.{(version >> 8) & 255}; 0.6 or newer is needed"
    if not lib.WebPConfigInitInternal(ctypes.byref(_Config()), 0, 75.0, _ABI):
        return None, f"{path} refuses the encoder ABI 0x{_ABI:04x}"
    return lib, None


def unavailable() -> str | None:
    """Why stills cannot be coded here (the writer then uses Pillow), or None when they can."""
    return _library()[1]


def loaded_from() -> str | None:
    """The path of the libwebp in use, or None when there is none (:func:`unavailable` says why)."""
    lib = _library()[0]
    return None if lib is None else lib._name


def encode_still(rgb: np.ndarray, alpha: np.ndarray | None, quality: int, method: int,
                 loop_filter: bool = True) -> bytes:
    """A lossy WebP file (RIFF) of ``rgb`` (uint8 [H, W, 3]) with ``alpha`` (uint8 [H, W]) or
    none, as Pillow's ``save(format="WEBP", quality=..., method=..., exact=False)`` writes it;
    ``loop_filter`` False: libwebp's in-loop deblocking filter off. Raises RuntimeError when
    libwebp cannot code it, naming the reason."""
    lib, why = _library()
    if lib is None:
        raise RuntimeError(f"libwebp is not available: {why}")
    config = _Config()
    if not lib.WebPConfigInitInternal(ctypes.byref(config), 0, float(quality), _ABI):
        raise RuntimeError("libwebp refused its default configuration")
    config.method = method
    if not loop_filter:
        config.filter_strength = 0
        config.autofilter = 0
    picture = _Picture()
    if not lib.WebPPictureInitInternal(ctypes.byref(picture), _ABI):
        raise RuntimeError("libwebp refused a picture")
    height, width, _ = rgb.shape
    # Imported straight to Y'CbCr 4:2:0 (use_argb 0), which lossy coding needs: Pillow imports to
    # ARGB (its writer also codes lossless) and libwebp then converts that, the same arithmetic on
    # the same values, so the same bytes, but a frame's extra copy: 7-14 % of a frame's coding at
    # method 1 and 2 (1280x720 8.4 against 9.8 ms, 480x270 1.25 against 1.43; one thread).
    picture.width, picture.height, picture.use_argb = width, height, 0
    if alpha is None:
        pixels = np.ascontiguousarray(rgb)
        imported = lib.WebPPictureImportRGB(ctypes.byref(picture), pixels.ctypes.data, width * 3)
    else:
        pixels = np.empty((height, width, 4), np.uint8)
        pixels[..., :3] = rgb
        pixels[..., 3] = alpha
        imported = lib.WebPPictureImportRGBA(ctypes.byref(picture), pixels.ctypes.data, width * 4)
    writer = _MemoryWriter()
    lib.WebPMemoryWriterInit(ctypes.byref(writer))
    try:
        if not imported:
            raise RuntimeError(f"libwebp could not take a {width}x{height} picture (out of memory?)")
        picture.writer = ctypes.cast(lib.WebPMemoryWrite, ctypes.c_void_p).value
        picture.custom_ptr = ctypes.cast(ctypes.byref(writer), ctypes.c_void_p).value
        if not lib.WebPEncode(ctypes.byref(config), ctypes.byref(picture)):
            code = picture.error_code
            raise RuntimeError(f"libwebp could not code a {width}x{height} frame: {_ERRORS.get(code, code)}")
        return ctypes.string_at(writer.mem, writer.size)
    finally:
        lib.WebPMemoryWriterClear(ctypes.byref(writer))
        lib.WebPPictureFree(ctypes.byref(picture))
