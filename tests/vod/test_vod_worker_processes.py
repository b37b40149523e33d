"""`engine worker` as separate processes on one store: two at once share the queue with every
job done exactly once; a worker SIGKILLed mid-job leaves the job to the next worker, whole."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

import clipmaker
from animated_previews.engine import Service

REPO = Path(__file__).resolve().parents[2]


def engine_command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "engine"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from animated_previews.cli.main import main; main()", *args]


def worker(store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(engine_command("worker", "--store", str(store), "--json", *extra), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_worker_processes_do_every_job_exactly_once(tmp_path):
    # jobs of ~0.25 s each: enough work that both workers are running before the queue empties
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=15, frames=45, width=640, height=360)
    store = tmp_path / "store.db"
    with Service(store=store) as engine:
        video = engine.add_video(clip)
        template = engine.add_template("two-workers", format="webp", fps=15, duration=2.5)
        submitted = [engine.submit(video.id, template.id).id for _ in range(12)]

    procs = [worker(store, "--until-empty", "--threads", "1") for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]

    lines = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    reported = [line["JobId"] for line in lines if "JobId" in line]
    assert sorted(reported) == sorted(submitted)  # each job reported once, by one worker
    summaries = [line["Summary"] for line in lines if "Summary" in line]
    assert sum(s["Succeeded"] for s in summaries) == 12
    assert all(s["Succeeded"] > 0 for s in summaries), summaries  # both took part

    with Service(store=store) as engine:
        jobs = engine.jobs()
        assert {(j.state, j.attempts) for j in jobs} == {("success", 1)}
        images = engine.images(video.id)
        assert sorted(i.job_id for i in images) == sorted(submitted)
        assert all(i.path.stat().st_size == i.bytes for i in images)
        assert len(engine.events()) == 12
    logged = [json.loads(line)["JobId"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted(logged) == sorted(submitted)


def test_a_worker_killed_mid_job_leaves_it_to_the_next_worker(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=100, width=640, height=480)
    store = tmp_path / "store.db"
    with Service(store=store) as engine:
        video = engine.add_video(clip)
        template = engine.add_template("kill-test", format="webp", fps=25, duration=3.9)
        job_id = engine.submit(video.id, template.id).id

    victim = worker(store, "--lease", "2")
    watch = sqlite3.connect(store)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        row = watch.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row and row[0] == "running":
            break
        time.sleep(0.02)
    time.sleep(0.3)  # into decoding/encoding
    state_at_kill = watch.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    assert state_at_kill == "running"
    lease_expires = watch.execute("SELECT lease_expires FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    watch.close()

    with Service(store=store) as engine:
        assert engine.job(job_id).state == "running"  # held by the dead worker until its lease ends
        assert engine.images(video.id) == [] and engine.events() == []
    time.sleep(max(0.0, lease_expires - time.time()) + 0.2)

    rescuer = worker(store, "--until-empty", "--lease", "2")
    out, err = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, err[-2000:]

    with Service(store=store) as engine:
        job = engine.job(job_id)
        assert (job.state, job.attempts) == ("success", 2)
        [image] = engine.images(video.id)
        assert [e["JobId"] for e in engine.events()] == [job_id]
    with Image.open(image.path) as im:  # whole: every frame decodes
        assert im.size == (640, 480) and im.n_frames > 1
        for k in range(im.n_frames):
            im.seek(k)
            im.load()
    assert image.path.stat().st_size == image.bytes
    leftovers = [p.name for p in image.path.parent.iterdir() if p != image.path]
    assert leftovers == []


def test_sigterm_gives_the_job_in_hand_back_to_the_queue(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=100, width=640, height=480)
    store = tmp_path / "store.db"
    with Service(store=store) as engine:
        video = engine.add_video(clip)
        job_id = engine.submit(video.id, engine.add_template("term-test", format="webp", fps=25, duration=3.9).id).id
    proc = worker(store)
    with Service(store=store) as engine:
        deadline = time.monotonic() + 120
        while engine.job(job_id).state == "queued" and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        job = engine.job(job_id)
    assert proc.returncode == 130, err[-2000:]
    assert (job.state, job.attempts, job.worker) == ("queued", 0, None)
