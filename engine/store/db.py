"""Opening the store: where the file lives, WAL mode, a busy timeout, migrations, transactions.

Connections run in autocommit mode (``isolation_level=None``) and every write that must be atomic
goes through :func:`transaction`, which starts with ``BEGIN IMMEDIATE``: the write lock is taken
up front, so two workers never both read "queued" and then both write "running". Waits for the lock
are absorbed by the busy timeout rather than surfacing as "database is locked".

**Faults end as StoreError.** A connection from :func:`open_store` is a :class:`StoreConnection`:
each statement, each fetch, each commit turns an ``sqlite3`` error into an ``EngineError`` with
code ``StoreError`` whose message names the file and what to do (:func:`store_error`: a full disk,
a read-only file, damaged pages, a lock held too long). It is the one place every table module's
statements pass through, so no path (a CLI command, ``engine run``, a worker, the HTTP server)
shows a raw sqlite3 traceback. Constraint violations (``sqlite3.IntegrityError``) and misuse
(``ProgrammingError``) pass unchanged: the table modules answer the first themselves (a template
name taken), the second is a bug. A transaction that fails is rolled back before the error
leaves :func:`transaction`, so nothing of it is recorded.

**An emptied store is refused, not taken as new.** When a store is created, a marker file is
written beside it (``store.db.marker``; :func:`marker_path`). A store file whose schema is blank
(truncated to 0 bytes by a full disk or an interrupted copy, or replaced by an empty file) while
its marker is there was a store before: opening it is a StoreError that says so, rather than
starting a new store (which would redo every job and send every event again under new ids).
Deleting the store file makes the next open create a new store (and a new marker); to start over
on purpose with the emptied file, delete both. Processes creating one new store at once never
refuse each other: a marker is written only after the first migration committed and the schema
is read after the marker is seen, and an opener that finds no store file removes a stale marker
(left by a store deleted on purpose) before it creates the file, so no opener sees a new file
beside an old marker.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import EngineError, ErrorCode
from .schema import migrate

BUSY_TIMEOUT_MS = 30_000
"""How long a connection waits for another process's write lock before giving up."""
STORE_ENV = "ENGINE_STORE"
MARKER_SUFFIX = ".marker"


