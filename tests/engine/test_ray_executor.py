"""`--executor ray`: the same manifest on Ray actors ends as it does on the local pool.

A local Ray instance with 2 CPUs, started once for this module (a few seconds). Skipped where Ray
is not installed (`pip install .[ray]`; CI installs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import clipmaker  # noqa: E402
from animated_previews.engine import load_manifest, open_executor, run_batch  # noqa: E402
from animated_previews.engine.executors.ray import MAX_ATTEMPTS, RayExecutor  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ray-manifest")
    clip = clipmaker.make_clip(folder / "c.mp4", fps=25, frames=50, width=320, height=240)
    lines = [
        {"id": "gif", "input": str(clip), "format": "gif", "fps": 10, "width": 160, "duration": 1},
        {"id": "webp", "input": str(clip), "format": "webp", "fps": 12, "seek": 0.5, "trim_end": 0.2},
        {"id": "full", "input": str(clip), "format": "gif", "fps": 5, "duration": 2},
        {"id": "missing", "input": str(folder / "nope.mp4"), "format": "gif", "fps": 5, "duration": 1},
        {"id": "past-end", "input": str(clip), "format": "webp", "fps": 5, "seek": 9, "duration": 1},
        {"id": "invalid", "input": str(clip), "format": "png", "fps": 5, "duration": 1},
    ]
    path = folder / "m.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _summary(results) -> dict:
    return {r.id: (r.status, r.error_code, r.frames, r.width, r.height, r.bytes) for r in results}


def test_ray_ends_every_line_as_the_local_pool_does(local_ray, manifest, tmp_path):
    local = list(run_batch(load_manifest(manifest), tmp_path / "local", workers=2, device="cpu"))
    on_ray = list(run_batch(load_manifest(manifest), tmp_path / "ray", executor=open_executor("ray"), device="cpu"))
    assert sorted(r.id for r in on_ray) == sorted(r.id for r in local)  # each line once
    assert _summary(on_ray) == _summary(local)
    for result in on_ray:
        if result.ok:
            assert Path(result.output).read_bytes() == (tmp_path / "local" / Path(result.output).name).read_bytes()


def test_bytes_mode_writes_the_returned_images_on_the_driver(local_ray, manifest, tmp_path):
    results = list(run_batch(load_manifest(manifest), tmp_path / "out", device="cpu",
                             executor=RayExecutor(output="bytes")))
    made = {r.id: r for r in results if r.ok}
    assert sorted(made) == ["full", "gif", "webp"]
    for result in made.values():
        assert Path(result.output).parent == (tmp_path / "out").resolve()
        assert Path(result.output).stat().st_size == result.bytes
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["full.gif", "gif.gif", "results.jsonl", "webp.webp"]


def test_a_job_that_kills_every_actor_it_touches_fails_alone(local_ray, manifest, tmp_path):
    from ray_stand_ins import CrashOnPoison

    clip = json.loads(manifest.read_text().splitlines()[0])["input"]
    lines = [{"id": name, "input": clip, "format": "gif", "fps": 5, "duration": 0.6} for name in ("a", "poison", "b", "c")]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    results = list(run_batch(load_manifest(path), tmp_path / "out", device="cpu",
                             executor=RayExecutor(runner=CrashOnPoison)))
    by_id = {r.id: r for r in results}
    assert sorted(r.id for r in results) == ["a", "b", "c", "poison"]
    assert by_id["poison"].error_code == "InvalidVideoFormat"
    assert f"died {MAX_ATTEMPTS} times" in by_id["poison"].error_message
    assert all(by_id[name].ok for name in "abc")


def test_an_unknown_output_mode_is_refused():
    from animated_previews.engine import EngineError

    with pytest.raises(EngineError, match="shared, bytes"):
        RayExecutor(output="s3")


def test_the_queue_worker_hands_its_jobs_to_ray_and_each_ends_once(local_ray, manifest, tmp_path):
    from animated_previews.engine.vod import Service

    clip = json.loads(manifest.read_text().splitlines()[0])["input"]
    with Service(tmp_path / "store.db") as service:
        video = service.add_video(clip)
        template = service.add_template("ray-queue", format="gif", fps=5, width=80, duration=0.6)
        jobs = [service.submit(video.id, template.id) for _ in range(5)]
        report = service.run_worker(until_empty=True, device="cpu", executor=RayExecutor())
        assert (report.succeeded, report.failed) == (5, 0)
        for job in jobs:
            done = service.job(job.id)
            assert done.state == "success" and done.worker == report.worker and done.lease_expires is None
            assert len(service.events(job_id=job.id)) == 1
        images = service.images(video.id)
        assert sorted(i.job_id for i in images) == sorted(j.id for j in jobs)
        assert all(i.path.stat().st_size == i.bytes for i in images)
