"""A stand-in for the pool's job function that dies like a decoder crashing in native code.

Lives in its own module (on the tests' sys.path) so that a worker process can import it: the pool
pickles the function by reference, and in the worker ``_run_in_worker`` below is the real one.
Used by tests/engine/test_worker_crash.py and tests/engine/test_memory_budget.py."""

from __future__ import annotations

import os
import signal

from animated_previews.engine.executors.local import _run_in_worker


def crash_on_poison(entry, out_dir):
    """Dies (no exception, no cleanup, as a segfault would) on entries whose id starts with
    "poison"; runs every other job normally."""
    if entry.id.startswith("poison"):
        os._exit(139)
    return _run_in_worker(entry, out_dir)


def oom_kill_on_poison(entry, out_dir):
    """Killed with SIGKILL, as the kernel's out-of-memory killer does, on "poison" entries."""
    if entry.id.startswith("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _run_in_worker(entry, out_dir)


def segfault_on_poison(entry, out_dir):
    """Killed by SIGSEGV (a decoder reading out of bounds) on "poison" entries."""
    if entry.id.startswith("poison"):
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)  # no faulthandler dump: die as native code does
        os.kill(os.getpid(), signal.SIGSEGV)
    return _run_in_worker(entry, out_dir)
