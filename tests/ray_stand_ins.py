"""Stand-ins for the Ray executor's actors, in a module of their own so that Ray's worker
processes can import them (tests put this folder on the workers' PYTHONPATH).
Used by tests/engine/test_ray_executor.py."""

from __future__ import annotations

import os
import time

from animated_previews.engine.executors.ray import JobRunner


class CrashOnPoison(JobRunner):
    """Dies (no exception, as a native crash would) on entries whose id starts with "poison"."""

    def run(self, entry, out_dir, return_bytes):
        if entry.id.startswith("poison"):
            os._exit(139)
        return super().run(entry, out_dir, return_bytes)


class Slow(JobRunner):
    """Each job takes at least a second, so a test can act while jobs are in flight."""

    def run(self, entry, out_dir, return_bytes):
        time.sleep(1.0)
        return super().run(entry, out_dir, return_bytes)
