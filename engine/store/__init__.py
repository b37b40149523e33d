"""The embedded store behind the VOD-style commands: one SQLite file in WAL mode.

Templates, videos, jobs, animated images, events and the webhook outbox live in one file so that
several worker processes on one machine can share a queue with no server to run: SQLite's write
lock makes claiming a job atomic, and WAL lets readers (``engine jobs list``) run beside writers.
Each table has its module (templates, videos, jobs, batch_jobs, images, events, outbox, settings),
speaking in frozen records; beside them are how the file is opened (db, schema) and how claims stay
alive (heartbeat). Nothing here opens a video, knows a process or builds a service answer:
:mod:`engine.vod` ties the tables together.
"""

from .db import default_store_path, open_store, transaction

__all__ = ["default_store_path", "open_store", "transaction"]
