"""Bounded memory: emitting steps wait while their targets' queues are full."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


class Gate:
    """Shared by the supervisor (which opens and closes it) and emitting steps.

    ``full`` holds the ids of routines whose queue in the supervisor has reached
    ``limit`` undelivered messages. A step emitting to one of them waits; so does any
    step while the supervisor's inbox holds more than ``limit`` unread messages.
    ``escape`` maps a full routine to the routines whose emits to it still go
    through: the members of a cycle in which every routine is blocked (rule
    *bounded memory*, its one escape). Everyone else keeps waiting.
    """

    def __init__(self, limit: int, inbox_len: Callable[[], int]) -> None:
        self.limit = limit
        self.full: set[str] = set()
        self.escape: dict[str, frozenset[str]] = {}
        self._inbox_len = inbox_len
        self._condition = threading.Condition()
        self.waiters = 0
        self.closed = False

    def must_wait(self, targets: Iterable[str], emitter: str) -> bool:
        """Whether an emit of routine ``emitter`` to ``targets`` has to wait now."""
        if self.closed:
            return False
        if self.full:
            escape = self.escape
            for target in targets:
                if target in self.full and emitter not in escape.get(target, ()):
                    return True
        return self._inbox_len() > self.limit

    def mark_full(self, routine_id: str) -> None:
        """``routine_id``'s queue reached the limit."""
        self.full.add(routine_id)

    def mark_room(self, routine_id: str) -> None:
        """``routine_id``'s queue is below the limit again."""
        self.full.discard(routine_id)
        self.escape.pop(routine_id, None)

    def close_escapes_through(self, routine_id: str) -> None:
        """Close the escapes of the blocked cycles ``routine_id`` belongs to (one of
        its steps stopped waiting: the cycle is not blocked any more)."""
        for target, cycle in list(self.escape.items()):
            if routine_id in cycle:
                del self.escape[target]

    def close(self) -> None:
        """Release every waiting step for good (the supervisor is stopping)."""
        self.closed = True
        with self._condition:
            self._condition.notify_all()

    def wait(self, targets: Iterable[str], emitter: str) -> None:
        """Block until none of ``targets`` is full (for ``emitter``) and the inbox
        has room."""
        with self._condition:
            self.waiters += 1
            try:
                while self.must_wait(targets, emitter):
                    # The timeout is a safety net only; the supervisor notifies.
                    self._condition.wait(0.5)
            finally:
                self.waiters -= 1

    def notify(self) -> None:
        """Wake waiting steps so they re-check (called by the supervisor)."""
        if self.waiters:
            with self._condition:
                self._condition.notify_all()
