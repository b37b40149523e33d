"""The service's own Python SDK, unmodified but for its endpoint, works against `engine serve`.

The feature documentation's flow: AddVodTemplate, RegisterMedia, SubmitDynamicImageJob (the
documentation's own example), then ListDynamicImage and GetVideoInfo; the image is fetched from
its FileURL with urllib and opened with Pillow.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
from PIL import Image

pytest.importorskip("aliyunsdkvod")
from aliyunsdkcore.acs_exception.exceptions import ServerException  # noqa: E402
from aliyunsdkcore.client import AcsClient  # noqa: E402
from aliyunsdkvod.request.v20170321 import (AddVodTemplateRequest, GetVideoInfoRequest,  # noqa: E402
                                            ListDynamicImageRequest, RegisterMediaRequest,
                                            SubmitDynamicImageJobRequest)


def client_for(running, key_id=None, secret=None) -> AcsClient:
    client = AcsClient(key_id or running.key_id, secret or running.secret, "cn-shanghai", auto_retry=False)
    client.add_endpoint("cn-shanghai", "vod", running.endpoint)
    return client


def call(client: AcsClient, request) -> dict:
    return json.loads(client.do_action_with_exception(request))


def add_template(client, config: dict, name: str = "social-media-preview") -> str:
    request = AddVodTemplateRequest.AddVodTemplateRequest()
    request.set_Name(name)
    request.set_TemplateType("DynamicImage")
    request.set_TemplateConfig(json.dumps(config))
    return call(client, request)["VodTemplateId"]


def register(client, file_url: str) -> dict:
    request = RegisterMediaRequest.RegisterMediaRequest()
    request.set_RegisterMetadatas(json.dumps([{"FileURL": file_url, "Title": "Talk show"}]))
    return call(client, request)


def test_the_documented_flow_end_to_end(running):
    client = client_for(running)
    template_id = add_template(client, {"Format": "webp", "Fps": "10", "Width": "160", "Height": "120",
                                        "TimeSpan": {"Seek": "0.5", "Duration": "1"}, "SetAsCover": "true"})
    registered = register(client, running.clip.as_uri())
    (media,) = registered["RegisteredMediaList"]
    assert media["NewRegister"] is True and media["FileURL"] == running.clip.as_uri()
    video_id = media["MediaId"]
    assert register(client, running.clip.as_uri())["RegisteredMediaList"][0] == {**media, "NewRegister": False}

    # the documentation's Python example, as written there but for the ids
    request = SubmitDynamicImageJobRequest.SubmitDynamicImageJobRequest()
    request.set_VideoId(video_id)
    request.set_DynamicImageTemplateId(template_id)
    job_id = call(client, request)["DynamicImageJob"]["JobId"]
    assert job_id
    running.run_queue()

    request = ListDynamicImageRequest.ListDynamicImageRequest()
    request.set_VideoId(video_id)
    (image,) = call(client, request)["DynamicImageList"]
    assert (image["JobId"], image["VideoId"], image["Format"], image["Width"], image["Height"]) == (
        job_id, video_id, "webp", 160, 120)
    assert image["FileURL"].startswith(running.url + "/images/") and "auth_key=" in image["FileURL"]
    with urllib.request.urlopen(image["FileURL"], timeout=30) as answer:
        assert answer.headers["Content-Type"] == "image/webp"
        data = answer.read()
    assert len(data) == image["FileSize"]
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "WEBP" and picture.size == (160, 120) and picture.n_frames >= 2

    request = GetVideoInfoRequest.GetVideoInfoRequest()
    request.set_VideoId(video_id)
    video = call(client, request)["Video"]
    assert video["VideoId"] == video_id and video["Title"] == "Talk show" and video["Status"] == "Normal"
    assert video["CoverURL"].startswith(running.url + "/images/") and "auth_key=" in video["CoverURL"]
    assert 1.9 < video["Duration"] < 2.1


def refused(client, request) -> ServerException:
    with pytest.raises(ServerException) as caught:
        client.do_action_with_exception(request)
    return caught.value


def list_request(video_id: str = "no-such-video"):
    request = ListDynamicImageRequest.ListDynamicImageRequest()
    request.set_VideoId(video_id)
    return request


def test_a_wrong_secret_is_told_apart_by_the_sdk_as_the_service_does(running):
    error = refused(client_for(running, secret="not-the-secret"), list_request())
    assert error.get_http_status() == 400
    # the server answered SignatureDoesNotMatch with its string to sign; the SDK found it equal to
    # its own, so the secret (not the request) is wrong
    assert error.get_error_code() == "InvalidAccessKeySecret"


def test_an_unknown_key_is_refused(running):
    error = refused(client_for(running, key_id="LTAIunknownkey000000000", secret="x"), list_request())
    assert (error.get_http_status(), error.get_error_code()) == (404, "InvalidAccessKeyId.NotFound")


def test_an_unknown_video_answers_the_services_code(running):
    error = refused(client_for(running), list_request("no-such-video"))
    assert (error.get_http_status(), error.get_error_code()) == (404, "InvalidVideo.NotFound")
    assert error.get_request_id()


def test_registering_a_file_outside_the_media_roots_is_forbidden(running):
    for url in ("file:///etc/passwd", (running.media / ".." / "store" / "store.db").as_uri(), "http://example.com/a.mp4"):
        request = RegisterMediaRequest.RegisterMediaRequest()
        request.set_RegisterMetadatas(json.dumps([{"FileURL": url}]))
        error = refused(client_for(running), request)
        assert (error.get_http_status(), error.get_error_code()) == (403, "Forbidden"), url


def test_an_image_link_without_its_token_or_outside_the_folder_is_refused(running):
    client = client_for(running)
    template_id = add_template(client, {"Format": "gif", "Fps": "5", "Width": "80", "TimeSpan": {"Seek": "0", "Duration": "0.4"}})
    video_id = register(client, running.clip.as_uri())["RegisteredMediaList"][0]["MediaId"]
    request = SubmitDynamicImageJobRequest.SubmitDynamicImageJobRequest()
    request.set_VideoId(video_id)
    request.set_DynamicImageTemplateId(template_id)
    call(client, request)
    running.run_queue()
    (image,) = call(client, list_request(video_id))["DynamicImageList"]
    bare = image["FileURL"].split("?")[0]
    for url in (bare, bare + "?auth_key=1-2-0-3", running.url + "/images/../store/store.db",
                running.url + "/images/%2e%2e/store/store.db", running.url + "/gallery"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url, timeout=10)
        assert caught.value.code in (403, 404), url
    with urllib.request.urlopen(image["FileURL"], timeout=10) as answer:
        assert Image.open(io.BytesIO(answer.read())).format == "GIF"
