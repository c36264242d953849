"""A single timer thread per supervisor: retries, job timeouts, checkpoints."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("routilux.timers")


class TimerHandle:
    """A scheduled call; :meth:`cancel` prevents it from running."""

    __slots__ = ("due", "callback", "cancelled")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Prevent the callback from running (if it has not yet)."""
        self.cancelled = True


class Timers:
    """Runs callbacks at given times on one daemon thread (started lazily).

    Callbacks must be quick and thread-safe: most only post a message to the
    supervisor; an exception is logged and the thread goes on.
    """

    def __init__(self, name: str = "routilux-timers") -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._name = name

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` on the timer thread after ``delay`` seconds."""
        handle = TimerHandle(time.monotonic() + max(delay, 0.0), callback)
        with self._condition:
            if self._stopped:
                return handle
            heapq.heappush(self._heap, (handle.due, next(self._counter), handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._condition.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._condition.wait(wait)
                    else:
                        self._condition.wait()
                if self._stopped:
                    return
                _, _, handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                try:
                    handle.callback()
                except Exception:  # one bad callback must not stop every timer
                    logger.exception("timer callback %r failed", handle.callback)

    def stop(self) -> None:
        """Stop the thread; pending callbacks never run."""
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
