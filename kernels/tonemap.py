"""HDR (PQ or HLG, BT.2020) to SDR (BT.709) frames: linearise, convert primaries, compress highlights.

Phones record HDR by default (HLG HEVC), and streaming masters are often PQ. Decoded the SDR way,
their non-linear BT.2020 values read as BT.709 and the preview comes out grey and washed out.
These ops turn the decoder's non-linear R'G'B' (BT.2020 primaries, values in [0, 1]) into SDR:

1. the transfer's inverse, to light relative to HDR reference white, 203 cd/m² (ITU-R BT.2408:
   the level of diffuse white, a white page or a face's highlight, in HDR grading; libplacebo,
   mpv's and FFmpeg's ``vf_libplacebo`` renderer, takes the same as SDR white, its
   ``PL_COLOR_SDR_WHITE``): PQ (SMPTE ST 2084) is absolute; HLG
   (ARIB STD-B67) is scene light shown on a 1000 cd/m² display with the BT.2100 OOTF (system
   gamma 1.2), which puts HLG's 75 % signal at 203 cd/m²;
2. BT.2020 -> BT.709 primaries in linear light (BT.2087; Display P3's for P3-D65 masters:
   :mod:`kernels.primaries`);
3. highlights above :data:`KNEE` of reference white rolled off so that ``peak`` (the content's
   brightest, :func:`engine.decode.frame_tags.content_peak`, else 1000 cd/m², the common mastering
   peak and HLG's nominal display) reaches white, on each pixel's largest component, its three
   components scaled alike so hue is kept; below the knee the light is kept as it is. The curve
   is a Möbius map (value and slope continuous at the knee, white at the peak): the same operator
   as FFmpeg's ``tonemap=mobius`` with ``param`` = :data:`KNEE`. Content no brighter than
   reference white is not compressed at all;
4. the inverse of the SDR display's EOTF (BT.1886, gamma 2.4), to 8 bits: the light is display
   light by now, so it is encoded for the display that will show it (as zimg's ``t=bt709`` does
   for linear input), not with the camera OETF.

Until 2026-12-05 step 1 took 100 cd/m² as white and step 3 was the Hable filmic curve to a fixed
1000 cd/m² (FFmpeg's ``zscale=npl=100`` + ``tonemap=hable`` recipe): HDR reference white came out
at 193 of 255 and 100 cd/m² at 157, every HDR preview darker than the same scene in SDR
(the library's PQ clip 34 levels darker than its SDR master: notes/hdr.md).

Pure tensor ops on any device, no host sync; float32, but for HLG's power and the square root
(float64, rounded: see :func:`_map_planes`). CPU tensors go through the compiled loop of
:mod:`kernels.tonemap_scan` when numba is installed.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from .compiled import runs
from .primaries import BT2020_TO_BT709, to_bt709_matrix
from .tonemap_scan import CODES, SCAN

REFERENCE_WHITE_NITS = 203.0
"""HDR reference white (BT.2408), cd/m²: linear 1.0 after step 1, shown as SDR white."""
DEFAULT_PEAK_NITS = 1000.0
"""The peak assumed when the stream says none: the usual HDR10 mastering display's, and the
nominal display HLG's OOTF is defined for."""
KNEE = 0.5
"""Where the highlight roll-off starts, as a fraction of reference white (about 100 cd/m²). BT.2390's
EETF, mapping a 1000 cd/m² master into 203, starts its roll-off near there (88 cd/m², 0.43 of
white; about 40 for a 4000 cd/m² master); one knee for every peak keeps mid-tones the same
whatever the metadata says."""

_PQ_M1 = 2610 / 16384
_PQ_M2 = 2523 / 4096 * 128
_PQ_C1 = 3424 / 4096
_PQ_C2 = 2413 / 4096 * 32
_PQ_C3 = 2392 / 4096 * 32

_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4 * _HLG_A)
_HLG_PEAK_NITS = 1000.0
_HLG_GAMMA = 1.2
_BT2020_LUMA = (0.2627, 0.6780, 0.0593)


def pq_to_linear(signal: Tensor) -> Tensor:
    """SMPTE ST 2084 EOTF: non-linear [0, 1] -> light relative to reference white (203 cd/m² = 1)."""
    e = signal.clamp(0, 1).pow(1 / _PQ_M2)
    nits = 10000.0 * ((e - _PQ_C1).clamp_min(0) / (_PQ_C2 - _PQ_C3 * e)).pow(1 / _PQ_M1)
    return nits / REFERENCE_WHITE_NITS


