"""POSTing an event to a callback URL, signed so the receiver can trust it.

Signature: ``X-Engine-Signature`` holds the hex HMAC-SHA256, keyed with the callback secret, of
``<timestamp>.<body>``, where ``<timestamp>`` is the ``X-Engine-Timestamp`` header (Unix seconds)
and ``<body>`` the exact request bytes. Signing the timestamp lets a receiver refuse replays of an
old request (compare it with its clock); ``X-Engine-Event-Id`` lets it drop a repeat delivery.
Any answer other than 2xx, a timeout or a refused connection counts as not delivered.
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
SECRET_ENV = "ENGINE_CALLBACK_SECRET"
TIMEOUT_S = 10.0


class DeliveryFailed(Exception):
    """The receiver did not take the event (the message says how it failed)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver runs: does ``signature`` match this timestamp and body?"""
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def post_event(url: str, body: bytes, event_id: str, secret: str | None, *, timeout: float = TIMEOUT_S) -> int:
    """POST ``body``; returns the HTTP status on 2xx, raises :class:`DeliveryFailed` otherwise."""
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id, TIMESTAMP_HEADER: timestamp,
               "User-Agent": "animated-previews-engine"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{url}: {reason}") from None
