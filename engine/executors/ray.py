"""The Ray executor: jobs run on long-lived actors across a Ray cluster (``--executor ray``).

Ray only runs jobs. The driver (``engine run``) keeps what it keeps with the local pool: the
store, ``results.jsonl``, events, resume and exactly-once; it pulls manifest entries only as
actors free up, so at most two jobs per actor are in flight and the driver's memory stays flat
however long the manifest is.

Actors: one per GPU (``num_gpus=1``) when the jobs may use a GPU and the cluster has GPUs,
otherwise one per CPU (``num_cpus=1``), each holding its warm decoder (and, on a GPU, its CUDA
context) for every job it runs. Outputs, two ways (``output``):

* ``"shared"`` (default): the actor writes the image into ``--out-dir`` itself, atomically, as a
  local worker does. Every node must see ``--out-dir`` at the same path (a shared file system).
* ``"bytes"``: the actor makes the image in a private temporary folder and returns its bytes;
  the driver writes them atomically into ``--out-dir``. For clusters without a shared file
  system; the image crosses the network once more and the driver writes every file.

Inputs are read by the actors: give paths every node can read (``--input-root``).

Failures: an actor that dies (its process killed, or its whole node gone) takes only its one job
with it; that job runs again on a fresh actor, up to :data:`MAX_ATTEMPTS` tries, and a job that
killed every actor it touched ends ``InvalidVideoFormat`` as with the local pool. Each entry's
Result is handed back once. Closing the iterator (Ctrl-C) cancels the jobs in flight and ends the
actors; a local Ray instance this executor started is shut down.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..device import DeviceRequest
from ..errors import EngineError, ErrorCode
from ..manifest import ManifestEntry
from ..result import Result

MAX_ATTEMPTS = 3
"""Tries of one job on successive actors before it is reported as the one that kills them (a
node lost mid-job costs one try, so a single node failure never fails a good job)."""
INSTALL_HINT = "pip install 'animated-previews-engine[ray]' (or pip install ray)"
OUTPUT_MODES = ("shared", "bytes")
SLOTS_PER_ACTOR = 2
"""Jobs handed to one actor at a time: the second waits in the actor's queue, so the actor starts it
the moment the first ends instead of after a round trip to the driver (with one slot, a
300-job smoke run of bench/ray_executor.py measured 16.8 ms per one-frame job over the local pool;
the committed bench/results/ray-executor.md has the two-slot figures)."""
STALL_CHECK_S = 5.0
STALL_LIMIT_S = 300.0
"""How long jobs may wait with no actor alive to take them (a cluster that lost every node able to
host one) before they are reported failed, rather than the run hanging forever."""


def import_ray() -> Any:
    """Ray, or a clear InvalidParameter saying how to install it (it is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"--executor ray needs Ray, which is not installed: "
                                                       f"{INSTALL_HINT}") from None
    return ray


class JobRunner:
    """What each actor is: a warm CPU decoder, and the job function. (Made a Ray actor class by
    :meth:`RayExecutor.run`, so importing this module needs no Ray.)"""

    def __init__(self, device: DeviceRequest, threads: int) -> None:
        import torch

        from ..decode import open_decoder

        torch.set_num_threads(threads)
        self.decoder = open_decoder("pyav", threads=threads)
        self.device = device

    def run(self, entry: ManifestEntry, out_dir: str, return_bytes: bool) -> tuple[Result, bytes | None]:
        """The entry's Result; with ``return_bytes``, made in a private folder and returned as bytes."""
        from ..job import run_job

        assert entry.spec is not None
        if not return_bytes:
            return run_job(entry.spec, Path(out_dir), self.decoder, line=entry.line, device=self.device), None
        with tempfile.TemporaryDirectory(prefix="preview-") as private:
            spec = dataclasses.replace(entry.spec, output=None)
            result = run_job(spec, Path(private), self.decoder, line=entry.line, device=self.device)
            data = Path(result.output).read_bytes() if result.ok and result.output else None
        return result, data

    def node(self) -> str:
        """Which node this actor runs on (for tests and logs)."""
        import ray

        return ray.get_runtime_context().get_node_id()


