"""The local executor: a pool of worker processes on this machine, results in completion order.

Each worker process runs whole jobs (decode, kernels, encode, write) with ``cores // workers``
compute threads, so ``workers`` jobs run side by side and every core is busy. Processes rather
than threads because decoding, resizing and encoding hold the GIL in parts, and because a
native crash in a decoder (a corrupt file can do that) then kills one worker, not the batch:
the jobs that were in flight are retried one by one in a fresh process, and the one that kills
it again is reported as failed: ``ResourceExhausted`` when that process was killed with SIGKILL
(what the kernel's out-of-memory killer sends), ``InvalidVideoFormat`` for any other death (a
segfault, an abort: a decoder crashing on a corrupt file).

Memory: every worker gets the same budget per job, this machine's memory shared by the workers
(:func:`engine.memory.job_memory_budget`, computed here once and handed to each worker), and a
job whose estimate passes it is refused before decoding (:func:`engine.job.run_job`).

Jobs are fed to the pool two per worker at a time, so memory stays flat however long the
manifest is. CUDA is never touched in the parent: workers start from a forkserver that never
initialised it, and each initialises it on its first GPU job. A worker exits by itself when the
process that started the pool is gone (SIGKILL, the OOM killer), rather than waiting forever.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..device import DeviceRequest
from ..errors import EngineError, ErrorCode
from ..liveness import process_gone
from ..manifest import ManifestEntry
from ..memory import BUDGET_ENV, Budget, budget_for_pool, set_job_budget, usable_cores
from ..output import drop_writes_in_progress
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
        drop_writes_in_progress()  # no half-written output left behind by the exit
        os._exit(1)

    threading.Thread(target=watch, name="run-watchdog", daemon=True).start()


def _init_worker(threads: int, device: DeviceRequest, run_pid: int,
                 budget: Budget | EngineError | None = None) -> None:
    """Runs once in each worker process: one compute thread per job, CPU decoder built once, the
    memory budget per job its pool computed (None: the machine's share with the default workers)."""
    global _worker_decoder, _worker_device
    _exit_with_run(run_pid)
    set_job_budget(budget)
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
    return usable_cores()


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: workers start from a clean process that has imported the engine once, so
    # starting them is fast and never inherits a parent's threads (torch, OpenMP) mid-flight.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        engine = __name__.rpartition(".executors.")[0]  # the engine package, under whatever name it is installed
        kernels = engine.rpartition(".")[0] + ".kernels"  # a sibling of the engine package
        # the tone map's loop too: the decoder imports it only when an HDR frame comes
        context.set_forkserver_preload([f"{engine}.job", f"{engine}.decode.pyav", f"{kernels}.tonemap"])
    return context


def _pool(workers: int, threads: int, device: DeviceRequest,
          budget: Budget | EngineError | None = None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_init_worker,
                               initargs=(threads, device, os.getpid(), budget))


def _how(exitcode: int | None) -> str:
    """How a process ended, in words: "exit status 1", "signal SIGSEGV"."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _died(entry: ManifestEntry, exitcode: int | None, started: bool = True) -> Result:
    """The Result of a job whose process died running it alone, by how it died; ``started``
    False: it died before it reached the job (while importing the main script)."""
    if not started:
        error = EngineError(ErrorCode.INTERNAL_ERROR, (
            f"the worker process died while starting ({_how(exitcode)}), before this job ran; when a Python "
            "script runs the batch, that is what a missing `if __name__ == \"__main__\":` guard around the "
            "call does (worker processes import the main script again: see its error on standard error)"))
    elif exitcode == -signal.SIGKILL:
        error = EngineError(ErrorCode.RESOURCE_EXHAUSTED, (
            "the worker ran out of memory: it was killed (SIGKILL, what the kernel's out-of-memory killer "
            "sends) while running this job alone; lower the output size, fps or duration, or run fewer "
            f"--workers (or lower ${BUDGET_ENV}, so that such jobs are refused before they start)"))
    else:
        error = EngineError(ErrorCode.INVALID_VIDEO_FORMAT, (
            f"the decoder crashed on this input (its worker process died: {_how(exitcode)}); "
            "the file is likely corrupt"))
    return Result.failure(entry.id, error, line=entry.line, input=str(entry.spec.input) if entry.spec else None)


_STARTED = "started"
"""What a process running one job alone sends first: it got past importing the main script."""


def _alone_main(answer, job, entry: ManifestEntry, out_dir: Path, threads: int, device: DeviceRequest,
                run_pid: int, budget: Budget | EngineError | None) -> None:
    """The life of a process that runs one job alone (:func:`_run_alone`): word that it started, a
    worker's set-up, the job, and its Result (or the exception it raised) sent back through ``answer``."""
    answer.send(_STARTED)
    _init_worker(threads, device, run_pid, budget)
    try:
        outcome = (True, job(entry, out_dir))
    except BaseException as exc:  # handed to the parent, as a pool would
        outcome = (False, exc)
    answer.send(outcome)
    answer.close()


def _run_alone(entry: ManifestEntry, out_dir: Path, threads: int, device: DeviceRequest,
               budget: Budget | EngineError | None,
               job: Callable[[ManifestEntry, Path], Result] | None = None) -> Result:
    """``entry`` run in a process of its own, which is awaited: its Result, or, when the process
    died without one, a Result that says how it died (:func:`_died`). A process rather than a
    pool of one, because a broken pool does not tell how its worker died and the exit status does.
    ``job`` runs it there (picklable; default :func:`_run_in_worker`): another executor's way of
    running a job (:mod:`engine.executors.gpu_node`) gets the same isolation."""
    context = _context()
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_alone_main, name=f"isolated-{entry.id}",
                              args=(writer, job or _run_in_worker, entry, out_dir, threads, device, os.getpid(),
                                    budget))
    try:
        process.start()
        writer.close()  # the child holds the only writer now: its death ends reader.recv()
        started = False
        try:
            started = reader.recv() == _STARTED
            ok, value = reader.recv()
        except EOFError:
            process.join()
            return _died(entry, process.exitcode, started)
        process.join()
    finally:
        reader.close()
        writer.close()
        if process.is_alive():  # interrupted (Ctrl-C, SIGTERM, the iterator closed): stop the job now
            process.kill()
            process.join()
    if not ok:
        raise value
    return value


