"""Bounded memory: emitting steps wait while their targets' queues are full."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


class Gate:
    """Shared by the supervisor (which opens and closes it) and emitting steps.

    ``full`` holds the ids of routines whose queue in the supervisor has reached
    ``limit`` undelivered messages. A step emitting to one of them waits; so does any
    step while the supervisor's inbox holds more than ``limit`` unread messages.
    """

    def __init__(self, limit: int, inbox_len: Callable[[], int]) -> None:
        self.limit = limit
        self.full: set[str] = set()
        self._inbox_len = inbox_len
        self._condition = threading.Condition()
        self.waiters = 0
        self.closed = False

    def must_wait(self, targets: Iterable[str]) -> bool:
        """Whether an emit to ``targets`` has to wait for room now."""
        if self.closed:
            return False
        return bool(self.full and not self.full.isdisjoint(targets)) or (
            self._inbox_len() > self.limit
        )

    def close(self) -> None:
        """Release every waiting step for good (the supervisor is stopping)."""
        self.closed = True
        with self._condition:
            self._condition.notify_all()

    def wait(self, targets: Iterable[str]) -> None:
        """Block until none of ``targets`` is full and the inbox has room."""
        with self._condition:
            self.waiters += 1
            try:
                while self.must_wait(targets):
                    # The timeout is a safety net only; the supervisor notifies.
                    self._condition.wait(0.5)
            finally:
                self.waiters -= 1

    def notify(self) -> None:
        """Wake waiting steps so they re-check (called by the supervisor)."""
        if self.waiters:
            with self._condition:
                self._condition.notify_all()