def hlg_to_linear(signal: Tensor) -> Tensor:
    """ARIB STD-B67 inverse OETF then the BT.2100 OOTF for a 1000 cd/m² display, on [N, 3, H, W]:
    light relative to reference white (203 cd/m² = 1)."""
    return _hlg_ootf(_hlg_inverse_oetf(signal.clamp(0, 1)))


def _hlg_inverse_oetf(e: Tensor) -> Tensor:
    """ARIB STD-B67: non-linear [0, 1] -> scene light [0, 1], per channel."""
    return torch.where(e <= 0.5, e * e / 3, (torch.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12)


def bt2020_to_bt709(linear: Tensor) -> Tensor:
    """Linear-light primaries conversion on [N, 3, H, W]; out-of-gamut colours go below 0."""
    matrix = torch.tensor(BT2020_TO_BT709, dtype=linear.dtype, device=linear.device)
    return torch.einsum("ij,njhw->nihw", matrix, linear)


def rolloff_rate(peak: float) -> float:
    """The Möbius roll-off's one constant for a ``peak`` (relative to reference white): above the
    knee, ``x -> KNEE + e / (1 + e * rate)`` with ``e = x - KNEE`` has slope 1 at the knee and
    reaches 1 at ``peak``; 0 (no compression) for a peak at or below white."""
    if peak <= 1.0:
        return 0.0
    room, span = 1.0 - KNEE, peak - KNEE
    return (span - room) / (span * room)


def rolloff(linear: Tensor, peak: float) -> Tensor:
    """Roll off each pixel's largest component above :data:`KNEE` (``peak`` -> 1, below the knee
    unchanged), scaling all three by the same factor."""
    top = linear.amax(dim=1, keepdim=True).clamp_min(1e-6)
    return linear * (_rolled(top, rolloff_rate(peak)) / top)


def _rolled(top: Tensor, rate: float) -> Tensor:
    """``top`` (a pixel's largest component) through the roll-off: kept below :data:`KNEE`, above it
    ``KNEE + e / (1 + e * rate)``, in the float operations and order the compiled loop repeats."""
    excess = (top - KNEE).clamp_min_(0)
    return torch.where(top < KNEE, top, excess.div(excess.mul(rate).add_(1)).add_(KNEE))


def bt1886_inverse(linear: Tensor) -> Tensor:
    """Display light [0, 1] -> the SDR code value a BT.1886 display (gamma 2.4) shows it at."""
    return linear.clamp(0, 1).pow(1 / 2.4)


def _hlg_ootf(scene: Tensor) -> Tensor:
    weights = torch.tensor(_BT2020_LUMA, dtype=scene.dtype, device=scene.device).view(1, 3, 1, 1)
    luma = (scene * weights).sum(dim=1, keepdim=True)
    return scene * luma.clamp_min(1e-6).pow(_HLG_GAMMA - 1) * (_HLG_PEAK_NITS / REFERENCE_WHITE_NITS)


def hdr_to_sdr(rgb: Tensor, transfer: str, peak_nits: float | None = None, primaries: str = "bt2020") -> Tensor:
    """Non-linear HDR R'G'B' [N, 3, H, W] coded with ``primaries`` (float in [0, 1], or integers
    0-65535, e.g. the decoder's uint16) -> SDR BT.709 uint8 [N, 3, H, W]: channels last from the compiled loop,
    planar from the torch kernel (each writes its own layout fastest; the pipeline takes either).
    ``transfer`` is "pq" or "hlg"; ``peak_nits`` the content's brightest (None:
    :data:`DEFAULT_PEAK_NITS`); ``primaries`` those the frames are coded with (a key of
    :data:`kernels.primaries.CHROMATICITIES`: BT.2020's, or Display P3's for P3-D65 masters).

    The per-channel curves are tables, not arithmetic: the signal as a 16-bit code indexes the
    transfer's inverse (65,536 floats), and the result leaves through a table indexed by the
    square root of display light (fine steps near black, where the 2.4 gamma is steepest), so
    only the primaries, the roll-off and HLG's OOTF are computed per pixel. Same output as
    the formulas (:func:`pq_to_linear`, :func:`hlg_to_linear`, :func:`bt2020_to_bt709`,
    :func:`rolloff`, :func:`bt1886_inverse`: the reference, in float64) but on rare rounding ties:
    of 300,000 random values 0.04% (PQ) and 0.08% (HLG) differ, by one code (test_tonemap.py).

    CPU tensors go through the compiled loop (:mod:`kernels.tonemap_scan`, the same bytes) when
    numba is installed; otherwise, on the CPU, the pixels go through in tiles of :data:`CPU_TILE`
    per frame, so the dozen float intermediates stay in cache instead of each being a pass over
    the whole clip in memory: a PQ job's 45 frames at 960x540 on one thread took 2.1 s whole and
    0.43 s in tiles, the same bytes (memory traffic, not arithmetic, was the cost); 0.73 s since
    the steps are those the loop can repeat exactly (:func:`_map_planes`). Other devices
    take a frame at a time. Per pixel, so still cheapest after the frames are shrunk (the decoder
    resizes 16-bit frames first, engine/decode/pyav.py)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be [N, 3, H, W], got {tuple(rgb.shape)}")
    if transfer not in ("pq", "hlg"):
        raise ValueError(f"transfer must be 'pq' or 'hlg', got {transfer!r}")
    count, _, height, width = rgb.shape
    pixels = height * width
    signal = _signal_table(transfer, rgb.device)
    output = _output_table(rgb.device)
    peak = (DEFAULT_PEAK_NITS if peak_nits is None else peak_nits) / REFERENCE_WHITE_NITS
    if runs(SCAN, rgb.device):
        rows = torch.empty((count, pixels, 3), dtype=torch.uint8)
        _scan(rgb, transfer, peak, signal, output, rows, primaries)
        return rows.view(count, height, width, 3).permute(0, 3, 1, 2)
    out = torch.empty((count, 3, height, width), dtype=torch.uint8, device=rgb.device)
    tile = CPU_TILE if rgb.device.type == "cpu" else max(1, pixels)
    for k in range(count):
        planes = rgb[k]
        if not planes.is_floating_point():
            # integer codes become int32 planes in one pass over the frame, whatever its layout:
            # tiles of the decoder's channels-last uint16 were strided [3, P] views whose every
            # table lookup copied them (45 PQ frames at 960x540, one thread: 0.75 -> 0.6 s)
            planes = planes.to(torch.int32, memory_format=torch.contiguous_format)
        planes = planes.reshape(3, pixels)  # a copy only for channels-last float frames
        target = out[k].view(3, pixels)
        for start in range(0, pixels, tile):
            _map_planes(planes[:, start:start + tile], transfer, peak, signal, output, target[:, start:start + tile],
                        primaries)
    return out


CPU_TILE = 1 << 15
"""Pixels tone-mapped at once on the CPU: 32 Ki pixels keep a dozen [3, tile] float32
intermediates (384 KB each) near the cache; 16-128 Ki measured within 8% of each other."""


def _codes(planes: Tensor) -> Tensor:
    """16-bit codes (int32) of R'G'B' planes: float [0, 1] scaled and rounded, integers clamped;
    always in 0..65535 (a NaN converts to some integer, clamped too), as the compiled loop's
    unchecked table reads need."""
    if planes.is_floating_point():
        return (planes.clamp(0, 1) * 65535).add_(0.5).to(torch.int32).clamp_(0, 65535)
    return planes.to(torch.int32).clamp(0, 65535)


def _map_planes(planes: Tensor, transfer: str, peak: float, signal: Tensor, output: Tensor, target: Tensor,
                primaries: str = "bt2020") -> None:
    """The tone map of [3, P] R'G'B' (float or integer codes) into ``target`` uint8 [3, P].

    Written as separate float32 operations (the primaries as products and sums, not a matmul;
    HLG's power and the square root in float64, then rounded), because the compiled loop repeats
    them one for one: a BLAS product rounds in ways no loop can match, and torch's float32
    ``sqrt`` on the CPU is MKL's, off by an ulp now and then (an output code moved by one)."""
    linear = _lookup(signal, _codes(planes))
    if transfer == "hlg":
        wr, wg, wb = _BT2020_LUMA
        lift = (linear[0] * wr + linear[1] * wg + linear[2] * wb).clamp_min_(1e-6).double().pow_(_HLG_GAMMA - 1).float()
        linear = linear * lift * (_HLG_PEAK_NITS / REFERENCE_WHITE_NITS)
    columns = _primary_columns(primaries, linear.device)  # row i: m[i][0] * r + m[i][1] * g + m[i][2] * b, in that order
    sdr = (columns[0] * linear[0] + columns[1] * linear[1] + columns[2] * linear[2]).clamp_min_(0)
    top = sdr.amax(dim=0).clamp_min_(1e-6)
    scale = _rolled(top, rolloff_rate(peak)).div_(top)  # rolloff(), per pixel
    root = sdr.mul_(scale).clamp_(max=1).double().sqrt_().float()  # float32 sqrt, rounded once
    target.copy_(_lookup(output, root.mul_(_OUT_STEPS).add_(0.5).to(torch.int32)))


@functools.lru_cache(maxsize=8)
def _primary_columns(primaries: str, device: torch.device) -> Tensor:
    """``primaries`` -> BT.709 as columns [3 (input channel), 3 (output channel), 1], float32."""
    matrix = to_bt709_matrix(primaries)
    return torch.tensor(matrix, dtype=torch.float32, device=device).T.reshape(3, 3, 1).contiguous()


def _scan(rgb: Tensor, transfer: str, peak: float, signal: Tensor, output: Tensor, out: Tensor,
          primaries: str = "bt2020") -> None:
    """:func:`hdr_to_sdr` through the compiled loop, frame by frame, into ``out`` uint8 [N, P, 3].

    The loop reads uint16 codes [P, 3]: the decoder's channels-last frames are that already;
    planar float frames (the resizing fit's) become codes in one compiled pass (:data:`CODES`);
    any other layout or type through the torch ops of :func:`_codes`."""
    count, _, height, width = rgb.shape
    pixels = height * width
    curve = np.array(scan_curve(peak), dtype=np.float32)
    matrix = np.array(to_bt709_matrix(primaries), dtype=np.float32)  # float32, as torch rounds the Python numbers
    hlg = transfer == "hlg"
    signal, output = signal.numpy(), output.numpy()
    codes = np.empty((pixels, 3), dtype=np.uint16)
    for k in range(count):
        frame = rgb[k]
        if frame.dtype == torch.uint16 and frame.permute(1, 2, 0).is_contiguous():
            frame_codes = frame.permute(1, 2, 0).reshape(pixels, 3).numpy()
        elif frame.dtype == torch.float32 and frame.is_contiguous():
            CODES(frame.reshape(3, pixels).numpy(), codes)
            frame_codes = codes
        else:
            frame_codes = _codes(frame.permute(1, 2, 0)).to(torch.uint16).contiguous().view(pixels, 3).numpy()
        SCAN(frame_codes, hlg, signal, output, matrix, _LUMA, curve, _HLG_GAMMA - 1, out[k].numpy())


_LUMA = np.array(_BT2020_LUMA, dtype=np.float32)
"""The HLG OOTF's luma weights for the loop, float32 as torch rounds the Python numbers."""


def scan_curve(peak: float) -> tuple[float, ...]:
    """The loop's float constants, as Python numbers the torch kernel hands its float32 operations
    (each rounded to float32 the same way when the loop's array is made): the knee, the roll-off's
    rate for ``peak`` and HLG's OOTF scale."""
    return (KNEE, rolloff_rate(peak), _HLG_PEAK_NITS / REFERENCE_WHITE_NITS)


def _lookup(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for an int32 index of any shape (index_select takes int32: no int64 copy)."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


_OUT_STEPS = 65535
"""Steps of the square root of display light in the output table."""


@functools.lru_cache(maxsize=8)
def _signal_table(transfer: str, device: torch.device) -> Tensor:
    """The transfer's inverse at every 16-bit code, float32 [65536]: light relative to reference
    white (PQ), or scene light before the OOTF (HLG)."""
    signal = torch.arange(65536, dtype=torch.float64) / 65535
    if transfer == "pq":
        table = pq_to_linear(signal)
    else:
        table = _hlg_inverse_oetf(signal)
    return table.to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=8)
def _output_table(device: torch.device) -> Tensor:
    """The 8-bit BT.1886 code at every step of sqrt(display light), uint8 [_OUT_STEPS + 1]."""
    light = (torch.arange(_OUT_STEPS + 1, dtype=torch.float64) / _OUT_STEPS).square()
    return (bt1886_inverse(light) * 255).round_().to(device=device, dtype=torch.uint8)
