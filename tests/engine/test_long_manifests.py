"""Long manifests: a run streams its manifest and remembers 16 bytes a line, so a million-line
manifest costs the driver about what a thousand-line one does; repeats are still refused across
the whole manifest, naming the first line, and a stored run does its manifest window by window."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main
from animated_previews.cli.progress import Tally, summary_table
from animated_previews.engine import EngineError, ErrorCode, Manifest, Result, Service, run_batch
from animated_previews.engine import first_lines
from animated_previews.engine.first_lines import FirstLines
from animated_previews.engine.vod import stored_batch


def write_manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def job(job_id: str, clip: Path, **fields) -> dict:
    return {"id": job_id, "input": str(clip), "format": "gif", "fps": 5, "seek": 0, "duration": 0.4, **fields}


@pytest.fixture
def clip(tmp_path) -> Path:
    return clipmaker.make_clip(tmp_path / "clip.mp4", fps=25, frames=15, width=96, height=64)


# -- FirstLines: the compact memory of names ----------------------------------------------------------

def test_first_lines_names_the_first_line_and_keeps_it(monkeypatch):
    monkeypatch.setattr(first_lines, "_RECENT_MAX", 8)  # merge into the sorted arrays often
    seen = FirstLines()
    for line in range(1, 101):
        assert seen.claim(f"name-{line}", line) is None
    assert len(seen) == 100
    for line in range(1, 101):
        assert seen.claim(f"name-{line}", 1000 + line) == line  # a repeat never takes the name over
        assert seen.first(f"name-{line}") == line
    assert seen.first("never-named") is None and len(seen) == 100


def test_first_lines_takes_any_text(monkeypatch):
    monkeypatch.setattr(first_lines, "_RECENT_MAX", 2)
    seen = FirstLines()
    names = ["", "é", "a\u2028b", "\udcff lone surrogate", "x" * 10_000]
    assert [seen.claim(name, n) for n, name in enumerate(names, 1)] == [None] * 5
    assert [seen.first(name) for name in names] == [1, 2, 3, 4, 5]


def test_a_million_names_cost_about_16_bytes_each():
    tracemalloc.start()
    try:
        seen = FirstLines()
        for line in range(1, 200_001):
            seen.claim(f"/videos/library/some-folder/clip-{line:07d}.gif", line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 200,000 paths as Python strings in a dict would be about 40 MB; the arrays hold 3.2 MB (4.8 MB
    # while a merge runs) and the dict of the newest names about 1.5 MB (6.9 MiB measured).
    assert peak < 8 * 2**20, peak


# -- Manifest: streamed, re-readable ------------------------------------------------------------------

def test_a_manifest_is_read_again_each_time_it_is_iterated(tmp_path, clip):
    path = write_manifest(tmp_path / "m.jsonl", [job("a", clip), job("b", clip)])
    manifest = Manifest(path)
    assert [e.id for e in manifest] == ["a", "b"]
    path.write_text(path.read_text() + json.dumps(job("c", clip)) + "\n")
    assert [e.id for e in manifest] == ["a", "b", "c"]


def test_a_repeated_id_names_the_first_line(tmp_path, clip):
    path = write_manifest(tmp_path / "m.jsonl", [job("a", clip), job("b", clip), job("a", clip, fps=2)])
    entries = list(Manifest(path))
    assert entries[2].error is not None and "line 1" in entries[2].error.message


def test_an_unreadable_manifest_is_refused_by_check(tmp_path):
    with pytest.raises(EngineError) as raised:
        Manifest(tmp_path / "missing.jsonl").check()
    assert raised.value.code is ErrorCode.INPUT_NOT_FOUND


def test_a_failing_store_is_raised_not_made_the_lines_failure(tmp_path, clip):
    def failing(ref: str) -> dict:
        raise EngineError(ErrorCode.STORE_ERROR, "the store is gone")

    path = write_manifest(tmp_path / "m.jsonl", [job("a", clip), {"id": "b", "input": str(clip), "template": "t"}])
    assert list(Manifest(path, templates=failing))[1].error.code is ErrorCode.STORE_ERROR
    with pytest.raises(EngineError, match="the store is gone"):
        list(Manifest(path, templates=failing, fatal=frozenset({ErrorCode.STORE_ERROR})))


def test_a_batch_without_a_store_reads_its_manifest_as_it_goes(tmp_path, clip):
    lines = [job(f"j{n}", clip) for n in range(4)] + [job("dup", clip, output="j0.gif")]
    manifest = Manifest(write_manifest(tmp_path / "m.jsonl", lines))
    results = {r.id: r for r in run_batch(manifest, tmp_path / "out", workers=1)}
    assert all(results[f"j{n}"].ok for n in range(4))
    assert results["dup"].error_code == "InvalidParameter" and "line 1's output" in results["dup"].error_message


# -- Stored runs, window by window --------------------------------------------------------------------

def test_a_stored_run_goes_window_by_window_and_repeats_are_refused_across_windows(tmp_path, clip, monkeypatch):
    monkeypatch.setattr(stored_batch, "WINDOW_LINES", 2)
    lines = [job(f"j{n}", clip) for n in range(5)]
    lines.append(job("again", clip, output=str(tmp_path / "out" / "j0.gif")))  # line 1's image, asked again
    lines.append(job("taken", clip, fps=2, output=str(tmp_path / "out" / "j1.gif")))  # line 2's output
    path = write_manifest(tmp_path / "m.jsonl", lines)
    with Service(store=tmp_path / "s.db") as service:
        first = list(service.run_batch(service.manifest(path), tmp_path / "out", workers=1))
        second = list(service.run_batch(service.manifest(path), tmp_path / "out", workers=1))
        jobs = service.jobs()
    by_id = {r.id: r for r in first}
    assert len(first) == len(by_id) == 7  # each line once
    assert all(by_id[f"j{n}"].ok and not by_id[f"j{n}"].reused for n in range(5))
    assert "same image as line 1" in by_id["again"].error_message
    assert "line 2's output" in by_id["taken"].error_message
    assert [r.id for r in first[:2]] == ["j0", "j1"]  # the first window ends before the second starts
    assert sorted(j.name for j in jobs) == [f"j{n}" for n in range(5)]
    assert {r.id for r in second if r.reused} == {f"j{n}" for n in range(5)}
    assert {r.id for r in second if not r.ok} == {"again", "taken"}


def test_the_cli_counts_and_checks_a_manifest_before_running_it(tmp_path, clip):
    path = write_manifest(tmp_path / "m.jsonl", [job("a", clip), job("b", clip)])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--batch", str(path), "--out-dir", str(out), "--no-store",
                                       "--workers", "1", "--results", str(clip)])
    assert result.exit_code == 2 and "line 1's input" in result.output, result.output
    result = CliRunner().invoke(main, ["run", "--batch", str(path), "--out-dir", str(out), "--no-store",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "2 succeeded, 0 failed, 2 jobs" in result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# nothing but a comment\n\n")
    result = CliRunner().invoke(main, ["run", "--batch", str(empty), "--out-dir", str(out), "--no-store"])
    assert result.exit_code == 2 and "holds no jobs" in result.output


# -- The end-of-run table ------------------------------------------------------------------------------

def _result(n: int, ok: bool) -> Result:
    if ok:
        return Result(id=f"j{n}", status="success", output=f"j{n}.gif")
    return Result.failure(f"j{n}", EngineError(ErrorCode.INVALID_VIDEO_FORMAT, "not a video"))


def test_the_table_lists_a_screenful_failures_first_and_counts_everything():
    tally = Tally(rows=5)
    for n in range(1000):
        tally.add(_result(n, ok=n not in (500, 900)))
    table = summary_table(tally, 1.0, "out/results.jsonl")
    assert tally.jobs == 1000 and tally.failed == 2 and len(tally.rows) == 5
    assert "j500" in table and "j900" in table  # failures outrank successes for a row
    assert "995 more" in table and "out/results.jsonl" in table
    assert "998 succeeded, 2 failed, 1000 jobs" in table
