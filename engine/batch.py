"""Running a manifest: entries -> an executor -> Results, each appended to ``results.jsonl``.

:func:`run_batch` runs every entry and remembers nothing; the store's batch runs
(:meth:`engine.Service.run_batch`, :mod:`engine.vod.stored_batch`) skip what an earlier run did.
Both hand the jobs to an executor (:mod:`engine.executors`: the local process pool by default)
and write results through :class:`ResultsLog`.

``device`` ("auto", "cpu", "cuda", "cuda:N") is checked here, before any job runs, and handed to
the executor; each job then picks its path after probing its video (engine/device.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .device import DeviceRequest, parse_device
from .executors import Executor, open_executor
from .manifest import ManifestEntry
from .result import Result


def run_batch(
    entries: Iterable[ManifestEntry],
    out_dir: Path | str,
    *,
    workers: int | None = None,
    results_path: Path | str | None = None,
    on_result: Callable[[Result], None] | None = None,
    device: str | DeviceRequest = "auto",
    executor: Executor | None = None,
) -> Iterator[Result]:
    """Run every entry; yield one :class:`Result` per entry, in completion order.

    Entries that failed validation become failed results at once. Results are appended to
    ``results_path`` (default ``<out_dir>/results.jsonl``, truncated first) as they come.
    ``device`` is the --device request; an invalid one raises EngineError(InvalidParameter) when
    iteration starts, before any job runs. ``executor`` runs the jobs (default: the local
    process pool with ``workers`` processes). This runs every entry, remembering nothing: the
    store's batch runs (:meth:`engine.Service.run_batch`) skip what an earlier run did.
    """
    request = parse_device(device)
    executor = executor or open_executor("local", workers=workers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with ResultsLog(Path(results_path) if results_path else out_dir / "results.jsonl", on_result) as log:
        for result in executor.run(entries, out_dir, request):
            yield log.emit(result)


class ResultsLog:
    """``results.jsonl``: truncated when opened, one line per result, flushed as each comes."""

    def __init__(self, path: Path, on_result: Callable[[Result], None] | None = None) -> None:
        self.path = path
        self._on_result = on_result
        self._file = open(path, "w", encoding="utf-8")

    def emit(self, result: Result) -> Result:
        self._file.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()
        if self._on_result is not None:
            self._on_result(result)
        return result

    def __enter__(self) -> "ResultsLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
