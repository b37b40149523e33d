"""Template bodies, hostile or near-valid, through AddVodTemplate and UpdateVodTemplate
(``Service.add_template_body``, ``Service.update_template(body=...)``): a Template or an EngineError
with a code, never another exception; a template taken reads back as answered; the store keeps
answering. Generators and checks: bench/fuzz.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from animated_previews.engine.errors import EngineError, ErrorCode
from bench import fuzz


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    with fuzz.template_target(tmp_path_factory.mktemp("fuzz-templates")) as target:
        yield target


@settings(fuzz.SUITE, max_examples=120)
@given(body=fuzz.template_body())
def test_every_template_body_ends_as_a_template_or_a_coded_error(target, body):
    out = fuzz.check_template_body(target, body)
    assert not out.problems, "\n".join(out.problems)


def test_the_fuzzed_store_still_takes_a_plain_template(target):
    template = target.service.add_template("after the fuzz", format="webp", fps=12, seek=1, duration=2)
    assert target.service.template("after the fuzz") == template


# -- what the fuzzing found, kept as plain regression tests ---------------------------------------------

@pytest.mark.parametrize("body", [[1], "text", 5, []])
def test_an_update_body_that_is_not_an_object_is_refused(target, body):
    with pytest.raises(EngineError) as caught:
        target.service.update_template(target.target_id, body=body)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize("config", [
    '{"Format": "gif", "Fps": ' + "1" * 5000 + ', "TimeSpan": {"Duration": 1}}',
    {"Format": "gif", "Fps": 10**400, "TimeSpan": {"Duration": 1}},
    {"Format": "gif", "Fps": 5, "TimeSpan": {"Seek": "9" * 5000 + ":00:00", "Duration": 1}},
])
def test_numbers_past_every_limit_in_a_body_are_refused(target, config):
    with pytest.raises(EngineError) as caught:
        target.service.add_template_body({"Name": "huge numbers", "TemplateConfig": config})
    assert caught.value.code in (ErrorCode.INVALID_PARAMETER, ErrorCode.INVALID_TIME_RANGE)


def test_adding_a_video_from_an_unknown_users_home_is_input_not_found(target):
    with pytest.raises(EngineError) as caught:
        target.service.add_video("~nosuchuser-fuzz/a.mp4")
    assert caught.value.code is ErrorCode.INPUT_NOT_FOUND
