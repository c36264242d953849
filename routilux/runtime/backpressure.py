"""Bounded memory: emitting steps wait while their targets' queues are full."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any


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
        # What notify() looks at to wake waiting steps only when one may go on
        # (each wake-up of a step that must go on waiting costs a thread switch):
        self.opened = False  # a full routine got room or an escape (supervisor thread)
        self.inbox_waits = False  # a step waited on the inbox's length
        self._limit_seen = limit

    def must_wait(self, targets: Iterable[str], emitter: str) -> bool:
        """Whether an emit of routine ``emitter`` to ``targets`` has to wait now."""
        if self.closed:
            return False
        if self.full:
            escape = self.escape
            for target in targets:
                if target in self.full and emitter not in escape.get(target, ()):
                    return True
        if self._inbox_len() > self.limit:
            self.inbox_waits = True
            return True
        return False

    def mark_full(self, routine_id: str) -> None:
        """``routine_id``'s queue reached the limit."""
        self.full.add(routine_id)

    def mark_room(self, routine_id: str) -> None:
        """``routine_id``'s queue is below the limit again."""
        if routine_id in self.full:
            self.full.discard(routine_id)
            self.opened = True
        self.escape.pop(routine_id, None)

    def open_escape(self, entry: Any, entries: Mapping[str, Any]) -> None:
        """Let a blocked cycle's own emits into ``entry`` (a full routine's ledger
        entry) through, if ``entry`` closes one (see :func:`blocked_cycle`)."""
        cycle = blocked_cycle(entry, self.full, entries)
        if cycle:
            self.escape[entry.routine_id] = cycle
            self.opened = True

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
        """Wake waiting steps so they re-check (called by the supervisor) when one
        may go on: a full routine got room or an escape, the limit changed, or a
        step waited on the inbox and the inbox is short again."""
        if not self.waiters:
            return
        if (
            self.opened
            or self.limit != self._limit_seen
            or (self.inbox_waits and self._inbox_len() <= self.limit)
        ):
            self.opened = self.inbox_waits = False
            self._limit_seen = self.limit
            with self._condition:
                self._condition.notify_all()


def blocked_cycle(entry: Any, full: set[str], entries: Mapping[str, Any]) -> frozenset[str]:
    """Rule *bounded memory*, its one escape: when every replica of ``entry``
    waits in emit() on a full routine that (through routines equally blocked)
    waits on ``entry`` itself — a routine feeding itself, or a cycle of routines
    each feeding the next — nobody could drain those queues. Returns the
    routines of that cycle, whose emits into ``entry`` are let through instead
    of deadlocking; emits from outside the cycle still wait. Empty when there
    is no such cycle (a relay between a fast producer and a slow consumer is
    not one, and stays bounded). ``entries`` are the ledger's routine entries."""
    if not entry.all_suspended():
        return frozenset()
    start = entry.routine_id
    stack, seen = [entry], {start}
    found = False
    while stack:
        for actor in stack.pop().actors:
            for target in actor.waiting_on:
                if target == start:
                    found = True
                if target in seen or target not in full:
                    continue
                seen.add(target)
                blocked = entries.get(target)
                if blocked is not None and blocked.all_suspended():
                    stack.append(blocked)
    return frozenset(seen) if found else frozenset()
