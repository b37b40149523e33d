"""Reading the process table (Linux /proc) in tests about crashes and kills."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def parents() -> dict[int, int]:
    """Every running process's parent pid."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None:
            found[int(entry)] = int(fields[1])
    return found


def children_of(pids: set[int], table: dict[int, int] | None = None) -> list[int]:
    table = parents() if table is None else table
    return [pid for pid, parent in table.items() if parent in pids]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (for a batch: the forkserver and the pool's workers)."""
    table = parents()
    found, frontier = [], [pid]
    while frontier:
        below = children_of({frontier.pop()}, table)
        found += below
        frontier += below
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is not: it has exited and only waits to be reaped)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"
