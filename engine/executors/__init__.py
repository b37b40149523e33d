"""Where many jobs run: the :class:`Executor` protocol and the table of executors by name.

An executor takes manifest entries and hands back one :class:`Result` per entry, in completion
order, pulling entries only as it has room for them (a bounded number in flight, so memory stays
flat however long the manifest is). It only runs jobs: results files, the store, resume and
events stay with the caller (:func:`engine.batch.run_batch`, :mod:`engine.vod.stored_batch`),
so every executor gets them for free. A new executor is one module here and one line in
:data:`EXECUTORS`; its module is imported only when chosen, so an optional dependency (a cluster
client) costs nothing to those who do not use it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from ..device import DeviceRequest
from ..errors import EngineError, ErrorCode
from ..manifest import ManifestEntry
from ..result import Result


class Executor(Protocol):
    """Runs jobs somewhere and hands back their Results."""

    name: str

    def run(self, entries: Iterable[ManifestEntry], out_dir: Path, device: DeviceRequest) -> Iterator[Result]:
        """Every entry's Result, in completion order: a valid entry's from :func:`engine.job.run_job`
        (a job that kills what runs it ends ``InvalidVideoFormat``, never the run), an invalid one's
        (:meth:`ManifestEntry.refusal`) at once. Entries are pulled as room frees up. Closing the
        iterator early stops the jobs in flight."""
        ...


EXECUTORS: dict[str, tuple[str, str]] = {
    "local": (".local", "LocalExecutor"),
    "gpu-node": (".gpu_node", "GpuNodeExecutor"),
    "ray": (".ray", "RayExecutor"),
}
"""Executor name -> (module, relative to this package, class). The class takes its options as
keyword arguments."""


UNGUARDED_SCRIPT = (
    "a batch was started while a worker process was importing the script that starts batches: "
    "worker processes import the main script again (multiprocessing's forkserver and spawn), so a "
    "script that runs a batch must do it under `if __name__ == \"__main__\":`")
"""Why a batch started during a worker's start-up is refused, and what the script needs."""


def refuse_in_worker_start_up() -> None:
    """Raise RuntimeError(:data:`UNGUARDED_SCRIPT`) when called while this process is a
    multiprocessing worker still importing the parent's main script: a Python script that runs a
    batch at its top level, without the ``__main__`` guard, would otherwise start a batch inside
    every worker (which then dies, and its jobs were reported as corrupt files, or waits on the
    parent's lease on the store and never ends). Python sets ``_inheriting`` on the process object
    for exactly that stretch; its absence (another interpreter) lets everything through. Asked
    first thing by the two ways into a batch, :func:`engine.batch.run_batch` and
    :func:`engine.vod.stored_batch.run_stored_batch` (the second before it touches the store)."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(UNGUARDED_SCRIPT)


def open_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name``, built with ``options`` (``local``: ``workers``; ``gpu-node``:
    ``gpus``, ``threads``, ``encoders``; ``ray``: ``address``, ``actors``, ``output``, ``workers``)."""
    if name not in EXECUTORS:
        raise EngineError(ErrorCode.INVALID_PARAMETER,
                          f"unknown executor {name!r}; known: {', '.join(sorted(EXECUTORS))}")
    module, cls = EXECUTORS[name]
    return getattr(importlib.import_module(module, __name__), cls)(**options)


__all__ = ["EXECUTORS", "Executor", "UNGUARDED_SCRIPT", "open_executor", "refuse_in_worker_start_up"]
