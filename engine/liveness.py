"""Whether a process still runs: for claims held by dead processes, and workers whose run died."""

from __future__ import annotations

import os
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
