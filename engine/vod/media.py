"""Which files RegisterMedia may register: ``file://`` URLs or paths whose real file lies under a media root.

A server that registers any path it is sent would let a client read any file the server can (its
probe answers size and duration; its images show the frames). So a FileURL is accepted only when
the file it names, with every symlink and ``..`` resolved, lies under one of the media roots the
operator gave (``engine serve --media-root DIR``); with none given nothing is accepted. Other
schemes (``http://``, ``ftp://``, ...) are refused rather than fetched: this engine reads local
files only. Refusals are ``Forbidden`` and say which rule; a file that passes the rule but is
not there is ``InputNotFound``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlsplit

from ..errors import EngineError, ErrorCode


def _forbidden(message: str) -> EngineError:
    return EngineError(ErrorCode.FORBIDDEN, message)


def _requested_path(file_url: str) -> Path:
    """The path a FileURL names, before resolving: a ``file://`` URL's path or a plain path."""
    parts = urlsplit(file_url)
    if len(parts.scheme) > 1:  # a one-letter "scheme" would be a Windows drive, not a URL
        if parts.scheme.lower() != "file":
            raise _forbidden(f"FileURL {file_url!r}: only file:// URLs or paths under a media root are registered "
                             f"(this server fetches nothing over {parts.scheme}://)")
        if parts.netloc not in ("", "localhost"):
            raise _forbidden(f"FileURL {file_url!r}: a file:// URL must name a file on this machine, not on "
                             f"{parts.netloc!r}")
        if parts.query or parts.fragment:
            raise EngineError(ErrorCode.INVALID_PARAMETER, f"FileURL {file_url!r}: a file:// URL takes no query "
                              "or fragment")
        return Path(unquote(parts.path))
    try:
        return Path(file_url).expanduser()
    except RuntimeError:  # pathlib's answer to "~user/..." for a user this machine does not have
        raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"FileURL {file_url!r}: no user of that name on this "
                          "machine, so no such home folder") from None


def resolve_media(file_url: str, media_roots: Sequence[str | os.PathLike]) -> Path:
    """The real path of the file ``file_url`` names, if registering it is allowed.

    A relative path is taken below each media root in turn (the first where it exists). Raises
    Forbidden when there is no media root, for a scheme other than ``file``, or when the real path
    (symlinks and ``..`` resolved) is outside every root; InputNotFound when it is inside but is
    not an existing file; InvalidParameter for a FileURL that is not a non-empty string."""
    if not isinstance(file_url, str) or not file_url.strip():
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"FileURL must be a file:// URL or a path, got {file_url!r}")
    if not media_roots:
        raise _forbidden(f"FileURL {file_url!r}: no media root is configured (engine serve --media-root DIR), "
                         "so no file may be registered")
    roots = [Path(os.path.realpath(Path(root).expanduser())) for root in media_roots]
    requested = _requested_path(file_url.strip())
    if "\x00" in str(requested):
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"FileURL {file_url!r}: a path cannot hold a NUL character")
    try:
        if requested.is_absolute():
            candidates = [requested]
        else:
            candidates = [root / requested for root in roots]
            candidates = [c for c in candidates if c.exists()] or candidates[:1]
        real = Path(os.path.realpath(candidates[0]))
        if not any(real == root or real.is_relative_to(root) for root in roots):
            raise _forbidden(f"FileURL {file_url!r}: the file must lie under a media root "
                             f"({', '.join(str(r) for r in roots)}); with symlinks and '..' resolved it is {real}")
        is_file, exists = real.is_file(), real.exists()
    except OSError as exc:  # a name too long, a loop of symlinks, a folder it may not read
        raise EngineError(ErrorCode.INPUT_NOT_FOUND, f"FileURL {file_url!r}: {exc.strerror or exc}") from None
    if not is_file:
        raise EngineError(ErrorCode.INPUT_NOT_FOUND,
                          f"FileURL {file_url!r}: {real} {'is not a file' if exists else 'does not exist'}")
    return real
