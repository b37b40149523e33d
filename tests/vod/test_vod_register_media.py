"""RegisterMedia: only files under a media root are registered, however the FileURL tries to leave it.

Accepted: ``file://`` URLs and plain paths (absolute, or relative to a root) whose real file, with
symlinks and ``..`` resolved, lies under a media root. Refused with Forbidden, naming the rule:
other schemes, no media root at all, ``file:///etc/passwd``, ``..`` escapes, symlinks pointing out.
A missing file under a root is InputNotFound; a file that is not a video is InvalidVideoFormat, and
a refused request registers nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import clipmaker
from animated_previews.engine import EngineError, ErrorCode, Service


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("media") / "c.mp4", fps=10, frames=10, width=64, height=48)


@pytest.fixture
def library(tmp_path, clip) -> Path:
    """A media root holding talk.mp4 and sub/intro.mp4, and a private folder beside it."""
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    shutil.copy(clip, root / "talk.mp4")
    shutil.copy(clip, root / "sub" / "intro.mp4")
    (tmp_path / "private").mkdir()
    shutil.copy(clip, tmp_path / "private" / "secret.mp4")
    return root


@pytest.fixture
def engine(tmp_path):
    with Service(store=tmp_path / "store.db") as e:
        yield e


def refused(engine, url: str, roots) -> EngineError:
    with pytest.raises(EngineError) as error:
        engine.register_media([{"FileURL": url}], roots)
    return error.value


def test_file_urls_and_paths_under_a_root_become_videos(engine, library):
    url = (library / "talk.mp4").as_uri()
    answer = engine.register_media([{"FileURL": url, "Title": "Keynote"},
                                    {"FileURL": str(library / "sub" / "intro.mp4")},
                                    {"FileURL": "sub/intro.mp4"}], [library])
    assert [a["FileURL"] for a in answer] == [url, str(library / "sub" / "intro.mp4"), "sub/intro.mp4"]
    assert [a["NewRegister"] for a in answer] == [True, True, False]  # the relative path is the same file
    assert answer[1]["MediaId"] == answer[2]["MediaId"]
    talk, intro = engine.video(answer[0]["MediaId"]), engine.video(answer[1]["MediaId"])
    assert (talk.title, talk.path, talk.width, talk.height, talk.codec) == ("Keynote", library / "talk.mp4", 64, 48, "h264")
    assert intro.title == "intro"  # no Title: the file's stem
    assert engine.video_info(talk.id)["Video"]["Title"] == "Keynote"


def test_registering_again_answers_the_same_media_id_not_new(engine, library):
    [first] = engine.register_media([{"FileURL": str(library / "talk.mp4")}], [library])
    [again] = engine.register_media([{"FileURL": (library / "talk.mp4").as_uri(), "Title": "ignored"}], [library])
    assert (again["MediaId"], again["NewRegister"]) == (first["MediaId"], False)
    assert engine.video(first["MediaId"]).title == "talk"
    assert engine.add_video(library / "talk.mp4").id == first["MediaId"]


def test_percent_encoded_file_urls_name_their_file(engine, library, clip):
    shutil.copy(clip, library / "two words.mp4")
    [answer] = engine.register_media([{"FileURL": "file://localhost" + (library / "two%20words.mp4").as_posix()}],
                                     [library])
    assert engine.video(answer["MediaId"]).path == library / "two words.mp4"


def test_without_a_media_root_nothing_is_registered(engine, library):
    error = refused(engine, str(library / "talk.mp4"), [])
    assert error.code is ErrorCode.FORBIDDEN and "media root" in error.message
    assert engine.videos() == []


@pytest.mark.parametrize("url", ["http://example.com/talk.mp4", "https://example.com/talk.mp4",
                                 "ftp://example.com/talk.mp4", "s3://bucket/talk.mp4"])
def test_other_schemes_are_forbidden_not_fetched(engine, library, url):
    error = refused(engine, url, [library])
    assert error.code is ErrorCode.FORBIDDEN
    assert "file://" in error.message and url.split(":")[0] in error.message


def test_a_file_url_on_another_host_is_forbidden(engine, library):
    error = refused(engine, "file://fileserver" + (library / "talk.mp4").as_posix(), [library])
    assert error.code is ErrorCode.FORBIDDEN and "fileserver" in error.message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "/etc/passwd", "../private/secret.mp4", "sub/../../private/secret.mp4"])
def test_paths_outside_every_root_are_forbidden(engine, library, url):
    error = refused(engine, url, [library])
    assert error.code is ErrorCode.FORBIDDEN and "under a media root" in error.message
    assert engine.videos() == []


def test_dot_dot_inside_an_absolute_path_cannot_climb_out(engine, library, tmp_path):
    error = refused(engine, str(library) + "/../private/secret.mp4", [library])
    assert error.code is ErrorCode.FORBIDDEN and str(tmp_path / "private" / "secret.mp4") in error.message


def test_a_symlink_pointing_out_of_the_root_is_forbidden(engine, library, tmp_path):
    (library / "innocent.mp4").symlink_to(tmp_path / "private" / "secret.mp4")
    (library / "escape").symlink_to(tmp_path / "private", target_is_directory=True)
    for url in (str(library / "innocent.mp4"), (library / "innocent.mp4").as_uri(), "escape/secret.mp4"):
        assert refused(engine, url, [library]).code is ErrorCode.FORBIDDEN
    assert engine.videos() == []


def test_a_symlink_inside_the_root_registers_its_target(engine, library):
    (library / "alias.mp4").symlink_to(library / "sub" / "intro.mp4")
    [answer] = engine.register_media([{"FileURL": str(library / "alias.mp4")}], [library])
    assert engine.video(answer["MediaId"]).path == library / "sub" / "intro.mp4"


def test_a_root_that_is_itself_a_symlink_still_works(engine, library, tmp_path):
    linked_root = tmp_path / "linked-media"
    linked_root.symlink_to(library, target_is_directory=True)
    [answer] = engine.register_media([{"FileURL": str(linked_root / "talk.mp4")}], [linked_root])
    assert answer["NewRegister"] is True


def test_any_of_several_roots_admits_a_file(engine, library, tmp_path):
    [answer] = engine.register_media([{"FileURL": str(tmp_path / "private" / "secret.mp4")}],
                                     [library, tmp_path / "private"])
    assert answer["NewRegister"] is True


def test_a_missing_file_under_a_root_is_input_not_found(engine, library):
    error = refused(engine, str(library / "nope.mp4"), [library])
    assert error.code is ErrorCode.INPUT_NOT_FOUND and "nope.mp4" in error.message
    assert refused(engine, str(library / "sub"), [library]).code is ErrorCode.INPUT_NOT_FOUND  # a folder


def test_a_refused_item_registers_none_of_the_request(engine, library):
    (library / "notes.mp4").write_bytes(b"not a video" * 100)
    items = [{"FileURL": str(library / "talk.mp4")}, {"FileURL": str(library / "notes.mp4")}]
    with pytest.raises(EngineError) as bad:
        engine.register_media(items, [library])
    assert bad.value.code is ErrorCode.INVALID_VIDEO_FORMAT
    with pytest.raises(EngineError) as outside:
        engine.register_media([{"FileURL": str(library / "talk.mp4")}, {"FileURL": "file:///etc/passwd"}], [library])
    assert outside.value.code is ErrorCode.FORBIDDEN
    assert engine.videos() == []


@pytest.mark.parametrize("item", [{"FileURL": ""}, {"Title": "no url"}, {"FileURL": 7}, "talk.mp4",
                                  {"FileURL": "talk.mp4", "Title": "x" * 129}, {"FileURL": "talk.mp4", "Title": 5}])
def test_malformed_items_are_invalid_parameters(engine, library, item):
    with pytest.raises(EngineError) as error:
        engine.register_media([item], [library])
    assert error.value.code is ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize("url", ["file:///srv/a%00b.mp4", "sub/a\x00b.mp4"])
def test_a_nul_in_the_path_is_an_invalid_parameter_not_a_crash(engine, library, url):
    with pytest.raises(EngineError) as error:
        engine.register_media([{"FileURL": url}], [library])
    assert error.value.code is ErrorCode.INVALID_PARAMETER and "NUL" in error.value.message


def test_a_symlink_loop_under_the_root_is_input_not_found(engine, library):
    (library / "loop-a.mp4").symlink_to(library / "loop-b.mp4")
    (library / "loop-b.mp4").symlink_to(library / "loop-a.mp4")
    with pytest.raises(EngineError) as error:
        engine.register_media([{"FileURL": str(library / "loop-a.mp4")}], [library])
    assert error.value.code is ErrorCode.INPUT_NOT_FOUND
