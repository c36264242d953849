"""The messages exchanged by the supervisor and routine actors.

Hot-path messages from routine actors to the supervisor are plain tuples whose first
item is one of the tags below (cheaper than objects on a path taken 100,000 times a
second); deliveries are :class:`Delivery` objects.
"""

from __future__ import annotations

import traceback as _traceback
from typing import Any

# routine actor -> supervisor, posted through FlowSupervisor.post()
EMIT = "emit"  # (EMIT, delivery, emit_index, routine_id, event_name, data)
DONE = "done"  # (DONE, actor, delivery, error_info_or_None, t_start, t_end)
RETURNED = "returned"  # (RETURNED, actor, [deliveries]): not run (job paused/cancelled)
OUTPUT = "output"  # (OUTPUT, delivery, routine_id, output_type, data)
DEFER = "defer"  # (DEFER, delivery, routine_id, event_name, data)
SUSPEND = "suspend"  # (SUSPEND, actor, delivery, targets): step blocked on full targets
UNSUSPEND = "unsuspend"  # (UNSUSPEND, actor, delivery)
TIMER = "timer"  # (TIMER, callback, *args)
CRASHED = "crashed"  # (CRASHED, actor, reason, returncode, lost_deliveries)
RESTARTED = "restarted"  # (RESTARTED, actor, error_or_None)


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
