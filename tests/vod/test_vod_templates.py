"""Templates as AddVodTemplate has them: flags or body, name and field rules, update, delete."""

from __future__ import annotations

import json

import pytest

from animated_previews.engine import Service, EngineError, ErrorCode
from animated_previews.engine.store.db import default_store_path, open_store
from animated_previews.engine.store.schema import LATEST_VERSION

BODY = {
    "TemplateType": "DynamicImage",
    "Name": "social-media-preview",
    "TemplateConfig": {"Format": "webp", "Fps": "15", "Width": "640", "Height": "360",
                       "TimeSpan": {"Seek": "5", "Duration": "3"}, "SetAsCover": "true"},
}


@pytest.fixture
def engine(tmp_path):
    with Service(store=tmp_path / "store.db") as e:
        yield e


def test_store_is_one_wal_file_with_a_versioned_schema(tmp_path):
    conn = open_store(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    conn.close()
    again = open_store(tmp_path / "s.db")  # re-opening applies nothing twice
    assert again.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert {r[0] for r in again.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
        "templates", "videos", "jobs", "images", "events", "outbox", "config"}


def test_connections_opening_a_new_store_at_once_all_get_it(tmp_path):
    """Two workers started together both create-and-migrate the same new file: neither may fail
    with "database is locked" (SQLite does not wait on its busy timeout to switch to WAL)."""
    import threading

    for attempt in range(40):
        path = tmp_path / f"s{attempt}.db"
        start = threading.Barrier(8)
        outcomes: list[object] = []

        def open_it() -> None:
            start.wait()
            try:
                conn = open_store(path)
                outcomes.append(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.close()
            except Exception as exc:  # collected, so the assertion shows what went wrong
                outcomes.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes == [LATEST_VERSION] * 8


def test_store_default_is_per_user_and_env_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("ENGINE_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "animated-previews" / "store.db"
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"


def test_a_store_path_that_is_not_a_database_is_a_store_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(EngineError) as info:
        Service(store=bad)
    assert info.value.code is ErrorCode.STORE_ERROR


def test_body_with_set_as_cover_in_template_config(engine):
    template = engine.add_template_body(BODY)
    assert len(template.id) == 32
    got = engine.template(template.id)
    assert (got.name, got.format, got.fps, got.width, got.height, got.seek, got.duration, got.trim_end,
            got.set_as_cover) == ("social-media-preview", "webp", 15, 640, 360, 5, 3, None, True)
    assert engine.template_info(got)["TemplateConfig"] == BODY["TemplateConfig"]
    assert engine.template("social-media-preview").id == template.id  # names work as ids


def test_template_config_may_be_a_json_string_as_the_api_sends_it(engine):
    body = {**BODY, "TemplateConfig": json.dumps(BODY["TemplateConfig"])}
    assert engine.add_template_body(body).set_as_cover


def test_trim_mode_from_flags(engine):
    template = engine.add_template("trim-mode", format="gif", fps=10, seek=1, trim_end=2)
    assert (template.mode, template.duration, template.trim_end) == ("Trim", None, 2)
    assert engine.template_info(template)["TemplateConfig"]["TimeSpan"] == {"Seek": "1", "End": "2"}


@pytest.mark.parametrize("fields, words", [
    (dict(format="bmp", fps=10, duration=1), ["format", "gif", "webp"]),
    (dict(format="gif", fps=0, duration=1), ["fps", "1", "60"]),
    (dict(format="gif", fps=61, duration=1), ["fps", "1", "60"]),
    (dict(format="gif", fps=10, duration=1, width=0), ["width", "1", "4096"]),
    (dict(format="gif", fps=10, duration=1, height=5000), ["height", "1", "4096"]),
    (dict(format="gif", fps=10, duration=1, trim_end=1), ["duration", "trim_end"]),
    (dict(format="gif", fps=10), ["duration", "trim_end"]),
    (dict(format="gif", fps=10, duration=0), ["duration", "greater than 0"]),
    (dict(format="gif", fps=10, seek=-1, duration=1), ["seek", "0 or more"]),
])
def test_invalid_fields_are_refused_naming_the_field_and_range(engine, fields, words):
    with pytest.raises(EngineError) as info:
        engine.add_template("good-name", **fields)
    assert all(w in info.value.message for w in words), info.value.message
    assert engine.templates() == []


@pytest.mark.parametrize("name", ["abc", "x" * 65, "", None])
def test_names_are_4_to_64_characters(engine, name):
    with pytest.raises(EngineError) as info:
        engine.add_template(name, format="gif", fps=10, duration=1)
    assert "4-64" in info.value.message


def test_names_are_unique(engine):
    engine.add_template("same-name", format="gif", fps=10, duration=1)
    with pytest.raises(EngineError) as info:
        engine.add_template("same-name", format="webp", fps=10, duration=1)
    assert "already exists" in info.value.message
    assert len(engine.templates()) == 1


@pytest.mark.parametrize("body, words", [
    ({**BODY, "TemplateType": "Snapshot"}, ["TemplateType", "DynamicImage"]),
    ({**BODY, "Extra": 1}, ["Extra"]),
    ({"TemplateType": "DynamicImage", "Name": "no-config"}, ["TemplateConfig"]),
    ({**BODY, "TemplateConfig": {**BODY["TemplateConfig"], "Quality": "9"}}, ["Quality"]),
    ({**BODY, "TemplateConfig": "{not json"}, ["JSON"]),
])
def test_bad_bodies_are_refused(engine, body, words):
    with pytest.raises(EngineError) as info:
        engine.add_template_body(body)
    assert info.value.code is ErrorCode.INVALID_PARAMETER
    assert all(w in info.value.message for w in words), info.value.message


def test_update_changes_fields_and_switches_mode(engine):
    template = engine.add_template_body(BODY)
    updated = engine.update_template(template.id, fps=20, trim_end=1)
    assert (updated.fps, updated.mode, updated.duration, updated.trim_end, updated.width) == (20, "Trim", None, 1, 640)
    back = engine.update_template(template.id, duration=2, name="renamed-template")
    assert (back.mode, back.duration, back.name) == ("Duration", 2, "renamed-template")
    assert engine.template(template.id).modified >= template.modified
    with pytest.raises(EngineError):
        engine.update_template(template.id, fps=99)
    assert engine.template(template.id).fps == 20  # a refused update changes nothing


def test_update_with_a_body_replaces_the_config(engine):
    template = engine.add_template_body(BODY)
    new = engine.update_template(template.id, body={"TemplateConfig": {"Format": "gif", "Fps": 5,
                                                                      "TimeSpan": {"Duration": 1}}})
    assert (new.format, new.fps, new.width, new.set_as_cover, new.name) == ("gif", 5, None, False, BODY["Name"])


def test_delete_and_not_found(engine):
    template = engine.add_template_body(BODY)
    engine.delete_template(template.id)
    for call in (lambda: engine.template(template.id), lambda: engine.delete_template(template.id),
                 lambda: engine.update_template(template.id, fps=3)):
        with pytest.raises(EngineError) as info:
            call()
        assert info.value.code is ErrorCode.TEMPLATE_NOT_FOUND


# -- the service's two TemplateConfig shapes, and clock times ------------------------------------------

NESTED_CONFIG = {"Video": {"Width": "640", "Height": "360", "Fps": "15"}, "Container": {"Format": "webp"},
                 "Clip": {"TimeSpan": {"Seek": "5", "Duration": "3"}}, "SetAsCover": "true"}


@pytest.mark.parametrize("config", [NESTED_CONFIG, json.dumps(NESTED_CONFIG)], ids=["object", "json-string"])
def test_nested_body_is_stored_as_the_flat_template_and_answers_in_the_flat_shape(engine, config):
    template = engine.add_template_body({**BODY, "TemplateConfig": config})
    got = engine.template(template.id)
    assert (got.format, got.fps, got.width, got.height, got.seek, got.duration, got.trim_end, got.set_as_cover) == (
        "webp", 15, 640, 360, 5, 3, None, True)
    assert engine.template_info(got)["TemplateConfig"] == BODY["TemplateConfig"]


@pytest.mark.parametrize("span, answered", [
    ({"Seek": "00:00:05.5", "Duration": "00:00:03"}, {"Seek": "5.5", "Duration": "3"}),
    ({"Seek": "01:02:03", "End": "0:0:1.25"}, {"Seek": "3723", "End": "1.25"}),
    ({"Seek": "01:02:03.456", "Duration": "2"}, {"Seek": "3723.456", "Duration": "2"}),
    ({"Seek": "277:46:40", "Duration": "0.1"}, {"Seek": "1000000", "Duration": "0.1"}),
])
def test_clock_times_are_answered_as_seconds_strings_that_read_back_the_same(engine, span, answered):
    for number, config in enumerate(({"Format": "gif", "Fps": "10", "TimeSpan": span},
                                     {"Container": {"Format": "gif"}, "Video": {"Fps": "10"}, "Clip": {"TimeSpan": span}})):
        template = engine.add_template_body({"Name": f"clock-{number}", "TemplateConfig": json.dumps(config)})
        info = engine.template_info(template.id)["TemplateConfig"]
        assert info["TimeSpan"] == answered
        # what GetVodTemplate answered, sent again, is the same template
        again = engine.update_template(template.id, body={"TemplateConfig": info})
        assert (again.seek, again.duration, again.trim_end) == (template.seek, template.duration, template.trim_end)


@pytest.mark.parametrize("config, code, words", [
    ({**BODY["TemplateConfig"], "Video": {"Fps": "15"}}, ErrorCode.INVALID_PARAMETER, ["mixes", "TemplateConfig.Video"]),
    ({**NESTED_CONFIG, "Video": {"Fps": "15", "Crf": "20"}}, ErrorCode.INVALID_PARAMETER, ["Crf", "TemplateConfig.Video"]),
    ({**NESTED_CONFIG, "Container": "gif"}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Container", "object"]),
    ({**NESTED_CONFIG, "Video": {"Fps": "99"}}, ErrorCode.INVALID_PARAMETER, ["TemplateConfig.Video.Fps", "60"]),
    ({**NESTED_CONFIG, "Clip": {"TimeSpan": {"Seek": "00:61:00", "Duration": "1"}}}, ErrorCode.INVALID_TIME_RANGE,
     ["TemplateConfig.Clip.TimeSpan.Seek", "hh:mm:ss"]),
    ({**BODY["TemplateConfig"], "TimeSpan": {"Seek": "-00:00:01", "Duration": "1"}}, ErrorCode.INVALID_TIME_RANGE,
     ["seek", "hh:mm:ss"]),
])
def test_bad_nested_bodies_and_times_are_refused_and_nothing_is_stored(engine, config, code, words):
    with pytest.raises(EngineError) as info:
        engine.add_template_body({**BODY, "TemplateConfig": json.dumps(config)})
    assert info.value.code is code
    assert all(w in info.value.message for w in words), info.value.message
    assert engine.templates() == []


def test_update_with_a_nested_body_replaces_the_config(engine):
    template = engine.add_template_body(BODY)
    new = engine.update_template(template.id, body={"TemplateConfig": json.dumps(
        {"Container": {"Format": "gif"}, "Video": {"Fps": 5}, "Clip": {"TimeSpan": {"End": "00:00:01"}}})})
    assert (new.format, new.fps, new.width, new.mode, new.trim_end, new.set_as_cover) == ("gif", 5, None, "Trim", 1, False)


def test_merge_config_takes_changes_in_either_shape():
    from animated_previews.engine.store.templates import merge_config

    current = BODY["TemplateConfig"]
    nested_changes = {"Video": {"Fps": "20", "Width": None}, "Clip": {"TimeSpan": {"End": "00:00:01"}}}
    flat_changes = {"Fps": "20", "Width": None, "TimeSpan": {"End": "00:00:01"}}
    merged = merge_config(current, nested_changes)
    assert merged == merge_config(current, flat_changes)
    assert merged == {"Format": "webp", "Fps": "20", "Height": "360", "SetAsCover": "true",
                      "TimeSpan": {"Seek": "5", "End": "00:00:01"}}


def test_clock_times_through_keyword_fields(engine):
    template = engine.add_template("clock-flags", format="gif", fps=10, seek="00:00:01.5", duration="00:00:02")
    assert (template.seek, template.duration) == (1.5, 2)
