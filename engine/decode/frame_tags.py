"""What a decoded frame's tags, and its stream's header, say about showing it: which way up, which
colour matrix and range, HDR or not (and how bright its brightest pixel), which primaries.

One set of rules for both paths: the CPU decoder (engine/decode/pyav.py) applies them to every
frame, the GPU path reads them once per file from the first frame (:func:`tags_of`, cached by
:func:`engine.decode.frame_index.read_stream_tags`) because NVDEC hands over bare planes.

A frame's own tag usually wins over the header's: the bitstream is what the decoder read, and an
alternative-transfer SEI may say HLG in a stream whose header says SDR. The header speaks for a
frame the decoder left untagged (HEVC's decoder does so when only the container's ``colr`` box
tells), and for the matrix of a codec whose decoder stamps one tag on every frame whatever the
file says (:data:`STAMPED_MATRIX`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import av
import numpy as np
from av.sidedata.sidedata import Type

from ..probe import HDR_TRANSFERS, MediaInfo

__all__ = ["MATRIX_BY_COLORSPACE", "PLAUSIBLE_PEAK_NITS", "STAMPED_MATRIX", "WIDE_PRIMARIES", "StreamTags",
           "colorspace_of", "content_peak", "gamut_of", "hdr_primaries", "hdr_transfer", "orientation", "pixel_bits",
           "tags_of"]

MATRIX_BY_COLORSPACE = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
"""FFmpeg's AVColorSpace tags -> kernel matrix names. Any other tag gets BT.601, as swscale
(the CPU path's converter) does."""
WIDE_PRIMARIES = {9: "bt2020", 12: "p3"}
"""FFmpeg's AVColorPrimaries tags of gamuts wider than BT.709's that SDR frames are mapped from
(:mod:`kernels.gamut`): BT.2020 (UHD broadcast SDR, some cameras) and Display P3 (SMPTE EG 432-1:
DCI-P3's primaries with D65 white, the P3 of wide-gamut screens). The BT.601
primaries (470BG, 170M) sit within a few codes of BT.709's on saturated colours and are shown
as they are, as players do; DCI-P3 with its own white point (431) is left unmapped."""
HDR_PRIMARIES = {1: "bt709", 9: "bt2020", 12: "p3"}
"""FFmpeg's AVColorPrimaries tags HDR frames are converted from in the tone map: BT.2020 (HDR10,
HLG, and any HDR frame that says nothing else), Display P3 (P3-D65 PQ masters), BT.709."""
STAMPED_MATRIX = frozenset({"dnxhd"})
"""Codecs whose FFmpeg decoder tags every frame with one matrix whatever the file says: the VC-3
(DNxHD/DNxHR) decoder says BT.709 in files whose header says BT.2020 or BT.601. Their frames take
the header's matrix where it gives one."""
PLAUSIBLE_PEAK_NITS = (100.0, 10000.0)
"""The peaks a stream's light-level metadata is believed within, cd/m²: PQ stops at 10000, and a
MaxCLL of 0 (unknown, as the standard says) or a few nits is an encoder's placeholder, not a
picture (a real one that dark is tone-mapped the same either way: nothing reaches the knee)."""
_UNSPECIFIED = (None, 0, 2)
"""Tags that say nothing: none, reserved, unspecified."""
_BT709, _BT601, _BT2020 = 1, 5, 9  # AVColorSpace values, which swscale's SWS_CS_* share
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


@dataclass(frozen=True)
class StreamTags:
    """What the CPU path reads from each decoded frame, read once for a backend that cannot."""

    turns: int
    """Quarter turns counter-clockwise that make the picture upright (display matrix)."""
    matrix: str
    """YCbCr matrix for kernels.colour: "bt601", "bt709", "bt2020", ..."""
    full_range: bool
    bits: int
    """Bits per sample (8, 10, 12)."""
    mirrored: bool = False
    """The display matrix mirrors the picture: flipped left-right as coded, before the turns."""
    transfer: str | None = None
    """"pq" or "hlg": the frames are HDR and tone-mapped (:func:`hdr_transfer`: the frame's own
    tag, or the header's for an untagged frame), as the CPU path decides per frame."""
    wide_gamut: str | None = None
    """The wide primaries SDR frames are coded with ("bt2020", "p3": :func:`gamut_of`), mapped to
    BT.709's; None for BT.709's own (and for HDR frames, which the tone map converts)."""
    hdr_primaries: str = "bt2020"
    """The primaries HDR frames are coded with (:func:`hdr_primaries`), converted in the tone map."""
    peak_nits: float | None = None
    """The brightest the HDR frames get, cd/m², from their light-level metadata
    (:func:`content_peak`); None: not said, the tone map assumes its default."""


def orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """How the frame's display matrix shows it: (quarter turns counter-clockwise, mirrored), the
    mirror (left-right, as coded) applied first. PyAV's ``rotation`` reads the matrix as a pure
    rotation, so a mirrored one (a horizontal flip, or a transpose) came out turned instead of
    flipped: upside down for a mirror. Here a matrix with a negative determinant is a mirror,
    and the rotation is read from the matrix with the mirror taken out."""
    for side in _side_data(frame):
        if side.type is not Type.DISPLAYMATRIX:
            continue
        a, b, _, c, d = np.frombuffer(side, dtype=np.int32)[:5].astype(np.float64)
        if a * d - b * c >= 0 or not (math.hypot(a, c) and math.hypot(b, d)):
            break
        # as libavutil's av_display_rotation_get, on the matrix with its first column negated
        angle = -math.degrees(math.atan2(-b / math.hypot(b, d), -a / math.hypot(a, c)))
        return round(angle / 90) % 4, True
    return round((frame.rotation or 0) / 90) % 4, False


def _side_data(frame: av.VideoFrame) -> tuple:
    """The frame's side data as PyAV lists it, or none when PyAV cannot list it: it names each
    entry with its own enum, which ends at the side-data types it knows (27, VIDEO_HINT, in PyAV
    18), and a frame carrying one the bundled FFmpeg added since (LCEVC, an MV-HEVC view id, 3D
    reference displays) makes the listing raise ValueError, which failed the job. Without the
    list, the turn comes from PyAV's ``rotation`` (read without the enum) and a mirror is missed;
    the HDR peak is the default."""
    try:
        return tuple(frame.side_data)
    except ValueError:
        return ()


def colorspace_of(frame: av.VideoFrame, media: MediaInfo | None = None, hdr: bool = False) -> int:
    """The AVColorSpace ``frame`` is converted with, on both paths: its own tag (unless its
    codec stamps one on every frame, :data:`STAMPED_MATRIX`, and the header gives one); untagged,
    the header's (``media.colorspace``: a container's tag the decoder did not pass on); neither,
    BT.2020 for HDR, else BT.709 from 720 rows up and BT.601 below, as players assume."""
    header = media.colorspace if media is not None else 0
    stamped = media is not None and media.codec in STAMPED_MATRIX
    if frame.colorspace not in _UNSPECIFIED and not (stamped and header not in _UNSPECIFIED):
        return int(frame.colorspace)
    if header not in _UNSPECIFIED:
        return int(header)
    if hdr:
        return _BT2020
    return _BT709 if frame.height >= 720 else _BT601


def hdr_transfer(frame: av.VideoFrame, media: MediaInfo | None = None) -> str | None:
    """"pq" or "hlg" when the frame is tagged with an HDR transfer, None when it is tagged with
    another; an untagged frame has the header's (``media.transfer``, from the container's
    tags as probed): FFmpeg's HEVC decoder hands over frames untagged when only the container
    says PQ, and they were shown washed out as SDR while the notes said tone-mapped. (A frame's
    own tag wins: an alternative-transfer SEI saying HLG in a stream tagged BT.2020 SDR.)"""
    if frame.color_trc in _UNSPECIFIED:
        return media.transfer if media is not None else None
    return HDR_TRANSFERS.get(int(frame.color_trc))


def content_peak(frame: av.VideoFrame, transfer: str | None) -> float | None:
    """How bright a PQ stream's brightest pixel is, in cd/m², as its metadata says: the content
    light level's MaxCLL (the brightest pixel of the whole programme), else the mastering display's
    peak (the brightest it could have been graded to), as FFmpeg's tone mapping reads them; None
    when neither says a plausible one (:data:`PLAUSIBLE_PEAK_NITS`), or for HLG, whose signal is
    scene light for a nominal 1000 cd/m² display whatever the metadata says. FFmpeg attaches both
    to decoded frames, from the HEVC/AV1 SEI or OBUs and from the container's ``mdcv``/``clli``
    boxes and Matroska's colour elements."""
    if transfer != "pq":
        return None
    low, high = PLAUSIBLE_PEAK_NITS
    cll = mastering = None
    for side in _side_data(frame):
        data = bytes(side)
        if side.type is Type.CONTENT_LIGHT_LEVEL and len(data) >= 8:
            cll = float(struct.unpack_from("<I", data)[0])  # AVContentLightMetadata.MaxCLL
        elif side.type is Type.MASTERING_DISPLAY_METADATA and len(data) >= 88:
            # AVMasteringDisplayMetadata: 8 rationals of primaries and white point, min and max
            # luminance, has_primaries, has_luminance
            fields = struct.unpack_from("<22i", data)
            num, den, has_luminance = fields[18], fields[19], fields[21]
            if has_luminance and den > 0:
                mastering = num / den
    for told in (cll, mastering):
        if told is not None and low <= told <= high:
            return told
    return None


def gamut_of(frame: av.VideoFrame, media: MediaInfo | None = None) -> str | None:
    """The wide primaries (:data:`WIDE_PRIMARIES`) the frame is tagged with, or the header's
    (``media.primaries``) when the frame says none; None for any other. An SDR frame so tagged is
    mapped to BT.709's by :mod:`kernels.gamut`; HDR frames are converted from their own in the tone
    map (:func:`hdr_primaries`)."""
    return WIDE_PRIMARIES.get(_primaries_tag(frame, media))


def hdr_primaries(frame: av.VideoFrame, media: MediaInfo | None = None) -> str:
    """The primaries an HDR frame is coded with (:data:`HDR_PRIMARIES`: the frame's tag, else the
    header's), BT.2020 when neither says one of those: HDR's own, and what the tone map assumed
    for every HDR frame before P3-D65 masters were read as such (their greens and reds came out
    too saturated, read as BT.2020's)."""
    return HDR_PRIMARIES.get(_primaries_tag(frame, media), "bt2020")


def _primaries_tag(frame: av.VideoFrame, media: MediaInfo | None) -> int:
    """The frame's AVColorPrimaries tag, or the header's when the frame says none."""
    told = int(frame.color_primaries or 0)
    if told in _UNSPECIFIED and media is not None:
        told = media.primaries
    return told


def tags_of(frame: av.VideoFrame, media: MediaInfo | None = None) -> StreamTags:
    """The rules engine/decode/pyav.py applies when it converts ``frame`` (of the stream ``media``
    describes; None: a header that says nothing) to RGB: an HDR frame takes BT.2020's matrix when
    untagged, and only an SDR frame is gamut-mapped."""
    transfer = hdr_transfer(frame, media)
    matrix = MATRIX_BY_COLORSPACE.get(colorspace_of(frame, media, hdr=transfer is not None), "bt601")
    name = frame.format.name
    turns, mirrored = orientation(frame)
    return StreamTags(
        turns=turns,
        mirrored=mirrored,
        matrix=matrix,
        full_range=frame.color_range == _FULL_RANGE or name.startswith("yuvj"),
        bits=pixel_bits(name),
        transfer=transfer,
        wide_gamut=gamut_of(frame, media) if transfer is None else None,
        hdr_primaries=hdr_primaries(frame, media),
        peak_nits=content_peak(frame, transfer),
    )


def pixel_bits(pixel_format: str) -> int:
    """Bits per sample from an FFmpeg pixel format name: yuv420p -> 8, yuv420p10le -> 10, p010le -> 10."""
    if pixel_format.startswith("p0") and pixel_format[1:4].isdigit():  # p010le, p016le: NV12-like words
        return int(pixel_format[1:4])
    for bits in (16, 14, 12, 10, 9):
        if f"p{bits}" in pixel_format:
            return bits
    return 8