@dataclass(frozen=True)
class RayExecutor:
    """Jobs on Ray actors. ``address``: a running cluster's (``ray start --head`` prints it; "auto"
    finds the local one), None: start a local instance for this run (unless this process is
    already connected). ``actors``: how many (default: one per GPU or CPU of the cluster).
    ``output``: "shared" or "bytes" (module docstring)."""

    address: str | None = None
    actors: int | None = None
    output: str = "shared"
    workers: int | None = None
    """The local pool's option, accepted so that ``--workers N`` caps the actors too."""
    runner: type = JobRunner
    """The actors' class: :class:`JobRunner`, or a subclass (tests stand in a job that crashes)."""
    name: str = "ray"

    def __post_init__(self) -> None:
        if self.output not in OUTPUT_MODES:
            raise EngineError(ErrorCode.INVALID_PARAMETER,
                              f"output must be one of {', '.join(OUTPUT_MODES)}, got {self.output!r}")

    def run(self, entries: Iterable[ManifestEntry], out_dir: Path, device: DeviceRequest) -> Iterator[Result]:
        with self:
            yield from _Dispatch(import_ray(), self, Path(out_dir).resolve(), device).results(entries)

    def __enter__(self) -> "RayExecutor":
        """Connect (or start a local instance) unless this process is connected already; a
        caller running many batches (the queue worker) holds one connection for all of them."""
        ray = import_ray()
        if ray.is_initialized():
            _STARTED.append(False)
            return self
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if self.address is None and (self.actors or self.workers):
            options["num_cpus"] = self.actors or self.workers
        ray.init(address=self.address, **options)
        _STARTED.append(True)
        return self

    def __exit__(self, *exc: object) -> None:
        if _STARTED.pop():
            import_ray().shutdown()


_STARTED: list[bool] = []
"""For each open connection of this process (innermost last): whether it started Ray."""


