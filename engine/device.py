"""Which device decodes a job: ``--device auto|cpu|cuda|cuda:N`` -> :class:`DeviceChoice`, per job.

``auto`` takes the GPU path (NVDEC decoding, kernels on CUDA tensors) when torch sees a CUDA
device, PyNvVideoCodec imports, and NVDEC decodes this video's codec, bit depth and size on that
GPU; otherwise the CPU path (PyAV), with the reason. ``cuda`` / ``cuda:N`` ask for the GPU path
on GPU 0 / N and, like ``auto``, fall back to the CPU path with the reason when it cannot take a
job: a job never fails because the GPU path could not take it (a run on a machine whose GPU is
gone still produces every image, and each result says why it ran on the CPU). ``cpu`` always
takes the CPU path.

This module only chooses. What NVDEC can decode (the PyNvVideoCodec import, ``GetDecoderCaps``,
the Hopper table, the refusal reasons) is :mod:`engine.decode.nvdec_caps`'s to say, and
:func:`engine.decode.open_decoder` builds the chosen backend.

The checks that touch CUDA or import PyNvVideoCodec run lazily, once per process, and are cached:
the CPU path pays one dictionary lookup per job, and importing this module imports neither torch
nor PyNvVideoCodec. They never run in the parent of the worker pool, so CUDA is first initialised
inside the worker that uses it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import EngineError, ErrorCode
from .probe import MediaInfo

DEVICE_HELP = "auto, cpu, cuda or cuda:N"


@dataclass(frozen=True)
class DeviceRequest:
    """A parsed ``--device`` value: kind "auto", "cpu" or "cuda", and the GPU number for cuda:N."""

    kind: str
    index: int | None = None

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.index is not None else self.kind


@dataclass(frozen=True)
class DeviceChoice:
    """Where one job runs and why."""

    device: str
    """"cpu" or "cuda:N"."""
    backend: str
    """The decoder backend (a key of :data:`engine.decode.BACKENDS`): "pyav" (CPU) or "nvdec" (GPU)."""
    reason: str
    fallback: bool = False
    """True when a GPU was asked for (auto, cuda) and the CPU path takes the job."""

    @property
    def note(self) -> str | None:
        """The line for the result's notes when the job falls back to the CPU path."""
        return f"fallback: {self.reason}" if self.fallback else None


_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def parse_device(value: str | DeviceRequest) -> DeviceRequest:
    """Validate a ``--device`` value; a bad one is an InvalidParameter error."""
    if isinstance(value, DeviceRequest):
        return value
    match = _DEVICE.match(str(value).strip().lower())
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"--device must be {DEVICE_HELP} (N: a GPU number from 0), got {value!r}")
    index = int(match.group(2)) if match.group(2) is not None else None
    return DeviceRequest(match.group(1), index)


# --------------------------------------------------------------------------------------------
# CUDA: probed once per process, on first use
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CudaStatus:
    available: bool
    reason: str
    """Why no CUDA device is usable ("" when one is)."""
    devices: tuple[str, ...] = ()
    """Names of the GPUs torch sees, in torch's numbering."""
    torch_cuda: str | None = None
    """The CUDA version torch was built with (None: a CPU-only build)."""


@functools.cache
def cuda_status() -> CudaStatus:
    """Whether torch can use a CUDA device here, and if not, why."""
    import torch

    build = torch.version.cuda
    try:
        available = torch.cuda.is_available()
    except Exception as exc:  # a broken driver install can raise instead of answering
        return CudaStatus(False, f"torch.cuda.is_available() raised {type(exc).__name__}: {exc}", (), build)
    if not available:
        reason = "torch.cuda.is_available() is False"
        if build is None:
            reason += f"; torch {torch.__version__} is a CPU-only build"
        return CudaStatus(False, reason, (), build)
    names = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return CudaStatus(True, "", names, build)


def clear_caches() -> None:
    """Forget every probe: CUDA's here and NVDEC's in engine.decode.nvdec_caps (tests, and a
    long-lived process whose drivers changed)."""
    from .decode import nvdec_caps

    cuda_status.cache_clear()
    nvdec_caps.clear_caches()


# --------------------------------------------------------------------------------------------
# The choice
# --------------------------------------------------------------------------------------------


def choose_device(requested: str | DeviceRequest, media: MediaInfo) -> DeviceChoice:
    """Pick the path for one job: the GPU path when it can take this video, else the CPU path."""
    request = parse_device(requested)
    if request.kind == "cpu":
        return DeviceChoice("cpu", "pyav", "--device cpu")
    cuda = cuda_status()
    if not cuda.available:
        return _cpu(f"no CUDA device ({cuda.reason})")
    gpu = request.index or 0
    if gpu >= len(cuda.devices):
        return _cpu(f"cuda:{gpu} was asked for but torch sees {len(cuda.devices)} CUDA device(s)")
    from .decode import nvdec_caps  # asked only once a GPU is there to decode on

    status = nvdec_caps.nvdec_status()
    if status.error is not None:
        return _cpu(nvdec_caps.unavailable_reason(status))
    refusal = nvdec_caps.nvdec_refusal(media, gpu, cuda.devices[gpu])
    if refusal is not None:
        return _cpu(refusal)
    return DeviceChoice(f"cuda:{gpu}", "nvdec", f"nvdec decodes {media.codec} {media.pixel_format} {media.width}x{media.height} on cuda:{gpu}")


def _cpu(reason: str) -> DeviceChoice:
    return DeviceChoice("cpu", "pyav", reason, fallback=True)
