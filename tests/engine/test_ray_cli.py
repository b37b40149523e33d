"""`engine run --executor ray` from the command line: a usage error without Ray; with it, a driver
killed mid-run (SIGKILL) and run again finishes the rest, every line once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import clipmaker
from test_batch_kill_resume import batch_files, engine_run, stored_jobs

ENGINE = [sys.executable, "-c", "import sys; from animated_previews.cli.main import main; main()"]


def test_without_ray_the_executor_is_a_usage_error_that_says_how_to_install_it(tmp_path):
    manifest, out, _ = batch_files(tmp_path, [{"id": "a", "input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}])
    blocked = [sys.executable, "-c", "import sys; sys.modules['ray'] = None; "
                                     "from animated_previews.cli.main import main; main()"]
    done = subprocess.run(blocked + ["run", "--batch", str(manifest), "--out-dir", str(out), "--no-store",
                                     "--executor", "ray"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "pip install" in done.stderr and "[ray]" in done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_ray_address_without_the_ray_executor_is_refused(tmp_path):
    manifest, out, _ = batch_files(tmp_path, [{"id": "a", "input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}])
    done = subprocess.run(ENGINE + ["run", "--batch", str(manifest), "--out-dir", str(out), "--no-store",
                                    "--ray-address", "auto"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--executor ray" in done.stderr


def test_a_killed_ray_driver_run_again_finishes_the_rest_once(tmp_path):
    pytest.importorskip("ray")
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=75, width=480, height=360)
    lines = [{"id": f"j{i}", "input": str(clip), "format": "webp", "fps": 25, "duration": 3} for i in range(10)]
    manifest, out, store = batch_files(tmp_path, lines)
    first = engine_run(manifest, out, store, "--executor", "ray")
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while len(seen) < 2 and time.monotonic() < deadline:
        line = first.stdout.readline()
        if not line:
            break
        if line.startswith('{"id"'):
            seen.append(json.loads(line)["id"])
    assert len(seen) >= 2, first.stderr.read()[-3000:]
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    # the local Ray instance of the killed driver leaves agent processes behind in its session;
    # a scheduler that kills a job kills its process group: so does this test
    time.sleep(1)
    try:
        os.killpg(first.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    again = engine_run(manifest, out, store, "--executor", "ray")
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-3000:]
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"id"')]
    assert sorted(r["id"] for r in results) == sorted(line["id"] for line in lines)  # every line, once
    assert all(r["status"] == "success" for r in results)
    assert {r["id"] for r in results if r["reused"]} >= set(seen)
    assert all(state == "success" and events == 1 for state, events in stored_jobs(store).values())


def test_engine_worker_with_the_ray_executor_works_the_queue(tmp_path):
    pytest.importorskip("ray")
    from animated_previews.engine.vod import Service

    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=25, width=160, height=120)
    store = tmp_path / "store.db"
    with Service(store) as service:
        video = service.add_video(clip)
        template = service.add_template("ray-worker", format="webp", fps=5, duration=0.6)
        jobs = [service.submit(video.id, template.id).id for _ in range(3)]
    done = subprocess.run(ENGINE + ["worker", "--store", str(store), "--until-empty", "--device", "cpu",
                                    "--executor", "ray", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])["Summary"]
    assert (summary["Succeeded"], summary["Failed"]) == (3, 0)
    with Service(store) as service:
        assert [service.job(j).state for j in jobs] == ["success"] * 3
