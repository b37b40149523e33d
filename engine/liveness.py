"""Whether a process still runs: for claims held by dead processes, and workers whose run died.

A claim in the store names its holder as ``host:pid:tag`` (:func:`new_worker_id`); the store
itself knows no processes, so the service hands it :func:`holder_gone` to ask.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited. A zombie counts as gone: it runs nothing and only waits for
    its parent to reap it (a killed `engine run` whose shell has not noticed yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # pragma: no cover - no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    return stat[stat.rfind(")") + 2] in "ZX"


def new_worker_id() -> str:
    """``host:pid:tag``: unique per process run, and tells :func:`holder_gone` where to look."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def holder_gone(worker: str | None) -> bool:
    """True when ``worker`` ("host:pid:tag", see :func:`new_worker_id`) was a process on this host
    that no longer exists: its claims can be taken at once instead of waiting for the lease. A
    holder on another host cannot be checked from here: its lease decides."""
    host, _, rest = (worker or "").partition(":")
    pid_text = rest.partition(":")[0]
    return host == socket.gethostname() and pid_text.isdigit() and process_gone(int(pid_text))
