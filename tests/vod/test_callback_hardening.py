"""Callbacks against hostile receivers and bad URLs (issue 13), every receiver on 127.0.0.1.

Each test closes one defect that was seen: retries sent unsigned, URLs without a scheme (or
``file:``/``data:``/``ftp:``/``gopher:``) taken and then crashing or "delivered", redirects
followed, a trickling receiver holding a POST for minutes, a slow receiver stretching ``engine
run``, and 400 of 500 events left undelivered (100 per pass). Events come from manifest lines
whose input does not exist: each ends at once (InputNotFound) with a small event.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from animated_previews.cli.main import main
from animated_previews.engine import EngineError, ErrorCode, Service
from animated_previews.engine.vod.webhook import (EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, DeliveryFailed,
                                                  DeliveryRefused, post_event, verify)

SECRET = "flag-secret-8c1d"


class Hook:
    """An HTTP receiver on 127.0.0.1 recording every request. ``status``: the answer (an int, or a
    function of the request's number, from 1); ``delay``: seconds before answering; ``headers``:
    added to each answer."""

    def __init__(self, status=200, delay: float = 0.0, headers: dict | None = None, port: int = 0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status, self.delay, self.headers = status, delay, headers or {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.lock:
                    hook.requests.append({"method": self.command, "headers": self.headers, "body": body,
                                          "at": time.monotonic()})
                    number = len(hook.requests)
                if hook.delay:
                    time.sleep(hook.delay)
                status = hook.status(number) if callable(hook.status) else hook.status
                with hook.lock:
                    hook.requests[number - 1]["status"] = status
                try:
                    self.send_response(status)
                    for name, value in hook.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            do_POST = do_GET = do_HEAD = answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def taken(self) -> list[dict]:
        """The POSTs answered 2xx."""
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST" and 200 <= r.get("status", 0) < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Hook":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def invoke(*args, code: int | None = None):
    """Run the CLI in-process; a traceback (any exception but SystemExit) fails the test."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"engine {' '.join(map(str, args))} raised {result.exception!r}") from result.exception
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.stdout[-2000:], result.stderr[-2000:])
    return result


def summary(result) -> dict:
    return json.loads(result.stdout.splitlines()[-1])["summary"]


def failing_manifest(folder: Path, count: int, prefix: str = "line") -> Path:
    """``count`` lines whose input is missing: each job ends at once, with its event."""
    manifest = folder / f"{prefix}-{count}.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"{prefix}{n}", "input": str(folder / f"missing-{prefix}{n}.mp4"),
                                            "format": "gif", "fps": 5, "duration": 1}) + "\n" for n in range(count)))
    return manifest


def run_args(tmp_path: Path, manifest: Path, *more) -> list:
    return ["run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", tmp_path / "s.db", "--workers", "1",
            "--json", *more]


def outbox_rows(store: Path) -> list[dict]:
    conn = sqlite3.connect(store)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY event_id")]
    finally:
        conn.close()


def signed_with(secret: str, request: dict) -> bool:
    headers = request["headers"]
    return verify(secret, headers[TIMESTAMP_HEADER], request["body"], headers[SIGNATURE_HEADER] or "")


@pytest.fixture(autouse=True)
def no_secret_in_the_environment(monkeypatch):
    monkeypatch.delenv("ENGINE_CALLBACK_SECRET", raising=False)


# -- 1. every attempt signed --------------------------------------------------------------------------

def test_retries_by_events_flush_carry_the_runs_callback_secret(tmp_path):
    manifest = failing_manifest(tmp_path, 3)
    with Hook(status=500) as hook:
        run = invoke(*run_args(tmp_path, manifest, "--callback", hook.url, "--callback-secret", SECRET,
                               "--drain", "0.5"), code=1)
        assert summary(run)["callbacks_waiting"] == 3
        assert hook.requests and all(signed_with(SECRET, r) for r in hook.requests)  # the first attempts
        first_attempts = len(hook.requests)
        hook.status = 200
        flush = invoke("events", "flush", "--store", tmp_path / "s.db", "--wait", "10", "--json", code=0)
        assert json.loads(flush.stdout) == {"Delivered": 3, "Failed": 0, "Pending": 0, "GivenUp": 0}
        listing = invoke("events", "list", "--store", tmp_path / "s.db", "--json", code=0)
        shown = invoke("config", "show", "--store", tmp_path / "s.db", "--json", code=0)
    retries = hook.requests[first_attempts:]
    assert len(retries) == 3 and all(signed_with(SECRET, r) for r in retries)
    assert {r["headers"][EVENT_ID_HEADER] for r in hook.taken()} == {e["EventId"] for e in
                                                                      json.loads(listing.stdout)["Events"]}
    for result in (run, flush, listing, shown):  # the key is kept in the store, never printed
        assert SECRET not in result.stdout + result.stderr


