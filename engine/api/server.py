"""``engine serve``'s HTTP server: the VOD actions at ``/``, signed images, the gallery page.

Requests come as the service's SDKs send them (``GET`` or ``POST /`` with ``Action``, the common
parameters and a signature: :mod:`engine.api.signature`). Each one is authenticated before
anything else happens: an unknown or revoked AccessKeyId, a bad signature, a timestamp more than
15 minutes off, or a nonce seen before is refused with the service's own error code, and a
nonce is spent only by a request whose signature verified (so forged requests cannot use up a
caller's nonces). Then the action runs on a :class:`Service` (:mod:`engine.api.actions`), and the
answer is JSON with a ``RequestId``.

``/images/<path>?auth_key=...`` serves the store's images folder to holders of a signed link
(:mod:`engine.vod.urls`), with ETag, ranges and cache headers (:mod:`engine.api.files`);
``/gallery?auth_key=...`` the gallery page. Nothing is served unsigned.

The standard library's threading HTTP server is the stack: requests are short SQLite reads and
writes, the jobs run in worker processes, not in request threads, and it adds no dependency
(measured requests per second are in the README).
"""

from __future__ import annotations

import calendar
import json
import logging
import queue
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import EngineError
from ..vod import Service
from ..vod.urls import sign_url, token_valid
from . import files
from .actions import ACTIONS, ActionContext
from .errors import ApiError, from_engine_error, missing
from .gallery import render_gallery
from .signature import matches, string_to_sign

log = logging.getLogger(__name__)

API_VERSION = "2017-03-21"
TIMESTAMP_WINDOW_S = 15 * 60
"""A request signed more than this far from the server's clock is refused (InvalidTimeStamp.Expired)."""
NONCE_TTL_S = 2 * TIMESTAMP_WINDOW_S
"""How long a spent nonce is remembered: past it, the request's timestamp is refused anyway."""
MAX_BODY = 1 << 20
"""Largest request body accepted (the actions take a few short parameters)."""
HOST_ID = "animated-previews-engine"


@dataclass(frozen=True)
class ServeConfig:
    """What a server serves: the store, the folders RegisterMedia may read, its public address."""

    store: Path | None
    """The store file (None: ``$ENGINE_STORE`` or the per-user store)."""
    media_roots: tuple[Path, ...] = ()
    public_url: str | None = None
    """The URL clients reach this server by (default: http://HOST:PORT as bound)."""
    pool_size: int = 8
    """Store connections kept open for request threads."""


@dataclass
class _ServicePool:
    """Open Services for request threads: opening one per request costs ~1 ms of migrations check
    and WAL setup; a connection is used by one thread at a time."""

    store: Path | None
    size: int
    _free: "queue.LifoQueue[Service]" = field(default_factory=queue.LifoQueue)

    @contextmanager
    def service(self) -> Iterator[Service]:
        try:
            service = self._free.get_nowait()
        except queue.Empty:
            service = Service(self.store)
        try:
            yield service
        finally:
            if self._free.qsize() < self.size:
                self._free.put(service)
            else:
                service.close()

    def close(self) -> None:
        while not self._free.empty():
            self._free.get_nowait().close()


def request_id() -> str:
    """A RequestId shaped like the service's (upper-case UUID)."""
    return str(uuid.uuid4()).upper()


def _parse_timestamp(text: str) -> float:
    """UTC ``YYYY-MM-DDThh:mm:ssZ`` (the SDKs' form) -> Unix seconds."""
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise ApiError(400, "InvalidTimeStamp.Format", f"Specified time stamp {text!r} does not match the "
                                                        "format YYYY-MM-DDThh:mm:ssZ (UTC).") from None


def authenticate(service: Service, method: str, params: Mapping[str, str], *, now: float | None = None) -> str:
    """Check the request's key, timestamp, signature and nonce; the AccessKeyId, or ApiError."""
    for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise missing(name)
    if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
        raise ApiError(400, "InvalidSignatureMethod", f"Specified signature method {params['SignatureMethod']!r} "
                                                      "is not supported: use HMAC-SHA1.")
    if params.get("SignatureVersion", "1.0") != "1.0":
        raise ApiError(400, "InvalidSignatureVersion", "Specified signature version is not supported: use 1.0.")
    now = time.time() if now is None else now
    if abs(_parse_timestamp(params["Timestamp"]) - now) > TIMESTAMP_WINDOW_S:
        raise ApiError(400, "InvalidTimeStamp.Expired", f"Specified time stamp or date value is expired: "
                                                        f"{params['Timestamp']} is more than 15 minutes from now.")
    key_id = params["AccessKeyId"]
    secret = service.access_key_secret(key_id)
    if secret is None:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if not matches(secret, method, params):
        # The service puts its string to sign after the colon: SDKs compare it with theirs.
        raise ApiError(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                                                     "server string to sign is:" + string_to_sign(method, params))
    if not service.use_nonce(key_id, params["SignatureNonce"], NONCE_TTL_S):
        raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    return key_id


