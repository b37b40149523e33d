"""SetMessageCallback / GetMessageCallback / DeleteMessageCallback, and the service's callback headers.

With AuthSwitch on, a callback POST carries X-VOD-TIMESTAMP and X-VOD-SIGNATURE = md5 of
``CallbackURL|timestamp|AuthKey`` beside the engine's own HMAC headers (checked here against a real
receiver on 127.0.0.1, recomputed with hashlib, not with the engine's helper). Events of a type the
callback did not subscribe to are logged but never queued.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main
from animated_previews.engine import EngineError, ErrorCode, Service
from animated_previews.engine.vod.webhook import (SIGNATURE_HEADER, TIMESTAMP_HEADER, VOD_SIGNATURE_HEADER,
                                                  VOD_TIMESTAMP_HEADER, verify, verify_vod)
from test_vod_webhook import Receiver, free_port

AUTH_KEY = "k3yForVodCallbacks"


@pytest.fixture
def engine(tmp_path):
    with Service(store=tmp_path / "store.db") as e:
        yield e


def test_a_store_without_a_callback_answers_the_defaults(engine):
    assert engine.message_callback() == {"CallbackType": "HTTP", "CallbackURL": None, "AuthSwitch": "off",
                                         "AuthKey": None, "EventTypeList": "DynamicImageComplete"}


def test_set_then_get_then_delete(engine):
    answer = engine.set_message_callback("https://hooks.test/vod", auth_switch="on", auth_key=AUTH_KEY,
                                         event_types="DynamicImageComplete, FileUploadComplete")
    expected = {"CallbackType": "HTTP", "CallbackURL": "https://hooks.test/vod", "AuthSwitch": "on",
                "AuthKey": AUTH_KEY, "EventTypeList": "DynamicImageComplete,FileUploadComplete"}
    assert answer == expected and engine.message_callback() == expected
    assert engine.callback_url == "https://hooks.test/vod"  # the one setting workers POST to

    engine.set_message_callback(None, auth_switch=False)  # None leaves a setting as it is
    assert engine.message_callback() == {**expected, "AuthSwitch": "off"}

    engine.delete_message_callback()
    assert engine.message_callback()["CallbackURL"] is None and engine.callback_url is None
    assert engine.message_callback()["AuthKey"] is None
    assert not {"callback_url", "callback_auth_switch", "callback_auth_key", "callback_event_types"} & set(engine.settings())


@pytest.mark.parametrize("url", ["ftp://hooks.test/vod", "file:///tmp/hook", "javascript:alert(1)", "hooks.test/vod",
                                 "http://", ""])
def test_only_http_and_https_urls_are_taken(engine, url):
    engine.set_message_callback("http://kept.test/")
    with pytest.raises(EngineError) as error:
        engine.set_message_callback(url)
    assert error.value.code is ErrorCode.INVALID_PARAMETER and "http" in error.value.message
    assert engine.message_callback()["CallbackURL"] == "http://kept.test/"


@pytest.mark.parametrize("kwargs, words", [
    ({"auth_switch": "maybe"}, "on or off"),
    ({"auth_switch": "on"}, "needs an AuthKey"),
    ({"auth_key": "x" * 33}, "1-32 characters"),
    ({"event_types": " , "}, "at least one event type"),
])
def test_a_refused_setting_changes_nothing(engine, kwargs, words):
    before = engine.message_callback()
    with pytest.raises(EngineError) as error:
        engine.set_message_callback("https://new.test/", **kwargs)
    assert error.value.code is ErrorCode.INVALID_PARAMETER and words in error.value.message
    assert engine.message_callback() == before  # not even the URL was kept


def test_config_set_is_held_to_the_same_rules_and_never_shows_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "cli.db"))
    runner = CliRunner()
    bad = runner.invoke(main, ["config", "set", "callback_url", "ftp://x.test/"])
    assert bad.exit_code == 1 and "InvalidParameter" in bad.stderr
    assert runner.invoke(main, ["config", "set", "callback_auth_switch", "ON"]).exit_code == 0
    set_key = runner.invoke(main, ["config", "set", "callback_auth_key", AUTH_KEY, "--json"])
    assert set_key.exit_code == 0 and AUTH_KEY not in set_key.stdout
    with Service(store=tmp_path / "cli.db") as engine:
        signing_key = engine.url_signing_key()
        assert engine.message_callback()["AuthSwitch"] == "on"
    shown = runner.invoke(main, ["config", "show", "--json"])
    settings = json.loads(shown.stdout)
    assert settings["url_signing_key"] == settings["callback_auth_key"] == "***"
    assert signing_key not in shown.stdout and AUTH_KEY not in shown.stdout
    human = runner.invoke(main, ["config", "show"]).stdout
    assert "url_signing_key: ***" in human and signing_key not in human


# -- delivery against a real receiver ----------------------------------------------------------

class HeaderReceiver(Receiver):
    """The webhook tests' receiver, keeping every request header."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        handler = self.server.RequestHandlerClass
        original = handler.do_POST
        receiver = self

        def keep_headers(request) -> None:
            original(request)
            receiver.requests[-1]["all_headers"] = request.headers  # looked up case-insensitively, as HTTP says

        handler.do_POST = keep_headers


