"""RPC-style requests to a running ``engine serve``: signed GET/POST with a fuzzed Action and
parameters, a common parameter made odd, unsigned, garbled signatures and raw HTTP. Every one gets
an answer (never a dropped connection), JSON with a RequestId (but images and the gallery page),
a 2xx or 4xx status (a 5xx only for a failing store, which the fuzz never makes), and the server
logs no traceback. Generators and checks: bench/fuzz.py."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings

from animated_previews.engine.api.server import MAX_BODY
from api.test_serve_auth import send, signed
from bench import fuzz


@pytest.fixture
def target(running):
    """tests/api's running server, watched for tracebacks, as the fuzz addresses it."""
    with running.service() as service:
        video = service.add_video(running.clip)
    target = fuzz.ApiTarget(running.server, running.key_id, running.secret, video.id, running.clip)
    target.refresh_template()
    with fuzz.watch_server(running.server, target.errors):
        yield target


@settings(fuzz.SUITE, max_examples=120)
@given(case=fuzz.api_case())
def test_every_request_gets_a_json_answer_with_a_request_id_and_no_5xx(target, case):
    out = fuzz.check_api_request(target, case)
    assert not out.problems, "\n".join(out.problems)


@settings(fuzz.SUITE, max_examples=40)
@given(case=fuzz.raw_request())
def test_raw_http_never_drops_the_connection_or_answers_5xx(target, case):
    out = fuzz.check_api_request(target, case)
    assert not out.problems, "\n".join(out.problems)


def test_the_server_still_answers_a_plain_signed_request_after_the_fuzz(running, target):
    for _ in range(20):
        fuzz.check_api_request(target, fuzz.ApiCase("raw", raw=b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"))
    status, body = send(running, signed(running, {"Action": "ListVodTemplate"}))
    assert status == 200 and body["RequestId"]
    assert not target.errors


# -- what the fuzzing found, kept as plain regression tests ---------------------------------------------

def _raw(running, payload: bytes, *, half_close: bool = True) -> bytes:
    host, port = running.server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return fuzz._read_answer(sock, __import__("time").monotonic() + 10)


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "", "99999999999999999999"])
@pytest.mark.parametrize("path", ["/", "/gallery"])
def test_a_bad_content_length_is_a_400_with_a_request_id(running, target, length, path):
    data = _raw(running, f"POST {path} HTTP/1.1\r\nContent-Length: {length}\r\n\r\n".encode(), half_close=False)
    status_line, _, body = data.partition(b"\r\n\r\n")
    status = int(status_line.split(b" ")[1])
    # "/" reads the body: a 400, or 413 for one too big; elsewhere it is skipped (or the connection
    # closed after the answer), and the link check answers 403
    assert status in ((400, 413) if path == "/" else (400, 403)), data[:300]
    assert b"RequestId" in body
    assert not target.errors


@pytest.mark.parametrize("request_line", [b"PUT / HTTP/1.1", b"BREW / HTTP/1.1", b"GET / HTTP/2.0",
                                          b"GET /" + b"a" * 70000 + b" HTTP/1.1", b"\x00\x01 garbage"])
def test_http_level_refusals_are_json_4xx_with_a_request_id(running, target, request_line):
    data = _raw(running, request_line + b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert 400 <= status < 500, data[:300]
    import json
    answer = json.loads(body)
    assert answer["RequestId"] and answer["Code"]


@pytest.mark.parametrize("name,value", [
    ("TemplateConfig", "[" * 100_000 + "]" * 100_000),
    ("TemplateConfig", '{"Format": "gif", "Fps": ' + "1" * 5000 + "}"),
    ("OverrideParams", "[" * 100_000 + "]" * 100_000),
    ("OverrideParams", '{"Fps": ' + "1" * 5000 + "}"),
])
def test_json_parameters_past_the_parsers_limits_are_invalid_parameters(running, target, name, value):
    action = "AddVodTemplate" if name == "TemplateConfig" else "SubmitDynamicImageJob"
    params = {"Action": action, "Name": "deep json", "VideoId": target.video_id,
              "DynamicImageTemplateId": target.template_id, name: value}
    status, body = send(running, signed(running, params, method="POST"), method="POST")
    assert (status, body["Code"]) == (400, "InvalidParameter"), body
    assert not target.errors
    assert MAX_BODY > len(value)


@pytest.mark.parametrize("auth_key", ["\u00b2-a-0-b", "9" * 5000 + "-a-0-b", "99999999999-a-0-\u00e9",
                                      "\u0661\u0662-a-0-b"])
@pytest.mark.parametrize("path", ["/gallery", "/images/x.gif"])
def test_a_link_token_that_is_not_ascii_digits_is_a_403_not_a_dropped_connection(running, target, path, auth_key):
    from urllib.parse import quote
    data = _raw(running, f"GET {path}?auth_key={quote(auth_key)} HTTP/1.1\r\n\r\n".encode())
    assert data.split(b" ")[1] == b"403", data[:300]
    assert not target.errors


def test_register_media_of_an_unknown_users_home_is_not_found_not_a_500(running, target):
    import json
    params = {"Action": "RegisterMedia", "RegisterMetadatas": json.dumps([{"FileURL": "~nosuchuser-fuzz/a.mp4"}])}
    status, body = send(running, signed(running, params))
    assert (status, body["Code"]) == (404, "InvalidFile.NotFound"), body
    assert not target.errors


def test_an_empty_line_before_a_request_line_is_skipped_not_a_dropped_connection(running, target):
    import json
    data = _raw(running, b"\r\nGET /?Action=ListVodTemplate HTTP/1.1\r\n\r\n", half_close=False)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and json.loads(body)["Code"] == "MissingParameter", data[:300]
