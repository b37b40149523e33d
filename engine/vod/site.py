"""Where one service lives: its store, the files beside it, and where its images and events go.

Every part of the service (the facade, the queue worker, stored batch runs, event delivery) needs
the same few things: the store's connection and path (a heartbeat opens its own connection), the
images folder, the event log, and three settings that a flag, an environment variable or the
store itself may give (``base_url``, ``callback_url``, ``callback_secret``). A :class:`Site`
holds them once, so those parts take a Site rather than the facade that is built on them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..store import default_store_path, open_store
from ..store.settings import check_callback_url, get_setting
from .webhook import SECRET_ENV


class Site:
    """The store at ``store`` (default: ``$ENGINE_STORE`` or the per-user store), opened.

    ``images_dir`` (default ``images/`` beside the store) is where queue workers write;
    ``events_path`` (default ``events.jsonl`` beside the store) is the event log. ``base_url``,
    ``callback_url`` and ``callback_secret`` win over the store's settings; the secret also comes
    from ``$ENGINE_CALLBACK_SECRET``. Settings are read from the store on each use, so a change
    made by ``engine config set`` reaches a running worker. A ``callback_url`` that is not an
    http(s) URL with a host is refused here (InvalidParameter), as ``engine config set`` refuses it.
    """

    def __init__(self, store: str | os.PathLike | None = None, *, images_dir: str | os.PathLike | None = None,
                 events_path: str | os.PathLike | None = None, base_url: str | None = None,
                 callback_url: str | None = None, callback_secret: str | None = None) -> None:
        self._callback_url = check_callback_url(callback_url) if callback_url else None  # before the store opens
        self.store_path = Path(store).expanduser() if store is not None else default_store_path()
        self.connection: sqlite3.Connection = open_store(self.store_path)
        self.images_dir = Path(images_dir) if images_dir is not None else self.store_path.parent / "images"
        self.events_path = Path(events_path) if events_path is not None else self.store_path.parent / "events.jsonl"
        self._base_url = base_url
        self._callback_secret = callback_secret

    @property
    def base_url(self) -> str | None:
        """URL prefix that paths below the images folder (or a batch's out dir) map to, as the
        flag or ``engine config set base_url`` said."""
        return self._base_url or get_setting(self.connection, "base_url")

    @property
    def images_url(self) -> str | None:
        """URL prefix of the images folder: :attr:`base_url`, else where a running ``engine serve``
        serves it (its ``served_url``, which it removes when it stops). Only the images folder:
        the server serves nothing of a batch's out dir."""
        return self.base_url or get_setting(self.connection, "served_url")

    @property
    def callback_url(self) -> str | None:
        """Where DynamicImageComplete events are POSTed; None: only the event log."""
        return self._callback_url or get_setting(self.connection, "callback_url")

    @property
    def callback_secret(self) -> str | None:
        """The HMAC key that signs callbacks: the flag, else the environment, else the store."""
        return self.callback_secret_in(self.connection)

    def callback_secret_in(self, connection: sqlite3.Connection) -> str | None:
        """:attr:`callback_secret`, reading the store through ``connection`` (a sender thread's own)."""
        return self._callback_secret or os.environ.get(SECRET_ENV) or get_setting(connection, "callback_secret")

    @property
    def url_signing_key(self) -> str | None:
        """The key image URLs are signed with (:mod:`engine.vod.urls`); None until a server made one
        (``engine serve``), and then URLs under ``base_url`` carry an expiring token."""
        return get_setting(self.connection, "url_signing_key")

    def close(self) -> None:
        self.connection.close()
