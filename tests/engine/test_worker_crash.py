"""A worker process that dies mid-job (as a decoder crashing on a corrupt file would) loses
nothing: the jobs it held are run again alone, every job ends exactly once, no partial file."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

import clipmaker
from processes import children_of, parents
from animated_previews.engine import load_manifest, run_batch


def grandchildren() -> list[int]:
    """Pids whose parent is a child of this process: the pool's workers under the forkserver."""
    table = parents()
    return children_of(set(children_of({os.getpid()}, table)), table)


def test_killing_a_worker_mid_batch_still_finishes_every_job_once(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=100, width=640, height=480)
    jobs = [{"id": f"j{i}", "input": str(clip), "format": "webp", "fps": 25, "seek": 0, "duration": 3.9}
            for i in range(6)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    killed: list[int] = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            workers = grandchildren()
            if len(workers) >= 2:
                time.sleep(0.5)  # let them get into their first jobs
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    results = list(run_batch(load_manifest(manifest), tmp_path / "out", workers=2))
    killer.join(timeout=5)

    assert killed, "no worker process was found to kill"
    assert sorted(r.id for r in results) == sorted(j["id"] for j in jobs)  # each exactly once
    assert all(r.ok for r in results), [r.error_message for r in results if not r.ok]
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.suffix not in (".webp", ".jsonl")]
    assert leftovers == []


def test_a_job_that_kills_its_worker_every_time_fails_alone_and_the_rest_succeed(tmp_path, monkeypatch):
    """A file that crashes the decoder each time: the batch survives, that job alone is reported
    InvalidVideoFormat (after its retry in a process of its own), every other job succeeds."""
    import crashing_worker
    from animated_previews.engine.executors import local

    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=25, width=160, height=120)
    jobs = [{"id": name, "input": str(clip), "format": "gif", "fps": 5, "duration": 0.6}
            for name in ("a", "b", "poison", "c", "d")]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    monkeypatch.setattr(local, "_run_in_worker", crashing_worker.crash_on_poison)

    results = {r.id: r for r in run_batch(load_manifest(manifest), tmp_path / "out", workers=2)}

    assert sorted(results) == ["a", "b", "c", "d", "poison"]
    assert results["poison"].error_code == "InvalidVideoFormat" and "crashed" in results["poison"].error_message
    assert all(results[name].ok for name in "abcd"), {k: r.error_message for k, r in results.items()}


def _batch_with_a_poison(tmp_path, monkeypatch, stand_in):
    import crashing_worker
    from animated_previews.engine.executors import local

    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=25, width=160, height=120)
    jobs = [{"id": name, "input": str(clip), "format": "gif", "fps": 5, "duration": 0.6}
            for name in ("a", "poison", "b", "c")]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    monkeypatch.setattr(local, "_run_in_worker", getattr(crashing_worker, stand_in))
    return {r.id: r for r in run_batch(load_manifest(manifest), tmp_path / "out", workers=2)}


def test_a_job_whose_worker_is_killed_for_memory_is_reported_as_such_not_as_a_corrupt_file(tmp_path, monkeypatch):
    """SIGKILL is what the kernel's OOM killer sends: the job, run again alone and killed again,
    ends ResourceExhausted with what to lower, never "InvalidVideoFormat ... likely corrupt"."""
    results = _batch_with_a_poison(tmp_path, monkeypatch, "oom_kill_on_poison")

    assert sorted(results) == ["a", "b", "c", "poison"]
    poison = results["poison"]
    assert poison.error_code == "ResourceExhausted", poison.error_message
    assert "ran out of memory" in poison.error_message and "SIGKILL" in poison.error_message
    assert "corrupt" not in poison.error_message
    assert all(results[name].ok for name in "abc"), {k: r.error_message for k, r in results.items()}


def test_a_job_whose_worker_segfaults_is_still_reported_as_a_decoder_crash(tmp_path, monkeypatch):
    results = _batch_with_a_poison(tmp_path, monkeypatch, "segfault_on_poison")

    poison = results["poison"]
    assert poison.error_code == "InvalidVideoFormat" and "crashed" in poison.error_message
    assert "SIGSEGV" in poison.error_message
    assert all(results[name].ok for name in "abc"), {k: r.error_message for k, r in results.items()}


UNGUARDED = {
    "run_batch": """
from animated_previews.engine import Manifest, run_batch
for result in run_batch(Manifest({manifest!r}), out_dir={out!r}, workers=1, device="cpu"):
    print("RESULT", result.id, result.status, result.error_code, result.error_message)
""",
    "Service.run_batch": """
from animated_previews.engine import Service
with Service(store={store!r}) as service:
    for result in service.run_batch(service.manifest({manifest!r}), {out!r}, workers=1, device="cpu"):
        print("RESULT", result.id, result.status, result.error_code, result.error_message)
""",
}


@pytest.mark.parametrize("api", sorted(UNGUARDED))
def test_a_script_without_the_main_guard_gets_a_clear_error_not_a_corrupt_file_or_a_hang(tmp_path, api):
    """A script that starts a batch at its top level (the README's example saved as a file, without
    ``if __name__ == "__main__":``) is imported again by each worker process. It was told its good
    files were corrupt (run_batch) or never ended (Service.run_batch: the worker waited on the
    parent's lease on the store). Now the worker refuses to start a batch, and each job says why."""
    import subprocess
    import sys

    clip = clipmaker.make_clip(tmp_path / "ok.mp4", fps=10, frames=10)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "ok", "input": str(clip), "format": "gif", "fps": 5, "duration": 0.5}) + "\n")
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED[api].format(manifest=str(manifest), out=str(tmp_path / "out"),
                                            store=str(tmp_path / "s.db")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and len(lines) == 1, (done.stdout, done.stderr[-2000:])
    assert lines[0].startswith("RESULT ok failed InternalError the worker process died while starting")
    assert 'if __name__ == "__main__":' in lines[0]
    assert "the file is likely corrupt" not in lines[0]
    assert "main script again" in done.stderr  # the worker's own RuntimeError, on standard error
