"""The GPU node executor: a few processes per GPU, decode threads in each, encoders on CPU threads.

Why not the local executor's shape (:mod:`engine.executors.local`: one process per core, each
running whole jobs)? With ``--device cuda`` every one of those processes creates its own CUDA
context, and kernels from separate processes time-slice on the GPU rather than run side by side;
each holds its own copy of the CUDA runtime's memory too. NVIDIA's own PyNvVideoCodec benchmark
(``cached_decoder_benchmark.py``) runs ONE process with several threads, a multiple of the
NVDEC engine count, each with its own CUDA stream and one long-lived decoder reconfigured per
clip; fetching frames releases the GIL. But the rest of a job does not: on an H200, one process
with 16 decode threads was GIL-bound at about 2.3 jobs/s (a GIF job's kernels on CUDA are
thousands of small tensor ops; :data:`CORES_PER_PROCESS`). Here:

* :func:`default_processes` processes per GPU (``cuda:k``; ``$ENGINE_GPU_PROCESSES``), started
  from the local executor's forkserver, so the parent never touches CUDA;
* in each, :attr:`GpuNodeExecutor.threads` decode threads (default :func:`default_threads`: the
  GPU's NVDEC engine count x :data:`THREADS_PER_ENGINE`, or ``$ENGINE_DECODE_THREADS``, shared by
  the GPU's processes), each running the first half of a job (:func:`engine.job.decode_job`:
  probe, decode, kernels) on a CUDA stream of its own (the NVDEC adapter decodes on the current
  stream and keeps one decoder per thread);
* a pool of encoder threads (default: this machine's cores shared by the processes) running the second
  half (:func:`engine.job.encode_job`: GIF/WebP/AVIF encode, byte budget, write). A decode
  thread hands its rendered clip (host numpy frames) to the pool and decodes the next clip at
  once, so encoding overlaps decoding. Threads, not processes: the frames are handed over
  without a copy, and the encoders let the GIL go for most of their time (measured on this
  project's 2-core box, a Python thread spinning beside an encode kept 83 % of its solo rate
  beside GIF, 60 % beside WebP, 64 % beside AVIF; 49 % beside pure Python, 74 % beside
  ``np.sort``, which releases it).

The ceiling, from decode alone: NVDEC decodes H.264 1080p at about 771 fps per engine at a 1860
MHz video clock (the Turing figure of the NVDEC application note, Video Codec SDK 13.0; Hopper is
"the same, scaled by the clock speed"), and H100/H200 have 7 engines: about 5400 fps per GPU. A
3 s clip at 30 fps starting at a key frame is 90 frames, so about 60 clips/s per H200 (fewer
when clips start mid-GOP: a clip 8 s into a GOP-250 file decodes 239 frames, not 90). One
decoder session cannot use more than one engine and the driver spreads sessions over the
engines, hence several threads per engine (one decodes while another's clip is in the kernels,
the encoders or the probe).

Results keep the :class:`~engine.executors.Executor` contract: one per entry, in completion
order, invalid entries refused at once, at most ``threads + encoders`` jobs in flight per GPU.

Crash isolation changes: a native crash (a decoder on a corrupt file) now kills the GPU's whole
process, with every job in flight on it, not one job's worker. As in the local executor, those
jobs are then run again, each alone in a process of its own (:func:`engine.executors.local._run_alone`,
the same device), so the one that kills its process again is reported (``InvalidVideoFormat``,
or ``ResourceExhausted`` for SIGKILL) and the others succeed; then that GPU's process is started
anew. The price is paid only on a crash: up to ``threads + encoders`` jobs re-run one by one,
each paying a CUDA context. A job that raises rather than crashes fails alone, as before.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import count
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..device import DeviceRequest
from ..errors import EngineError, ErrorCode
from ..manifest import ManifestEntry
from ..memory import Budget, budget_for_pool, set_job_budget, usable_cores
from ..result import Result
from .local import _context, _exit_with_run, _run_alone

THREADS_ENV = "ENGINE_DECODE_THREADS"
"""Decode threads per GPU, overriding :func:`default_threads` (``GpuNodeExecutor(threads=...)``
and ``--workers`` with the GPU node override both)."""

THREADS_PER_ENGINE = 2
"""Decode threads per NVDEC engine: NVIDIA's benchmark runs a multiple of the engine count, so
that an engine always has a session to serve while another thread's clip is probed, in the
kernels or handed to an encoder. To be tuned on a GPU (``make gpu-check``)."""

PROCESSES_ENV = "ENGINE_GPU_PROCESSES"
"""Processes per GPU, overriding :func:`default_processes` (``GpuNodeExecutor(processes=...)``
overrides both)."""

CORES_PER_PROCESS = 4
"""Cores per GPU process in :func:`default_processes`: 4 processes per GPU on a 16-core node. Why
more than one: on an H200 node (16 cores) one process with 16 decode threads ran the previews
library's 52 jobs in 22.7 s, where 16 CPU processes took 10.7 s, though each GIF job alone was
faster on the GPU (0.45 s against 0.74 s): a GIF job on CUDA makes about 20,000 Python calls
(small tensor ops) that hold the GIL, so one process is GIL-bound at about 2.3 jobs/s
(bench/results/gpu-session-nvidia-h200.md). The figure 4 is not measured: ``make gpu-check``
times 1 process against this default (its "processes" stage)."""

HOPPER_ENGINES = 7
"""NVDEC engines on H100/H200 (NVDEC application note), for when PyNvVideoCodec's
``GetDecoderCaps`` cannot be asked (its ``num_decoder_engines``)."""

NVDEC_1080P_FPS_PER_ENGINE = 771
"""H.264 1080p frames per second one NVDEC engine decodes at a 1860 MHz video clock (Turing;
Hopper the same, scaled by its clock)."""


def clips_per_second_ceiling(engines: int = HOPPER_ENGINES, frames_per_clip: int = 90) -> float:
    """Clips per second one GPU's NVDEC engines could decode (H.264 1080p, nothing else counted):
    60 for a 3 s 30 fps clip starting at a key frame on an H200."""
    return engines * NVDEC_1080P_FPS_PER_ENGINE / frames_per_clip


# --------------------------------------------------------------------------------------------
# How many threads, on which GPUs (asked in the parent, without CUDA)
# --------------------------------------------------------------------------------------------


def nvdec_engines() -> tuple[int, str]:
    """This GPU's NVDEC engine count and where it comes from: ``GetDecoderCaps``' answer for H.264
    8-bit 4:2:0 (it asks GPU 0; a node's GPUs are alike), else :data:`HOPPER_ENGINES`. Creates a
    CUDA context (once per process): call it in the GPU's process, never in the parent."""
    from ..decode import nvdec_caps

    caps = nvdec_caps.decoder_caps("H264", "420", 8)
    engines = (caps or {}).get("num_decoder_engines", 0)
    if engines > 0:
        return engines, "GetDecoderCaps(num_decoder_engines)"
    return HOPPER_ENGINES, "H100/H200 per the NVDEC application note (GetDecoderCaps could not be asked)"


def _count_from_environment(name: str) -> int | None:
    """A whole number >= 1 from ``$name`` when it is set (``$ENGINE_DECODE_THREADS``,
    ``$ENGINE_GPU_PROCESSES``); anything else there is an InvalidParameter."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"${name} must be a whole number >= 1, not {value!r}")
    return count


def _threads_from_environment() -> int | None:
    """``$ENGINE_DECODE_THREADS``, when set."""
    return _count_from_environment(THREADS_ENV)


def default_threads(engines: int) -> int:
    """Decode threads per GPU: ``$ENGINE_DECODE_THREADS``, else ``engines`` x :data:`THREADS_PER_ENGINE`."""
    return _threads_from_environment() or engines * THREADS_PER_ENGINE


def default_processes(gpus: int) -> int:
    """Processes per GPU: ``$ENGINE_GPU_PROCESSES``, else one per :data:`CORES_PER_PROCESS` of this
    machine's cores shared by its ``gpus`` (at least 1)."""
    return _count_from_environment(PROCESSES_ENV) or max(1, usable_cores() // (CORES_PER_PROCESS * max(1, gpus)))


def visible_gpus(environ: dict[str, str] | None = None, proc: Path = Path("/proc/driver/nvidia/gpus")) -> int:
    """How many GPUs CUDA would show this process, found without touching CUDA (the parent of the
    pool never does): the entries of ``$CUDA_VISIBLE_DEVICES`` when it is set, else the driver's
    GPU folders. 0 without an NVIDIA driver."""
    environ = os.environ if environ is None else environ
    mask = environ.get("CUDA_VISIBLE_DEVICES")
    if mask is not None:
        shown = []
        for item in mask.split(","):
            item = item.strip()
            if not item or item.startswith("-"):  # CUDA stops at the first invalid entry ("-1": none)
                break
            shown.append(item)
        return len(shown)
    try:
        return sum(1 for _ in proc.iterdir())
    except OSError:
        return 0


def node_gpus(device: DeviceRequest, gpus: int | None = None) -> tuple[DeviceRequest, ...]:
    """The GPUs a node run uses, one process each: ``cuda:N`` -> that one; ``cuda`` and ``auto`` ->
    every GPU seen (:func:`visible_gpus`); ``auto`` only when PyNvVideoCodec is installed (found,
    not imported), since without it every job would run on the CPU, where one process per core is
    faster. Empty: use the local executor."""
    if device.kind == "cpu":
        return ()
    if device.kind == "cuda" and device.index is not None:
        return (device,)
    if device.kind == "auto":
        from ..decode import nvdec_caps  # imports neither torch nor PyNvVideoCodec

        if not nvdec_caps.installed():
            return ()
    seen = visible_gpus() if gpus is None else gpus
    return tuple(DeviceRequest("cuda", k) for k in range(seen))


def executor_for(device: DeviceRequest, *, threads: int | None = None) -> GpuNodeExecutor | None:
    """The executor ``engine run`` uses for ``device`` when none is named: the GPU node when the
    request resolves to GPUs here (:func:`node_gpus`), else None (the local executor)."""
    gpus = node_gpus(device)
    return GpuNodeExecutor(gpus=gpus, threads=threads) if gpus else None


# --------------------------------------------------------------------------------------------
# The two halves of a job
# --------------------------------------------------------------------------------------------


def decode_half(entry: ManifestEntry, out_dir: Path, decoder: Any, device: DeviceRequest) -> Any:
    """A job's first half in a decode thread: :func:`engine.job.decode_job` (a RenderedJob, or a
    failed Result)."""
    from ..job import decode_job

    assert entry.spec is not None
    return decode_job(entry.spec, out_dir, decoder, line=entry.line, device=device)


def encode_half(rendered: Any) -> Result:
    """A job's second half on the encoder pool: :func:`engine.job.encode_job`, its wait for an
    encoder timed as "queued"."""
    from ..job import encode_job

    return encode_job(rendered, waited=True)


@dataclass(frozen=True)
class Stages:
    """A job's two halves (picklable module functions: they travel to the GPU's process). The
    decode half answers a Result (done: a failure) or what the encode half takes. Tests stand in
    for them to watch the threads; a kernel batching stage across clips would slot in here."""

    decode: Callable[[ManifestEntry, Path, Any, DeviceRequest], Any] = decode_half
    encode: Callable[[Any], Result] = encode_half


def _whole_job(stages: Stages, entry: ManifestEntry, out_dir: Path) -> Result:
    """Both halves in one thread: a job run alone after its GPU's process died (local's
    ``_run_alone`` set up the CPU decoder and the device in that process)."""
    from . import local

    half = stages.decode(entry, out_dir, local._worker_decoder, local._worker_device)
    return half if isinstance(half, Result) else stages.encode(half)


# --------------------------------------------------------------------------------------------
# One GPU's process
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSetup:
    """What one GPU's process is told when it starts."""

    device: DeviceRequest
    """The GPU its jobs run on ("cuda:k"), or "cpu" (tests: the same threads, no GPU)."""
    threads: int | None
    """Decode threads in this process (None: its part of :func:`default_threads` of this GPU's
    engine count, shared by the ``share`` processes on the GPU)."""
    encoders: int
    run_pid: int
    budget: Budget | EngineError | None
    stages: Stages = field(default_factory=Stages)
    share: int = 1
    """Processes on this GPU (this one included)."""


def _thread_stream(device: DeviceRequest) -> Any:
    """A CUDA stream for this decode thread (the NVDEC adapter and the kernels use the current
    stream), or None on the CPU or when CUDA is not usable (the jobs then fall back per job)."""
    if device.kind != "cuda":
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        return torch.cuda.Stream(device=str(device))
    except Exception:
        return None


def _decode_loop(setup: NodeSetup, work: queue.SimpleQueue, encoders: ThreadPoolExecutor,
                 send: Callable[[int, Result], None]) -> None:
    """A decode thread: its own CPU decoder and CUDA stream; each job's first half here, its
    second half handed to the encoders."""
    import contextlib

    from ..decode import open_decoder

    decoder = open_decoder("pyav", threads=1)
    stream = _thread_stream(setup.device)
    if stream is not None:
        import torch
    while (item := work.get()) is not None:
        key, entry, out_dir = item
        try:
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                half = setup.stages.decode(entry, out_dir, decoder, setup.device)
        except Exception as exc:  # decode_job answers failures; this is a bug: the job fails, not the node
            send(key, _internal(entry, exc))
            continue
        if isinstance(half, Result):
            send(key, half)
        else:
            encoders.submit(_encode, setup, key, entry, half, send)


def _encode(setup: NodeSetup, key: int, entry: ManifestEntry, rendered: Any,
            send: Callable[[int, Result], None]) -> None:
    try:
        result = setup.stages.encode(rendered)
    except Exception as exc:
        result = _internal(entry, exc)
    send(key, result)


def _internal(entry: ManifestEntry, exc: BaseException) -> Result:
    return Result.failure(entry.id, EngineError(ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"),
                          line=entry.line, input=str(entry.spec.input) if entry.spec else None)


def _node_main(jobs: Connection, results: Connection, setup: NodeSetup) -> None:
    """The life of one GPU's process: jobs come in through ``jobs`` as ``(key, entry, out_dir)``
    (None: no more), each Result goes back through ``results`` as ``(key, result)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the run stops this process
    _exit_with_run(setup.run_pid)
    set_job_budget(setup.budget)
    threads = setup.threads
    if threads is None:
        threads = _shared(default_threads(nvdec_engines()[0] if setup.device.kind == "cuda" else usable_cores()), setup.share)
    import torch

    torch.set_num_threads(max(1, usable_cores() // (threads * setup.share)))  # CPU kernels: only fallback jobs run them here
    from ..encode import webp

    webp.CODING_THREADS = 1  # the encoder threads are this process's parallelism: one still each
    lock = threading.Lock()

    def send(key: int, result: Result) -> None:
        with lock:
            results.send((key, result))

    work: queue.SimpleQueue = queue.SimpleQueue()
    with ThreadPoolExecutor(setup.encoders, thread_name_prefix="encode") as encoders:
        decoders = [threading.Thread(target=_decode_loop, args=(setup, work, encoders, send), name=f"decode-{i}",
                                     daemon=True) for i in range(threads)]
        for thread in decoders:
            thread.start()
        while True:
            try:
                item = jobs.recv()
            except EOFError:
                item = None
            if item is None:
                break
            work.put(item)
        for _ in decoders:
            work.put(None)
        for thread in decoders:
            thread.join()
    results.close()


class _Node:
    """The parent's handle on one GPU's process and the jobs it holds (at most ``room``)."""

    def __init__(self, setup: NodeSetup, room: int) -> None:
        context = _context()
        self.setup, self.room = setup, room
        self.in_flight: dict[int, ManifestEntry] = {}
        jobs_reader, self.jobs = context.Pipe(duplex=False)
        self.results, results_writer = context.Pipe(duplex=False)
        self.process = context.Process(target=_node_main, args=(jobs_reader, results_writer, setup),
                                       name=f"gpu-node-{setup.device}", daemon=False)
        self.process.start()
        jobs_reader.close()
        results_writer.close()  # the child holds the only writer: its death ends results.recv()
        self.dead = False

    def submit(self, key: int, entry: ManifestEntry, out_dir: Path) -> None:
        self.in_flight[key] = entry
        try:
            self.jobs.send((key, entry, out_dir))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self.dead = True  # found by the next wait: its in-flight jobs go alone

    def drain(self) -> Iterator[Result]:
        """The Results already sent; marks the node dead at the end of its results."""
        while not self.dead and self.results.poll():
            try:
                key, result = self.results.recv()
            except (EOFError, OSError):
                self.dead = True
                break
            self.in_flight.pop(key, None)
            yield result

    def close(self, *, kill: bool = False) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        try:
            self.jobs.send(None)
        except (OSError, ValueError):
            pass
        self.jobs.close()
        self.process.join()
        self.results.close()


def _shared(threads: int, share: int) -> int:
    """One process's part of a GPU's decode threads, rounded up (14 over 3 processes: 5 each, 15)."""
    return max(1, -(-threads // share))


def node_processes(gpus: tuple[DeviceRequest, ...], processes: int | None = None) -> tuple[DeviceRequest, ...]:
    """The device of each process to start: every entry of ``gpus`` ``processes`` times (None:
    :func:`default_processes`), next to each other (a device listed twice gets twice as many)."""
    each = processes or default_processes(len(set(gpus)))
    return tuple(gpu for gpu in gpus for _ in range(each))


def start_nodes(gpus: tuple[DeviceRequest, ...], threads: int | None, encoders: int | None,
                stages: Stages = Stages()) -> list[_Node]:
    """One process per device in ``gpus`` (a device listed k times: k processes sharing its
    ``threads`` decode threads, or its :func:`default_threads`), started."""
    encoders = encoders or max(1, usable_cores() // len(gpus))
    threads = threads or _threads_from_environment()  # per GPU
    shares = {gpu: gpus.count(gpu) for gpu in gpus}
    each = {gpu: _shared(threads, share) if threads else None for gpu, share in shares.items()}  # per process
    # jobs in flight per process: one per decode thread, one per encoder (without the engine
    # count, which only the GPU's process asks, that of an H100/H200)
    room = {gpu: (each[gpu] or _shared(default_threads(HOPPER_ENGINES), share)) + encoders for gpu, share in shares.items()}
    budget = budget_for_pool(sum(room[gpu] for gpu in gpus))
    return [_Node(NodeSetup(gpu, each[gpu], encoders, os.getpid(), budget, stages, shares[gpu]), room[gpu])
            for gpu in gpus]


def run_node(entries: Iterable[ManifestEntry], out_dir: Path, nodes: list[_Node], *,
             keep: bool = False) -> Iterator[Result]:
    """Every entry's Result, in completion order, from the processes ``nodes`` (a node that dies
    is replaced in that list). ``keep``: leave them running for the next call (a held executor);
    an interrupted run stops them and empties ``nodes`` all the same."""
    pending = iter(entries)
    keys = count()
    exhausted = False
    try:
        while True:
            while not exhausted:  # fill the processes up to their room, the emptiest first
                open_nodes = [n for n in nodes if not n.dead and len(n.in_flight) < n.room]
                if not open_nodes:
                    break
                entry = next(pending, None)
                if entry is None:
                    exhausted = True
                    break
                if entry.spec is None:
                    yield entry.refusal()
                    continue
                min(open_nodes, key=lambda n: len(n.in_flight)).submit(next(keys), entry, out_dir)
            if exhausted and not any(n.in_flight for n in nodes):
                break
            wait([n.results for n in nodes if not n.dead] + [n.process.sentinel for n in nodes])
            for index, node in enumerate(nodes):
                yield from node.drain()
                if not node.dead and not node.process.is_alive():
                    yield from node.drain()  # what it sent before it died
                    node.dead = True
                if node.dead:
                    suspects = list(node.in_flight.values())
                    node.in_flight.clear()
                    node.close(kill=True)
                    nodes[index] = _Node(node.setup, node.room)  # its successor starts while they run alone
                    for entry in suspects:
                        yield _run_alone(entry, out_dir, 1, node.setup.device, node.setup.budget,
                                         partial(_whole_job, node.setup.stages))
    except BaseException:  # Ctrl-C, SIGTERM, the caller closed the iterator: the jobs stop now
        for node in nodes:
            if node.process.is_alive():
                node.process.terminate()
        keep = False
        raise
    finally:
        if not keep:
            for node in nodes:
                node.close()
            nodes.clear()


@dataclass(frozen=True)
class GpuNodeExecutor:
    """``processes`` processes per device in ``gpus`` (default: from the run's device request,
    :func:`node_gpus`; processes: :func:`default_processes`), sharing ``threads`` decode threads
    per GPU (default: :func:`default_threads`) and each with ``encoders`` encoder threads
    (default: the cores shared by all the processes). ``gpus=(cpu,)`` runs the same shape
    without a GPU (tests). Several processes per GPU because one process's GIL is the limit (the
    CPU work of each job: probe, frame index, tags, the Python between the small kernels of a GIF
    job: :data:`CORES_PER_PROCESS`), at the price of a CUDA context each.

    Held open (``with executor:``, as a stored run holds it over its windows of 4096 lines), the
    processes outlive each :meth:`run` and serve the next: their CUDA contexts, streams and
    decoders are made once per run, not once per window."""

    gpus: tuple[DeviceRequest, ...] | None = None
    threads: int | None = None
    encoders: int | None = None
    stages: Stages = Stages()
    name: str = "gpu-node"
    processes: int | None = None
    """Processes per GPU (None: :func:`default_processes`)."""
    _held: list = field(default_factory=list, compare=False, repr=False)
    """While held open: [the running processes] (a list, so that a frozen executor can hold them)."""

    def __enter__(self) -> "GpuNodeExecutor":
        self._held.append([])
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self._held.pop():
            node.close()

    def run(self, entries: Iterable[ManifestEntry], out_dir: Path, device: DeviceRequest) -> Iterator[Result]:
        gpus = self.gpus if self.gpus is not None else node_gpus(device)
        if not gpus:
            raise EngineError(ErrorCode.INVALID_PARAMETER,
                              f"--executor gpu-node needs a GPU: --device {device} finds none here "
                              "(no $CUDA_VISIBLE_DEVICES entry, no /proc/driver/nvidia/gpus)")
        if self.threads is not None and self.threads < 1:
            raise EngineError(ErrorCode.INVALID_PARAMETER, "decode threads must be >= 1")
        if self.processes is not None and self.processes < 1:
            raise EngineError(ErrorCode.INVALID_PARAMETER, "processes per GPU must be >= 1")
        return self._run(entries, out_dir, node_processes(tuple(gpus), self.processes))

    def _run(self, entries: Iterable[ManifestEntry], out_dir: Path, gpus: tuple[DeviceRequest, ...]) -> Iterator[Result]:
        """The processes start at the first Result asked for (or are the held ones)."""
        if not self._held:
            yield from run_node(entries, out_dir, start_nodes(gpus, self.threads, self.encoders, self.stages))
            return
        nodes = self._held[-1]
        if [node.setup.device for node in nodes] != list(gpus):
            for node in nodes:
                node.close()
            nodes[:] = start_nodes(gpus, self.threads, self.encoders, self.stages)
        yield from run_node(entries, out_dir, nodes, keep=True)


__all__ = ["GpuNodeExecutor", "Stages", "clips_per_second_ceiling", "default_processes", "default_threads",
           "executor_for", "node_gpus", "node_processes", "nvdec_engines", "run_node", "start_nodes", "visible_gpus"]
