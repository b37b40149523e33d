"""Getting DynamicImageComplete events out: to the event log, then to the callback URL.

Events are written to the store with their job (:mod:`engine.vod.outcomes`); this module copies
the new ones to ``events.jsonl`` and POSTs the due callbacks (:mod:`engine.vod.webhook` signs each,
with the service's X-VOD headers too when AuthSwitch is on), rescheduling failures with backoff in
the outbox (:mod:`engine.store.outbox`).

POSTs are made by a bounded pool of sender threads (``senders``, default :data:`SENDERS`), each
with its own store connection, so a slow receiver costs throughput, not the caller's time:

- :meth:`Delivery.courier` runs passes in a background thread: ``engine run`` and ``engine worker``
  only hand each finished job's event over (:meth:`Courier.hand_over`) and go on with the next job.
  ``engine run`` then drains its own events for up to ``--drain`` seconds (:meth:`Courier.drain`).
- :meth:`Delivery.deliver` is one pass, made in the caller's thread; :meth:`Delivery.flush`
  (``engine events flush [--wait S]``) makes passes until nothing waits or the time is up.

A pass tries every due event once (no cap on how many). Per receiver URL, one event goes first;
only when it is taken do the others follow, in parallel: a receiver that is down or failing costs
one attempt (one deadline) per pass, not one per event, and its other events keep their schedule.
Events are POSTed in parallel, so a receiver must not rely on their order (each carries its
EventTime). Settings are read at the start of each pass, so a SetMessageCallback reaches running
workers; each event is signed with the key it was queued with (else the one in effect now).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, TypeVar

from ..store import open_store, transaction
from ..store import events as events_table
from ..store import outbox
from ..store.settings import callback_auth_key
from .site import Site
from .webhook import TIMEOUT_S, DeliveryFailed, post_event

SENDERS = 4
"""Sender threads per process: callbacks in flight at once."""
DRAIN_S = 30.0
"""How long ``engine run`` waits, after its last job, for its own callbacks (``--drain``)."""
IDLE_S = 5.0
"""How often an idle courier looks for events that fell due (retries, other processes' events)."""
MIN_ATTEMPT_S = 0.05
"""An attempt with less time than this left before a deadline is not started."""
LEASE_MARGIN_S = 5.0
"""An attempt leases its row for its deadline plus this: a process that dies mid-attempt holds the
event back that long, never for the outbox's general 60 s."""

T = TypeVar("T")
DELIVERED, FAILED, GAVE_UP, REFUSED, SKIPPED = "delivered", "failed", "gave-up", "refused", "skipped"


@dataclass(frozen=True)
class DeliveryReport:
    """What delivery did (a pass, a flush), and what is still waiting. ``failed`` counts failed
    attempts, ``given_up`` the events among them that will not be tried again (a URL that is not
    http(s), or the outbox's MAX_ATTEMPTS reached)."""

    delivered: int
    failed: int
    pending: int
    given_up: int = 0


@dataclass
class _Tally:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    attempts: int = 0

    def add(self, outcome: str) -> None:
        if outcome == SKIPPED:
            return
        self.attempts += 1
        self.delivered += outcome == DELIVERED
        self.failed += outcome != DELIVERED
        self.given_up += outcome in (GAVE_UP, REFUSED)

    def merge(self, other: "_Tally") -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.given_up += other.given_up
        self.attempts += other.attempts


@dataclass
class _Pass:
    """What every attempt of one pass shares."""

    include_not_due: bool
    deadline: float | None
    secret: str | None
    vod_auth_key: str | None
    stop: threading.Event | None
    failed_urls: set[str] = field(default_factory=set)

    def time_left(self, timeout: float) -> float:
        if self.stop is not None and self.stop.is_set():
            return 0.0
        return timeout if self.deadline is None else min(timeout, self.deadline - time.monotonic())


class _Senders:
    """``count`` daemon threads, started on first use, each with its own connection to the store,
    running the tasks handed to :meth:`submit` (a task gets the thread's connection)."""

    def __init__(self, store_path: Path, count: int) -> None:
        self._store_path = store_path
        self._count = max(1, count)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, task: Callable[[sqlite3.Connection], T]) -> "Future[T]":
        if not self._threads:
            self._threads = [threading.Thread(target=self._work, name=f"callback-sender-{n}", daemon=True)
                             for n in range(self._count)]
            for thread in self._threads:
                thread.start()
        future: Future = Future()
        self._tasks.put((future, task))
        return future

    def _work(self) -> None:
        conn, error = None, None
        try:
            conn = open_store(self._store_path)
        except Exception as exc:  # every task then fails with it; the caller counts them as not tried
            error = exc
        try:
            while True:
                item = self._tasks.get()
                if item is None:
                    return
                future, task = item
                if not future.set_running_or_notify_cancel():
                    continue
                if error is not None:
                    future.set_exception(error)
                    continue
                try:
                    future.set_result(task(conn))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            if conn is not None:
                conn.close()

    def close(self, timeout: float | None = None) -> None:
        """Stop the threads once the tasks handed over are done; wait up to ``timeout`` seconds (a
        thread still in an attempt then ends on its own, within the attempt's deadline)."""
        for _ in self._threads:
            self._tasks.put(None)
        end = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if end is None else max(0.0, end - time.monotonic()))
        self._threads = []

    def __enter__(self) -> "_Senders":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Delivery:
    """Delivers the events of ``site``: each POST ends within ``timeout_s`` (connect, send and the
    answer's headers together); a failed one is retried after ``retry_base_s`` x 2^(attempts-1)
    seconds (see :func:`engine.store.outbox.backoff`); ``senders`` POSTs are in flight at most."""

    def __init__(self, site: Site, *, timeout_s: float = TIMEOUT_S, retry_base_s: float = outbox.BACKOFF_BASE_S,
                 senders: int = SENDERS) -> None:
        self.site = site
        self.timeout_s = timeout_s
        self.retry_base_s = retry_base_s
        self.senders = senders

    # -- one attempt (in a sender thread) and one pass ------------------------------------------------
    def _attempt(self, conn: sqlite3.Connection, *, event_id: str, url: str, run: _Pass) -> str:
        if url in run.failed_urls:  # the receiver failed earlier in this pass: its events keep their schedule
            return SKIPPED
        timeout = run.time_left(self.timeout_s)
        if timeout < MIN_ATTEMPT_S:
            return SKIPPED
        item = outbox.claim(conn, event_id, include_not_due=run.include_not_due, lease_s=timeout + LEASE_MARGIN_S)
        if item is None:  # delivered, given up, taken by another process meanwhile, or no longer due
            return SKIPPED
        try:
            post_event(item.url, (item.body or "").encode(), item.event_id, item.secret or run.secret,
                       timeout=timeout, vod_auth_key=run.vod_auth_key)
        except DeliveryFailed as exc:
            failure = exc
        except Exception as exc:  # a fault of ours costs an attempt, recorded, never the caller's run
            failure = DeliveryFailed(f"{item.url}: {type(exc).__name__}: {exc}")
        else:
            with transaction(conn):
                outbox.mark_delivered(conn, event_id)
            return DELIVERED
        with transaction(conn):
            if failure.permanent:
                outbox.mark_dead(conn, event_id, str(failure))
                return REFUSED
            scheduled = outbox.mark_failed(conn, event_id, str(failure), base=self.retry_base_s)
        run.failed_urls.add(url)
        return FAILED if scheduled is not None else GAVE_UP

    @staticmethod
    def _outcome(future: Future) -> str:
        try:
            return future.result()
        except Exception:  # the store could not be reached from that sender: the row's lease runs out
            return SKIPPED

    def _pass(self, conn: sqlite3.Connection, senders: _Senders, *, include_not_due: bool = False,
              only: set[str] | None = None, deadline: float | None = None,
              stop: threading.Event | None = None) -> _Tally:
        """Copy new events to the log, then try each due event once (``only`` these ids, if given);
        ``conn`` is the calling thread's own connection. No attempt starts after ``deadline``
        (time.monotonic) and none lasts past it."""
        tally = _Tally()
        events_table.append_to_log(conn, self.site.events_path)
        rows = outbox.due(conn, include_not_due=include_not_due)
        if only is not None:
            rows = [row for row in rows if row[0] in only]
        if not rows:
            return tally
        run = _Pass(include_not_due=include_not_due, deadline=deadline, secret=self.site.callback_secret_in(conn),
                    vod_auth_key=callback_auth_key(conn), stop=stop)
        by_url: dict[str, list[str]] = {}
        for event_id, url in rows:
            by_url.setdefault(url, []).append(event_id)

        def send(event_id: str, url: str) -> Future:
            return senders.submit(partial(self._attempt, event_id=event_id, url=url, run=run))

        probes = {send(ids[0], url): url for url, ids in by_url.items()}
        followers: list[Future] = []
        for probe in as_completed(probes):
            outcome = self._outcome(probe)
            tally.add(outcome)
            url = probes[probe]
            if outcome not in (FAILED, GAVE_UP):  # taken (or not tried): the receiver's other events follow
                followers += [send(event_id, url) for event_id in by_url[url][1:]]
        for follower in followers:
            tally.add(self._outcome(follower))
        return tally

    def _report(self, conn: sqlite3.Connection, tally: _Tally) -> DeliveryReport:
        return DeliveryReport(delivered=tally.delivered, failed=tally.failed, pending=outbox.waiting(conn),
                              given_up=tally.given_up)

    # -- in the caller's thread -----------------------------------------------------------------------
    def deliver(self, *, include_not_due: bool = False) -> DeliveryReport:
        """Copy new events to the log, then try each callback that is due (every waiting one with
        ``include_not_due``) once; failures are rescheduled with backoff. After a receiver fails,
        its other events wait for the next pass, so a receiver that hangs costs one deadline."""
        conn = self.site.connection
        with _Senders(self.site.store_path, self.senders) as senders:
            tally = self._pass(conn, senders, include_not_due=include_not_due)
        return self._report(conn, tally)

    def flush(self, *, wait: float = 0.0) -> DeliveryReport:
        """Try every waiting callback now, due or not. With ``wait`` seconds, keep going until none
        waits or the time is up: each retry when its backoff falls due, and events that other
        processes queue meanwhile; no attempt lasts past the ``wait``."""
        conn = self.site.connection
        deadline = time.monotonic() + wait if wait > 0 else None
        total = _Tally()
        with _Senders(self.site.store_path, self.senders) as senders:
            last = self._pass(conn, senders, include_not_due=True, deadline=deadline)
            total.merge(last)
            while deadline is not None and outbox.waiting(conn):
                due_at = outbox.next_due(conn)
                pause = 0.0 if due_at is None else max(0.0, due_at - time.time())
                if time.monotonic() + pause >= deadline:
                    break
                # at least a moment; more after a pass that tried nothing (the rest is held by other processes)
                time.sleep(min(max(pause, 0.2 if last.attempts == 0 else 0.02), max(0.0, deadline - time.monotonic())))
                last = self._pass(conn, senders, deadline=deadline)
                total.merge(last)
        return self._report(conn, total)

    # -- in the background ----------------------------------------------------------------------------
    def courier(self) -> "Courier":
        """A background sender for a batch run or a queue worker (see :class:`Courier`)."""
        return Courier(self)

    def given_up(self) -> list[dict]:
        """Events the outbox gave up on, with the reason (their last error)."""
        return outbox.given_up(self.site.connection)