@pytest.fixture
def one_job(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=10, frames=20, width=160, height=120)
    store = tmp_path / "store.db"
    with Service(store=store) as engine:
        video = engine.add_video(clip)
        engine.submit(video.id, engine.add_template("hook-auth", format="gif", fps=5, duration=1).id)
    return store


def test_auth_switch_on_adds_the_services_signature_beside_the_engines(one_job):
    port = free_port()
    url = f"http://127.0.0.1:{port}/vod-hook"
    receiver = HeaderReceiver(port)
    try:
        with Service(store=one_job, callback_secret="engine-secret") as engine:
            engine.set_message_callback(url, auth_switch="on", auth_key=AUTH_KEY)
            report = engine.run_worker(until_empty=True)
            assert report.events_delivered == 1
    finally:
        receiver.close()
    [arrived] = receiver.accepted()
    headers = arrived["all_headers"]
    timestamp = headers[VOD_TIMESTAMP_HEADER]
    assert abs(int(timestamp) - time.time()) < 60 and timestamp == headers[TIMESTAMP_HEADER]
    expected = hashlib.md5(f"{url}|{timestamp}|{AUTH_KEY}".encode()).hexdigest()
    assert headers[VOD_SIGNATURE_HEADER] == expected
    assert verify_vod(url, timestamp, AUTH_KEY, headers[VOD_SIGNATURE_HEADER])
    assert not verify_vod(url, timestamp, "wrong-key", headers[VOD_SIGNATURE_HEADER])
    assert verify("engine-secret", headers[TIMESTAMP_HEADER], arrived["body"], headers[SIGNATURE_HEADER])
    event = json.loads(arrived["body"])
    assert event["DynamicImageJobInfo"]["FileURL"] == event["DynamicImageUrl"]


def test_auth_switch_off_sends_no_service_headers(one_job):
    port = free_port()
    receiver = HeaderReceiver(port)
    try:
        with Service(store=one_job) as engine:
            engine.set_message_callback(f"http://127.0.0.1:{port}/", auth_switch="off", auth_key=AUTH_KEY)
            assert engine.run_worker(until_empty=True).events_delivered == 1
    finally:
        receiver.close()
    [arrived] = receiver.accepted()
    assert VOD_SIGNATURE_HEADER not in arrived["all_headers"] and VOD_TIMESTAMP_HEADER not in arrived["all_headers"]


def test_an_unsubscribed_event_type_is_logged_but_not_posted(one_job, tmp_path):
    port = free_port()
    receiver = HeaderReceiver(port)
    try:
        with Service(store=one_job) as engine:
            engine.set_message_callback(f"http://127.0.0.1:{port}/", event_types=["FileUploadComplete"])
            report = engine.run_worker(until_empty=True)
            assert (report.succeeded, report.events_delivered) == (1, 0)
            assert engine.pending_deliveries() == []
            [event] = engine.events()
            engine.set_message_callback(None, event_types="DynamicImageComplete")
    finally:
        receiver.close()
    assert receiver.requests == []
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["EventId"] for e in logged] == [event["EventId"]]