def test_a_later_worker_signs_with_the_key_the_event_was_queued_with(tmp_path):
    manifest = failing_manifest(tmp_path, 2)
    store = tmp_path / "s.db"
    with Hook(status=503) as hook:
        invoke(*run_args(tmp_path, manifest, "--callback", hook.url, "--callback-secret", SECRET, "--drain", "0"),
               code=1)
        invoke("config", "set", "callback_secret", "a-later-store-key", "--store", store, code=0)
        hook.status = 200
        deadline = time.monotonic() + 15
        while len(hook.taken()) < 2 and time.monotonic() < deadline:  # retries fall due after the backoff
            report = invoke("worker", "--until-empty", "--store", store, "--json", code=0)
            time.sleep(0.3)
        assert json.loads(report.stdout.splitlines()[-1])["Summary"]["Worker"]
    taken = hook.taken()
    assert len(taken) == 2 and all(signed_with(SECRET, r) for r in taken)
    assert not any(signed_with("a-later-store-key", r) for r in taken)


# -- 2. callback URLs validated where given; bad ones already queued are given up ----------------------

BAD_URLS = ["http//127.0.0.1:8765/hook", "file:///etc/hostname", "data:text/plain,hi", "ftp://127.0.0.1/hook",
            "gopher://127.0.0.1:70/", "127.0.0.1:8765/hook", "http://", "http://user:pw@127.0.0.1/",
            "http://127.0.0.1:99999/", "http://127.0.0.1/a b"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_callback_url_is_refused_where_it_is_given(tmp_path, url):
    manifest = failing_manifest(tmp_path, 1)
    store = tmp_path / "s.db"
    run = invoke(*run_args(tmp_path, manifest, "--callback", url), code=2)
    assert "callback URL must be an http:// or https:// URL" in run.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran
    worker = invoke("worker", "--until-empty", "--store", store, "--callback", url, code=2)
    assert "callback URL must be" in worker.stderr
    config = invoke("config", "set", "callback_url", url, "--store", store, code=1)
    assert "InvalidParameter" in config.stderr and "callback URL must be" in config.stderr
    assert "callback_url" not in json.loads(invoke("config", "show", "--store", store, "--json", code=0).stdout)
    with pytest.raises(EngineError) as error:
        Service(store=store, callback_url=url)
    assert error.value.code is ErrorCode.INVALID_PARAMETER
    with Service(store=store) as engine, pytest.raises(EngineError):
        engine.set_message_callback(url)


def _queue_to(store: Path, urls: list[str]) -> None:
    """What an older engine left: waiting events bound for ``urls``, due now."""
    conn = sqlite3.connect(store)
    ids = [r[0] for r in conn.execute("SELECT event_id FROM outbox ORDER BY event_id")]
    with conn:
        conn.execute("DELETE FROM outbox")
        for event_id, url in zip(ids, urls):
            conn.execute("INSERT INTO outbox (event_id, url, next_attempt_at) VALUES (?, ?, 0)", (event_id, url))
    conn.close()


def test_bad_urls_already_queued_are_given_up_with_their_reason_and_stop_nothing(tmp_path):
    store = tmp_path / "s.db"
    old = ["http//127.0.0.1:8765/hook", "file:///etc/hostname", "data:text/plain,hi", "gopher://127.0.0.1:70/"]
    invoke(*run_args(tmp_path, failing_manifest(tmp_path, len(old), "old"), "--callback",
                     f"http://127.0.0.1:{free_port()}/", "--drain", "0"), code=1)
    for name, args, code in [("worker", ["worker", "--until-empty", "--store", store], 0),
                             ("flush", ["events", "flush", "--store", store, "--json"], 0)]:
        _queue_to(store, old)
        invoke(*args, code=code)  # no traceback, the usual exit status
        rows = outbox_rows(store)
        assert [r["url"] for r in rows] == old and all(r["dead_at"] for r in rows), (name, rows)
        assert all(r["attempts"] == 1 and r["delivered_at"] is None for r in rows), (name, rows)
        assert all("not sent: callback URL must be an http:// or https:// URL" in r["last_error"] for r in rows)
    again = invoke("events", "flush", "--store", store, "--wait", "1", "--json", code=0)  # never retried
    assert json.loads(again.stdout) == {"Delivered": 0, "Failed": 0, "Pending": 0, "GivenUp": 0}
    assert all(r["attempts"] == 1 for r in outbox_rows(store))
    listing = json.loads(invoke("events", "list", "--store", store, "--json", code=0).stdout)
    assert listing["Pending"] == [] and sorted(d["url"] for d in listing["GivenUp"]) == sorted(old)

    # an older store whose own callback_url setting is bad: a run's events go there, and end given up
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("INSERT INTO config (key, value) VALUES ('callback_url', ?)", (old[0],))
    conn.close()
    run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, 2, "new")), code=1)
    assert summary(run)["failed"] == 2 and summary(run)["callbacks_waiting"] == 0
    mine = [r for r in outbox_rows(store) if r["url"] == old[0] and r["event_id"] not in
            {d["event_id"] for d in listing["GivenUp"]}]
    assert len(mine) == 2 and all(r["dead_at"] and r["attempts"] == 1 and "not sent" in r["last_error"] for r in mine)


