"""`engine run --batch` killed mid-batch (SIGKILL: no cleanup at all) and run again: every job ends
exactly once, no output is corrupt, no result is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import clipmaker
from processes import alive, descendants

JOBS = 8


def batch_files(tmp_path: Path, lines: list[dict]) -> tuple[Path, Path, Path]:
    """The manifest (written), the output folder and the store of one test's batch."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest, tmp_path / "out", tmp_path / "store.db"


def engine_run(manifest: Path, out: Path, store: Path, *extra: str) -> subprocess.Popen:
    script = Path(sys.executable).parent / "engine"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from animated_previews.cli.main import main; main()"]
    command += ["run", "--batch", str(manifest), "--out-dir", str(out), "--store", str(store), "--workers", "2",
                "--json", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)


def stored_jobs(store: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(store)
    try:
        return {name: (state, events) for name, state, events in conn.execute(
            "SELECT name, state, (SELECT count(*) FROM events WHERE events.job_id = jobs.id) FROM jobs")}
    finally:
        conn.close()


def column(store: Path, name: str, where: str) -> dict[str, float]:
    conn = sqlite3.connect(store)
    try:
        return dict(conn.execute(f"SELECT name, {name} FROM jobs WHERE {where}").fetchall())
    finally:
        conn.close()


@pytest.mark.parametrize("victims", ["the run", "the run and its workers"])
def test_a_killed_batch_resumes_and_every_job_ends_exactly_once(tmp_path, victims):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=75, width=480, height=360)
    lines = [{"id": f"j{i}", "input": str(clip), "format": "gif" if i % 2 else "webp", "fps": 25,
              "seek": 0, "duration": 2.9} for i in range(JOBS)]
    manifest, out, store = batch_files(tmp_path, lines)

    first = engine_run(manifest, out, store)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        results = out / "results.jsonl"
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert first.poll() is None, f"the run ended before it could be killed: {first.communicate()}"
    family = descendants(first.pid)
    if victims == "the run":
        os.kill(first.pid, signal.SIGKILL)
    else:
        os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = stored_jobs(store)
    done_before = {name for name, (state, _) in before.items() if state == "success"}
    assert 2 <= len(done_before) < JOBS, before
    leases = column(store, "lease_expires", "state = 'running'")  # what the dead run still held
    assert leases

    second = engine_run(manifest, out, store)
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr
    printed = [json.loads(line) for line in stdout.splitlines()]
    results = [r for r in printed if "summary" not in r]
    logged = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]

    # every line answered once, by this run: the earlier run's jobs reused, the rest run now
    assert sorted(r["id"] for r in results) == sorted(line["id"] for line in lines)
    assert sorted(r["id"] for r in logged) == sorted(r["id"] for r in results)
    assert {r["id"] for r in results if r["reused"]} == done_before
    assert all(r["status"] == "success" for r in results)
    # in the store: every job ended once, with exactly one event
    assert stored_jobs(store) == {line["id"]: ("success", 1) for line in lines}
    # the dead run's jobs were taken over at once (same host, its pid gone), not after the lease ran out
    started = column(store, "started", "name IN (%s)" % ",".join(f"'{name}'" for name in leases))
    assert all(started[name] < leases[name] for name in leases), (started, leases)
    # every output whole and decodable, no temporary file left behind
    for result in results:
        with Image.open(result["output"]) as image:
            assert image.n_frames == result["frames"] == 72  # round(2.9 s x 25 fps)
            image.seek(image.n_frames - 1)
            image.load()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    # the killed run's processes did not outlive it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in family):
        time.sleep(0.1)
    assert [pid for pid in family if alive(pid)] == []


def test_sigterm_stops_a_run_and_gives_its_jobs_back_for_the_next(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=75, width=480, height=360)
    lines = [{"id": f"t{i}", "input": str(clip), "format": "webp", "fps": 25, "duration": 2.9} for i in range(6)]
    manifest, out, store = batch_files(tmp_path, lines)

    first = engine_run(manifest, out, store)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "results.jsonl").exists():
        time.sleep(0.02)
    while time.monotonic() < deadline and "running" not in {s for s, _ in stored_jobs(store).values()}:
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
    states = {state for state, _ in stored_jobs(store).values()}

    assert first.returncode == 130, stderr
    assert "the rest go on when the same command runs again" in stderr
    assert "running" not in states  # every job it held went back to the queue
    second = engine_run(manifest, out, store)
    second.communicate(timeout=300)
    assert second.returncode == 0
    assert stored_jobs(store) == {line["id"]: ("success", 1) for line in lines}


def test_two_runs_of_one_manifest_at_once_split_it_and_each_reports_every_line(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=75, width=320, height=240)
    lines = [{"id": f"p{i}", "input": str(clip), "format": "gif", "fps": 25, "duration": 2.9} for i in range(8)]
    manifest, out, store = batch_files(tmp_path, lines)

    runs = [engine_run(manifest, out, store, "--results", str(tmp_path / f"{name}.jsonl")) for name in ("a", "b")]
    for run in runs:
        run.communicate(timeout=300)
        assert run.returncode == 0
    reports = {name: [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
               for name in ("a", "b")}
    ran = {name: {r["id"] for r in report if not r["reused"]} for name, report in reports.items()}

    ids = {line["id"] for line in lines}
    assert all(sorted(r["id"] for r in report) == sorted(ids) for report in reports.values())
    assert ran["a"].isdisjoint(ran["b"]) and ran["a"] | ran["b"] == ids
    assert stored_jobs(store) == {i: ("success", 1) for i in ids}
