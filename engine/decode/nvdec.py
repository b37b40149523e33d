"""GPU decoding with NVDEC through PyNvVideoCodec: frames stay in GPU memory as CUDA tensors.

A thin adapter. The work that can be checked without a GPU lives elsewhere and is tested on CPU:
which frame numbers to fetch (:mod:`engine.decode.frame_index`, from the container's real
timestamps), which colour matrix, range and rotation apply (the CPU path's rules, read from the
first frame), and the NV12/P016 -> RGB conversion (:mod:`kernels.colour`). This module opens a
``SimpleDecoder`` on the file, asks for those frame numbers in ascending order (it seeks to the
keyframe before the first one and decodes no further than the last), takes each frame over with
DLPack (no copy), checks that the frame is the one asked for by its timestamp, and converts each
batch to RGB on the GPU.

Output colour: the decoder's own RGB output is not used. It is always 8-bit, applies its own
matrix defaults to untagged video and its own chroma filter, so it could not follow the CPU
path's rules; the NATIVE surfaces (NV12 / P016) through kernels.colour can, at the cost of one
kernel per batch.

Every failure that is about the GPU path rather than the video (an import error, a codec the GPU
refuses at the first fetch, a frame numbering that disagrees with the timestamps) surfaces as an
exception; the job then decodes the clip on the CPU and notes why (engine/job.py).

Never run on a GPU yet: notes/gpu-path.md lists every GPU-only line, and
tests/engine/test_gpu_parity.py holds what a GPU session must check.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Sequence

import torch

from . import DecodedClip, DecoderUnavailable, Fit
from .frame_index import FrameSelection, StreamTags, read_stream_tags, select_frames
from .nvdec_caps import pynvvideocodec
from ..probe import MediaInfo
from ...kernels.colour import split_nv12, yuv420_to_rgb

FETCH_BATCH = 32
"""Frames asked of the decoder per call. Each call hands back frames in buffers the next call may
reuse, so a batch is copied out (one stack) before the next: 32 1080p NV12 surfaces are ~100 MB."""


class NvdecDecoder:
    """The GPU backend: NVDEC decodes, frames become uint8 [U, 3, H, W] tensors on ``cuda:N``."""

    name = "nvdec"

    def __init__(self, gpu: int = 0, device: torch.device | None = None) -> None:
        """``gpu``: the GPU NVDEC runs on. ``device``: where frames go, ``cuda:gpu`` by default; a
        CPU device lets tests drive this adapter with a stand-in PyNvVideoCodec on machines
        without a GPU."""
        self.gpu = gpu
        self.device = device if device is not None else torch.device("cuda", gpu)

    def decode_frames(self, media: MediaInfo, instants: Sequence[float], fit: Fit | None = None) -> DecodedClip:
        nvc = pynvvideocodec()
        selection = select_frames(media, instants)
        tags = read_stream_tags(media)
        on_gpu = self.device.type == "cuda"

        def finish(batch: torch.Tensor) -> torch.Tensor:
            """Upright, then shrunk: GPU memory holds one batch at source size, not the clip."""
            if tags.turns:
                batch = torch.rot90(batch, k=tags.turns, dims=(2, 3))
            return fit(batch, tags.turns) if fit is not None else batch

        with torch.cuda.device(self.device) if on_gpu else contextlib.nullcontext():
            frames = self._fetch(nvc, media, selection, tags, finish)
        return DecodedClip(
            frames=frames,
            index=torch.tensor(selection.rows, dtype=torch.int64, device=self.device),
            source_times=selection.source_times,
            frames_decoded=selection.frames_decoded,
            rotation=tags.turns,
        )

    def _fetch(self, nvc, media: MediaInfo, selection: FrameSelection, tags: StreamTags,
               finish: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        decoder = nvc.SimpleDecoder(
            str(media.path),
            gpu_id=self.gpu,
            cuda_stream=stream.cuda_stream if stream is not None else 0,
            use_device_memory=True,
            output_color_type=nvc.OutputColorType.NATIVE,
        )
        count = len(selection.numbers)
        done: list[torch.Tensor] = []
        chroma = "nearest" if tags.bits == 8 else "bilinear"  # follows swscale's filter per bit depth
        for start in range(0, count, FETCH_BATCH):
            numbers = list(selection.numbers[start : start + FETCH_BATCH])
            fetched = decoder.get_batch_frames_by_index(numbers)
            if len(fetched) != len(numbers):
                raise DecoderUnavailable(f"nvdec returned {len(fetched)} frames for {len(numbers)} frame numbers")
            for frame, number, pts in zip(fetched, numbers, selection.pts[start : start + len(numbers)]):
                if int(frame.timestamp) != pts:
                    raise DecoderUnavailable(
                        f"nvdec's frame {number} has timestamp {int(frame.timestamp)}, the container's has {pts}; "
                        "its frame numbering differs from the timestamps"
                    )
            surfaces = torch.stack([_surface(torch.from_dlpack(frame), media.height, tags.bits) for frame in fetched])
            y, uv = split_nv12(surfaces, round(surfaces.shape[1] / 1.5), media.width)
            y, uv = y[:, : media.height], uv[:, : (media.height + 1) // 2]  # a surface taller than the picture
            done.append(finish(yuv420_to_rgb(y, uv, matrix=tags.matrix, full_range=tags.full_range, chroma=chroma)))
            if stream is not None:  # the copy must be done before the next call reuses the decoder's buffers
                stream.synchronize()
        return done[0] if len(done) == 1 else torch.cat(done)


def _surface(plane: torch.Tensor, height: int, bits: int) -> torch.Tensor:
    """One NATIVE frame as a [rows, W] tensor with unit column stride, whatever the exporter said.

    PyNvVideoCodec 2.0.x exports P016 frames as uint16 (1.5 H, W) with strides (W, 2) elements,
    i.e. every other word: the buffer itself is a plain (1.5 H, W) array of words, so it is viewed
    again with strides (W, 1) (within the exported extent). A producer that exports words as
    bytes ((1.5 H, 2 W) uint8) is viewed as int16 words. Words go on as int16 (the same bits),
    which kernels.colour reads as unsigned.
    """
    if plane.dim() != 2 or round(plane.shape[0] / 1.5) < height:
        raise DecoderUnavailable(f"nvdec handed a frame of shape {tuple(plane.shape)} for a picture {height} rows high")
    rows, cols = plane.shape
    if bits > 8 and plane.element_size() == 1:
        plane = plane.contiguous().view(torch.int16)
    elif plane.stride() != (cols, 1):
        plane = plane.as_strided((rows, cols), (cols, 1))
    if plane.dtype == torch.uint16:  # int16 has full support (stack, copies) on CUDA; uint16 does not
        plane = plane.view(torch.int16)
    return plane


@functools.cache
def nvdec_decoder(gpu: int) -> NvdecDecoder:
    """One decoder object per GPU per process (it holds no per-file state)."""
    return NvdecDecoder(gpu)