class _Dispatch:
    """One run's actors and the jobs in flight on them."""

    def __init__(self, ray: Any, executor: RayExecutor, out_dir: Path, device: DeviceRequest) -> None:
        self.ray = ray
        self.out_dir = out_dir
        self.device = device
        self.return_bytes = executor.output == "bytes"
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if device.kind != "cpu" else 0
        if gpus:
            count, self.actor_options, threads = gpus, {"num_gpus": 1, "num_cpus": 1}, 1
        else:
            cpus = max(1, int(resources.get("CPU", 1)))
            count, self.actor_options, threads = cpus, {"num_cpus": 1}, 1
        count = min(filter(None, (executor.actors, executor.workers, count)))
        self.threads = threads
        self.actor_class = ray.remote(executor.runner)
        self.actors = [self._new_actor() for _ in range(max(1, count))]
        self.free: dict[Any, int] = {actor: SLOTS_PER_ACTOR for actor in self.actors}
        """Live actors and how many more jobs each may be given now."""
        self.in_flight: dict[Any, tuple[ManifestEntry, Any, int, int]] = {}
        """Each job in flight: its entry, actor, try and the slots it holds."""

    def _new_actor(self) -> Any:
        # max_restarts=0: a dead actor is replaced by the driver, which knows which job it held
        return self.actor_class.options(max_restarts=0, **self.actor_options).remote(self.device, self.threads)

    def _submit(self, entry: ManifestEntry, actor: Any, attempt: int, slots: int) -> None:
        ref = actor.run.remote(entry, str(self.out_dir), self.return_bytes)
        self.in_flight[ref] = (entry, actor, attempt, slots)
        self.free[actor] -= slots

    def _replace(self, actor: Any, starting: dict[Any, Any]) -> None:
        """``actor`` died: forget it (once, though each of its jobs reports it) and start another."""
        if actor not in self.free:
            return
        del self.free[actor]
        self._forget(actor)
        replacement = self._new_actor()
        starting[replacement.node.remote()] = replacement

    def results(self, entries: Iterable[ManifestEntry]) -> Iterator[Result]:
        """Hand entries to actors with a free slot; yield each Result as it comes. A dead actor's
        jobs go to the retry queue; a retried job runs alone on an actor (so a job that kills
        actors cannot take an innocent neighbour's tries with it), and new jobs wait while
        retries do. A replacement actor joins once it is up (it may never be, if its node's
        resources are gone: the other actors carry on)."""
        from ray.exceptions import GetTimeoutError, OutOfMemoryError, RayActorError, RayTaskError, WorkerCrashedError

        pending = iter(entries)
        exhausted = False
        retry: deque[tuple[ManifestEntry, int]] = deque()
        starting: dict[Any, Any] = {}  # readiness probe -> replacement actor
        stalled_since: float | None = None
        try:
            while True:
                while retry:
                    alone = next((a for a, n in self.free.items() if n == SLOTS_PER_ACTOR), None)
                    if alone is None:
                        break
                    entry, attempt = retry.popleft()
                    self._submit(entry, alone, attempt, SLOTS_PER_ACTOR)
                while not retry and not exhausted:
                    actor = max(self.free, key=self.free.__getitem__, default=None)
                    if actor is None or self.free[actor] == 0:
                        break
                    entry = next(pending, None)
                    if entry is None:
                        exhausted = True
                        break
                    if entry.spec is None:
                        yield entry.refusal()
                        continue
                    self._submit(entry, actor, 1, 1)
                if not self.in_flight and not retry and exhausted:
                    return
                waitables = list(self.in_flight) + list(starting)
                if not waitables:  # jobs to retry, no actor alive or starting: start one
                    replacement = self._new_actor()
                    starting[replacement.node.remote()] = replacement
                    continue
                done, _ = self.ray.wait(waitables, num_returns=1, timeout=STALL_CHECK_S)
                if not done:
                    stalled_since = stalled_since or time.monotonic()
                    if not self.in_flight and time.monotonic() - stalled_since > STALL_LIMIT_S:
                        for entry, _attempt in retry:
                            yield _no_actor(entry)
                        retry.clear()
                        for entry in ([] if exhausted else pending):  # nothing can run the rest
                            yield entry.refusal() if entry.spec is None else _no_actor(entry)
                        return
                    continue
                stalled_since = None
                ref = done[0]
                if ref in starting:
                    actor = starting.pop(ref)
                    try:
                        self.ray.get(ref, timeout=0)
                    except (RayActorError, WorkerCrashedError, GetTimeoutError):
                        continue  # it died before it was up; the next retry will start another
                    self.actors.append(actor)
                    self.free[actor] = SLOTS_PER_ACTOR
                    continue
                entry, actor, attempt, slots = self.in_flight.pop(ref)
                try:
                    result, data = self.ray.get(ref)
                except OutOfMemoryError:  # Ray's memory monitor killed it: the job, not the file, is too big
                    self._replace(actor, starting)
                    yield _out_of_memory(entry)
                    continue
                except (RayActorError, WorkerCrashedError):  # the actor (or its node) died with the job
                    self._replace(actor, starting)
                    if attempt < MAX_ATTEMPTS:
                        retry.append((entry, attempt + 1))
                    else:
                        yield _crashed(entry, attempt)
                    continue
                except RayTaskError as error:  # run_job reports failures as Results: this is a bug
                    result = Result.failure(entry.id, EngineError(ErrorCode.INTERNAL_ERROR, str(error.cause)[:500]),
                                            line=entry.line, input=str(entry.spec.input) if entry.spec else None)
                    data = None
                if actor in self.free:
                    self.free[actor] += slots
                yield self._land(result, data, entry)
        finally:
            for ref in self.in_flight:
                self.ray.cancel(ref, force=True)
            for actor in self.actors + list(starting.values()):
                self._forget(actor)

    def _forget(self, actor: Any) -> None:
        if actor in self.actors:
            self.actors.remove(actor)
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone with its node
            pass

    def _land(self, result: Result, data: bytes | None, entry: ManifestEntry) -> Result:
        """In "bytes" mode, write the returned image where it belongs, atomically, on the driver."""
        if data is None or not result.ok:
            return result
        from ..output import resolve_output, write_atomic

        assert entry.spec is not None
        try:
            destination = resolve_output(entry.spec, self.out_dir)
            write_atomic(destination, data)
        except EngineError as error:
            return Result.failure(entry.id, error, line=entry.line, input=str(entry.spec.input))
        return dataclasses.replace(result, output=str(destination))


def _no_actor(entry: ManifestEntry) -> Result:
    return Result.failure(entry.id, EngineError(
        ErrorCode.INTERNAL_ERROR, f"no Ray actor could run this job for {STALL_LIMIT_S:.0f} s (the cluster lost the "
        "resources its actors need); run the manifest again once it has them: done lines are not redone"),
        line=entry.line, input=str(entry.spec.input) if entry.spec else None)


def _out_of_memory(entry: ManifestEntry) -> Result:
    return Result.failure(entry.id, EngineError(
        ErrorCode.RESOURCE_EXHAUSTED, "the actor ran out of memory on this job (Ray's memory monitor ended it): "
        "lower the output size, fps or duration, or give the actors more memory"),
        line=entry.line, input=str(entry.spec.input) if entry.spec else None)


def _crashed(entry: ManifestEntry, attempts: int) -> Result:
    return Result.failure(entry.id, EngineError(
        ErrorCode.INVALID_VIDEO_FORMAT,
        f"the decoder crashed on this input (the actor running it died {attempts} times); the file is likely corrupt",
    ), line=entry.line, input=str(entry.spec.input) if entry.spec else None)


__all__ = ["MAX_ATTEMPTS", "OUTPUT_MODES", "RayExecutor", "import_ray"]
