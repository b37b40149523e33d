"""How a batch shows itself on a terminal: a live bar on a TTY, plain lines otherwise, a table at the end."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

import click

from ..engine.result import Result


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


class Progress:
    """Reports each finished job: redraws one bar line on a terminal, prints a line otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.done = 0
        self.failed = 0
        self.started = time.perf_counter()

    def __call__(self, result: Result) -> None:
        self.done += 1
        self.failed += 0 if result.ok else 1
        if self.live:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            rate = self.done / max(1e-9, time.perf_counter() - self.started)
            click.echo(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"failed {self.failed}  {rate:.2f} jobs/s ",
                nl=False, file=self.stream,
            )
            if self.done == self.total:
                click.echo("", file=self.stream)
        else:
            what = result.output if result.ok else f"{result.error_code}: {result.error_message}"
            done_before = " (done by an earlier run)" if result.reused else ""
            click.echo(f"[{self.done}/{self.total}] {result.id} {result.status} {what}{done_before}", file=self.stream)


FALLBACK = "fallback: "


TABLE_ROWS = 200
"""Jobs the end-of-run table lists one by one; past that, failures first, then results.jsonl has all."""


class Tally:
    """What the end of a run reports, gathered result by result: counts, the CPU-fallback reasons,
    and the rows of at most :data:`TABLE_ROWS` jobs (the failed ones kept first), so a
    million-line run holds a screenful rather than every Result."""

    def __init__(self, rows: int = TABLE_ROWS) -> None:
        self.jobs = self.failed = self.reused = 0
        self.fallbacks: Counter[str] = Counter()
        self.rows: list[tuple[str, ...]] = []
        self._limit = rows
        self._row_failed: list[bool] = []

    def add(self, r: Result) -> None:
        self.jobs += 1
        self.failed += 0 if r.ok else 1
        self.reused += 1 if r.reused else 0
        self.fallbacks.update(n[len(FALLBACK):] for n in r.notes if n.startswith(FALLBACK))
        if len(self.rows) >= self._limit:
            if r.ok or all(self._row_failed):
                return
            drop = self._row_failed.index(False)  # a failure is worth more than a success's row
            del self.rows[drop], self._row_failed[drop]
        self.rows.append(_row(r))
        self._row_failed.append(not r.ok)


def _row(r: Result) -> tuple[str, ...]:
    size = f"{r.width}x{r.height}" if r.width else "-"
    detail = r.output if r.ok else f"{r.error_code}: {r.error_message}"
    notes = [n for n in r.notes if not n.startswith(FALLBACK)]
    if r.ok and notes:
        detail += f"  ({'; '.join(notes)})"
    if r.reused:
        detail += "  [earlier run]"
    return (r.id, r.status, r.format or "-", r.device or "-", size, str(r.frames or "-"), _size(r.bytes),
            f"{r.timings.get('total', 0):.2f}", detail or "")


def summary_table(results: Tally, wall_seconds: float, results_file: object = "results.jsonl") -> str:
    """A fixed-width table of the jobs (every one up to :data:`TABLE_ROWS`), then totals and why
    jobs ran on the CPU.

    Fallback notes ("fallback: no CUDA device ...") are the same for many jobs, so they are
    counted under the table rather than repeated on every row.
    """
    headers = ("id", "status", "format", "device", "size", "frames", "bytes", "seconds", "output / error")
    rows = results.rows
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths)) + "  " + headers[-1]]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1])
    if results.jobs > len(rows):
        lines.append(f"... {results.jobs - len(rows)} more (failures listed first); every job is in {results_file}")
    ok = results.jobs - results.failed
    lines.append(f"{ok} succeeded, {results.failed} failed, {results.jobs} job{'' if results.jobs == 1 else 's'} "
                 f"in {wall_seconds:.2f} s")
    if results.reused:
        lines.append(f"{results.reused} of them done by an earlier run and not redone (failures run again with --retry-failed)")
    for reason, count in results.fallbacks.most_common():
        lines.append(f"on the CPU ({count} job{'s' if count != 1 else ''}): {reason}")
    return "\n".join(lines)
