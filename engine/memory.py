"""How much memory one job may hold here: the machine's memory shared among the workers in flight.

The job itself says what it needs (:func:`engine.job.job_memory_estimate`, from its frames' sizes)
and refuses up front when that passes :func:`job_budget`. This module only knows the machine, so
it stays cheap to import (no torch, no PyAV): the executor's parent process computes the budget
once per pool and hands it to its workers (:func:`set_job_budget`), which cannot see a change
to the environment made after their forkserver started.

Budget per job = memory x :data:`HEADROOM` / workers in flight - :data:`WORKER_BASE`, where memory
is the smaller of the physical memory and the cgroup's limit (a container's ``memory.max``), and
the workers are those of the pool (the local executor tells each worker) or, where nothing says
so (``engine worker``, a job run in-process), the default pool size: one per usable core. On the
project's 2-core machine (23.5 GiB) that is 23.5 x 0.75 / 2 - 0.39 = 8.4 GiB a job, so two of the
largest jobs allowed, with their workers, stay under 2 x (8.4 + 0.35) = 17.5 GiB together (the
estimate is an upper bound: 1.1-1.3x the measured peak for large jobs), and the rest (the run's
parent, the forkserver, the page cache) keeps 6 GiB. ``ENGINE_JOB_MEMORY`` sets the budget
per job instead (bytes, or with a K/M/G/T suffix, powers of 1024: ``512M``, ``6G``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import EngineError, ErrorCode

BUDGET_ENV = "ENGINE_JOB_MEMORY"
"""Environment variable: bytes each job may hold (``6G``, ``512M``, ``123456789``), overriding the
share of the machine computed here."""
HEADROOM = 0.75
"""Share of the machine's memory the workers' jobs may fill together; the rest is for the run's
parent process, the forkserver, other processes and the page cache."""
WORKER_BASE = 400 * 2**20
"""Resident memory of a worker before its job's frames: torch, PyAV, Pillow and the engine loaded,
one job run. Measured 256-345 MiB (VmRSS after a warm-up job; CPU torch 2.13, 21 runs)."""

_SUFFIX = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """Bytes one job may hold, and where that figure comes from (for the refusal's message)."""

    bytes: int
    source: str


_budget: Budget | EngineError | None = None


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if not text.isdigit():  # "max": no limit
        return None
    value = int(text)
    return value if 0 < value < 2**60 else None  # cgroup v1 says "no limit" with a huge number


def cgroup_limit(root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """The tightest memory limit of this process's cgroup and its ancestors (v2 ``memory.max``,
    v1 ``memory.limit_in_bytes``), or None when there is none."""
    limits: list[int] = []
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, where = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: memory.max of the cgroup and each parent
            parts = [part for part in where.split("/") if part]
            folders = [root.joinpath(*parts[:depth]) for depth in range(len(parts) + 1)]
            name = "memory.max"
        elif "memory" in controllers.split(","):  # v1: the memory controller's hierarchy
            base = root / "memory"
            folders = [base, base.joinpath(*[part for part in where.split("/") if part])]
            name = "memory.limit_in_bytes"
        else:
            continue
        for folder in folders:
            value = _read_limit(folder / name)
            if value is not None:
                limits.append(value)
    return min(limits) if limits else None


def machine_memory() -> int:
    """Bytes of memory this process's jobs can have: physical memory, or the cgroup limit if lower."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = cgroup_limit()
    return min(physical, limit) if limit is not None else physical


def parse_size(text: str) -> int:
    """``"6G"`` -> 6 GiB, ``"512M"``, ``"1.5g"``, ``"123456"`` (bytes); ValueError otherwise."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(text)
    value = int(float(match.group(1)) * _SUFFIX[match.group(2).lower()])
    if value <= 0:
        raise ValueError(text)
    return value


def job_memory_budget(workers: int | None = None) -> Budget:
    """What one job may hold with ``workers`` jobs in flight on this machine (default: one per
    usable core), or ``$ENGINE_JOB_MEMORY`` when set. A malformed variable is an InvalidParameter."""
    override = os.environ.get(BUDGET_ENV)
    if override:
        try:
            return Budget(parse_size(override), f"${BUDGET_ENV}={override}")
        except ValueError:
            raise EngineError(ErrorCode.INVALID_PARAMETER,
                              f"{BUDGET_ENV} must be a size in bytes such as 6G, 512M or 123456789, "
                              f"got {override!r}") from None
    total, workers = machine_memory(), max(1, workers or usable_cores())
    return Budget(max(0, int(total * HEADROOM / workers - WORKER_BASE)),
                  f"this machine's {total / 2**30:.1f} GiB x {HEADROOM:g} shared by the {workers} workers in flight, "
                  f"less {WORKER_BASE / 2**30:.2f} GiB for each worker's own; ${BUDGET_ENV} sets it")


def set_job_budget(budget: Budget | EngineError | None) -> None:
    """What :func:`job_budget` answers in this process from now on (None: computed again each
    time): the pool's parent computes it once, with the pool's size, and each worker keeps it."""
    global _budget
    _budget = budget


def job_budget() -> Budget:
    """What one job may hold in this process: what the pool set, else :func:`job_memory_budget`
    with the default number of workers."""
    if isinstance(_budget, EngineError):
        raise _budget
    return _budget if _budget is not None else job_memory_budget()


def budget_for_pool(workers: int) -> Budget | EngineError:
    """:func:`job_memory_budget` for a pool of ``workers``, or its error, to hand to the workers."""
    try:
        return job_memory_budget(workers)
    except EngineError as error:
        return error
