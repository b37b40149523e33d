"""Run one function on several threads at once and hand back what they raised, so a test can
assert on it (an exception on a thread is otherwise only printed)."""

from __future__ import annotations

import threading
from typing import Callable


def run_together(job: Callable[[], None], count: int) -> list[BaseException]:
    """Start ``count`` threads running ``job``, wait for all, return the exceptions raised."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
