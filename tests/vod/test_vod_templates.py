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
