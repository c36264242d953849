"""The messages exchanged by the supervisor and routine actors.

Hot-path messages from routine actors to the supervisor are plain tuples whose first
item is one of the tags below (cheaper than objects on a path taken 100,000 times a
second); deliveries are :class:`Delivery` objects.
"""

from __future__ import annotations

import traceback as _traceback
from enum import Enum
from typing import Any


class Tag(Enum):
    """What a routine actor (or a timer) tells the supervisor; the first item of a
    hot-path message tuple. The fields that follow each tag, in order:

    - EMIT ``(delivery, emit_index, routine_id, event_name, data)``: a step emitted;
      ``emit_index`` counts the step's emits (redelivered steps re-emit the same).
    - DONE ``(actor, delivery, error_info_or_None, t_start, t_end)``: a step ended;
      times are ``time.perf_counter()`` readings of the process that ran it.
    - DONE_BATCH ``(actor, [deliveries], [durations], t_first_start, t_last_end)``:
      steps of one batch that succeeded, in the order they ran (a thread replica
      reports them together; failed and retried steps still come as DONE).
    - RETURNED ``(actor, [deliveries])``: handed back unrun (job paused/cancelled).
    - OUTPUT ``(delivery, routine_id, output_type, data)``: ``send_output`` of a step.
    - DEFER ``(delivery, routine_id, event_name, data)``: ``emit_deferred_event``.
    - SUSPEND ``(actor, delivery, targets)``: a step waits in emit() for room in
      ``targets`` (routine ids); UNSUSPEND ``(actor, delivery)``: it goes on.
    - REPORT ``(actor, stats_or_None, state_bytes_or_None)``: a process replica's
      ``_stats`` and state after a step (recorded by the supervisor, not the reader).
    - TIMER ``(callback, *args)``: a timer fired; run ``callback(*args)``.
    - CRASHED ``(actor, reason, returncode_or_None, [lost deliveries])``: a replica
      died with those deliveries outstanding.
    - RESTARTED ``(actor, error_or_None, pid_or_None)``: a replacement replica
      started (or could not be: ``error``).
    """

    EMIT = "emit"
    DONE = "done"
    DONE_BATCH = "done_batch"
    RETURNED = "returned"
    OUTPUT = "output"
    DEFER = "defer"
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"
    REPORT = "report"
    TIMER = "timer"
    CRASHED = "crashed"
    RESTARTED = "restarted"


# Module-level names for the hot path (``tag is EMIT``: identity, no lookup).
EMIT = Tag.EMIT
DONE = Tag.DONE
DONE_BATCH = Tag.DONE_BATCH
RETURNED = Tag.RETURNED
OUTPUT = Tag.OUTPUT
DEFER = Tag.DEFER
SUSPEND = Tag.SUSPEND
UNSUSPEND = Tag.UNSUSPEND
REPORT = Tag.REPORT
TIMER = Tag.TIMER
CRASHED = Tag.CRASHED
RESTARTED = Tag.RESTARTED


class Delivery:
    """One message to one slot of one routine, within one job.

    ``data`` is what the connection delivered; ``call_data`` what the handler gets
    after the slot's merge strategy (computed once, at first dispatch, so that a
    retried or redelivered message is not merged twice).
    """

    __slots__ = (
        "id",
        "job",
        "routine_id",
        "slot",
        "data",
        "call_data",
        "attempt",
        "emitted",
        "seq",
        "first_started",
    )

    def __init__(self, msg_id: int, job: Any, routine_id: str, slot: str, data: dict) -> None:
        self.id = msg_id
        self.job = job
        self.routine_id = routine_id
        self.slot = slot
        self.data = data
        self.call_data: dict | None = None
        self.attempt = 0
        # Emits already routed for this message: a retried or redelivered step that
        # emits the same way again produces the same ids, and those are dropped.
        self.emitted = 0
        self.seq = 0  # dispatch order, to put deliveries handed back in their place
        self.first_started: float | None = None  # first attempt's start, once retried

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (for ``JobState.pending_tasks``)."""
        return {
            "id": self.id,
            "routine_id": self.routine_id,
            "slot": self.slot,
            "data": self.data,
            "attempt": self.attempt,
        }

    def __repr__(self) -> str:
        return f"Delivery({self.routine_id}.{self.slot}, id={self.id:x})"


class ErrorInfo:
    """A handler failure as the supervisor records it."""

    __slots__ = ("type_name", "message", "traceback", "exception")

    def __init__(
        self, type_name: str, message: str, traceback: str, exception: BaseException | None
    ) -> None:
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        self.exception = exception

    @classmethod
    def from_exception(cls, error: BaseException) -> ErrorInfo:
        """Capture type name, message and traceback of ``error``."""
        return cls(
            type(error).__name__,
            _text(error),
            _format_traceback(error),
            error,
        )

    def summary(self) -> str:
        """``Type: message`` on one line."""
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


def _text(error: BaseException) -> str:
    """``str(error)``, even for exceptions whose ``__str__`` itself fails."""
    try:
        return str(error)
    except Exception:
        try:
            return repr(error)
        except Exception:
            return f"<{type(error).__name__} whose str() failed>"


def _format_traceback(error: BaseException) -> str:
    try:
        return "".join(_traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:
        return f"{type(error).__name__} (traceback could not be formatted)"
