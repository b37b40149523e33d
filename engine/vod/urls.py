"""Signed, expiring image URLs: ``?auth_key=<expiry>-<rand>-0-<md5>``, as the service's CDN signs them.

An image URL handed out by the service (ListDynamicImage's FileURL, GetVideoInfo's CoverURL, an
event's DynamicImageUrl) carries a token that only the holder of the store's URL signing key can
make: ``md5("<path>-<expiry>-<rand>-0-<key>")``, where ``<path>`` is the URL's path (percent-encoded,
as sent), ``<expiry>`` the Unix time after which the link is refused, ``<rand>`` a random string
and ``0`` the user id of the service's "type A" URL authentication. The service puts a timestamp
there and the CDN adds its TTL; here the expiry itself is carried, so the server needs no second
setting. A link without a token, with another path, or past its expiry is refused (403).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

URL_TTL_S = 24 * 3600
"""How long a signed image link works: long enough for a callback receiver or a page to fetch it."""


def _digest(path: str, expiry: int, rand: str, key: str) -> str:
    return hashlib.md5(f"{path}-{expiry}-{rand}-0-{key}".encode()).hexdigest()


def sign_url(url: str, key: str, *, ttl_s: float = URL_TTL_S, now: float | None = None) -> str:
    """``url`` with an ``auth_key`` for its path, valid for ``ttl_s`` seconds."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    rand = secrets.token_hex(8)
    path = urlsplit(url).path or "/"
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}auth_key={expiry}-{rand}-0-{_digest(path, expiry, rand, key)}"


def token_valid(path: str, auth_key: str | None, key: str, *, now: float | None = None) -> bool:
    """Whether ``auth_key`` was made by :func:`sign_url` with ``key`` for ``path`` (as sent, still
    percent-encoded) and has not expired."""
    parts = (auth_key or "").split("-")
    # ASCII only: "²" is a digit to isdigit() but not to int(), and compare_digest refuses non-ASCII
    # text; a real expiry has 10 digits (thousands would pass Python's int() digit limit).
    if len(parts) != 4 or not (parts[0].isascii() and parts[0].isdigit() and len(parts[0]) <= 18) \
            or parts[2] != "0" or not parts[3].isascii():
        return False
    expiry, rand, _, digest = int(parts[0]), parts[1], parts[2], parts[3]
    if expiry < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_digest(path, expiry, rand, key), digest)