def _isolate(entries: list[ManifestEntry], out_dir: Path, threads: int, device: DeviceRequest,
             budget: Budget | EngineError | None = None) -> Iterator[Result]:
    """Re-run jobs that were in flight when a worker died, each alone, to find the culprit and how
    it killed its worker."""
    for entry in entries:
        yield _run_alone(entry, out_dir, threads, device, budget)


def run_pool(entries: Iterable[ManifestEntry], out_dir: Path, *, workers: int | None = None,
             device: DeviceRequest = DeviceRequest("auto")) -> Iterator[Result]:
    """The worker pool: every entry's Result, in completion order (invalid entries at once)."""
    workers = workers or default_workers()
    threads = max(1, default_workers() // workers)
    budget = budget_for_pool(workers)  # here: workers cannot see an environment set after their forkserver started
    pending = iter(entries)
    in_flight: dict[Future, ManifestEntry] = {}
    pool = _pool(workers, threads, device, budget)
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
                yield from _isolate(suspects, out_dir, threads, device, budget)
                pool = _pool(workers, threads, device, budget)
    except BaseException:  # Ctrl-C, SIGTERM (as KeyboardInterrupt), the caller closed the iterator
        _stop_at_once(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_at_once(pool: ProcessPoolExecutor) -> None:
    """An interrupted run: no job starts any more, and the jobs running stop now rather than
    finish, so no image is written after the run gave its jobs back to the store (to be redone).
    Cancelling the queued futures is not enough: the pool hands each worker process its next job
    ahead of time, where it can no longer be cancelled, so the worker processes are terminated
    (their jobs' temporary files are removed when those lines are claimed again; images are
    renamed into place only when whole). The pool's shutdown (``run_pool``'s ``finally``) then
    finds them gone and fails what was queued without running it."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


@dataclass(frozen=True)
class LocalExecutor:
    """``workers`` processes on this machine (default: one per core this process may use)."""

    workers: int | None = None
    name: str = "local"

    def run(self, entries: Iterable[ManifestEntry], out_dir: Path, device: DeviceRequest) -> Iterator[Result]:
        return run_pool(entries, out_dir, workers=self.workers, device=device)
