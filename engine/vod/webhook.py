"""POSTing an event to a callback URL, signed so the receiver can trust it.

Signature: ``X-Engine-Signature`` holds the hex HMAC-SHA256, keyed with the callback secret, of
``<timestamp>.<body>``, where ``<timestamp>`` is the ``X-Engine-Timestamp`` header (Unix seconds)
and ``<body>`` the exact request bytes. Signing the timestamp lets a receiver refuse replays of an
old request (compare it with its clock); ``X-Engine-Event-Id`` lets it drop a repeat delivery.
Any answer other than 2xx, a timeout or a refused connection counts as not delivered.

With the service's callback authentication on (SetMessageCallback's AuthSwitch), each POST also
carries the hosted service's own headers, so receivers written for it check them unchanged:
``X-VOD-TIMESTAMP`` (Unix seconds) and ``X-VOD-SIGNATURE``, the hex MD5 of
``<CallbackURL>|<timestamp>|<AuthKey>``. That signature covers the URL and the time but not the body;
the engine's HMAC over the body is sent beside it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request

SIGNATURE_HEADER = "X-Engine-Signature"
TIMESTAMP_HEADER = "X-Engine-Timestamp"
EVENT_ID_HEADER = "X-Engine-Event-Id"
VOD_TIMESTAMP_HEADER = "X-VOD-TIMESTAMP"
VOD_SIGNATURE_HEADER = "X-VOD-SIGNATURE"
SECRET_ENV = "ENGINE_CALLBACK_SECRET"
TIMEOUT_S = 10.0


class DeliveryFailed(Exception):
    """The receiver did not take the event (the message says how it failed)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver runs: does ``signature`` match this timestamp and body?"""
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def vod_signature(callback_url: str, timestamp: str, auth_key: str) -> str:
    """The service's ``X-VOD-SIGNATURE``: hex MD5 of ``<CallbackURL>|<timestamp>|<AuthKey>``."""
    return hashlib.md5(f"{callback_url}|{timestamp}|{auth_key}".encode()).hexdigest()


def verify_vod(callback_url: str, timestamp: str, auth_key: str, signature: str) -> bool:
    """What a receiver written for the service runs on ``X-VOD-TIMESTAMP`` / ``X-VOD-SIGNATURE``."""
    return hmac.compare_digest(vod_signature(callback_url, timestamp, auth_key), signature or "")


def post_event(url: str, body: bytes, event_id: str, secret: str | None, *, timeout: float = TIMEOUT_S,
               vod_auth_key: str | None = None) -> int:
    """POST ``body``; returns the HTTP status on 2xx, raises :class:`DeliveryFailed` otherwise.
    ``secret`` adds the engine's HMAC signature, ``vod_auth_key`` the service's X-VOD headers."""
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id, TIMESTAMP_HEADER: timestamp,
               "User-Agent": "animated-previews-engine"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    if vod_auth_key:
        headers[VOD_TIMESTAMP_HEADER] = timestamp
        headers[VOD_SIGNATURE_HEADER] = vod_signature(url, timestamp, vod_auth_key)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{url}: {reason}") from None
