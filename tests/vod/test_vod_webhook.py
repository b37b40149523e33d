"""Callbacks against a real HTTP receiver on 127.0.0.1: down, slow, 500, then 200. The event
arrives exactly once with a valid signature, and the outbox survives between processes."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import clipmaker
from animated_previews.engine import Service
from animated_previews.engine.vod.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = "s3cret-key"


class Receiver:
    """An HTTP server whose answer the test switches: "slow" (sleeps past the client's timeout,
    then 200), or a status code. Every request is recorded with its answer."""

    def __init__(self, port: int) -> None:
        self.mode: str | int = 200
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mode = receiver.mode
                record = {"mode": mode, "status": None, "body": body, "at": time.monotonic(),
                          "headers": {k: self.headers[k] for k in (SIGNATURE_HEADER, TIMESTAMP_HEADER, EVENT_ID_HEADER)}}
                receiver.requests.append(record)
                if mode == "slow":
                    time.sleep(1.5)  # the sender has given up by now: to it, this was a failure
                    status = 200
                else:
                    status = int(mode)
                record["status"] = status
                try:
                    self.send_response(status)
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict]:
        """Requests the receiver took in time: answered 2xx and not after the client left."""
        return [r for r in self.requests if r["status"] == 200 and r["mode"] != "slow"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def one_job_store(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=10, frames=20, width=160, height=120)
    store = tmp_path / "store.db"
    with Service(store=store) as engine:
        video = engine.add_video(clip)
        job = engine.submit(video.id, engine.add_template("hook-test", format="gif", fps=5, duration=1).id)
    return store, job.id


def test_down_slow_500_then_200_delivers_exactly_once_signed(one_job_store):
    store, job_id = one_job_store
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    options = dict(callback_url=url, callback_secret=SECRET, callback_timeout_s=0.5)

    with Service(store=store, **options) as engine:  # the receiver is down while the job runs
        report = engine.run_worker(until_empty=True)
        assert report.succeeded == 1 and report.events_delivered == 0
        [waiting] = engine.pending_deliveries()
        assert waiting["attempts"] == 1 and waiting["url"] == url
        assert "refused" in waiting["last_error"].lower()
        event = engine.events()[0]

    receiver = Receiver(port)
    try:
        receiver.mode = "slow"
        with Service(store=store, **options) as engine:
            assert engine.flush_events().pending == 1
        receiver.mode = 500
        with Service(store=store, **options) as engine:
            report = engine.flush_events()
            assert (report.delivered, report.pending) == (0, 1)
            assert "500" in engine.pending_deliveries()[0]["last_error"]
        receiver.mode = 200
        with Service(store=store, callback_secret=SECRET) as engine:  # a later process: the URL is in the outbox
            report = engine.flush_events()
            assert (report.delivered, report.pending) == (1, 0)
            assert engine.flush_events().delivered == 0
            assert engine.run_worker(until_empty=True).events_delivered == 0
        time.sleep(1.6)  # let the slow handler finish
    finally:
        receiver.close()

    assert [r["mode"] for r in receiver.requests] == ["slow", 500, 200]
    [arrived] = receiver.accepted()
    headers = arrived["headers"]
    assert verify(SECRET, headers[TIMESTAMP_HEADER], arrived["body"], headers[SIGNATURE_HEADER])
    assert not verify("wrong-key", headers[TIMESTAMP_HEADER], arrived["body"], headers[SIGNATURE_HEADER])
    assert abs(int(headers[TIMESTAMP_HEADER]) - time.time()) < 60
    assert json.loads(arrived["body"]) == event
    assert event["JobId"] == job_id and event["Status"] == "success" and event["EventType"] == "DynamicImageComplete"
    assert {r["headers"][EVENT_ID_HEADER] for r in receiver.requests} == {event["EventId"]}


def test_flush_wait_retries_with_exponential_backoff(one_job_store):
    store, _ = one_job_store
    port = free_port()
    receiver = Receiver(port)
    script = iter([500, 500, 200])


    try:
        receiver.mode = 503
        with Service(store=store, callback_url=f"http://127.0.0.1:{port}/", callback_secret=SECRET,
                    retry_base_s=0.2) as engine:
            engine.run_worker(until_empty=True)  # first attempt: 503
            original = receiver.server.RequestHandlerClass.do_POST

            def scripted(handler):
                receiver.mode = next(script)
                original(handler)

            receiver.server.RequestHandlerClass.do_POST = scripted
            report = engine.flush_events(wait=10)
            assert report.pending == 0
    finally:
        receiver.close()
    statuses = [r["status"] for r in receiver.requests]
    assert statuses == [503, 500, 500, 200]
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests[1:], receiver.requests[2:])]
    assert gaps[0] >= 0.35 and gaps[1] >= 0.75, gaps  # 0.4 s after the 2nd failure, 0.8 s after the 3rd


def test_a_later_worker_run_delivers_what_waited(one_job_store):
    store, _ = one_job_store
    port = free_port()
    with Service(store=store, callback_url=f"http://127.0.0.1:{port}/", retry_base_s=0.1) as engine:
        engine.run_worker(until_empty=True)
        assert len(engine.pending_deliveries()) == 1
    receiver = Receiver(port)
    try:
        time.sleep(0.2)
        with Service(store=store) as engine:
            assert engine.run_worker(until_empty=True).events_delivered == 1
            assert engine.pending_deliveries() == []
    finally:
        receiver.close()
    [arrived] = receiver.accepted()
    assert SIGNATURE_HEADER not in {k for k, v in arrived["headers"].items() if v}  # no secret: unsigned


def test_a_dead_receiver_costs_one_attempt_per_pass_not_one_per_event(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=10, frames=20, width=160, height=120)
    port = free_port()
    with Service(store=tmp_path / "s.db", callback_url=f"http://127.0.0.1:{port}/") as engine:
        video = engine.add_video(clip)
        template = engine.add_template("many-events", format="gif", fps=2, duration=1)
        for _ in range(3):
            engine.submit(video.id, template.id)
        engine.run_worker(until_empty=True)
        report = engine.flush_events()
        assert (report.failed, report.pending) == (1, 3)
        receiver = Receiver(port)
        try:
            report = engine.flush_events()
        finally:
            receiver.close()
        assert (report.delivered, report.pending) == (3, 0)
        job_ids = sorted(j.id for j in engine.jobs())
    assert sorted(json.loads(r["body"])["JobId"] for r in receiver.accepted()) == job_ids


def test_engine_run_posts_one_signed_event_per_batch_job(tmp_path):
    from click.testing import CliRunner

    from animated_previews.cli.main import main

    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=10, frames=20, width=160, height=120)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "good", "input": str(clip), "format": "gif", "fps": 5, "duration": 1}) + "\n"
                        + json.dumps({"id": "bad", "input": str(tmp_path / "none.mp4"), "format": "gif", "fps": 5,
                                      "duration": 1}) + "\n")
    port = free_port()
    receiver = Receiver(port)
    try:
        args = ["run", "--batch", str(manifest), "--out-dir", str(tmp_path / "out"), "--store", str(tmp_path / "s.db"),
                "--workers", "1", "--callback", f"http://127.0.0.1:{port}/hook", "--callback-secret", SECRET,
                "--base-url", "https://cdn.example/p", "--json"]
        first = CliRunner().invoke(main, args)
        again = CliRunner().invoke(main, args)  # nothing new ends: nothing new is sent
    finally:
        receiver.close()
    results = {r["id"]: r for r in map(json.loads, first.stdout.splitlines()) if "id" in r}

    assert first.exit_code == 1 and again.exit_code == 1  # one line failed
    bodies = {}
    for request in receiver.accepted():
        headers = request["headers"]
        assert verify(SECRET, headers[TIMESTAMP_HEADER], request["body"], headers[SIGNATURE_HEADER])
        event = json.loads(request["body"])
        bodies[event["ManifestId"]] = event
    assert len(receiver.requests) == 2 and set(bodies) == {"good", "bad"}
    assert bodies["good"]["JobId"] == results["good"]["job_id"] and bodies["good"]["Status"] == "success"
    assert bodies["good"]["DynamicImageUrl"] == "https://cdn.example/p/good.gif"
    assert bodies["bad"]["ErrorCode"] == "InputNotFound" and bodies["bad"]["VideoId"] is None
