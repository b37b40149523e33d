"""The embedded store behind the VOD-style commands: one SQLite file in WAL mode.

Templates, videos, jobs, animated images, events and the webhook outbox live in one file so that
several worker processes on one machine can share a queue with no server to run: SQLite's write
lock makes claiming a job atomic, and WAL lets readers (``engine jobs list``) run beside writers.
Each module here owns one table and speaks in frozen records; :mod:`engine.vod` ties them together.
"""

from engine.store.db import default_store_path, open_store, transaction

__all__ = ["default_store_path", "open_store", "transaction"]
