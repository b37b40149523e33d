"""Under load and at shutdown nothing is lost: 200 submissions from 8 threads make 200 distinct
jobs; `engine serve` on SIGTERM stops accepting, gives the job in flight back, and exits 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from test_serve_auth import send, signed


def test_200_submissions_from_8_threads_make_200_distinct_jobs(running):
    with running.service() as service:
        template = service.add_template("load-test", format="gif", fps=2, duration=0.5)
        video = service.add_video(running.clip)
    job_ids: list[str] = []
    failures: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def submit(count: int) -> None:
        for _ in range(count):
            status, body = send(running, signed(running, {"Action": "SubmitDynamicImageJob", "VideoId": video.id,
                                                          "DynamicImageTemplateId": template.id}, method="POST"), method="POST")
            with lock:
                (job_ids.append(body["DynamicImageJob"]["JobId"]) if status == 200 else failures.append((status, body)))

    threads = [threading.Thread(target=submit, args=(25,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert len(job_ids) == 200 and len(set(job_ids)) == 200
    with running.service() as service:
        stored = service.jobs(video_id=video.id)
    assert sorted(j.id for j in stored) == sorted(job_ids) and {j.state for j in stored} == {"queued"}


def _engine(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("engine")
    return [str(script), *args] if script.exists() else [sys.executable, "-c",
                                                          "from animated_previews.cli.main import main; main()", *args]


def test_sigterm_stops_accepting_gives_the_job_back_and_exits_0(tmp_path, clip_factory):
    store = tmp_path / "store.db"
    from animated_previews.engine.vod import Service

    clip = clip_factory(codec="h264", frames=300, fps=25, width=640, height=480)
    with Service(store) as service:
        # a job of seconds: 300 WebP frames of 640x480
        template = service.add_template("long-job", format="webp", fps=25, duration=12)
        video = service.add_video(clip)
        job = service.submit(video.id, template.id)
    process = subprocess.Popen(_engine("serve", "--store", str(store), "--port", "0", "--workers", "1",
                                       "--device", "cpu"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        url = re.search(r"serving (\S+)", first).group(1)
        deadline = time.monotonic() + 60
        state = "queued"
        while state != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            with Service(store) as service:
                state = service.job(job.id).state
        assert state == "running", "the worker never took the job"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out
    with Service(store) as service:
        back = service.job(job.id)
    # either it was given back, or it finished in the moment between the check and the signal
    assert back.state in ("queued", "success"), back
    assert back.state == "success" or back.worker is None
    try:
        import urllib.request

        urllib.request.urlopen(url + "/", timeout=2)
        accepting = True
    except OSError:
        accepting = False
    assert not accepting
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert leftovers == []
