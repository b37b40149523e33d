"""Getting DynamicImageComplete events out: to the event log, then to the callback URL.

Events are written to the store with their job (:mod:`engine.vod.outcomes`); this module copies
the new ones to ``events.jsonl`` and POSTs each due callback once per pass (:mod:`engine.vod.webhook`
signs it, with the service's X-VOD headers too when AuthSwitch is on), rescheduling failures with
backoff in the outbox. Settings are read at the start of each pass, so a SetMessageCallback reaches
running workers. Queue workers and batch runs call :meth:`Delivery.deliver` between jobs;
``engine events flush`` calls :meth:`Delivery.flush`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..store import transaction
from ..store import events as events_table
from ..store import outbox
from ..store.settings import callback_auth_key
from .site import Site
from .webhook import TIMEOUT_S, DeliveryFailed, post_event


@dataclass(frozen=True)
class DeliveryReport:
    """What one pass over the outbox did, and what is still waiting."""

    delivered: int
    failed: int
    pending: int


class Delivery:
    """Delivers the events of ``site``: each POST waits at most ``timeout_s``; a failed one is
    retried after ``retry_base_s`` x 2^(attempts-1) seconds (see :func:`engine.store.outbox.backoff`)."""

    def __init__(self, site: Site, *, timeout_s: float = TIMEOUT_S, retry_base_s: float = outbox.BACKOFF_BASE_S) -> None:
        self.site = site
        self.timeout_s = timeout_s
        self.retry_base_s = retry_base_s

    def deliver(self, *, include_not_due: bool = False) -> DeliveryReport:
        """Copy new events to the log, then try each callback that is due (every pending one with
        ``include_not_due``) once; failures are rescheduled with backoff. After a receiver fails, its
        other events wait for the next pass, so a receiver that hangs delays a worker by one timeout."""
        conn = self.site.connection
        events_table.append_to_log(conn, self.site.events_path)
        delivered = failed = 0
        secret = self.site.callback_secret
        vod_auth_key = callback_auth_key(conn)
        unreachable: set[str] = set()
        for item in outbox.claim_due(conn, include_not_due=include_not_due):
            if item.url in unreachable:  # one failure per receiver per pass: a dead one costs one timeout
                outbox.release(conn, item.event_id)
                continue
            try:
                post_event(item.url, item.body.encode(), item.event_id, secret, timeout=self.timeout_s,
                           vod_auth_key=vod_auth_key)
            except DeliveryFailed as exc:
                with transaction(conn):
                    outbox.mark_failed(conn, item.event_id, str(exc), base=self.retry_base_s)
                failed += 1
                unreachable.add(item.url)
            else:
                with transaction(conn):
                    outbox.mark_delivered(conn, item.event_id)
                delivered += 1
        return DeliveryReport(delivered=delivered, failed=failed, pending=len(outbox.pending(conn)))

    def flush(self, *, wait: float = 0.0) -> DeliveryReport:
        """Deliver every pending callback now; with ``wait`` seconds, keep retrying (with backoff)
        until none is pending or the time is up."""
        deadline = time.monotonic() + wait
        report = self.deliver(include_not_due=True)
        delivered, failed = report.delivered, report.failed
        while report.pending and time.monotonic() < deadline:
            due = outbox.next_due(self.site.connection)
            pause = max(0.0, (due or time.time()) - time.time())
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline and pause > 0:
                break
            report = self.deliver()
            delivered, failed = delivered + report.delivered, failed + report.failed
        return DeliveryReport(delivered=delivered, failed=failed, pending=report.pending)
