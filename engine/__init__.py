"""Animated previews (GIF, WebP) from videos, in bulk.

The Python API that the ``engine`` command is a thin layer over::

    from animated_previews.engine import Manifest, run_batch
    for result in run_batch(Manifest("jobs.jsonl"), out_dir="previews", workers=4):
        print(result.id, result.status, result.output or result.error_message)

(``Manifest`` streams the file; ``load_manifest`` gives its entries as a list.)
"""

from .batch import run_batch
from .executors import Executor, open_executor
from .executors.local import default_workers
from .errors import EngineError, ErrorCode
from .manifest import Manifest, ManifestEntry, load_manifest, parse_manifest_lines
from .result import Result
from .spec import JobSpec, parse_job


def __getattr__(name: str):
    """``engine.Service`` (the store-backed VOD API) is imported on first use: the batch path never
    pays for SQLite or the store's modules."""
    if name == "Service":
        from .vod import Service

        return Service
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

__all__ = [
    "Service",
    "EngineError",
    "Executor",
    "ErrorCode",
    "JobSpec",
    "Manifest",
    "ManifestEntry",
    "Result",
    "default_workers",
    "load_manifest",
    "open_executor",
    "parse_job",
    "parse_manifest_lines",
    "run_batch",
]
