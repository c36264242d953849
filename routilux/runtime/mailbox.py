"""The runtime's fast inboxes: a deque plus a doorbell message, on actors whose
pykka inbox is a C queue.

Routine actors append to the deque and ring the supervisor's pykka inbox only when
it is not already rung, so a busy supervisor drains hundreds of messages per wake-up
(adaptive batching) while a lone message still wakes it at once.
"""

from __future__ import annotations

import queue
from collections import deque
from typing import Any

import pykka

BELL = object()


class QuickActor(pykka.ThreadingActor):
    """A pykka thread actor whose inbox is a :class:`queue.SimpleQueue`.

    pykka's default inbox is a :class:`queue.Queue` (a lock and two conditions in
    Python); the C ``SimpleQueue`` has the ``put``/``get``/``empty`` pykka uses and
    makes each hand-off between two actors cheaper. Every runtime actor wakes on each
    step, so it adds up (figures: docs/performance.rst, "Cheaper hand-offs").
    """

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()


class Mailbox:
    """The supervisor's inbox: routine actors post, the supervisor drains."""

    __slots__ = ("items", "rung", "ref", "thread")

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.rung = False
        self.ref: pykka.ActorRef | None = None
        self.thread: Any = None  # the supervisor's thread, for joining at shutdown

    def post(self, item: Any) -> None:
        """Queue ``item`` for the supervisor (from any thread)."""
        self.items.append(item)
        if not self.rung:
            self.ring()

    def ring(self) -> None:
        """Ring the bell (``post`` does when it is not rung; a poster that appends
        to ``items`` itself calls this the same way)."""
        self.rung = True
        try:
            self.ref.tell(BELL)  # type: ignore[union-attr]
        except pykka.ActorDeadError:
            pass  # the supervisor has stopped; the flow is shutting down

    def take_all(self) -> deque[Any]:
        """Called by the supervisor: clear the bell, then hand over the live queue
        (posters keep appending to it while it is drained; that is the batching).

        Clearing before draining is what makes the handshake race-free: a poster
        that saw ``rung`` still set appended before it was cleared.
        """
        self.rung = False
        return self.items

    def __len__(self) -> int:
        return len(self.items)
