"""Videos, jobs, images, covers and events through the Python API, in one process."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

import clipmaker
from animated_previews.engine import Service, EngineError, ErrorCode
from animated_previews.engine.liveness import holder_gone, new_worker_id
from animated_previews.engine.store.jobs import MAX_ATTEMPTS, claim_job, finish_job


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("vodjobs") / "c.mp4", fps=10, frames=30, width=160, height=120)


@pytest.fixture
def engine(tmp_path):
    with Service(store=tmp_path / "store.db") as e:
        yield e


def test_video_add_probes_once_and_the_same_path_keeps_its_id(engine, clip):
    video = engine.add_video(clip)
    assert (video.width, video.height, video.codec, video.duration) == (160, 120, "h264", 3.0)
    assert engine.add_video(clip).id == video.id
    info = engine.video_info(video.id)["Video"]
    assert info["VideoId"] == video.id and info["Duration"] == 3.0 and info["CoverURL"] is None
    assert info["Size"] == clip.stat().st_size and info["Status"] == "Normal"


def test_unusable_files_are_refused_at_registration(engine, tmp_path):
    with pytest.raises(EngineError) as missing:
        engine.add_video(tmp_path / "nope.mp4")
    assert missing.value.code is ErrorCode.INPUT_NOT_FOUND
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00junk" * 200)
    with pytest.raises(EngineError) as bad:
        engine.add_video(junk)
    assert bad.value.code is ErrorCode.INVALID_VIDEO_FORMAT
    assert engine.videos() == []


def test_submit_answers_at_once_and_checks_ids(engine, clip):
    video = engine.add_video(clip)
    template = engine.add_template("quick-gif", format="gif", fps=5, duration=1)
    job = engine.submit(video.id, template.id)
    assert engine.job(job.id).state == "queued"
    with pytest.raises(EngineError) as no_video:
        engine.submit("missing", template.id)
    assert no_video.value.code is ErrorCode.VIDEO_NOT_FOUND
    with pytest.raises(EngineError) as no_template:
        engine.submit(video.id, "missing")
    assert no_template.value.code is ErrorCode.TEMPLATE_NOT_FOUND
    with pytest.raises(EngineError) as no_job:
        engine.job("missing")
    assert no_job.value.code is ErrorCode.JOB_NOT_FOUND


def test_worker_makes_images_sets_the_cover_and_logs_events(engine, clip, tmp_path):
    video = engine.add_video(clip)
    cover = engine.add_template("cover-webp", format="webp", fps=10, width=80, seek=0.5, duration=1, set_as_cover=True)
    plain = engine.add_template("plain-gif", format="gif", fps=5, trim_end=1)
    late = engine.add_template("too-late", format="gif", fps=5, seek=10, duration=1)
    jobs = [engine.submit(video.id, t.id) for t in (plain, cover, late)]
    engine.delete_template(plain.id)  # a submitted job keeps its template

    report = engine.run_worker(until_empty=True)
    assert (report.succeeded, report.failed) == (2, 1)

    ok_gif, ok_webp, failed = (engine.job(j.id) for j in jobs)
    assert (ok_gif.state, ok_webp.state, failed.state) == ("success", "success", "failed")
    assert failed.error_code == "InvalidTimeRange" and "seek" in failed.error_message

    images = engine.list_dynamic_images(video.id)["DynamicImageList"]
    assert [i["JobId"] for i in images] == [ok_gif.id, ok_webp.id]
    webp = images[1]
    assert (webp["Format"], webp["Width"], webp["Height"], webp["Fps"]) == ("webp", 80, 60, 10)
    path = Path(webp["URL"].removeprefix("file://"))
    assert path.stat().st_size == webp["FileSize"]
    with Image.open(path) as im:
        assert im.n_frames >= 1 and im.size == (80, 60)
    gif = images[0]
    assert (gif["Format"], gif["Width"], gif["Height"]) == ("gif", 160, 120)
    assert engine.video_info(video.id)["Video"]["CoverURL"] == webp["URL"]

    events = engine.events()
    assert [e["JobId"] for e in events] == [j.id for j in jobs]
    by_job = {e["JobId"]: e for e in events}
    assert by_job[ok_webp.id] | {} == {**by_job[ok_webp.id], "EventType": "DynamicImageComplete", "Status": "success",
                                       "DynamicImageUrl": webp["URL"], "Width": 80, "Height": 60,
                                       "FileSize": webp["FileSize"], "Format": "webp", "ErrorCode": None}
    assert by_job[failed.id]["Status"] == "failed" and by_job[failed.id]["ErrorCode"] == "InvalidTimeRange"
    assert by_job[failed.id]["ErrorMessage"] == failed.error_message and by_job[failed.id]["EventTime"]
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert logged == events


def test_base_url_maps_paths_below_the_images_folder(tmp_path, clip):
    with Service(store=tmp_path / "s.db") as engine:
        video = engine.add_video(clip)
        engine.submit(video.id, engine.add_template("mapped-url", format="gif", fps=2, duration=1).id)
        engine.run_worker(until_empty=True)
    with Service(store=tmp_path / "s.db", base_url="https://cdn.example.com/previews/") as engine:
        url = engine.list_dynamic_images(video.id)["DynamicImageList"][0]["URL"]
    assert url.startswith(f"https://cdn.example.com/previews/{video.id}/") and url.endswith(".gif")


def test_each_job_is_claimed_once_by_racing_claimers(tmp_path, clip):
    with Service(store=tmp_path / "s.db") as engine:
        video = engine.add_video(clip)
        template = engine.add_template("race-test", format="gif", fps=2, duration=1)
        submitted = {engine.submit(video.id, template.id).id for _ in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        with Service(store=tmp_path / "s.db") as mine:
            while (job := claim_job(mine.connection, f"w{n}", 60, gone=holder_gone)) is not None:
                with lock:
                    claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(submitted)


def test_an_expired_lease_is_claimed_again_and_the_old_holder_cannot_finish(engine, clip):
    video = engine.add_video(clip)
    job = engine.submit(video.id, engine.add_template("lease-test", format="gif", fps=2, duration=1).id)
    conn = engine.connection
    first = claim_job(conn, "dead", 60, gone=holder_gone, now=time.time() - 120)  # its lease ran out a minute ago
    assert first.id == job.id and first.attempts == 1
    second = claim_job(conn, "alive", 60, gone=holder_gone)
    assert second.id == job.id and second.attempts == 2
    assert claim_job(conn, "third", 60, gone=holder_gone) is None  # a live lease is not taken
    assert not finish_job(conn, job.id, "dead", error_code="InternalError", error_message="late")
    assert engine.job(job.id).state == "running" and engine.job(job.id).worker == "alive"


def test_a_job_whose_worker_died_on_this_host_is_taken_over_before_its_lease_ends(engine, clip):
    video = engine.add_video(clip)
    job = engine.submit(video.id, engine.add_template("dead-holder", format="gif", fps=2, duration=1).id)
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)  # a worker process that has exited
    dead = f"{new_worker_id().split(':')[0]}:{child}:abc123"
    assert claim_job(engine.connection, dead, 600, gone=holder_gone).id == job.id
    assert claim_job(engine.connection, new_worker_id(), 600, gone=holder_gone).id == job.id  # 600 s lease, taken at once
    assert claim_job(engine.connection, new_worker_id(), 600, gone=holder_gone) is None  # a live holder keeps it
    assert engine.job(job.id).attempts == 2


def test_a_job_whose_worker_keeps_dying_fails_for_good_with_an_event(engine, clip):
    video = engine.add_video(clip)
    job = engine.submit(video.id, engine.add_template("crashy-job", format="gif", fps=2, duration=1).id)
    start = time.time() - 1000
    for n in range(MAX_ATTEMPTS):  # each holder died: its lease ran out before the next claim
        assert claim_job(engine.connection, f"dead{n}", 60, gone=holder_gone, now=start + 100 * n).id == job.id
    report = engine.run_worker(until_empty=True)
    assert report.failed == 1
    final = engine.job(job.id)
    assert final.state == "failed" and final.error_code == "InternalError" and "3 times" in final.error_message
    assert engine.events(job_id=job.id)[0]["Status"] == "failed"


def test_the_heartbeat_keeps_a_long_job_from_being_taken(tmp_path, clip, monkeypatch):
    import animated_previews.engine.job as job_module
    real_run_job = job_module.run_job

    def slow_run_job(*args, **kwargs):  # a job that lasts 4 leases
        time.sleep(2.0)
        return real_run_job(*args, **kwargs)

    monkeypatch.setattr(job_module, "run_job", slow_run_job)
    with Service(store=tmp_path / "s.db") as engine:
        video = engine.add_video(clip)
        job = engine.submit(video.id, engine.add_template("long-job", format="gif", fps=2, duration=1).id)
    done = threading.Event()
    stolen: list[str] = []

    def work() -> None:
        with Service(store=tmp_path / "s.db") as mine:
            mine.run_worker(until_empty=True, lease_seconds=0.5)
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    with Service(store=tmp_path / "s.db") as thief:
        while thief.job(job.id).state == "queued":  # only once the worker holds it
            time.sleep(0.01)
        while not done.is_set():
            taken = claim_job(thief.connection, "thief", 60, gone=holder_gone)
            if taken is not None:
                stolen.append(taken.id)
                break
            time.sleep(0.05)
        thread.join()
        final = thief.job(job.id)
    assert stolen == []
    assert (final.state, final.attempts) == ("success", 1)
