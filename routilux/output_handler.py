"""Output handlers: where ``Routine.send_output`` data goes."""

from __future__ import annotations

import inspect
import queue
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from routilux.exceptions import ConfigurationError
from routilux.serialization import is_plain_callable


class OutputHandler:
    """Base class: receives every ``send_output`` call of a job.

    ``handle`` gets ``timestamp`` (a :class:`datetime`) when its signature accepts
    it; a 0.10-style ``handle(job_id, routine_id, output_type, data)`` works too.
    """

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """Handle one output; the base class ignores it."""


class NullOutputHandler(OutputHandler):
    """Discards outputs (they are still kept in ``JobState.output_log``)."""


class QueueOutputHandler(OutputHandler):
    """Puts each output as a dict on a :class:`queue.Queue` (``.queue``), with an
    ISO ``timestamp``."""

    def __init__(self, output_queue: queue.Queue | None = None, maxsize: int = 0) -> None:
        self.queue: queue.Queue = output_queue if output_queue is not None else queue.Queue(maxsize)

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        self.queue.put(
            {
                "job_id": job_id,
                "routine_id": routine_id,
                "output_type": output_type,
                "data": data,
                "timestamp": (timestamp or datetime.now()).isoformat(),
            }
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
    """Calls ``callback(job_id, routine_id, output_type, data)`` for each output, or
    ``callback(job_id, routine_id, output_type, data, timestamp)`` (a
    :class:`datetime`, as in 0.10) when the callback takes a fifth parameter."""

    def __init__(self, callback: Callable[..., Any]) -> None:
        if not is_plain_callable(callback):
            raise ConfigurationError("CallbackOutputHandler needs a callable")
        self.callback = callback
        self._with_timestamp = _accepts(callback, 5, "timestamp")

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        if self._with_timestamp:
            self.callback(job_id, routine_id, output_type, data, timestamp or datetime.now())
        else:
            self.callback(job_id, routine_id, output_type, data)


def deliver_output(
    handler: Any,
    job_id: str,
    routine_id: str,
    output_type: str,
    data: dict[str, Any],
    timestamp: datetime,
) -> None:
    """Call ``handler.handle``, with ``timestamp=`` if its signature accepts it."""
    if _accepts(handler.handle, 5, "timestamp"):
        handler.handle(job_id, routine_id, output_type, data, timestamp=timestamp)
    else:
        handler.handle(job_id, routine_id, output_type, data)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_ACCEPTS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _accepts(function: Callable[..., Any], position: int, name: str) -> bool:
    """Whether ``function`` takes a ``position``-th argument (or keyword ``name``)."""
    key = getattr(function, "__func__", function)
    try:
        return _ACCEPTS[key]
    except (KeyError, TypeError):
        pass
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        result = False
    else:
        kinds = {p.kind for p in params}
        positional = [p for p in params if p.kind in _POSITIONAL]
        result = (
            inspect.Parameter.VAR_POSITIONAL in kinds
            or inspect.Parameter.VAR_KEYWORD in kinds
            or len(positional) >= position
            or any(p.name == name for p in params)
        )
    try:
        _ACCEPTS[key] = result
    except TypeError:
        pass
    return result
