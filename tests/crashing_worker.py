"""A stand-in for the pool's job function that dies like a decoder crashing in native code.

Lives in its own module (on the tests' sys.path) so that a worker process can import it: the pool
pickles the function by reference, and in the worker ``_run_in_worker`` below is the real one.
Used by tests/engine/test_worker_crash.py."""

from __future__ import annotations

import os

from animated_previews.engine.executors.local import _run_in_worker


def crash_on_poison(entry, out_dir):
    """Dies (no exception, no cleanup, as a segfault would) on entries whose id starts with
    "poison"; runs every other job normally."""
    if entry.id.startswith("poison"):
        os._exit(139)
    return _run_in_worker(entry, out_dir)