class ApiServer(ThreadingHTTPServer):
    """The server: one thread per connection, a pool of store connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: ServeConfig) -> None:
        self.services: _ServicePool | None = None  # the base class calls server_close() when it cannot bind
        super().__init__(address, _Handler)
        self.config = config
        self.services = _ServicePool(config.store, config.pool_size)
        self.context = ActionContext(media_roots=tuple(Path(r).resolve() for r in config.media_roots))
        host, port = self.server_address[:2]
        self.public_url = (config.public_url or f"http://{host}:{port}").rstrip("/")
        with self.services.service() as service:
            self.store_path = service.store_path
            self.images_dir = service.images_dir.resolve()
            self.images_dir.mkdir(parents=True, exist_ok=True)
            self.url_key = service.url_signing_key()
            # Every image URL the service hands out (answers, events of every worker on this store)
            # now points here, signed, unless the store's base_url says where the images are served
            # from (a CDN in front of this server): that stays as its owner set it. Removed at close.
            self.served_url = self.public_url + "/images"
            service.set_setting("served_url", self.served_url)
            self.images_url = service.site.images_url

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer was written (a broken pipe, a reset) is not an
        error of the server's: no traceback for it. Anything else is printed, as the base class does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.info("%s hung up before its answer was written", client_address[0] if client_address else "a client")
            return
        super().handle_error(request, client_address)

    def gallery_link(self) -> str:
        return sign_url(self.public_url + "/gallery", self.url_key)

    def server_close(self) -> None:
        super().server_close()
        if self.services is None:
            return
        try:
            with self.services.service() as service:
                if getattr(self, "served_url", None):  # ours only: a server started since on this store keeps its own
                    service.remove_setting_if("served_url", self.served_url)
        except Exception:  # a store gone bad: what is left is the next server's to overwrite
            log.warning("could not remove served_url from the store", exc_info=True)
        self.services.close()
        self.services = None


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "animated-previews-engine"
    disable_nagle_algorithm = True
    """Headers and body leave in two writes; with Nagle's algorithm the second waits for the
    client's delayed ACK, 40 ms per answer on kept-alive connections (measured: 44 ms -> 0.9 ms per SubmitDynamicImageJob, README)."""

    def parse_request(self) -> bool:
        """Empty lines before a request line are skipped (RFC 9112 2.2: clients send a CRLF after a
        POST body now and then); the base class would close the connection without an answer."""
        for _ in range(8):
            if self.raw_requestline not in (b"\r\n", b"\n"):
                break
            self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            return False
        if not self.raw_requestline.strip():  # only empty lines, then the end: nobody to answer
            self.close_connection = True
            return False
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s %s", self.address_string(), format % args)

    # -- routing -----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._route("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if method == "POST" and url.path not in ("/", ""):
                self._discard_body()
            if url.path in ("/", ""):
                if method == "HEAD":
                    raise ApiError(405, "UnsupportedHTTPMethod", "Use GET or POST for actions.")
                self._action(method, query)
            elif url.path.startswith("/images/"):
                self._check_link(url.path, query)
                self._image(method, url.path[len("/images/"):])
            elif url.path == "/gallery":
                self._check_link(url.path, query)
                with self.server.services.service() as service:
                    self._send(200, render_gallery(service).encode(), "text/html; charset=utf-8",
                               head=method == "HEAD", extra={"Cache-Control": "no-store"})
            else:
                raise ApiError(404, "NoSuchResource", f"Nothing is served at {url.path}.")
        except ApiError as error:
            self._error(error, head=method == "HEAD")

    # -- actions -----------------------------------------------------------------------------------
    def _action(self, method: str, query: dict[str, str]) -> None:
        rid = request_id()
        try:
            params = dict(query)
            if method == "POST":
                params.update(self._form())
            with self.server.services.service() as service:
                authenticate(service, method, params)
                if params.get("Version", API_VERSION) != API_VERSION:
                    raise ApiError(400, "InvalidVersion", f"Specified API version is not supported: use {API_VERSION}.")
                if params.get("Format", "JSON").upper() != "JSON":
                    raise ApiError(400, "InvalidParameter", "The parameter \"Format\" is invalid: only JSON is answered.")
                name = params.get("Action", "")
                if not name:
                    raise missing("Action")
                handler = ACTIONS.get(name)
                if handler is None:
                    raise ApiError(404, "InvalidAction.NotFound", f"Specified api {name!r} is not found.")
                try:
                    answer = handler(service, params, self.server.context)
                except EngineError as error:
                    raise from_engine_error(error) from None
        except ApiError as error:
            self._error(error, rid=rid)
            return
        except Exception:  # a bug: answer as the service would, keep serving
            log.exception("request %s failed", rid)
            self._error(ApiError(500, "InternalError", "The request processing has failed due to some unknown "
                                                       "error."), rid=rid)
            return
        self._json(200, {"RequestId": rid, **answer})

    def _content_length(self) -> int:
        """The body's length: 0 without a Content-Length; one that is not a whole number of bytes is a
        400 and ends the connection (where the body ends, and so the next request starts, is unknown)."""
        text = self.headers.get("Content-Length")
        if text is None:
            return 0
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()):
            self.close_connection = True
            raise ApiError(400, "InvalidParameter", f"Content-Length {text[:40]!r} is not a number of bytes.")
        return int(digits) if len(digits) <= 18 else MAX_BODY + 1  # 19 digits and more: past any limit

    def _form(self) -> dict[str, str]:
        length = self._content_length()
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read
            raise ApiError(413, "InvalidParameter", f"The request body is larger than {MAX_BODY} bytes.")
        body = self.rfile.read(length) if length else b""
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not body or kind not in ("", "application/x-www-form-urlencoded"):
            return {}
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise ApiError(400, "InvalidParameter", "The request body is not UTF-8 form data.") from None

    def _discard_body(self) -> None:
        """Read a body nobody wants, so the next request on this connection starts where it should."""
        length = self._content_length()
        if length > MAX_BODY:
            self.close_connection = True
            return
        self.rfile.read(length)

    # -- files -------------------------------------------------------------------------------------
    def _check_link(self, path: str, query: Mapping[str, str]) -> None:
        if not token_valid(path, query.get("auth_key"), self.server.url_key):
            raise ApiError(403, "Forbidden", "This link is not signed, or its signature has expired.")

    def _image(self, method: str, relative: str) -> None:
        path = files.inside(self.server.images_dir, unquote(relative))
        if path is None:
            raise ApiError(404, "NoSuchResource", "No such image.")
        answer = files.answer_for(path, self.headers.get("Range"), self.headers.get("If-None-Match"))
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if answer.status == 304:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if method != "HEAD" and answer.status in (200, 206):
            for chunk in files.read_span(path, answer):
                self.wfile.write(chunk)

    # -- answers -----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, *, head: bool = False,
              extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, data: Mapping[str, Any], *, head: bool = False,
              extra: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json;charset=utf-8", head=head,
                   extra=extra)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own refusals (a malformed request line or header, a line too long, an
        unknown method or HTTP version) as every other answer: JSON with a RequestId, and a 4xx, the
        request being at fault (an unknown method is 405, not 501; an unknown version 400, not 505)."""
        status = {HTTPStatus.NOT_IMPLEMENTED: 405, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: 400}.get(code, int(code))
        name = {405: "UnsupportedHTTPMethod", 414: "RequestURITooLong", 431: "RequestHeaderFieldsTooLarge"}
        extra = {"Connection": "close", **({"Allow": "GET, POST, HEAD"} if status == 405 else {})}
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # what the base class assumes until it reads a version: the
            self.request_version = "HTTP/1.0"   # refusal of a garbled line still gets a status line
        self._error(ApiError(status, name.get(status, "BadRequest"), message or HTTPStatus(code).phrase),
                    head=getattr(self, "command", None) == "HEAD", extra=extra)

    def _error(self, error: ApiError, *, rid: str | None = None, head: bool = False,
               extra: Mapping[str, str] | None = None) -> None:
        self._json(error.status, {"RequestId": rid or request_id(), "HostId": HOST_ID, "Code": error.code,
                                  "Message": error.message}, head=head, extra=extra)
