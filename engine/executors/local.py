"""The local executor: a pool of worker processes on this machine, results in completion order.

Each worker process runs whole jobs (decode, kernels, encode, write) with ``cores // workers``
compute threads, so ``workers`` jobs run side by side and every core is busy. Processes rather
than threads because decoding, resizing and encoding hold the GIL in parts, and because a
native crash in a decoder (a corrupt file can do that) then kills one worker, not the batch:
the jobs that were in flight are retried one by one in a fresh process, and the one that crashes
again is reported as failed (``InvalidVideoFormat``).

Jobs are fed to the pool two per worker at a time, so memory stays flat however long the
manifest is. CUDA is never touched in the parent: workers start from a forkserver that never
initialised it, and each initialises it on its first GPU job. A worker exits by itself when the
process that started the pool is gone (SIGKILL, the OOM killer), rather than waiting forever.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..device import DeviceRequest
from ..errors import EngineError, ErrorCode
from ..liveness import process_gone
from ..manifest import ManifestEntry
from ..result import Result

_worker_decoder = None
_worker_device: DeviceRequest = DeviceRequest("cpu")


def _exit_with_run(run_pid: int, period: float = 0.5) -> None:
    """A worker must not outlive its run. If ``engine run`` is killed (SIGKILL, the OOM killer),
    nothing tells its workers: they would finish their jobs unobserved, then wait forever for more
    (and keep the forkserver alive). A watchdog thread ends the worker once the run is gone."""

    def watch() -> None:
        while not process_gone(run_pid):
            time.sleep(period)
        os._exit(1)

    threading.Thread(target=watch, name="run-watchdog", daemon=True).start()


def _init_worker(threads: int, device: DeviceRequest, run_pid: int) -> None:
    """Runs once in each worker process: one compute thread per job, CPU decoder built once."""
    global _worker_decoder, _worker_device
    _exit_with_run(run_pid)
    import torch

    from ..decode import open_decoder

    torch.set_num_threads(threads)
    _worker_decoder = open_decoder("pyav", threads=threads)
    _worker_device = device


def _run_in_worker(entry: ManifestEntry, out_dir: Path) -> Result:
    from ..job import run_job

    assert entry.spec is not None and _worker_decoder is not None
    return run_job(entry.spec, out_dir, _worker_decoder, line=entry.line, device=_worker_device)


def default_workers() -> int:
    """As many workers as there are cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _pool(workers: int, threads: int, device: DeviceRequest) -> ProcessPoolExecutor:
    # forkserver: workers start from a clean process that has imported the engine once, so
    # starting them is fast and never inherits a parent's threads (torch, OpenMP) mid-flight.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        engine = __name__.rpartition(".executors.")[0]  # the engine package, under whatever name it is installed
        context.set_forkserver_preload([f"{engine}.job", f"{engine}.decode.pyav"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(threads, device, os.getpid()))


def _crashed(entry: ManifestEntry) -> Result:
    return Result.failure(entry.id, EngineError(
        ErrorCode.INVALID_VIDEO_FORMAT,
        "the decoder crashed on this input (its worker process died); the file is likely corrupt",
    ), line=entry.line, input=str(entry.spec.input) if entry.spec else None)


def _isolate(entries: list[ManifestEntry], out_dir: Path, threads: int, device: DeviceRequest) -> Iterator[Result]:
    """Re-run jobs that were in flight when a worker died, each alone, to find the culprit."""
    for entry in entries:
        with _pool(1, threads, device) as pool:
            try:
                yield pool.submit(_run_in_worker, entry, out_dir).result()
            except BrokenProcessPool:
                yield _crashed(entry)


def run_pool(entries: Iterable[ManifestEntry], out_dir: Path, *, workers: int | None = None,
             device: DeviceRequest = DeviceRequest("auto")) -> Iterator[Result]:
    """The worker pool: every entry's Result, in completion order (invalid entries at once)."""
    workers = workers or default_workers()
    threads = max(1, default_workers() // workers)
    pending = iter(entries)
    in_flight: dict[Future, ManifestEntry] = {}
    pool = _pool(workers, threads, device)
    try:
        while True:
            suspects: list[ManifestEntry] = []
            while not suspects and len(in_flight) < 2 * workers:
                entry = next(pending, None)
                if entry is None:
                    break
                if entry.spec is None:
                    yield entry.refusal()
                    continue
                try:
                    in_flight[pool.submit(_run_in_worker, entry, out_dir)] = entry
                except BrokenProcessPool:
                    suspects.append(entry)
            if not in_flight and not suspects:
                break
            if in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    entry = in_flight.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        suspects.append(entry)
            if suspects:  # a worker died: every job still in flight died with the pool
                suspects.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                yield from _isolate(suspects, out_dir, threads, device)
                pool = _pool(workers, threads, device)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class LocalExecutor:
    """``workers`` processes on this machine (default: one per core this process may use)."""

    workers: int | None = None
    name: str = "local"

    def run(self, entries: Iterable[ManifestEntry], out_dir: Path, device: DeviceRequest) -> Iterator[Result]:
        return run_pool(entries, out_dir, workers=self.workers, device=device)
