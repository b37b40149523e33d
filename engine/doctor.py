"""``engine doctor``: what this machine has for the engine, and what ``--device auto`` would do.

Everything is read from the running process, the way a job would see it: versions of torch,
CUDA, the NVIDIA driver and whether its video libraries (NVDEC's libnvcuvid, NVENC's
libnvidia-encode) load, PyNvVideoCodec (and, when it does not import, what to do about it),
PyAV/FFmpeg, Pillow with its libwebp and libavif; the GPUs torch sees; which codecs NVDEC takes
(asked of GPU 0 when PyNvVideoCodec can: its GetDecoderCaps answers for GPU 0 only, so other GPUs
are assumed identical, and the report says so; else the Hopper table, and the report says which);
and the device choice for a typical video (H.264 1080p 8-bit 4:2:0 MP4) or for a given file.
Nothing here raises for a missing piece: a missing piece is a finding.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import device as devices
from .decode import nvdec_caps
from .decode.nvdec_caps import CodecSupport
from .device import DeviceChoice
from .probe import MediaInfo, probe

_DRIVER_FILE = Path("/proc/driver/nvidia/version")


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: str
    memory_gib: float


@dataclass(frozen=True)
class DoctorReport:
    """The findings, as plain data (``--json`` prints :meth:`to_dict`)."""

    python: str
    platform: str
    torch: str
    torch_cuda: str | None
    """CUDA version torch was built with; None for a CPU-only build."""
    cuda_available: bool
    cuda_reason: str
    """Why CUDA is not usable ("" when it is)."""
    driver: str | None
    driver_source: str
    """Where the driver version came from, or why there is none."""
    gpus: tuple[GpuInfo, ...]
    pynvvideocodec: str | None
    pynvvideocodec_error: str | None
    """The exact exception ``import PyNvVideoCodec`` raised here, as "Type: message"."""
    pynvvideocodec_advice: str | None
    """What to do about that error, for the failures PyNvVideoCodec 2.2 is known to raise."""
    video_libraries: dict[str, str]
    """The driver's video libraries PyNvVideoCodec needs: "loads" or why not. It loads
    libnvidia-encode.so.1 on import but libnvcuvid.so.1 only when a decoder is made, so a missing
    NVDEC library would otherwise show only as every GPU job falling back."""
    nvdec_codecs: tuple[CodecSupport, ...]
    nvdec_codecs_source: str
    nvdec_caps_gpu: int | None
    """The GPU GetDecoderCaps answered for (always 0), or None when it was not asked."""
    pyav: str
    ffmpeg: str
    ffmpeg_libraries: dict[str, str]
    pillow: str
    libwebp: str | None
    webp_stills: str
    """How the WebP writer codes its frames: through libwebp's own API ("libwebp (PATH)"), or
    through Pillow and why (then frames with see-through blocks keep libwebp's loop filter on:
    valid files, a little less quality per byte; engine/encode/libwebp.py)."""
    avif: bool
    """Whether Pillow has its AVIF plugin (``--format avif`` needs it)."""
    libavif: str | None
    """libavif's version, as Pillow reports it (None when the plugin is absent)."""
    cpu_loops: str
    """Whether the CPU kernels compiled as loops run (numba's version), or that the torch kernels
    stand in for them (the loops of kernels.compiled.LOOPS, kernels/*_scan.py)."""
    auto_for: str
    """The video the auto choice below was made for."""
    auto: DeviceChoice

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _driver_version() -> tuple[str | None, str]:
    """The NVIDIA kernel driver's version, from /proc or nvidia-smi, and where it came from."""
    try:
        text = _DRIVER_FILE.read_text()
    except OSError:
        text = ""
    match = re.search(r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9][0-9.]+)", text)
    if match:
        return match.group(1), str(_DRIVER_FILE)
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            line = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
            if out.returncode == 0 and line:
                return line.strip(), "nvidia-smi"
        except (OSError, subprocess.SubprocessError):
            pass
    return None, f"no NVIDIA driver: {_DRIVER_FILE} is absent and nvidia-smi is not on PATH"


