"""Every exception class routilux raises.

Validation errors subclass :class:`ValueError` (and timeouts :class:`TimeoutError`)
so that code written for the 0.10 API, which caught the built-in types, keeps working.
"""

from __future__ import annotations


class RoutiluxError(Exception):
    """Base class of every routilux error."""


class ConfigurationError(RoutiluxError, ValueError):
    """A flow, routine, slot, event or connection was set up wrongly."""


class FlowStateError(RoutiluxError, RuntimeError):
    """An operation is not possible in the flow's or job's current state."""


class JobTimeoutError(RoutiluxError, TimeoutError):
    """A job ran past its timeout."""


class SerializationError(RoutiluxError, TypeError):
    """Data or a routine could not be pickled to cross a process boundary."""


class UnsafeExpressionError(ConfigurationError):
    """An expression is malformed or uses something the safe evaluator refuses."""


class ExpressionEvaluationError(RoutiluxError, ValueError):
    """A valid expression failed while being evaluated (missing name, bad types, limits)."""


class RoutineCrashedError(RoutiluxError):
    """A routine's actor died (process killed, crashed or timed out) too often."""


class CheckpointError(RoutiluxError):
    """A checkpoint could not be written, or failed verification when read."""


class CheckpointSkipped(CheckpointError):
    """No consistent cut was possible now (a step in flight waits on backpressure);
    the checkpoint is tried again soon (rule *cuts never wait on dispatch*)."""


class FlowFileError(ConfigurationError):
    """A flow file is malformed or describes a flow that cannot be built.

    ``problems`` lists every problem found (each with its file, line and column);
    the message is the first one, on one line.
    """

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


__all__ = [
    "CheckpointError",
    "CheckpointSkipped",
    "ConfigurationError",
    "ExpressionEvaluationError",
    "FlowFileError",
    "FlowStateError",
    "JobTimeoutError",
    "RoutiluxError",
    "RoutineCrashedError",
    "SerializationError",
    "UnsafeExpressionError",
]
