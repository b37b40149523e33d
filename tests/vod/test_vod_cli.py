"""The VOD commands end to end through click: the four steps, --json shapes, errors, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("vodcli") / "talk.mp4", fps=10, frames=30, width=160, height=120)


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store" / "engine.db"))
    monkeypatch.delenv("ENGINE_CALLBACK_SECRET", raising=False)

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    return invoke


def as_json(result) -> dict:
    return json.loads(result.stdout)


def test_four_steps_with_json(run, clip, tmp_path):
    body = tmp_path / "template.json"
    body.write_text(json.dumps({"TemplateType": "DynamicImage", "Name": "social-media-preview", "TemplateConfig": {
        "Format": "webp", "Fps": "10", "Width": "80", "TimeSpan": {"Seek": "0.5", "Duration": "1"},
        "SetAsCover": "true"}}))
    template_id = as_json(run("template", "add", "--body", body, "--json"))["VodTemplateId"]
    gif_id = run("template", "add", "--name", "gif-trim", "--format", "gif", "--fps", "5", "--trim-end", "1").stdout.strip()
    listed = as_json(run("template", "list", "--json"))["VodTemplateInfoList"]
    assert [t["VodTemplateId"] for t in listed] == [template_id, gif_id]
    assert as_json(run("template", "show", "gif-trim", "--json"))["VodTemplate"]["TemplateConfig"]["TimeSpan"] == {
        "Seek": "0", "End": "1"}

    added = as_json(run("video", "add", clip, "--json"))
    [video] = added["Videos"]
    assert added["Errors"] == [] and video["Path"] == str(clip)
    video_id = video["VideoId"]

    job_ids = [as_json(run("submit", "--video", video_id, "--template", t, "--json"))["DynamicImageJob"]["JobId"]
               for t in (template_id, gif_id)]
    assert [j["State"] for j in as_json(run("jobs", "list", "--json"))["JobList"]] == ["queued", "queued"]

    out = run("worker", "--until-empty", "--json").stdout.splitlines()
    assert [json.loads(line).get("JobId") for line in out[:-1]] == job_ids
    assert json.loads(out[-1])["Summary"]["Succeeded"] == 2

    images = as_json(run("images", "list", "--video", video_id, "--json"))["DynamicImageList"]
    assert [(i["JobId"], i["Format"], i["Width"], i["Height"]) for i in images] == [
        (job_ids[0], "webp", 80, 60), (job_ids[1], "gif", 160, 120)]
    assert set(images[0]) == {"DynamicImageId", "VideoId", "JobId", "URL", "FileURL", "Format", "Width", "Height",
                              "Fps", "Duration", "FileSize", "CreationTime"}
    assert images[0]["URL"].startswith("file:///") and images[0]["FileURL"] == images[0]["URL"]
    assert (images[0]["Duration"], images[1]["Duration"]) == (1.0, 2.0)  # webp: 1 s from 0.5; gif: 3 s clip trimmed by 1
    info = as_json(run("video", "info", video_id, "--json"))["Video"]
    assert info["CoverURL"] == images[0]["URL"]

    mapped = as_json(run("images", "list", "--video", video_id, "--base-url", "https://cdn.test/p", "--json"))
    assert mapped["DynamicImageList"][0]["URL"] == f"https://cdn.test/p/{video_id}/{job_ids[0]}.webp"
    run("config", "set", "base_url", "https://cdn.test/q/")
    assert as_json(run("video", "info", video_id, "--json"))["Video"]["CoverURL"] == \
        f"https://cdn.test/q/{video_id}/{job_ids[0]}.webp"

    job = as_json(run("jobs", "show", job_ids[1], "--json"))["Job"]
    assert (job["State"], job["Attempts"], job["ErrorCode"]) == ("success", 1, None)
    events = as_json(run("events", "list", "--json"))
    assert [e["JobId"] for e in events["Events"]] == job_ids and events["Pending"] == []
    log = (tmp_path / "store" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["JobId"] for line in log] == job_ids


def test_errors_exit_1_with_code_and_message(run, clip, tmp_path):
    result = run("template", "add", "--name", "too-fast", "--format", "gif", "--fps", "61", "--duration", "1",
                 "--json", code=1)
    assert as_json(result) == {"Code": "InvalidParameter", "Message": "fps must be from 1 to 60, got '61'"}
    result = run("template", "add", "--name", "abc", "--format", "gif", "--fps", "6", "--duration", "1", code=1)
    assert "4-64" in result.stderr
    assert "TemplateNotFound" in run("template", "show", "nope", code=1).stderr
    assert "VideoNotFound" in run("video", "info", "nope", code=1).stderr
    assert "JobNotFound" in run("jobs", "show", "nope", code=1).stderr
    both = run("video", "add", clip, tmp_path / "missing.mp4", "--json", code=1)
    assert [e["Code"] for e in as_json(both)["Errors"]] == ["InputNotFound"] and len(as_json(both)["Videos"]) == 1
    assert "format is required: one of gif, webp, avif" in run("template", "add", "--name", "no-fields", code=1).stderr
    assert "--name is required" in run("template", "add", "--format", "gif", code=2).stderr


def test_failed_job_and_pending_callback_are_reported(run, clip):
    video_id = run("video", "add", clip).stdout.split()[0]
    template_id = run("template", "add", "--name", "past-the-end", "--format", "gif", "--fps", "5",
                      "--seek", "9", "--duration", "1").stdout.strip()
    run("config", "set", "callback_url", "http://127.0.0.1:9/never")
    job_id = run("submit", "--video", video_id, "--template", template_id).stdout.strip()
    assert "failed" in run("worker", "--until-empty").stdout
    job = as_json(run("jobs", "show", job_id, "--json"))["Job"]
    assert job["State"] == "failed" and job["ErrorCode"] == "InvalidTimeRange"
    [event] = as_json(run("events", "list", "--json"))["Events"]
    assert (event["Status"], event["ErrorCode"]) == ("failed", "InvalidTimeRange")
    flushed = as_json(run("events", "flush", "--json", code=1))
    assert flushed["Pending"] == 1
    assert as_json(run("config", "show", "--json"))["callback_url"] == "http://127.0.0.1:9/never"


def test_worker_callback_flag_and_secret_from_the_environment(run, clip, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from animated_previews.engine.vod.webhook import verify

    got: list[tuple[bool, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((verify("env-secret", self.headers["X-Engine-Timestamp"], body,
                               self.headers["X-Engine-Signature"]), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ENGINE_CALLBACK_SECRET", "env-secret")
        video_id = run("video", "add", clip).stdout.split()[0]
        template_id = run("template", "add", "--name", "hooked-gif", "--format", "gif", "--fps", "2",
                          "--duration", "1").stdout.strip()
        job_id = run("submit", "--video", video_id, "--template", template_id).stdout.strip()
        summary = json.loads(run("worker", "--until-empty", "--json", "--callback",
                                 f"http://127.0.0.1:{server.server_port}/hook").stdout.splitlines()[-1])["Summary"]
    finally:
        server.shutdown()
        server.server_close()
    assert summary["EventsDelivered"] == 1
    [(signed, event)] = got
    assert signed and event["JobId"] == job_id and event["Status"] == "success"


def test_a_store_from_a_newer_engine_is_refused(tmp_path):
    import sqlite3

    from animated_previews.engine import Service, EngineError, ErrorCode

    store = tmp_path / "future.db"
    Service(store=store).close()
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(EngineError) as info:
        Service(store=store)
    assert info.value.code is ErrorCode.STORE_ERROR and "999" in info.value.message