def default_store_path() -> Path:
    """``$ENGINE_STORE``, else ``$XDG_DATA_HOME/animated-previews/store.db`` (``~/.local/share`` when
    unset): per user, so two users on one machine never share a queue by accident."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "animated-previews" / "store.db"


def marker_path(path: Path) -> Path:
    """The file beside the store that says a store was created at ``path`` (see the module's doc)."""
    path = Path(path)
    return path.with_name(path.name + MARKER_SUFFIX)


# -- sqlite3 errors -> StoreError ----------------------------------------------------------------

_PASS_THROUGH = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
"""Not faults of the store: constraint violations (answered by the table modules) and misuse (bugs)."""


def store_error(path: Path | str | None, exc: sqlite3.Error) -> EngineError:
    """``exc`` as a StoreError whose message names the store file, what went wrong and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    lowered = text.lower()
    where = f"the store {path}" if path is not None else "the store"
    elsewhere = f"or use another store (--store FILE or ${STORE_ENV})"
    if name.startswith("SQLITE_FULL") or "is full" in lowered:
        message = (f"{where} cannot be written: the disk is full ({text}). Nothing of the step that failed was "
                   f"recorded. Free space on that disk, {elsewhere}, and run the command again")
    elif name.startswith("SQLITE_READONLY") or "readonly" in lowered or "read-only" in lowered:
        message = (f"{where} is read-only ({text}). Make the file, its -wal and -shm files and its folder writable "
                   f"for this user (a read-only mount cannot hold a store), {elsewhere}")
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in lowered or "not a database" in lowered:
        message = (f"{where} is damaged or is not a store ({text}). Restore it from a backup, or move it and its "
                   f"-wal and -shm files aside and run again to start a new store (`sqlite3 {path} .recover` "
                   f"may save what it holds)")
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in lowered:
        message = (f"{where} stayed locked by another process for more than {BUSY_TIMEOUT_MS // 1000} s ({text}). "
                   f"Wait for that process (or stop it) and run the command again")
    elif name.startswith("SQLITE_IOERR") or "i/o error" in lowered:
        message = (f"{where} could not be read or written: an I/O error ({text}). Check the disk and file system "
                   f"it is on, and that there is free space, then run the command again")
    elif name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) or "unable to open" in lowered:
        message = (f"{where} cannot be opened ({text}). Check that its folder exists and that this user may read "
                   f"and write the file and create files beside it (-wal, -shm), {elsewhere}")
    else:
        message = f"{where} failed: {text}. Run the command again; if it fails the same way, report it"
    return EngineError(ErrorCode.STORE_ERROR, message)


def _fault(conn: Any, exc: sqlite3.Error) -> BaseException:
    if isinstance(exc, _PASS_THROUGH):
        return exc
    return store_error(getattr(conn, "store_path", None), exc)


class StoreCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise StoreError for faults of the store."""

    def execute(self, sql: str, parameters: Any = (), /) -> "StoreCursor":
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> "StoreCursor":
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None

    def executescript(self, script: str, /) -> "StoreCursor":
        try:
            return super().executescript(script)
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise _fault(self.connection, exc) from None


class StoreConnection(sqlite3.Connection):
    """A connection to the store at :attr:`store_path` whose every statement goes through a
    :class:`StoreCursor` (``Connection.execute`` in C would make a plain cursor)."""

    store_path: Path | None = None

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        return super().cursor(factory or StoreCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> StoreCursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> StoreCursor:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def executescript(self, script: str, /) -> StoreCursor:  # type: ignore[override]
        return self.cursor().executescript(script)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            raise _fault(self, exc) from None

    def rollback(self) -> None:
        try:
            super().rollback()
        except sqlite3.Error as exc:
            raise _fault(self, exc) from None


# -- opening -------------------------------------------------------------------------------------

def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, waiting out other processes. Switching the journal mode needs the file to
    itself, and SQLite answers "database is locked" at once rather than through the busy timeout
    when another process is creating or switching the same new store (two workers started
    together), so this retries for as long as the busy timeout would wait. (Plain
    ``sqlite3.Connection.execute``: the raw error is what tells "locked" apart.)"""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            sqlite3.Connection.execute(conn, "PRAGMA journal_mode = WAL")
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


def _refuse_if_emptied(conn: sqlite3.Connection, path: Path) -> None:
    """StoreError when the store's schema is blank but its marker says a store was created here.
    The marker is looked at first and the schema read after: a marker is written only once a
    migration has committed, so a store another process is creating right now never looks emptied."""
    marker = marker_path(path)
    if not marker.exists():
        return
    blank = (conn.execute("PRAGMA user_version").fetchone()[0] == 0
             and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0)
    if blank:
        raise EngineError(ErrorCode.STORE_ERROR, (
            f"the store {path} is empty (no tables; {path.stat().st_size} bytes) but {marker} says a store was "
            f"created there: the file was truncated or replaced (a full disk, an interrupted copy), and opening it "
            f"as a new store would redo every job and send every event again. Restore {path} from a backup; to "
            f"start a new store there on purpose, delete both {path} and {marker}"))


def _write_marker(path: Path) -> None:
    """Leave the marker beside a store that has a schema (best effort: a folder this user cannot
    write leaves the store unprotected, not unusable)."""
    marker = marker_path(path)
    if marker.exists():
        return
    try:
        with open(marker, "x", encoding="utf-8") as out:
            out.write(f"{path.name} beside this file is an animated-previews store (created or first opened "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}). While this file is here, an empty "
                      f"{path.name} is refused as truncated instead of being started anew; delete both to start over.\n")
    except OSError:
        pass


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the store at ``path`` (created 0600 and migrated if needed), in WAL mode.
    Every fault, now or in later statements, is a StoreError naming ``path`` (see the module's doc)."""
    path = Path(path).expanduser()
    conn: StoreConnection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # no store here: a marker left by one deleted on purpose is stale. Removed
            marker_path(path).unlink(missing_ok=True)  # before the file exists, so no opener sees both
        _create_private(path)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False, factory=StoreConnection)
        conn.store_path = path
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _refuse_if_emptied(conn, path)  # before WAL mode, which would write a header into an emptied file
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash never corrupts, commits stay atomic
        migrate(conn)  # before foreign keys are on: a migration may rebuild a table others refer to
        conn.execute("PRAGMA foreign_keys = ON")
        _write_marker(path)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.Error) and not isinstance(exc, _PASS_THROUGH):
            raise store_error(path, exc) from None
        if isinstance(exc, OSError):
            raise EngineError(ErrorCode.STORE_ERROR, f"cannot open the store {path}: {exc}. Check that its folder "
                              f"can be created and written by this user, or use another store (--store FILE or "
                              f"${STORE_ENV})") from None
        raise
    return conn


# -- transactions --------------------------------------------------------------------------------

def _abandon(conn: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction. SQLite may have rolled it back already (a
    full disk, an I/O error do), and a rollback that fails too must not hide the first error."""
    if conn.in_transaction:
        try:
            sqlite3.Connection.execute(conn, "ROLLBACK")
        except sqlite3.Error:
            pass


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (a
    failed COMMIT included: then nothing of it is recorded, and the StoreError says why)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        _abandon(conn)
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        _abandon(conn)
        raise
