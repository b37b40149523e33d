"""CPU time and memory of this process and all its descendants (engine workers, ffmpeg), read from /proc.

* :func:`cpu_snapshot` / :func:`cpu_delta`: CPU seconds (user + system) spent by this process and
  every descendant between two moments, worker processes that are not direct children included;
* :class:`MemorySampler`: peak resident memory of the tree while a batch runs (and, on a GPU node,
  the tree's GPU memory from ``nvidia-smi``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

_CLK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def descendants(root: int | None = None) -> list[int]:
    """Pids of every live descendant of ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    seen, todo = [], [root]
    while todo:
        for child in _children(todo.pop()):
            if child not in seen:
                seen.append(child)
                todo.append(child)
    return seen


# --------------------------------------------------------------------------------------------
# CPU time


def _cpu_s(pid: int) -> float | None:
    """utime + stime + cutime + cstime of ``pid`` in seconds (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return sum(int(x) for x in fields[11:15]) / _CLK


def cpu_snapshot() -> tuple[float, dict[int, float]]:
    """This process's CPU time (its own and its reaped children's) and each live descendant's."""
    self_t = os.times()
    live = {pid: _cpu_s(pid) for pid in descendants()}
    return (self_t.user + self_t.system + self_t.children_user + self_t.children_system,
            {pid: s for pid, s in live.items() if s is not None})


def cpu_delta(start: tuple[float, dict[int, float]], end: tuple[float, dict[int, float]]) -> float:
    """CPU seconds spent by this process and all its descendants between two snapshots: reaped
    children count through os.times(), live ones (and what they reaped) through /proc."""
    total = end[0] - start[0]
    for pid, value in end[1].items():
        total += value - start[1].get(pid, 0.0)
    for pid, value in start[1].items():
        if pid not in end[1]:
            total -= value  # gone since: its whole total is now in a parent's reaped-children time
    return total


# --------------------------------------------------------------------------------------------
# memory


def _status_kib(pid: int, *keys: str) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in keys:
                    out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _gpu_memory_by_pid() -> dict[int, float] | None:
    """MiB of GPU memory per process, from nvidia-smi; None when there is no nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    usage: dict[int, float] = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            try:
                usage[int(parts[0])] = usage.get(int(parts[0]), 0.0) + float(parts[1])
            except ValueError:
                pass
    return usage


class MemorySampler:
    """Samples, every ``interval`` seconds and on demand, the resident memory of this process
    and of all its descendants (the engine's worker processes, ffmpeg processes).

    ``peak_child_hwm_kib``: the largest VmHWM (peak resident set) of any descendant;
    ``peak_total_kib``: the largest sum of VmRSS over this process and its descendants at one
    sample (reported as at least ``peak_child_hwm_kib``: a child's peak can fall between two
    samples, or in an ffmpeg process that ended unsampled, and the tree held at least that much
    then); ``series``: (seconds since start, total RSS KiB, worker processes alive) per sample.
    With ``gpu=True`` it also polls nvidia-smi (every ``gpu_interval`` s) for the GPU memory of
    this process tree (``peak_gpu_mib``)."""

    def __init__(self, interval: float = 0.2, gpu: bool = False, gpu_interval: float = 0.5,
                 exclude: set[int] | None = None):
        self.interval = interval
        self.gpu = gpu
        self.gpu_interval = gpu_interval
        self.exclude = set(exclude or ())  # long-lived helpers (e.g. a forkserver) to leave out of HWM
        self.peak_child_hwm_kib = 0
        self.peak_total_kib = 0
        self.peak_self_rss_kib = 0
        self.peak_gpu_mib: float | None = None
        self.series: list[tuple[float, int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._last_gpu = -1e9

    def sample(self) -> None:
        with self._lock:
            now = time.perf_counter()
            self._last = now
            me = _status_kib(os.getpid(), "VmRSS").get("VmRSS", 0)
            total, alive = me, 0
            for pid in descendants():
                st = _status_kib(pid, "VmRSS", "VmHWM")
                total += st.get("VmRSS", 0)
                if pid in self.exclude:
                    continue
                alive += 1
                self.peak_child_hwm_kib = max(self.peak_child_hwm_kib, st.get("VmHWM", 0))
            self.peak_self_rss_kib = max(self.peak_self_rss_kib, me)
            self.peak_total_kib = max(self.peak_total_kib, total)
            self.series.append((now - self._t0, total, alive))
            if self.gpu and now - self._last_gpu >= self.gpu_interval:
                self._last_gpu = now
                usage = _gpu_memory_by_pid()
                if usage is not None:
                    tree = {os.getpid(), *descendants()}
                    used = sum(v for pid, v in usage.items() if pid in tree)
                    self.peak_gpu_mib = max(self.peak_gpu_mib or 0.0, used)

    def maybe_sample(self) -> None:
        if time.perf_counter() - self._last >= self.interval:
            self.sample()

    def note_child_maxrss(self, kib: int | None) -> None:
        """A child that already ended (ffmpeg): its ru_maxrss from wait4."""
        if kib:
            with self._lock:
                self.peak_child_hwm_kib = max(self.peak_child_hwm_kib, int(kib))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "MemorySampler":
        self._t0 = time.perf_counter()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def to_dict(self) -> dict:
        mib = lambda k: round(k / 1024, 1)  # noqa: E731
        return {"peak_worker_rss_mib": mib(self.peak_child_hwm_kib), "peak_total_rss_mib": mib(max(self.peak_total_kib, self.peak_child_hwm_kib)),
                "peak_bench_rss_mib": mib(self.peak_self_rss_kib),
                "peak_gpu_mib": None if self.peak_gpu_mib is None else round(self.peak_gpu_mib, 1),
                "samples": len(self.series)}
