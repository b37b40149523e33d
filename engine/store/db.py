"""Opening the store: where the file lives, WAL mode, a busy timeout, migrations, transactions.

Connections run in autocommit mode (``isolation_level=None``) and every write that must be atomic
goes through :func:`transaction`, which starts with ``BEGIN IMMEDIATE``: the write lock is taken
up front, so two workers never both read "queued" and then both write "running". Waits for the lock
are absorbed by the busy timeout rather than surfacing as "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import EngineError, ErrorCode
from .schema import migrate

BUSY_TIMEOUT_MS = 30_000
"""How long a connection waits for another process's write lock before giving up."""
STORE_ENV = "ENGINE_STORE"


def default_store_path() -> Path:
    """``$ENGINE_STORE``, else ``$XDG_DATA_HOME/animated-previews/store.db`` (``~/.local/share`` when
    unset): per user, so two users on one machine never share a queue by accident."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "animated-previews" / "store.db"


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, waiting out other processes. Switching the journal mode needs the file to
    itself, and SQLite answers "database is locked" at once rather than through the busy timeout
    when another process is creating or switching the same new store (two workers started
    together), so this retries for as long as the busy timeout would wait."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


STORE_MODE = 0o600
"""A new store file is readable and writable by its owner only: it holds access key secrets and
the callback and URL signing keys. SQLite gives the ``-wal`` and ``-shm`` files it makes beside it
the main file's mode, so they are private too."""


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists. SQLite would create it with the
    umask's mode (often 0644); creating it first is the only way to choose. An existing file keeps
    its mode: a store shared on purpose (a group of worker accounts) stays shared."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, STORE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the store at ``path`` (created 0600 and migrated if needed), in WAL mode."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(path)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash never corrupts, commits stay atomic
        migrate(conn)  # before foreign keys are on: a migration may rebuild a table others refer to
        conn.execute("PRAGMA foreign_keys = ON")
    except (OSError, sqlite3.Error) as exc:
        raise EngineError(ErrorCode.STORE_ERROR, f"cannot open the store {path}: {exc}") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