VIDEO_LIBRARIES = ("libnvcuvid.so.1", "libnvidia-encode.so.1")


def _video_libraries() -> dict[str, str]:
    """Whether the driver's NVDEC and NVENC libraries load in this process (dlopen, as PyNvVideoCodec does)."""
    import ctypes

    found = {}
    for name in VIDEO_LIBRARIES:
        try:
            ctypes.CDLL(name)
            found[name] = "loads"
        except OSError as exc:
            found[name] = str(exc).strip() or "does not load"
    return found


def _gpus() -> tuple[GpuInfo, ...]:
    if not devices.cuda_status().available:
        return ()
    import torch

    out = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        out.append(GpuInfo(index, props.name, f"{props.major}.{props.minor}", round(props.total_memory / 2**30, 1)))
    return tuple(out)


def _pillow_has(feature: str) -> bool:
    """Whether Pillow has ``feature`` (older Pillows do not know "avif" at all and raise)."""
    from PIL import features

    try:
        return bool(features.check(feature))
    except (ValueError, KeyError):
        return False


def _pillow_version(feature: str) -> str | None:
    """The library version Pillow reports for ``feature`` (None: absent, or unknown to this Pillow)."""
    from PIL import features

    try:
        return features.version(feature)
    except (ValueError, KeyError):
        return None


def typical_video() -> MediaInfo:
    """What most jobs decode: H.264 High 8-bit 4:2:0, 1920x1080, 30 fps, in MP4."""
    return MediaInfo(
        path=Path("typical.mp4"), container="mov,mp4,m4a,3gp,3g2,mj2", stream_index=0, codec="h264",
        width=1920, height=1080, pixel_format="yuv420p", sample_aspect_ratio=Fraction(1), fps=30.0,
        duration=60.0, duration_source="stream", start_time=0.0, video_streams=1,
        field_order="progressive", brand="isom", header_frames=1800, base_fps=30.0, size=45 * 2**20,
    )


def diagnose(video: Path | None = None) -> DoctorReport:
    """Collect the report; ``video`` makes the auto choice for that file instead of a typical one."""
    import av
    import PIL
    import torch
    from PIL import features

    cuda = devices.cuda_status()
    nvdec = nvdec_caps.nvdec_status()
    driver, driver_source = _driver_version()
    ask = cuda.available and nvdec.error is None
    codecs = nvdec_caps.nvdec_codecs(ask)
    caps_gpu = nvdec_caps.CAPS_GPU if ask else None
    if ask:
        codecs_source = (f"limits of cuda:{caps_gpu} ({cuda.devices[caps_gpu]}), asked with GetDecoderCaps, which "
                         f"answers for GPU {caps_gpu} only"
                         + (f": cuda:1..{len(cuda.devices) - 1} are assumed identical" if len(cuda.devices) > 1 else "")
                         + "; the Hopper table where it did not answer")
    else:
        missing = "no CUDA device" if not cuda.available else "PyNvVideoCodec does not import"
        codecs_source = f"not asked of a GPU ({missing}): NVDEC on Hopper (H100/H200) per the NVDEC application note"
    media = probe(video) if video is not None else typical_video()
    described = str(video) if video is not None else "a typical video: H.264 8-bit 4:2:0 1920x1080 MP4"
    return DoctorReport(
        python=platform.python_version(),
        platform=platform.platform(),
        torch=torch.__version__,
        torch_cuda=cuda.torch_cuda,
        cuda_available=cuda.available,
        cuda_reason=cuda.reason,
        driver=driver,
        driver_source=driver_source,
        gpus=_gpus(),
        pynvvideocodec=nvdec.version,
        pynvvideocodec_error=nvdec.error,
        pynvvideocodec_advice=nvdec.advice,
        video_libraries=_video_libraries(),
        nvdec_codecs=codecs,
        nvdec_codecs_source=codecs_source,
        nvdec_caps_gpu=caps_gpu,
        pyav=av.__version__,
        ffmpeg=str(getattr(av, "ffmpeg_version_info", "unknown")),
        ffmpeg_libraries={name: ".".join(str(part) for part in version) for name, version in av.library_versions.items()},
        pillow=PIL.__version__,
        libwebp=features.version("webp"),
        webp_stills=_webp_stills(),
        avif=_pillow_has("avif"),
        libavif=_pillow_version("avif"),
        cpu_loops=_cpu_loops(),
        auto_for=described,
        auto=devices.choose_device("auto", media),
    )


