"""Decoding the frames a timeline needs, behind one interface for every backend.

A backend answers :meth:`Decoder.decode_frames` with a :class:`DecodedClip`: the distinct source
frames shown at the timeline's instants (upright, RGB, on the backend's device) and, for each
instant, which of them is on screen. Keeping frames distinct matters when the source rate is below
the output rate: a 10 fps source sampled at 30 fps decodes and resizes each frame once.

Backends, one table (:data:`BACKENDS`) and one constructor (:func:`open_decoder`): ``"pyav"``,
:mod:`engine.decode.pyav` (CPU, FFmpeg via PyAV), and ``"nvdec"``, :mod:`engine.decode.nvdec`
(NVDEC through PyNvVideoCodec, frames in GPU memory); a backend's module is imported only when it
is opened. :mod:`engine.decode.nvdec_caps` says what NVDEC decodes here (the only importer of
PyNvVideoCodec); :mod:`engine.device` asks it when choosing a job's backend. A new backend is one
module and one entry in :data:`BACKENDS` (plus its caps module if the choice must ask it).
:mod:`engine.decode.frame_index` maps a timeline's instants to the stream's frame numbers from the
container's real timestamps, for backends that fetch frames by number.

A backend that cannot serve a particular clip (a codec or colour layout it lacks, a container it
cannot index) raises :class:`DecoderUnavailable`; the job then decodes the clip with the CPU
backend and says why in its notes. Problems with the video itself stay :class:`EngineError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # the CLI imports this module; torch loads only when a job runs
    import torch

from ..errors import EngineError, ErrorCode
from ..probe import MediaInfo


@dataclass(frozen=True)
class DecodedClip:
    """Frames on screen at each instant of a timeline."""

    frames: torch.Tensor
    """uint8 [U, 3, H, W]: the distinct source frames used, upright (rotation applied), RGB; at
    the source's size, or at the size the decode's ``fit`` chose."""
    index: torch.Tensor
    """int64 [N]: for each instant, the row of ``frames`` on screen then."""
    source_times: tuple[float, ...]
    """For each instant, the presentation time (s from the video's start) of the frame shown."""
    frames_decoded: int
    """Source frames decoded to serve the clip, a measure of how well seeking worked."""
    rotation: int = 0
    """Quarter turns (counter-clockwise) already applied to make the frames upright."""
    deinterlaced: bool = False
    """Some frames were interlaced: each shows its top field, the lines between interpolated."""
    damaged_packets: int = 0
    """Packets the decoder rejected as invalid data and skipped (their frames lost)."""
    frames_end: float | None = None
    """Where the stream's frames ran out (the last one's time plus a frame period), when that was
    before the last instant (its frame then stays on screen); None when every instant came."""
    tone_mapped: str | None = None
    """The HDR transfer ("pq" or "hlg") of frames that were tone-mapped to SDR; None when none
    was. Told by the frames as decoded, which may say otherwise than the stream's header."""
    hdr_primaries: str = "bt2020"
    """The primaries the tone-mapped frames were coded with ("bt2020"; "p3" for P3-D65 masters;
    "bt709"), converted to BT.709's in the tone map; meaningless when none was tone-mapped."""
    gamut_mapped: str | None = None
    """The wide primaries ("bt2020", "p3") SDR frames were tagged with and converted from to
    BT.709's (:mod:`kernels.gamut`); None when no frame was."""
    over_black: bool = False
    """Some shown frame had see-through pixels (an alpha plane or a palette): they are shown over
    black (the CPU decoder's ``over_black``)."""

    @property
    def height(self) -> int:
        return int(self.frames.shape[-2])

    @property
    def width(self) -> int:
        return int(self.frames.shape[-1])


def unreadable(path: Path, action: str, exc: Exception | None = None) -> EngineError:
    """The InvalidVideoFormat error for a file FFmpeg fails on while ``action`` ("decoding", ...)."""
    cause = f" ({getattr(exc, 'strerror', None) or exc})" if exc is not None else ""
    return EngineError(ErrorCode.INVALID_VIDEO_FORMAT,
                       f"{action} {path.name} failed{cause}; the file may be corrupt or truncated")


Fit = Callable[["torch.Tensor", int], "torch.Tensor"]
"""Shrinks a chunk of upright frames (uint8 [u, 3, H, W]; the int is the quarter turns applied)
to the output size. Backends call it every :data:`FIT_CHUNK` distinct frames, so a job holds at most
one chunk at source size, whatever the clip's length; every call must return the same size."""
FIT_CHUNK = 16
"""Most distinct source frames converted before each :data:`Fit` call: chunks this size keep the
resize kernel as fast per frame as one call on the whole clip."""
FIT_CHUNK_BYTES = 64 * 2**20
"""...and at most this many bytes of them (two 4K frames are 50 MB), so a chunk of large frames
stays small: the decoder's own buffers for 4K are a few hundred MB already."""


@dataclass(frozen=True)
class YUVPlanes:
    """A chunk of frames as their decoder's Y'CbCr planes, as coded (not yet turned upright),
    for a fit that converts them at the output size (:class:`CodedFit`)."""

    luma: torch.Tensor
    """Integer codes [u, 1, H, W] (uint16 for 10- and 12-bit video)."""
    chroma: torch.Tensor
    """Integer codes [u, 2, h, w], Cb then Cr, at the chroma planes' own size."""
    matrix: str
    """A key of :data:`kernels.colour.MATRICES`."""
    bits: int
    full_range: bool


@runtime_checkable
class CodedFit(Protocol):
    """A :data:`Fit` that also takes frames as the decoder has them: as coded, before the quarter
    turns that make them upright (:meth:`fit_coded`), so that it can shrink them first and turn
    the small result (a 1080p frame turned on the CPU costs five times its shrinking), and 16-bit
    HDR frames as their YUV planes when it says it wants them (:meth:`takes_planes`: it resizes
    them, so converting to RGB at the source size first would be wasted). The PyAV backend asks
    for these; a plain :data:`Fit` is handed upright RGB chunks as before."""

    def __call__(self, chunk: torch.Tensor, rotation: int) -> torch.Tensor: ...

    def fit_coded(self, chunk: torch.Tensor, rotation: int) -> torch.Tensor:
        """As :data:`Fit`, from frames as coded that ``rotation`` quarter turns make upright."""
        ...

    def takes_planes(self, width: int, height: int, rotation: int) -> bool:
        """Whether HDR frames coded ``width`` x ``height`` should come as :class:`YUVPlanes`."""
        ...

    def fit_planes(self, planes: YUVPlanes, rotation: int) -> torch.Tensor:
        """Upright float R'G'B' [u, 3, h, w] at the output size, from coded ``planes``."""
        ...


class DecoderUnavailable(Exception):
    """This backend cannot decode this clip; another backend (the CPU one) can be asked instead.

    The message is the reason, written for the result's notes ("nvdec ... ").
    """


class Decoder(Protocol):
    """A way to turn a video file and instants into a :class:`DecodedClip`."""

    name: str

    def decode_frames(self, media: MediaInfo, instants: Sequence[float], fit: Optional[Fit] = None) -> DecodedClip:
        """Seek near ``instants[0]`` and decode forward only as far as ``instants[-1]``; with
        ``fit``, the clip's frames come back at the size ``fit`` gives them."""
        ...


_CUDA_DEVICE = re.compile(r"^cuda(?::(\d+))?$")


def _open_pyav(device: str, threads: int) -> Decoder:
    if device != "cpu":
        raise ValueError(f"the pyav backend decodes on the CPU, not on {device!r}")
    from .pyav import PyAVDecoder

    return PyAVDecoder(threads=threads)


def _open_nvdec(device: str, threads: int) -> Decoder:
    match = _CUDA_DEVICE.match(device)
    if match is None:
        raise ValueError(f"the nvdec backend decodes on a GPU, \"cuda\" or \"cuda:N\", not on {device!r}")
    from .nvdec import nvdec_decoder

    return nvdec_decoder(int(match.group(1) or 0))


BACKENDS: dict[str, Callable[[str, int], Decoder]] = {
    "pyav": _open_pyav,
    "nvdec": _open_nvdec,
}
"""Each decode backend by name (the names :class:`engine.device.DeviceChoice` carries): a function
of (device, threads) that imports the backend's module and builds its decoder."""


def open_decoder(backend: str, *, device: str = "cpu", threads: int = 1) -> Decoder:
    """The decoder of ``backend`` ("pyav" or "nvdec") on ``device`` ("cpu"; "cuda:N" for nvdec).

    ``threads``: FFmpeg decoding threads (pyav; nvdec ignores it). An unknown backend, or a device
    the backend does not decode on, is a ValueError; a backend whose library is missing fails when
    it decodes, with :class:`DecoderUnavailable` (nvdec), so the job can fall back to the CPU.
    """
    try:
        opener = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown decode backend {backend!r}; the backends are {', '.join(sorted(BACKENDS))}") from None
    return opener(device, threads)
