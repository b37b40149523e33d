"""The service actions behind engine serve: OverrideParams on submit, DeleteDynamicImage, the
ListDynamicImage and DynamicImageComplete shapes, and the store's URL signing key."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

import clipmaker
from animated_previews.engine import EngineError, ErrorCode, Service


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("actions") / "c.mp4", fps=10, frames=30, width=160, height=120)


@pytest.fixture
def engine(tmp_path):
    with Service(store=tmp_path / "store.db") as e:
        yield e


# -- SubmitDynamicImageJob's OverrideParams ------------------------------------------------------

def test_override_params_change_this_job_only(engine, clip):
    video = engine.add_video(clip)
    template = engine.add_template("base-gif", format="gif", fps=10, width=80, seek=0, duration=2)
    plain = engine.submit(video.id, template.id)
    overridden = engine.submit(video.id, template.id, {"Format": "webp", "Fps": "5", "Height": "30",
                                                       "TimeSpan": {"Seek": "1", "Duration": "1"}, "SetAsCover": "true"})
    from_json = engine.submit(video.id, template.id, json.dumps({"TimeSpan": {"End": "0.5"}}))
    assert plain.spec == template.job_fields()
    assert overridden.spec == {"format": "webp", "fps": 5.0, "seek": 1.0, "duration": 1.0, "trim_end": None,
                               "width": 80, "height": 30, "set_as_cover": True}
    assert (from_json.spec["duration"], from_json.spec["trim_end"], from_json.spec["fps"]) == (None, 0.5, 10.0)
    assert engine.template(template.id).job_fields() == plain.spec  # the template itself is unchanged
    assert engine.job(overridden.id).template_id == template.id

    assert engine.run_worker(until_empty=True).succeeded == 3
    [_, webp, _] = engine.images(video.id)
    assert (webp.job_id, webp.format, webp.fps, webp.width, webp.height, webp.duration) == (
        overridden.id, "webp", 5.0, 80, 30, 1.0)
    assert engine.video(video.id).cover_image_id == webp.id
    with Image.open(webp.path) as image:
        assert image.format == "WEBP" and image.size == (80, 30) and image.n_frames == 5


@pytest.mark.parametrize("override, words", [
    ({"Fps": "90"}, "fps must be from 1 to 60"),
    ({"Format": "bmp"}, "format must be one of"),
    ({"Width": "0"}, "width"),
    ({"Colour": "red"}, "unknown field"),
    ({"TimeSpan": "5"}, "TimeSpan must be an object"),
    ({"TimeSpan": {"Start": "1"}}, "unknown field"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be an object"),
    (["Fps", "5"], "must be an object"),
])
def test_bad_override_params_are_refused_by_the_template_rules(engine, clip, override, words):
    video = engine.add_video(clip)
    template = engine.add_template("base-webp", format="webp", fps=10, duration=1)
    with pytest.raises(EngineError) as error:
        engine.submit(video.id, template.id, override)
    assert error.value.code is ErrorCode.INVALID_PARAMETER
    assert words in error.value.message
    assert engine.jobs() == []


def test_a_negative_override_time_is_an_invalid_time_range(engine, clip):
    video = engine.add_video(clip)
    template = engine.add_template("base-webp", format="webp", fps=10, duration=1)
    with pytest.raises(EngineError) as error:
        engine.submit(video.id, template.id, {"TimeSpan": {"Seek": "-1"}})
    assert error.value.code is ErrorCode.INVALID_TIME_RANGE


def test_empty_override_params_are_no_override(engine, clip):
    video = engine.add_video(clip)
    template = engine.add_template("base-webp", format="webp", fps=10, duration=1)
    assert engine.submit(video.id, template.id, "").spec == template.job_fields()
    assert engine.submit(video.id, template.id, {}).spec == template.job_fields()


# -- images: ListDynamicImage, DeleteDynamicImage ----------------------------------------------

@pytest.fixture
def two_images(engine, clip):
    video = engine.add_video(clip)
    cover = engine.add_template("cover-webp", format="webp", fps=5, width=40, duration=1.4, set_as_cover=True)
    plain = engine.add_template("plain-gif", format="gif", fps=5, trim_end=1)
    jobs = [engine.submit(video.id, cover.id), engine.submit(video.id, plain.id)]
    assert engine.run_worker(until_empty=True).succeeded == 2
    return video, jobs, engine.images(video.id)


def test_list_dynamic_image_has_file_url_and_duration(engine, two_images):
    video, jobs, images = two_images
    listed = engine.list_dynamic_images(video.id)["DynamicImageList"]
    assert [(i["JobId"], i["Duration"]) for i in listed] == [(jobs[0].id, 1.4), (jobs[1].id, 2.0)]
    for entry, image in zip(listed, images):
        assert entry["FileURL"] == entry["URL"] == image.path.resolve().as_uri()
        assert entry["FileSize"] == image.path.stat().st_size
    assert engine.image(images[0].id) == images[0]


def test_delete_image_removes_the_row_the_file_and_the_cover(engine, two_images):
    video, jobs, (cover, plain) = two_images
    assert engine.video(video.id).cover_image_id == cover.id
    deleted = engine.delete_image(cover.id)
    assert deleted == cover
    assert not cover.path.exists() and plain.path.exists()
    assert [i.id for i in engine.images(video.id)] == [plain.id]
    assert engine.video(video.id).cover_image_id is None
    assert engine.video_info(video.id)["Video"]["CoverURL"] is None
    assert engine.job_info(jobs[0].id)["DynamicImageUrl"] is None
    for action in (engine.delete_image, engine.image):
        with pytest.raises(EngineError) as gone:
            action(cover.id)
        assert gone.value.code is ErrorCode.IMAGE_NOT_FOUND and gone.value.code.value == "DynamicImageNotFound"


def test_deleting_an_image_that_is_not_the_cover_keeps_the_cover(engine, two_images):
    video, _, (cover, plain) = two_images
    engine.delete_image(plain.id)
    assert engine.video(video.id).cover_image_id == cover.id and cover.path.exists()


def test_deleting_an_image_whose_file_is_already_gone_still_forgets_it(engine, two_images):
    video, _, (cover, _) = two_images
    cover.path.unlink()
    assert engine.delete_image(cover.id).id == cover.id
    assert cover.id not in [i.id for i in engine.images(video.id)]


# -- the DynamicImageComplete event ------------------------------------------------------------

def test_the_event_carries_dynamic_image_job_info_as_the_real_event_does(engine, two_images):
    video, jobs, (cover, _) = two_images
    [event] = engine.events(job_id=jobs[0].id)
    for flat in ("EventId", "EventType", "VideoId", "JobId", "DynamicImageUrl", "Width", "Height", "FileSize", "Format",
                 "Status", "ErrorCode", "ErrorMessage", "EventTime"):
        assert flat in event
    assert event["DynamicImageJobInfo"] == {"JobId": jobs[0].id, "Status": "success",
                                            "FileURL": event["DynamicImageUrl"], "FileSize": cover.bytes,
                                            "Fps": 5.0, "Width": cover.width, "Height": cover.height}
    assert event["DynamicImageUrl"] == cover.path.resolve().as_uri()


def test_a_failed_jobs_event_has_job_info_without_a_file(engine, clip):
    video = engine.add_video(clip)
    job = engine.submit(video.id, engine.add_template("too-late", format="gif", fps=5, seek=10, duration=1).id)
    engine.run_worker(until_empty=True)
    [event] = engine.events(job_id=job.id)
    assert (event["Status"], event["ErrorCode"]) == ("failed", "InvalidTimeRange")
    assert event["DynamicImageJobInfo"] == {"JobId": job.id, "Status": "failed", "FileURL": None, "FileSize": None,
                                            "Fps": None, "Width": None, "Height": None}


def test_a_batch_lines_event_has_job_info_too(tmp_path, clip):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "input": str(clip), "format": "gif", "fps": 4, "duration": 1}) + "\n")
    with Service(store=tmp_path / "store.db") as engine:
        [result] = list(engine.run_batch(engine.load_manifest(manifest), tmp_path / "out", workers=1))
        [event] = engine.events()
    info = event["DynamicImageJobInfo"]
    assert (info["JobId"], info["Status"], info["Fps"], info["FileSize"]) == (result.job_id, "success", 4.0, result.bytes)
    assert info["FileURL"] == event["DynamicImageUrl"] == Path(result.output).resolve().as_uri()
    [listed] = engine_list(tmp_path / "store.db", event["VideoId"])
    assert listed["Duration"] == result.duration == 1.0


def engine_list(store: Path, video_id: str) -> list[dict]:
    with Service(store=store) as engine:
        return engine.list_dynamic_images(video_id)["DynamicImageList"]


# -- the URL signing key -----------------------------------------------------------------------

def test_the_url_signing_key_is_made_once_and_kept(engine, tmp_path):
    assert "url_signing_key" not in engine.settings()
    key = engine.url_signing_key()
    assert len(key) >= 32 and engine.url_signing_key() == key
    with Service(store=tmp_path / "store.db") as later:
        assert later.url_signing_key() == key
    with Service(store=tmp_path / "elsewhere.db") as other:
        assert other.url_signing_key() != key


SIGNER = textwrap.dedent("""
    import sys, time
    from animated_previews.engine.vod import Service
    store, start = sys.argv[1], float(sys.argv[2])
    with Service(store=store) as service:
        while time.time() < start:
            time.sleep(0.001)
        print(service.url_signing_key())
""")


def test_servers_starting_together_share_one_signing_key(tmp_path):
    store = tmp_path / "store.db"
    Service(store=store).close()
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", SIGNER, str(store), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    keys = {out.strip() for out, _ in outputs}
    assert len(keys) == 1 and len(keys.pop()) >= 32
