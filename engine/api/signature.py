"""The service's request signature (RPC style, HMAC-SHA1, SignatureVersion 1.0): make and check it.

Every parameter but ``Signature`` (query and form body alike) is sorted by name, names and values
are percent-encoded per RFC 3986 (space ``%20``, ``*`` ``%2A``, ``~`` kept), joined as
``name=value&...``, and the string to sign is ``METHOD&%2F&`` + that query percent-encoded once
more. The signature is base64(HMAC-SHA1(secret + "&", string to sign)). The SDKs make exactly this,
so a request they sign verifies here, and tests can sign requests without an SDK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping
from urllib.parse import quote


def percent_encode(text: str) -> str:
    """RFC 3986 encoding: unreserved characters (letters, digits, ``-_.~``) kept, all else %XX."""
    return quote(text, safe="-_.~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&<canonical query, encoded>`` over every parameter but ``Signature``."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                         for k, v in sorted(params.items()) if k != "Signature")
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def signature(secret: str, text: str) -> str:
    """base64(HMAC-SHA1(secret + "&", text))."""
    digest = hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def sign(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The ``Signature`` value for ``params`` sent with ``method``."""
    return signature(secret, string_to_sign(method, params))


def matches(secret: str, method: str, params: Mapping[str, str]) -> bool:
    """Whether ``params["Signature"]`` is ``params``' signature under ``secret`` (constant time)."""
    return hmac.compare_digest(sign(secret, method, params), params.get("Signature", ""))
