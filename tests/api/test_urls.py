"""Image links carry an expiring token only the store's key can make, bound to their path."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from animated_previews.engine.vod.urls import sign_url, token_valid


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["auth_key"][0]


def test_a_signed_link_is_valid_for_its_path_until_it_expires():
    url = sign_url("http://h:1/images/v/j%20k.gif", "key", ttl_s=60, now=1000)
    token = _token(url)
    expiry, rand, uid, digest = token.split("-")
    assert (int(expiry), uid, len(digest)) == (1060, "0", 32)
    assert token_valid("/images/v/j%20k.gif", token, "key", now=1059)
    assert not token_valid("/images/v/j%20k.gif", token, "key", now=1061)  # expired
    assert not token_valid("/images/v/other.gif", token, "key", now=1000)  # another path
    assert not token_valid("/images/v/j%20k.gif", token, "another key", now=1000)
    assert not token_valid("/images/v/j%20k.gif", None, "key", now=1000)
    assert not token_valid("/images/v/j%20k.gif", token.replace(f"{1060}-", "9999999999-", 1), "key", now=1000)


def test_two_links_to_one_image_differ():
    assert sign_url("http://h/images/a.gif", "k") != sign_url("http://h/images/a.gif", "k")