def test_post_event_refuses_what_is_not_http_and_retries_cannot_change_that():
    for url in ["file:///etc/hostname", "data:text/plain,hi", "gopher://127.0.0.1:70/", "http//127.0.0.1/x"]:
        with pytest.raises(DeliveryRefused) as refused:
            post_event(url, b"{}", "e", SECRET, timeout=1)
        assert refused.value.permanent and "not sent" in str(refused.value)


def test_an_event_that_keeps_failing_is_given_up_after_max_attempts(tmp_path):
    from animated_previews.engine.store.outbox import MAX_ATTEMPTS

    store = tmp_path / "s.db"
    invoke(*run_args(tmp_path, failing_manifest(tmp_path, 1), "--callback", f"http://127.0.0.1:{free_port()}/",
                     "--drain", "0"), code=1)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE outbox SET attempts = ?", (MAX_ATTEMPTS - 1,))
    conn.close()
    flushed = invoke("events", "flush", "--store", store, "--json", code=0)
    assert json.loads(flushed.stdout) == {"Delivered": 0, "Failed": 1, "Pending": 0, "GivenUp": 1}
    [dead] = json.loads(invoke("events", "list", "--store", store, "--json", code=0).stdout)["GivenUp"]
    assert dead["attempts"] == MAX_ATTEMPTS and f"given up after {MAX_ATTEMPTS} attempts" in dead["last_error"]
    assert "refused" in dead["last_error"].lower()


# -- 3. no redirects ----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_attempt_and_is_never_followed(status):
    with Hook(status=200) as elsewhere, Hook(status=status, headers={"Location": elsewhere.url}) as hook:
        with pytest.raises(DeliveryFailed) as failed:
            post_event(hook.url, b'{"EventId": "e1"}', "e1", SECRET, timeout=2)
        assert f"HTTP {status}" in str(failed.value) and "not followed" in str(failed.value)
        assert len(hook.requests) == 1 and elsewhere.requests == []  # the signed headers went nowhere else


def test_a_redirecting_receiver_keeps_the_event_waiting_with_its_status(tmp_path):
    with Hook(status=200) as elsewhere, Hook(status=302, headers={"Location": elsewhere.url}) as hook:
        run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, 1), "--callback", hook.url, "--drain", "0.3"),
                     code=1)
        assert summary(run)["callbacks_waiting"] == 1
        assert elsewhere.requests == []
    [row] = outbox_rows(tmp_path / "s.db")
    assert row["delivered_at"] is None and row["attempts"] >= 1 and "HTTP 302" in row["last_error"]


# -- 4. one deadline per request --------------------------------------------------------------------

