"""Output handlers: where ``Routine.send_output`` data goes."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any


class OutputHandler:
    """Base class: receives every ``send_output`` call of a job."""

    def handle(self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        """Handle one output; the base class ignores it."""


class NullOutputHandler(OutputHandler):
    """Discards outputs (they are still kept in ``JobState.output_log``)."""


class QueueOutputHandler(OutputHandler):
    """Puts each output as a dict on a :class:`queue.Queue` (``.queue``)."""

    def __init__(self, output_queue: queue.Queue | None = None, maxsize: int = 0) -> None:
        self.queue: queue.Queue = output_queue if output_queue is not None else queue.Queue(maxsize)

    def handle(self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        self.queue.put(
            {"job_id": job_id, "routine_id": routine_id, "output_type": output_type, "data": data}
        )

    def get_all(self) -> list[dict[str, Any]]:
        """Take every output queued so far."""
        items = []
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                return items


class CallbackOutputHandler(OutputHandler):
    """Calls ``callback(job_id, routine_id, output_type, data)`` for each output."""

    def __init__(self, callback: Callable[[str, str, str, dict[str, Any]], Any]) -> None:
        if not callable(callback):
            from routilux.exceptions import ConfigurationError

            raise ConfigurationError("CallbackOutputHandler needs a callable")
        self.callback = callback

    def handle(self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        self.callback(job_id, routine_id, output_type, data)
