"""POSTing an event to a callback URL, signed so the receiver can trust it.

Signature: ``X-Engine-Signature`` holds the hex HMAC-SHA256, keyed with the callback secret, of
``<timestamp>.<body>``, where ``<timestamp>`` is the ``X-Engine-Timestamp`` header (Unix seconds)
and ``<body>`` the exact request bytes. Signing the timestamp lets a receiver refuse replays of an
old request (compare it with its clock); ``X-Engine-Event-Id`` lets it drop a repeat delivery.
Any answer other than 2xx, a timeout or a refused connection counts as not delivered.

Each POST goes straight to the URL's host (no proxy) with ``http.client``, under one deadline for
the whole request (name lookup, connect, TLS, sending, and the status line and headers of the
answer): a watchdog shuts the socket at the deadline, so a receiver trickling its answer a byte at a
time cannot hold it longer. Redirects are never followed: a 3xx is a failed attempt (the signature
headers never go to another host). Only http(s) URLs are POSTed to
(:func:`engine.store.settings.check_callback_url`); any other is :class:`DeliveryRefused`, which no
retry can change.

With the service's callback authentication on (SetMessageCallback's AuthSwitch), each POST also
carries the hosted service's own headers, so receivers written for it check them unchanged:
``X-VOD-TIMESTAMP`` (Unix seconds) and ``X-VOD-SIGNATURE``, the hex MD5 of
``<CallbackURL>|<timestamp>|<AuthKey>``. That signature covers the URL and the time but not the body;
the engine's HMAC over the body is sent beside it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from ..errors import EngineError
from ..store.settings import check_callback_url

SIGNATURE_HEADER = "X-Engine-Signature"
TIMESTAMP_HEADER = "X-Engine-Timestamp"
EVENT_ID_HEADER = "X-Engine-Event-Id"
VOD_TIMESTAMP_HEADER = "X-VOD-TIMESTAMP"
VOD_SIGNATURE_HEADER = "X-VOD-SIGNATURE"
SECRET_ENV = "ENGINE_CALLBACK_SECRET"
TIMEOUT_S = 10.0
"""The deadline of one POST, from name lookup to the answer's headers."""


class DeliveryFailed(Exception):
    """The receiver did not take the event (the message says how it failed)."""

    permanent = False


class DeliveryRefused(DeliveryFailed):
    """The URL is not one this engine POSTs to (not http(s), no host, ...): no retry can help."""

    permanent = True


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


class _Watchdog:
    """Shuts the sockets it watches when ``deadline`` (time.monotonic) passes: a blocked send or
    receive then returns at once, however the peer paces its bytes."""

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                self._shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:  # the plain socket's shutdown, also under TLS: wakes a thread blocked in recv or send
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _addresses(host: str, port: int, deadline: float) -> list[tuple]:
    """getaddrinfo, within the deadline: a literal address at once; a name in a helper thread, so a
    resolver that hangs costs this request its deadline and no more."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    found: dict[str, object] = {}

    def resolve() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    helper = threading.Thread(target=resolve, name="callback-resolve", daemon=True)
    helper.start()
    helper.join(_remaining(deadline))
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    if "addresses" not in found:
        raise TimeoutError(f"resolving {host} took too long")
    return found["addresses"]  # type: ignore[return-value]


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in _addresses(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError) and deadline <= time.monotonic():
                break
    raise error


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()  # certificates and host names checked
    return _tls


def post_event(url: str, body: bytes, event_id: str, secret: str | None, *, timeout: float = TIMEOUT_S,
               vod_auth_key: str | None = None) -> int:
    """POST ``body``; returns the HTTP status on 2xx, raises :class:`DeliveryFailed` otherwise
    (:class:`DeliveryRefused` for a URL this engine never POSTs to). ``secret`` adds the engine's
    HMAC signature, ``vod_auth_key`` the service's X-VOD headers. The whole request, answer headers
    included, ends within ``timeout`` seconds; redirects are not followed."""
    try:
        url = check_callback_url(url)
    except EngineError as error:
        raise DeliveryRefused(f"not sent: {error.message}") from None
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id, TIMESTAMP_HEADER: timestamp,
               "User-Agent": "animated-previews-engine", "Connection": "close"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    if vod_auth_key:
        headers[VOD_TIMESTAMP_HEADER] = timestamp
        headers[VOD_SIGNATURE_HEADER] = vod_signature(url, timestamp, vod_auth_key)

    deadline = time.monotonic() + timeout
    watchdog = _Watchdog(deadline)
    sock: socket.socket | None = None
    connection: http.client.HTTPConnection | None = None
    try:
        sock = _connect(host, port, deadline)
        watchdog.watch(sock)
        if https:
            sock.settimeout(_remaining(deadline))
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
            watchdog.watch(sock)
        connection = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(host, port)
        connection.sock = sock  # connected (and wrapped) here, within the deadline
        sock.settimeout(_remaining(deadline))
        connection.request("POST", target, body=body, headers=headers)
        sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        status, location = response.status, response.getheader("Location")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if watchdog.fired or time.monotonic() >= deadline:
            raise DeliveryFailed(f"{url}: no answer within {timeout:g} s") from None
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise DeliveryFailed(f"{url}: {reason}") from None
    finally:
        watchdog.cancel()
        if connection is not None:
            connection.close()
        elif sock is not None:
            sock.close()
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        where = f" to {location[:200]!r}" if location else ""
        raise DeliveryFailed(f"HTTP {status} from {url}: a redirect{where}, not followed")
    raise DeliveryFailed(f"HTTP {status} from {url}")