def _webp_stills() -> str:
    """What :attr:`DoctorReport.webp_stills` says."""
    from .encode import libwebp

    why = libwebp.unavailable()
    if why is None:
        return f"libwebp ({libwebp.loaded_from()})"
    return f"Pillow ({why}; see-through frames keep the loop filter on)"


def _cpu_loops() -> str:
    """What :attr:`DoctorReport.cpu_loops` says."""
    from ..kernels import hold_scan

    if hold_scan.SCAN is None:
        return "numba not importable: the torch kernels run instead (a GIF job's kernels about 2.4x slower)"
    import numba

    from ..kernels.compiled import LOOPS

    names = ", ".join(name.removesuffix("_scan").replace("_", " ") for name in LOOPS)
    return f"numba {numba.__version__}: {len(LOOPS)} loops ({names}) run compiled"


def render_text(report: DoctorReport) -> str:
    """The report as lines for a terminal."""
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    lines = [
        f"python          {report.python} on {report.platform}",
        f"torch           {report.torch} (CUDA build: {report.torch_cuda or 'none, CPU-only'})",
        f"CUDA usable     {yes(report.cuda_available)}" + (f" - {report.cuda_reason}" if report.cuda_reason else ""),
        f"NVIDIA driver   {report.driver} (from {report.driver_source})" if report.driver
        else f"NVIDIA driver   none - {report.driver_source}",
    ]
    if report.gpus:
        for g in report.gpus:
            lines.append(f"GPU cuda:{g.index}      {g.name}, compute {g.compute_capability}, {g.memory_gib} GiB")
    else:
        lines.append("GPUs            none seen by torch")
    if report.pynvvideocodec:
        lines.append(f"PyNvVideoCodec  {report.pynvvideocodec}")
    else:
        lines.append(f"PyNvVideoCodec  not importable: {report.pynvvideocodec_error}")
        if report.pynvvideocodec_advice:
            lines.append(f"  fix           {report.pynvvideocodec_advice}")
    missing = [name for name, state in report.video_libraries.items() if state != "loads"]
    if not missing:
        lines.append(f"video libraries {', '.join(report.video_libraries)} load")
    elif report.driver:  # a driver without them: the container lacks the video capability
        lines.append(f"video libraries missing: {', '.join(missing)} - NVDEC needs them: run the container with "
                     "NVIDIA_DRIVER_CAPABILITIES including video")
    else:
        lines.append(f"video libraries missing: {', '.join(missing)} (no NVIDIA driver)")
    lines.append(f"PyAV            {report.pyav}, FFmpeg {report.ffmpeg} "
                 f"(libavcodec {report.ffmpeg_libraries.get('libavcodec', '?')})")
    lines.append(f"Pillow          {report.pillow}, libwebp {report.libwebp or 'missing'}, "
                 + (f"AVIF yes (libavif {report.libavif or 'version unknown'})" if report.avif
                    else "AVIF no (--format avif fails: Pillow lacks its AVIF plugin)"))
    lines.append(f"WebP stills     {report.webp_stills}")
    lines.append(f"CPU loops       {report.cpu_loops}")
    lines.append(f"NVDEC codecs    {report.nvdec_codecs_source}:")
    by_codec: dict[str, list[CodecSupport]] = {}
    for row in report.nvdec_codecs:
        by_codec.setdefault(row.codec, []).append(row)
    for codec, rows in by_codec.items():
        taken = [f"{r.bits}-bit up to {r.max_size[0]}x{r.max_size[1]}" for r in rows if r.supported]
        lines.append(f"  {codec:<11} {', '.join(taken) if taken else 'no'}")
    lines.append(f"--device auto   for {report.auto_for}: {report.auto.device} ({report.auto.backend}) - {report.auto.reason}")
    return "\n".join(lines)
