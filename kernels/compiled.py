"""CPU kernels compiled as loops with numba, when it is installed.

A few of the CPU path's kernels (the ``kernels/*_scan.py`` modules, :data:`LOOPS`) are plain
Python loops over NumPy arrays that numba compiles; each keeps its torch kernel beside it, for GPU
tensors and for when numba is missing (the WebP planner's, canvas_scan, its NumPy code), and a test holds the two to the same output (the
nearest-colour search to the exact answer, which the torch tiers give wherever they are exact). One place decides how they are compiled: with the signature given,
so the compile happens when the module is imported (in the worker pool's forkserver, once, before
it forks its workers) instead of in the middle of a job; cached on disk (the first import after
installing compiles, on the project's VM 3.7-4.1 s for the hold scan, 0.2 s for the histogram,
1.0 s for the remap, 5.5 s for the median cut, 3.1 s for k-means, 1.3 s for the nearest-colour
search, 1.8 s for the Lanczos resize, 0.8 s for the tone map, 1.6 s for the temporal denoise and 4.4 s for the WebP
planner's loops; later processes load them all in about 0.35 s, plus 0.3 s to import numba);
without the GIL, so threads of a GPU node's process can run them side by side.

Two things measured while writing them: a view made inside the pixel loop (``a[k]`` per pixel)
made the hold scan 1.8x slower (numba counts references on it even on a branch not taken), so
views are made once a row or a frame; and arrays declared C-ordered (``uint8[:, ::1]``) made the
remap 15% faster than "any strides", so callers hand over C-ordered views (channels-last frames
as rows of RGB triplets).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # only types: the loops' modules import this one without needing torch loaded first
    import torch
    from torch import Tensor

__all__ = ["ENABLED", "LOOPS", "compile_loop", "rgb_rows", "runs", "warm"]

ENABLED = True
"""Whether the compiled loops run where they can. False makes every kernel take its torch path on
CPU tensors too: for A/B timing (``bench/job_time.py --torch-kernels``) and for tests in which
CPU tensors stand in for GPU ones."""


LOOPS = tuple(sorted(path.stem for path in Path(__file__).parent.glob("*_scan.py")))
"""The modules of :mod:`kernels` whose loops compile at import: every ``*_scan.py`` beside this one."""


def warm() -> None:
    """Import every loop once, so that numba's disk cache holds them (``make install`` and the
    CUDA image call it, so no first job waits ~12 s for the compile)."""
    import importlib

    for name in LOOPS:
        importlib.import_module(f"{__package__}.{name}")


def compile_loop(function: Callable[..., None], signature: Callable[[Any], Any], *,
                 vectorise_division: bool = False, inline: bool = False) -> Callable[..., None] | None:
    """``function`` compiled for the signature(s) ``signature(numba)`` builds, or None when numba
    cannot be imported (the caller then runs its torch kernel). ``vectorise_division``: float
    division without Python's zero check (numba's ``error_model="numpy"``: x / 0 is inf, not an
    exception), whose branch would keep a loop that divides from vector instructions; for loops
    whose divisors cannot be zero. ``inline``: a helper that other loops call, compiled into each
    of them (numba's ``inline="always"``) rather than called."""
    try:
        import numba
    except ImportError:
        return None
    error_model = "numpy" if vectorise_division else "python"
    options = {"inline": "always"} if inline else {}
    return numba.njit(signature(numba), cache=True, nogil=True, error_model=error_model, **options)(function)


def rgb_rows(frames: Tensor) -> np.ndarray:
    """uint8 frames [N, 3, H, W] (CPU) as a C-ordered array [N, H, W, 3], the layout the loops
    declare: a view of channels-last frames (what decode and resize give), a copy otherwise."""
    return np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy())


def runs(loop: Callable[..., Any] | None, device: torch.device) -> bool:
    """Whether a kernel whose tensors are on ``device`` hands its work to ``loop`` (its module's
    ``SCAN``): they are CPU tensors, the loop compiled, and :data:`ENABLED` is set (read at each
    call, so switching it takes effect at once). GPU tensors keep the torch kernels."""
    return loop is not None and ENABLED and device.type == "cpu"


def launch_bound(device: torch.device) -> bool:
    """Whether each tensor operation on ``device`` is a kernel launch made holding the GIL (a GPU),
    so that a kernel there does its work in few whole-array operations, without asking the host
    anything between them, rather than in the cache-sized pieces that suit a CPU. (On an H200 a GIF
    job made about 20,000 such calls, and one process's decode threads queued on its GIL.)"""
    return device.type != "cpu"
