"""Keeping claims alive: a thread that renews leases on its own connection while work runs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Callable

from ..errors import EngineError
from .db import open_store

LEASE_S = 60.0
"""How long a claim (a queue job, a manifest line) holds without renewal; the heartbeat renews it
every third of that. On the same host a dead holder's claims are taken at once; this only decides
for holders elsewhere (another node sharing the store)."""
POLL_S = 1.0
"""How often a worker with nothing to do looks at the store again."""


class Heartbeat:
    """Calls ``renew(connection)`` every third of ``lease_seconds`` until stopped or it returns False.

    Its own connection (and thread) so that renewing never waits on the main thread, which may be
    busy in a long job; SQLite's busy timeout absorbs waits for the write lock."""

    def __init__(self, store: Path, renew: Callable[[sqlite3.Connection], bool], lease_seconds: float,
                 name: str = "lease") -> None:
        self._store = store
        self._renew = renew
        self._period = lease_seconds / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            conn = open_store(self._store)
        except EngineError:  # the store failed (StoreError): the main thread's own statements say so
            return
        try:
            while not self._stop.wait(self._period):
                try:
                    if not self._renew(conn):
                        return
                except EngineError:  # a full disk, a lock held too long: try again next period
                    continue
        finally:
            conn.close()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
