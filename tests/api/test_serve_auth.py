"""Every request is authenticated before anything runs, and refused with the service's own code."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from animated_previews.engine.api.signature import sign


def signed(running, params: dict, *, secret: str | None = None, timestamp: float | None = None,
           nonce: str | None = None, method: str = "GET") -> dict:
    common = {"Format": "JSON", "Version": "2017-03-21", "AccessKeyId": running.key_id,
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
              "SignatureNonce": nonce or uuid.uuid4().hex,
              "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if timestamp is None else timestamp))}
    all_params = {**common, **params}
    all_params["Signature"] = sign(secret or running.secret, method, all_params)
    return all_params


def send(running, params: dict, method: str = "GET") -> tuple[int, dict]:
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    if method == "GET":
        request = urllib.request.Request(f"{running.url}/?{query}")
    else:
        request = urllib.request.Request(f"{running.url}/", data=query.encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_signed_request_is_answered_with_a_request_id(running):
    status, body = send(running, signed(running, {"Action": "ListVodTemplate"}))
    assert status == 200 and body["VodTemplateInfoList"] == [] and len(body["RequestId"]) == 36


def test_a_signed_post_with_the_parameters_in_the_body_is_answered(running):
    status, body = send(running, signed(running, {"Action": "ListVodTemplate"}, method="POST"), method="POST")
    assert status == 200 and "RequestId" in body


def test_a_replayed_nonce_is_refused(running):
    params = signed(running, {"Action": "ListVodTemplate"})
    assert send(running, params)[0] == 200
    status, body = send(running, params)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def test_a_forged_request_does_not_spend_the_nonce(running):
    nonce = uuid.uuid4().hex
    forged = signed(running, {"Action": "ListVodTemplate"}, secret="guess", nonce=nonce)
    assert send(running, forged)[1]["Code"] == "SignatureDoesNotMatch"
    assert send(running, signed(running, {"Action": "ListVodTemplate"}, nonce=nonce))[0] == 200


def test_a_stale_or_future_timestamp_is_refused(running):
    for offset in (-16 * 60, 16 * 60):
        status, body = send(running, signed(running, {"Action": "ListVodTemplate"}, timestamp=time.time() + offset))
        assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_an_unsigned_request_is_refused(running):
    status, body = send(running, {"Action": "ListVodTemplate", "AccessKeyId": running.key_id})
    assert (status, body["Code"]) == (400, "MissingParameter") and "Signature" in body["Message"]
    assert body["HostId"] and body["RequestId"]


def test_a_tampered_parameter_breaks_the_signature(running):
    params = signed(running, {"Action": "GetVideoInfo", "VideoId": "a"})
    params["VideoId"] = "b"
    status, body = send(running, params)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert body["Message"].split(":", 1)[1].startswith("GET&%2F&AccessKeyId%3D")


def test_a_revoked_key_is_refused(running):
    with running.service() as service:
        service.revoke_access_key(running.key_id)
    status, body = send(running, signed(running, {"Action": "ListVodTemplate"}))
    assert (status, body["Code"]) == (404, "InvalidAccessKeyId.NotFound")


def test_unknown_actions_and_missing_parameters_are_named(running):
    status, body = send(running, signed(running, {"Action": "NoSuchThing"}))
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")
    status, body = send(running, signed(running, {"Action": "GetVideoInfo"}))
    assert (status, body["Code"]) == (400, "MissingParameter") and "VideoId" in body["Message"]


def test_nothing_else_is_served(running):
    for path in ("/admin", "/images/", "/gallery"):
        try:
            urllib.request.urlopen(running.url + path, timeout=10)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
        assert status in (403, 404), path
