"""Batch runs on the store: every manifest line is a job, and running the same manifest again does
only what is not done yet (a job is its input file + effective config + output)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main
from animated_previews.engine import Service, Result
from animated_previews.engine.store import transaction
from animated_previews.engine.store.batch_jobs import batch_line, claim_line
from animated_previews.engine.liveness import holder_gone, new_worker_id


def write_manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def job(job_id: str, clip: Path, **fields) -> dict:
    return {"id": job_id, "input": str(clip), "format": "gif", "fps": 5, "seek": 0, "duration": 0.6, **fields}


@pytest.fixture
def clip(tmp_path) -> Path:
    return clipmaker.make_clip(tmp_path / "clip.mp4", fps=25, frames=25, width=160, height=120)


def run(engine: Service, manifest: Path, out: Path, **kwargs) -> dict[str, Result]:
    return {r.id: r for r in engine.run_batch(engine.load_manifest(manifest), out, workers=1, **kwargs)}


def test_a_second_run_of_the_same_manifest_redoes_nothing(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("a", clip), job("b", clip, format="webp")])
    with Service(store=tmp_path / "s.db") as engine:
        first = run(engine, manifest, tmp_path / "out")
        written = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("[ab].*")}
        second = run(engine, manifest, tmp_path / "out")
        jobs = engine.jobs()
        events = engine.events()

    assert all(r.ok and not r.reused for r in first.values())
    assert all(r.ok and r.reused for r in second.values())
    assert {k: r.job_id for k, r in second.items()} == {k: r.job_id for k, r in first.items()}
    assert {k: r.bytes for k, r in second.items()} == {k: r.bytes for k, r in first.items()}
    assert {p: p.stat().st_mtime_ns for p in written} == written  # not rewritten
    assert sorted(j.name for j in jobs) == ["a", "b"] and all(j.state == "success" for j in jobs)
    assert sorted(e["ManifestId"] for e in events) == ["a", "b"]  # one event per job, not per run
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == ["a", "b"]
    assert all(json.loads(line)["reused"] for line in lines)


def test_each_finished_job_has_its_event_with_the_seed_fields(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("ok", clip), job("missing", tmp_path / "nope.mp4")])
    with Service(store=tmp_path / "s.db", base_url="https://cdn.example/previews") as engine:
        results = run(engine, manifest, tmp_path / "out")
        events = {e["ManifestId"]: e for e in engine.events()}
    log = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]

    assert events["ok"]["Status"] == "success" and events["ok"]["EventType"] == "DynamicImageComplete"
    assert events["ok"]["DynamicImageUrl"] == "https://cdn.example/previews/ok.gif"
    assert events["ok"]["JobId"] == results["ok"].job_id
    assert (events["ok"]["Width"], events["ok"]["FileSize"]) == (results["ok"].width, results["ok"].bytes)
    assert events["missing"]["Status"] == "failed" and events["missing"]["ErrorCode"] == "InputNotFound"
    assert events["missing"]["VideoId"] is None  # nothing to register: the file is not there
    assert sorted(e["EventId"] for e in log) == sorted(e["EventId"] for e in events.values())


def test_batch_outputs_are_listed_like_submitted_jobs_and_can_be_covers(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [
        job("plain", clip),
        {"id": "cover", "input": str(clip), "TemplateConfig": {"Format": "webp", "Fps": "5", "SetAsCover": "true",
                                                                "TimeSpan": {"Duration": "0.6"}}},
    ])
    with Service(store=tmp_path / "s.db") as engine:
        results = run(engine, manifest, tmp_path / "out")
        [video] = engine.videos()  # the input, registered from the jobs' own probe
        listing = engine.list_dynamic_images(video.id)["DynamicImageList"]
        info = engine.video_info(video.id)["Video"]
        events = {e["ManifestId"]: e for e in engine.events()}
        Path(results["cover"].output).unlink()  # made again: still one image, same id
        again = run(engine, manifest, tmp_path / "out")
        relisted = engine.list_dynamic_images(video.id)["DynamicImageList"]

    assert (video.path, video.width, video.height, video.codec) == (clip.resolve(), 160, 120, "h264")
    assert sorted(i["JobId"] for i in listing) == sorted(r.job_id for r in results.values())
    by_job = {i["JobId"]: i for i in listing}
    assert by_job[results["cover"].job_id]["URL"] == Path(results["cover"].output).as_uri()
    assert by_job[results["cover"].job_id]["FileSize"] == results["cover"].bytes
    assert info["CoverURL"] == Path(results["cover"].output).as_uri()
    assert {e["VideoId"] for e in events.values()} == {video.id}
    assert not again["cover"].reused and again["plain"].reused
    assert sorted(i["DynamicImageId"] for i in relisted) == sorted(i["DynamicImageId"] for i in listing)


def test_failures_are_final_until_retry_failed(tmp_path, clip):
    late = tmp_path / "late.mp4"
    manifest = write_manifest(tmp_path / "m.jsonl", [job("late", late)])
    with Service(store=tmp_path / "s.db") as engine:
        assert run(engine, manifest, tmp_path / "out")["late"].error_code == "InputNotFound"
        shutil.copy(clip, late)  # the file shows up; the line's identity changed with it
        assert run(engine, manifest, tmp_path / "out")["late"].ok

        broken = write_manifest(tmp_path / "b.jsonl", [job("short", clip, seek=5)])  # past the 1 s clip's end
        first = run(engine, broken, tmp_path / "out")["short"]
        again = run(engine, broken, tmp_path / "out")["short"]
        retried = run(engine, broken, tmp_path / "out", retry_failed=True)["short"]
        attempts = [j.attempts for j in engine.jobs() if j.name == "short"]

    assert first.error_code == "InvalidTimeRange" and not first.reused
    assert again.reused and again.error_code == "InvalidTimeRange"
    assert not retried.reused and retried.error_code == "InvalidTimeRange"
    assert attempts == [1]  # the retry's try, counted from a fresh start


def test_an_edited_input_or_a_changed_setting_is_a_new_job(tmp_path, clip):
    source = tmp_path / "edited.mp4"
    shutil.copy(clip, source)
    manifest = write_manifest(tmp_path / "m.jsonl", [job("x", source)])
    with Service(store=tmp_path / "s.db") as engine:
        first = run(engine, manifest, tmp_path / "out")["x"]
        clipmaker.make_clip(source, fps=25, frames=30, width=160, height=120)  # replaced in place
        os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
        edited = run(engine, manifest, tmp_path / "out")["x"]
        write_manifest(manifest, [job("x", source, fps=10)])
        refps = run(engine, manifest, tmp_path / "out")["x"]

    assert not edited.reused and edited.job_id != first.job_id
    assert not refps.reused and refps.frames == 6 and refps.job_id not in (first.job_id, edited.job_id)


def test_a_deleted_output_is_made_again(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("gone", clip)])
    with Service(store=tmp_path / "s.db") as engine:
        first = run(engine, manifest, tmp_path / "out")["gone"]
        Path(first.output).unlink()
        again = run(engine, manifest, tmp_path / "out")["gone"]
    assert not again.reused and again.job_id == first.job_id and Path(again.output).stat().st_size == again.bytes


def test_lines_name_stored_templates_and_their_own_fields_win(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"id": "by-name", "input": str(clip), "template": "tiny-webp"},
        {"id": "override", "input": str(clip), "template": "tiny-webp", "fps": 10, "duration": 0.5},
        {"id": "vod-shape", "input": str(clip), "template": "tiny-webp", "TemplateConfig": {"Format": "gif"}},
        {"id": "unknown", "input": str(clip), "template": "no-such-template"},
    ])
    with Service(store=tmp_path / "s.db") as engine:
        template = engine.add_template("tiny-webp", format="webp", fps=4, width=80, seek=0.2, trim_end=0.3)
        write_manifest(tmp_path / "id.jsonl", [{"id": "by-id", "input": str(clip), "template": template.id}])
        results = run(engine, manifest, tmp_path / "out")
        results.update(run(engine, tmp_path / "id.jsonl", tmp_path / "out"))

    assert (results["by-name"].format, results["by-name"].fps, results["by-name"].width) == ("webp", 4, 80)
    assert results["by-name"].frames == 2  # 0.2 s to 0.7 s (the 1 s clip trimmed by 0.3 s) at 4 fps
    assert results["by-id"].ok and results["by-id"].frames == 2
    assert (results["override"].fps, results["override"].frames) == (10, 5)  # duration replaced the trim
    assert (results["vod-shape"].format, results["vod-shape"].width) == ("gif", 80)
    assert results["unknown"].error_code == "TemplateNotFound" and "no-such-template" in results["unknown"].error_message


def test_two_lines_asking_for_the_same_image_fail_the_second(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("one", clip, output="same.gif"),
                                                     job("two", clip, output="same.gif")])
    with Service(store=tmp_path / "s.db") as engine:
        results = run(engine, manifest, tmp_path / "out")
    assert results["one"].ok
    assert results["two"].error_code == "InvalidParameter" and "same image as line 1" in results["two"].error_message


def test_a_line_held_by_another_live_run_is_waited_for_not_done_twice(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("shared", clip), job("mine", clip)])
    other = new_worker_id()  # this process: alive, so its claim is not taken over
    with Service(store=tmp_path / "s.db") as engine:
        entries = engine.load_manifest(manifest)
        first = {r.id: r for r in engine.run_batch(entries[:1], tmp_path / "out", workers=1)}["shared"]
        key = batch_line(entries[0].spec, Path(first.output)).key
        with transaction(engine.connection):  # pretend another run took it up again
            engine.connection.execute("UPDATE jobs SET state = 'queued' WHERE batch_key = ?", (key,))
            held = claim_line(engine.connection, key, other, lease_seconds=60, gone=holder_gone)
        assert held is not None and held.batch_key == key

        def finish_later() -> None:
            time.sleep(1.0)
            with Service(store=tmp_path / "s.db") as theirs, transaction(theirs.connection):
                theirs.connection.execute("UPDATE jobs SET state = 'success', worker = NULL WHERE batch_key = ?", (key,))

        threading.Thread(target=finish_later).start()
        started = time.monotonic()
        results = {r.id: r for r in engine.run_batch(entries, tmp_path / "out", workers=1)}
        waited = time.monotonic() - started
        attempts = {j.name: j.attempts for j in engine.jobs()}

    assert results["shared"].reused and results["mine"].ok and not results["mine"].reused
    assert waited >= 0.9
    assert attempts["shared"] == 2  # the first run's try and the other run's; this run never ran it


def test_holder_gone_knows_dead_processes_on_this_host_only():
    assert not holder_gone(new_worker_id())  # this process
    host = new_worker_id().split(":")[0]
    child = os.fork()
    if child == 0:
        os._exit(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not Path(f"/proc/{child}/stat").read_text().split(")")[-1].startswith(" Z"):
        time.sleep(0.01)
    assert holder_gone(f"{host}:{child}:abc123")  # exited, not yet reaped (a zombie): gone
    os.waitpid(child, 0)
    assert holder_gone(f"{host}:{child}:abc123")
    assert not holder_gone(f"another-host:{child}:abc123")  # cannot tell: wait for the lease
    assert not holder_gone(None)


def test_engine_run_reports_reused_jobs_and_no_store_runs_everything(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("a", clip)])
    args = ["run", "--batch", str(manifest), "--out-dir", str(tmp_path / "out"), "--workers", "1",
            "--store", str(tmp_path / "s.db")]
    runner = CliRunner()
    first = runner.invoke(main, args + ["--json"])
    second = runner.invoke(main, args)
    third = runner.invoke(main, args[:-2] + ["--no-store", "--json"])
    refused = runner.invoke(main, args[:-2] + ["--no-store", "--retry-failed"])

    assert first.exit_code == 0 and json.loads(first.output.splitlines()[-1])["summary"]["reused"] == 0
    assert second.exit_code == 0 and "1 of them done by an earlier run and not redone" in second.output
    summary = json.loads(third.output.splitlines()[-1])["summary"]
    assert third.exit_code == 0 and summary["reused"] == 0 and "store" not in summary
    assert refused.exit_code == 2 and "--no-store" in refused.output


def test_a_store_from_before_batch_jobs_is_migrated_keeping_everything(tmp_path, clip):
    import sqlite3

    from animated_previews.engine.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][1] + ";PRAGMA user_version = 1;")
    conn.executescript("""
        INSERT INTO videos VALUES ('v1', '/x.mp4', 'x', 1, 1.0, 2, 2, 25, 'h264', 'i1', 0);
        INSERT INTO jobs (id, video_id, template_id, spec, state, created, image_id)
            VALUES ('j1', 'v1', 't1', '{}', 'success', 0, 'i1');
        INSERT INTO images VALUES ('i1', 'v1', 'j1', '/x.gif', 'gif', 2, 2, 5, 10, 0);
        INSERT INTO events VALUES ('e1', 'j1', '{}', 0, 1);
    """)
    conn.commit()
    conn.close()
    with Service(store=path) as engine:
        assert engine.connection.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1][0]
        old = engine.job("j1")
        assert (old.video_id, old.state, old.image_id, old.batch_key) == ("v1", "success", "i1", None)
        assert engine.connection.execute("PRAGMA foreign_key_check").fetchall() == []
        assert engine.connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        manifest = write_manifest(tmp_path / "m.jsonl", [job("new", clip)])
        assert run(engine, manifest, tmp_path / "out")["new"].ok


def test_two_runs_sharing_a_store_split_a_manifest_and_do_each_job_once(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job(f"s{i}", clip) for i in range(6)])
    answers: dict[str, dict[str, Result]] = {}

    def one_run(name: str) -> None:
        with Service(store=tmp_path / "s.db") as engine:
            answers[name] = {r.id: r for r in engine.run_batch(engine.load_manifest(manifest), tmp_path / "out",
                                                               workers=1, results_path=tmp_path / f"{name}.jsonl")}

    runs = [threading.Thread(target=one_run, args=(name,)) for name in ("left", "right")]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    with Service(store=tmp_path / "s.db") as engine:
        jobs = engine.jobs()
        events = engine.events()

    ids = {f"s{i}" for i in range(6)}
    done_by = {name: {k for k, r in results.items() if not r.reused} for name, results in answers.items()}
    assert set(answers["left"]) == set(answers["right"]) == ids  # each run answers every line
    assert done_by["left"].isdisjoint(done_by["right"]) and done_by["left"] | done_by["right"] == ids
    assert sorted((j.name, j.state, j.attempts) for j in jobs) == sorted((i, "success", 1) for i in ids)
    assert len(events) == 6


def test_a_redone_job_that_fails_drops_its_old_image_and_cover(tmp_path, clip):
    from animated_previews.engine.store.images import forget_job_image

    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"id": "c", "input": str(clip), "TemplateConfig": {"Format": "gif", "Fps": "5", "SetAsCover": "true",
                                                            "TimeSpan": {"Duration": "0.6"}}}])
    with Service(store=tmp_path / "s.db") as engine:
        result = run(engine, manifest, tmp_path / "out")["c"]
        [video] = engine.videos()
        assert engine.video(video.id).cover_image_id is not None
        with transaction(engine.connection):
            forget_job_image(engine.connection, result.job_id)
        assert engine.images(video.id) == [] and engine.video(video.id).cover_image_id is None


def test_a_store_that_cannot_be_opened_is_a_usage_error_that_names_the_way_out(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("a", clip)])
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("this is not SQLite " * 100)
    result = CliRunner().invoke(main, ["run", "--batch", str(manifest), "--store", str(not_a_database),
                                       "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--no-store" in result.output and "notes.txt" in result.output
    assert not (tmp_path / "out").exists()  # nothing was run


def test_jobs_list_tells_batch_lines_from_submitted_jobs(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", [job("b1", clip), job("b2", clip, fps=4)])
    store = tmp_path / "s.db"
    with Service(store=store) as engine:
        run(engine, manifest, tmp_path / "out")
        submitted = engine.submit(engine.add_video(clip).id, engine.add_template("vod-one", format="gif", fps=2,
                                                                                  duration=0.5).id)
    runner = CliRunner()

    def listed(*args: str) -> list[dict]:
        result = runner.invoke(main, ["jobs", "list", "--store", str(store), "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["JobList"]

    assert sorted(j["ManifestId"] for j in listed("--kind", "batch")) == ["b1", "b2"]
    assert [j["JobId"] for j in listed("--kind", "submitted")] == [submitted.id]
    assert [j["JobId"] for j in listed("--last", "1")] == [submitted.id]
    assert len(listed()) == 3


def test_jobs_list_last_gives_a_batchs_latest_lines_in_manifest_order(tmp_path, clip, monkeypatch):
    """A batch's lines are enlisted in the same instant; ties were broken by the random JobId, so
    `--last 2` of six lines gave b2 and b5."""
    import animated_previews.engine.store.batch_jobs as batch_jobs

    manifest = write_manifest(tmp_path / "m.jsonl", [job(f"b{k}", clip, fps=k) for k in range(1, 7)])
    store = tmp_path / "s.db"
    monkeypatch.setattr(batch_jobs.time, "time", lambda: 1_700_000_000.0)  # every line in one instant
    with Service(store=store) as engine:
        run(engine, manifest, tmp_path / "out")
    listed = ["jobs", "list", "--store", str(store), "--kind", "batch"]
    result = CliRunner().invoke(main, [*listed, "--json", "--last", "2"])
    assert result.exit_code == 0, result.output
    assert [j["ManifestId"] for j in json.loads(result.stdout)["JobList"]] == ["b5", "b6"]
    table = CliRunner().invoke(main, listed).output.splitlines()[1:]
    assert [line.split()[-1] for line in table if line.strip()] == [f"b{k}" for k in range(1, 7)]
