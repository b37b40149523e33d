"""The request signature is the service's: what its SDK signs verifies here, and nothing else does."""

from __future__ import annotations

import pytest

from animated_previews.engine.api.signature import matches, percent_encode, sign, string_to_sign


def test_percent_encoding_follows_rfc_3986_as_the_service_asks():
    assert percent_encode("a b*c~d/e+f=") == "a%20b%2Ac~d%2Fe%2Bf%3D"
    assert percent_encode("视频") == "%E8%A7%86%E9%A2%91"


def test_the_string_to_sign_sorts_every_parameter_but_the_signature():
    params = {"Action": "ListDynamicImage", "VideoId": "v 1", "Signature": "ignored", "AccessKeyId": "k"}
    assert string_to_sign("get", params) == "GET&%2F&AccessKeyId%3Dk%26Action%3DListDynamicImage%26VideoId%3Dv%25201"


def test_a_known_signature():
    """HMAC-SHA1 keyed with secret + "&", base64, over the string above (computed independently with
    openssl: printf '%s' 'GET&%2F&...' | openssl dgst -sha1 -hmac 'secret&' -binary | base64)."""
    params = {"Action": "ListDynamicImage", "VideoId": "v 1", "AccessKeyId": "k"}
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"secret&", string_to_sign("GET", params).encode(), hashlib.sha1).digest())
    assert sign("secret", "GET", params) == expected.decode()
    assert matches("secret", "GET", {**params, "Signature": expected.decode()})
    assert not matches("other", "GET", {**params, "Signature": expected.decode()})
    assert not matches("secret", "POST", {**params, "Signature": expected.decode()})


def test_what_the_official_sdk_signs_verifies_here():
    pytest.importorskip("aliyunsdkcore")
    from aliyunsdkcore.auth.composer import rpc_signature_composer

    query = {"Action": "RegisterMedia", "Version": "2017-03-21",
             "RegisterMetadatas": '[{"FileURL": "file:///videos/a b*~.mp4", "Title": "t"}]'}
    body = {"Note": "x+y"}
    url, sdk_string = rpc_signature_composer.get_signed_url(dict(query), "key-id", "the secret", "JSON", "POST", body)
    from urllib.parse import parse_qsl, urlsplit

    sent = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    sent.update(body)
    assert string_to_sign("POST", sent) == sdk_string
    assert matches("the secret", "POST", sent)
    assert not matches("the secret!", "POST", sent)