class Courier:
    """Delivers in a background thread, with its own store connection and the pool of senders.

    The caller hands each finished job's event over (:meth:`hand_over`, after the job's
    transaction) and goes on; the courier runs a pass at once, and whenever a retry falls due (at
    least every :data:`IDLE_S` seconds it looks). :meth:`drain` waits for the events handed over to
    be delivered (or given up) for a bounded time, then stops; :meth:`close` stops after one last
    pass for what was handed over; ``close(abandon=True)`` stops at once (an interrupted run).
    """

    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._abandon = threading.Event()
        self._kicked = True  # a first pass at once: events left waiting by earlier runs
        self._closing = False
        self._own: set[str] = set()
        self._only: set[str] | None = None
        self._deadline: float | None = None
        self._tally = _Tally()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="callback-courier", daemon=True)
        self._thread.start()

    @property
    def delivered(self) -> int:
        return self._tally.delivered

    @property
    def report(self) -> _Tally:
        return self._tally

    def hand_over(self, event_id: str | None = None) -> None:
        """A job ended: its event (``event_id`` when queued for the callback) is in the store."""
        with self._lock:
            if event_id:
                self._own.add(event_id)
            self._kicked = True
        self._wake.set()

    def _pause(self, conn: sqlite3.Connection, idle: bool) -> float:
        with self._lock:
            only = None if self._only is None else list(self._only)
        due_at = outbox.next_due(conn, only)
        pause = IDLE_S if due_at is None else min(IDLE_S, max(0.0, due_at - time.time()))
        return max(pause, 0.5 if idle else 0.02)  # a due row another process holds is not ours to spin on

    def _run(self) -> None:
        site = self._delivery.site
        senders = _Senders(site.store_path, self._delivery.senders)
        conn = None
        try:
            conn = open_store(site.store_path)
            while True:
                with self._lock:
                    if self._abandon.is_set() or (self._closing and not self._kicked):
                        return
                    self._kicked = False
                    self._wake.clear()
                    only = None if self._only is None else set(self._only)
                    deadline = self._deadline
                tally = self._delivery._pass(conn, senders, only=only, deadline=deadline, stop=self._abandon)
                with self._lock:
                    self._tally.merge(tally)
                    if self._abandon.is_set() or (self._closing and not self._kicked):
                        return
                    if self._kicked:
                        continue
                self._wake.wait(self._pause(conn, idle=tally.attempts == 0))
        except BaseException as exc:  # the store went away: the events wait in the outbox for a later run
            self.error = exc
        finally:
            senders.close(timeout=0 if self._abandon.is_set() else None)
            if conn is not None:
                conn.close()

    def waiting(self) -> int:
        """How many of the events handed over still wait (neither delivered nor given up)."""
        with self._lock:
            own = list(self._own)
        return outbox.waiting_among(self._delivery.site.connection, own) if own else 0

    def drain(self, seconds: float) -> int:
        """Wait up to ``seconds`` for the events handed over to be delivered or given up (retrying
        those that fail, with backoff, and only those), then stop. Returns how many still wait.
        No attempt lasts past the time given."""
        deadline = time.monotonic() + max(0.0, seconds)
        with self._lock:
            self._only, self._deadline = set(self._own), deadline
        self._wake.set()
        while self._thread.is_alive() and time.monotonic() < deadline and self.waiting():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        self.close(abandon=True, timeout=1.0)
        return self.waiting()

    def close(self, *, abandon: bool = False, timeout: float | None = None) -> None:
        """Stop: after one last pass for what was handed over, or at once with ``abandon`` (waiting at
        most ``timeout`` seconds for the thread). Either way the event log gets every event."""
        with self._lock:
            self._closing = True
            if abandon:
                self._abandon.set()
        self._wake.set()
        self._thread.join(timeout)
        try:
            events_table.append_to_log(self._delivery.site.connection, self._delivery.site.events_path)
        except Exception:
            if not abandon:
                raise
            # stopping on an interrupt: the events stay in the store, and the next run logs them

    def __enter__(self) -> "Courier":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if not self._closing:
            self.close(abandon=exc_type is not None, timeout=1.0 if exc_type is not None else None)
