"""The store's tables, as numbered migrations applied in order.

The schema version lives in SQLite's ``PRAGMA user_version``. A store written by an older engine is
brought up to date when it is opened; each migration runs in the same write transaction that bumps
the version, so two processes opening a fresh store at once cannot both apply it, and a crash in the
middle leaves the previous version intact. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3

from ..errors import EngineError, ErrorCode

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
        CREATE TABLE templates (
            id            TEXT PRIMARY KEY,
            name          TEXT NOT NULL UNIQUE,
            format        TEXT NOT NULL,
            fps           REAL NOT NULL,
            width         INTEGER,
            height        INTEGER,
            seek          REAL NOT NULL,
            duration      REAL,
            trim_end      REAL,
            set_as_cover  INTEGER NOT NULL DEFAULT 0,
            created       REAL NOT NULL,
            modified      REAL NOT NULL
        );
        CREATE TABLE videos (
            id              TEXT PRIMARY KEY,
            path            TEXT NOT NULL UNIQUE,
            title           TEXT NOT NULL,
            size            INTEGER NOT NULL,
            duration        REAL NOT NULL,
            width           INTEGER NOT NULL,
            height          INTEGER NOT NULL,
            fps             REAL,
            codec           TEXT NOT NULL,
            cover_image_id  TEXT,
            created         REAL NOT NULL
        );
        CREATE TABLE jobs (
            id             TEXT PRIMARY KEY,
            video_id       TEXT NOT NULL REFERENCES videos(id),
            template_id    TEXT NOT NULL,
            spec           TEXT NOT NULL,
            state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed')),
            attempts       INTEGER NOT NULL DEFAULT 0,
            worker         TEXT,
            lease_expires  REAL,
            error_code     TEXT,
            error_message  TEXT,
            image_id       TEXT,
            created        REAL NOT NULL,
            started        REAL,
            finished       REAL
        );
        CREATE INDEX jobs_by_state ON jobs(state, created);
        CREATE TABLE images (
            id       TEXT PRIMARY KEY,
            video_id TEXT NOT NULL REFERENCES videos(id),
            job_id   TEXT NOT NULL UNIQUE REFERENCES jobs(id),
            path     TEXT NOT NULL,
            format   TEXT NOT NULL,
            width    INTEGER NOT NULL,
            height   INTEGER NOT NULL,
            fps      REAL NOT NULL,
            bytes    INTEGER NOT NULL,
            created  REAL NOT NULL
        );
        CREATE INDEX images_by_video ON images(video_id, created);
        CREATE TABLE events (
            id       TEXT PRIMARY KEY,
            job_id   TEXT NOT NULL UNIQUE REFERENCES jobs(id),
            body     TEXT NOT NULL,
            created  REAL NOT NULL,
            logged   INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE outbox (
            event_id         TEXT PRIMARY KEY REFERENCES events(id),
            url              TEXT NOT NULL,
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  REAL NOT NULL,
            lease_until      REAL,
            delivered_at     REAL,
            last_error       TEXT
        );
        CREATE INDEX outbox_pending ON outbox(delivered_at, next_attempt_at);
        CREATE TABLE config (
            key    TEXT PRIMARY KEY,
            value  TEXT NOT NULL
        );
    """),
    (2, """
        -- Batch runs (engine run --batch) keep their jobs here too. A batch job may have no template, and
        -- no video until its input has been probed (template_id, video_id NULL). It is known by batch_key,
        -- the identity of its input file and effective config, and keeps its input, manifest id, output
        -- path and Result JSON.
        -- SQLite cannot drop NOT NULL in place, so the table is rebuilt (foreign keys are off while
        -- migrations run: see db.open_store).
        CREATE TABLE jobs_v2 (
            id             TEXT PRIMARY KEY,
            video_id       TEXT REFERENCES videos(id),
            template_id    TEXT,
            spec           TEXT NOT NULL,
            state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed')),
            attempts       INTEGER NOT NULL DEFAULT 0,
            worker         TEXT,
            lease_expires  REAL,
            error_code     TEXT,
            error_message  TEXT,
            image_id       TEXT,
            created        REAL NOT NULL,
            started        REAL,
            finished       REAL,
            batch_key      TEXT UNIQUE,
            input          TEXT,
            name           TEXT,
            output         TEXT,
            result         TEXT
        );
        INSERT INTO jobs_v2 (id, video_id, template_id, spec, state, attempts, worker, lease_expires, error_code,
                             error_message, image_id, created, started, finished)
            SELECT id, video_id, template_id, spec, state, attempts, worker, lease_expires, error_code,
                   error_message, image_id, created, started, finished FROM jobs;
        DROP TABLE jobs;
        ALTER TABLE jobs_v2 RENAME TO jobs;
        CREATE INDEX jobs_by_state ON jobs(state, created);
        -- A batch job done again (--retry-failed, or its output was deleted) ends again and gets another
        -- event: events are per ending, so job_id is no longer unique.
        CREATE TABLE events_v2 (
            id       TEXT PRIMARY KEY,
            job_id   TEXT NOT NULL REFERENCES jobs(id),
            body     TEXT NOT NULL,
            created  REAL NOT NULL,
            logged   INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO events_v2 (id, job_id, body, created, logged) SELECT id, job_id, body, created, logged FROM events;
        DROP TABLE events;
        ALTER TABLE events_v2 RENAME TO events;
        CREATE INDEX events_by_job ON events(job_id, created);
        CREATE INDEX events_to_log ON events(logged);
    """),
    (3, """
        -- Access keys for signed API requests (engine serve): AccessKeyId, AccessKeySecret, when made and,
        -- once revoked, when. Revoked keys stay listed (who had access, until when) but sign nothing.
        CREATE TABLE access_keys (
            id       TEXT PRIMARY KEY,
            secret   TEXT NOT NULL,
            created  REAL NOT NULL,
            revoked  REAL
        );
        -- SignatureNonce values seen per key, kept until the request's timestamp window closes: the primary
        -- key makes "seen before?" and "remember it" one atomic INSERT across processes sharing the store.
        CREATE TABLE nonces (
            key_id   TEXT NOT NULL,
            nonce    TEXT NOT NULL,
            expires  REAL NOT NULL,
            PRIMARY KEY (key_id, nonce)
        );
        CREATE INDEX nonces_by_expiry ON nonces(expires);
        -- ListDynamicImage answers each image's Duration (seconds of animation). Images made before this
        -- version answer null.
        ALTER TABLE images ADD COLUMN duration REAL;
    """),
    (4, """
        -- Callbacks: the HMAC key an event was queued with (the --callback-secret of the run that ended
        -- the job, its environment's or the store's), so every attempt, by any later process, signs with
        -- the same key (the file is 0600, as for the store's own callback_secret). NULL: none was set
        -- then, and an attempt signs with the key in effect when it is made (rows from older stores too).
        ALTER TABLE outbox ADD COLUMN secret TEXT;
        -- When the outbox gave an event up: a URL that is not http(s) (never sent) or MAX_ATTEMPTS
        -- failed attempts (engine.store.outbox). A given-up event is never tried again by itself.
        ALTER TABLE outbox ADD COLUMN dead_at REAL;
    """),
    (5, """
        -- A registered video's file as it was when probed: its modification time in nanoseconds (size is
        -- already kept). GetVideoInfo probes the file again when its size or mtime changed (a file
        -- replaced under the same path), so its facts never stay stale. NULL (rows from older stores):
        -- the next look probes once and fills it in.
        ALTER TABLE videos ADD COLUMN mtime_ns INTEGER;
    """),
    (6, """
        -- Templates' fit (how a picture goes into Width x Height: fill, contain, cover, pad) and the colour
        -- of pad's bars (#rrggbb, NULL unless fit is pad). Templates from older stores stretch, as they did.
        ALTER TABLE templates ADD COLUMN fit TEXT NOT NULL DEFAULT 'fill';
        ALTER TABLE templates ADD COLUMN pad_colour TEXT;
    """),
    (7, """
        -- Templates' byte budget (MaxBytes: the image's largest size, NULL for none). Templates from
        -- older stores have none, as before. (No semicolons in these comments: migrate splits on them.)
        ALTER TABLE templates ADD COLUMN max_bytes INTEGER;
    """),
    (8, """
        -- Templates whose TimeSpan.Seek is "auto" (the engine picks the liveliest span of Duration, seek
        -- kept as 0). Templates from older stores start at their seek, as before.
        ALTER TABLE templates ADD COLUMN seek_auto INTEGER NOT NULL DEFAULT 0;
    """),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the store's version; returns the version reached."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > LATEST_VERSION:
            raise EngineError(ErrorCode.STORE_ERROR, f"the store's schema version {version} is newer than this "
                              f"engine knows ({LATEST_VERSION}); upgrade the engine to use this store")
        for number, script in MIGRATIONS:
            if number > version:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                version = number
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise EngineError(ErrorCode.STORE_ERROR, f"migrating the store broke {len(broken)} reference(s), "
                              f"first {tuple(broken[0])}; the store was left as it was")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a full disk or an I/O error may have rolled it back already
            conn.execute("ROLLBACK")
        raise
    return version