class Trickler:
    """Reads a request, then answers one byte every ``pace`` seconds (a full, valid 200 answer)."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: " + b"z" * 40 + b"\r\n\r\n"

    def __init__(self, pace: float) -> None:
        self.pace = pace
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.trickle, args=(conn,), daemon=True).start()

    def trickle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
            while len(body) < length:
                body += conn.recv(4096)
            try:
                for byte in self.ANSWER:
                    if self.stop.wait(self.pace):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:  # the client gave up: as it should
                pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def test_a_trickling_receiver_cannot_hold_a_post_past_its_deadline():
    trickler = Trickler(pace=0.1)  # about 8 s for the whole answer, each byte well within any read timeout
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryFailed) as failed:
            post_event(trickler.url, b'{"EventId": "e1"}', "e1", SECRET, timeout=1.0)
        took = time.monotonic() - started
    finally:
        trickler.close()
    assert "no answer within 1 s" in str(failed.value)
    assert 0.9 <= took < 2.5, took  # the whole answer takes about 8 s


def test_flush_records_a_trickling_receiver_as_a_failed_attempt(tmp_path):
    invoke(*run_args(tmp_path, failing_manifest(tmp_path, 1), "--callback", f"http://127.0.0.1:{free_port()}/",
                     "--drain", "0"), code=1)
    trickler = Trickler(pace=0.2)
    try:
        conn = sqlite3.connect(tmp_path / "s.db")
        with conn:
            conn.execute("UPDATE outbox SET url = ?", (trickler.url,))
        conn.close()
        with Service(store=tmp_path / "s.db", callback_timeout_s=0.8) as engine:
            started = time.monotonic()
            report = engine.flush_events()
            took = time.monotonic() - started
            [waiting] = engine.pending_deliveries()
    finally:
        trickler.close()
    assert (report.delivered, report.failed, report.pending) == (0, 1, 1) and took < 3.0, took
    assert "no answer within 0.8 s" in waiting["last_error"]


# -- 5. off the critical path; drain; flush --wait -------------------------------------------------

def test_a_slow_receiver_does_not_stretch_engine_run(tmp_path):
    count, delay = 8, 2.0  # sent one after another at the end of the run, as before: 16 s
    with Hook(status=200, delay=delay) as hook:
        started = time.monotonic()
        run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, count), "--callback", hook.url,
                               "--callback-secret", SECRET, "--drain", "0"), code=1)
        took = time.monotonic() - started
        waiting = summary(run)["callbacks_waiting"]
        assert took < 9.0, took
        assert (f"callbacks: {waiting} of this run's still waiting after --drain 0 s" in run.stderr) == (waiting > 0)
        flush = invoke("events", "flush", "--store", tmp_path / "s.db", "--wait", "30", "--json", code=0)
        assert json.loads(flush.stdout)["Pending"] == 0
        time.sleep(delay + 0.5)  # let answers in flight finish before counting
    ids = [r["headers"][EVENT_ID_HEADER] for r in hook.taken()]
    assert len(set(ids)) == count and all(signed_with(SECRET, r) for r in hook.taken())


def test_engine_run_drains_its_callbacks_then_says_how_many_still_wait(tmp_path):
    with Hook(status=503) as hook:
        started = time.monotonic()
        run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, 3), "--callback", hook.url, "--drain", "1.5"),
                     code=1)
        took = time.monotonic() - started
        assert summary(run)["callbacks_waiting"] == 3
        assert "callbacks: 3 of this run's still waiting after --drain 1.5 s" in run.stderr
        assert took >= 1.5
        assert len(hook.requests) > 3  # retried (with backoff) while draining
        hook.status = 200
        assert json.loads(invoke("events", "flush", "--store", tmp_path / "s.db", "--json", code=0).stdout)[
            "Delivered"] == 3
    with Hook(status=200) as hook:  # a healthy receiver: the drain ends as soon as all are taken
        run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, 3, "more"), "--callback", hook.url), code=1)
        assert summary(run)["callbacks_waiting"] == 0 and "none of this run's waiting" in run.stderr
        assert len(hook.taken()) == 3


def test_flush_wait_keeps_delivering_until_nothing_is_due(tmp_path):
    port = free_port()
    invoke(*run_args(tmp_path, failing_manifest(tmp_path, 4), "--callback", f"http://127.0.0.1:{port}/", "--drain",
                     "0"), code=1)
    answers = iter([500, 500])  # two failures, then 200 for everything

    with Hook(status=lambda n: next(answers, 200), port=port) as hook:
        with Service(store=tmp_path / "s.db", retry_base_s=0.2) as engine:
            report = engine.flush_events(wait=10)
    assert (report.delivered, report.pending) == (4, 0) and report.failed >= 1
    assert len({r["headers"][EVENT_ID_HEADER] for r in hook.taken()}) == 4


# -- 6. many events -------------------------------------------------------------------------------------

def test_500_events_and_a_healthy_receiver_leave_none_undelivered(tmp_path):
    with Hook(status=204) as hook:
        run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, 500), "--callback", hook.url,
                               "--callback-secret", SECRET), code=1)
        assert summary(run)["callbacks_waiting"] == 0 and summary(run)["failed"] == 500
    taken = hook.taken()
    assert len({r["headers"][EVENT_ID_HEADER] for r in taken}) == 500
    assert all(signed_with(SECRET, r) for r in taken)
    assert all(r["delivered_at"] for r in outbox_rows(tmp_path / "s.db"))


def test_events_flush_sends_every_waiting_event_not_the_first_100(tmp_path):
    port = free_port()
    run = invoke(*run_args(tmp_path, failing_manifest(tmp_path, 250), "--callback", f"http://127.0.0.1:{port}/",
                           "--drain", "0"), code=1)
    assert summary(run)["callbacks_waiting"] == 250
    with Hook(status=200, port=port) as hook:
        flush = invoke("events", "flush", "--store", tmp_path / "s.db", "--json", code=0)
    assert json.loads(flush.stdout) == {"Delivered": 250, "Failed": 0, "Pending": 0, "GivenUp": 0}
    assert len({r["headers"][EVENT_ID_HEADER] for r in hook.taken()}) == 250
