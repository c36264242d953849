"""routilux: event-driven workflows on an actor runtime.

A :class:`Flow` is a graph of :class:`Routine` objects whose events feed slots; each
routine runs as an actor and a per-flow supervisor routes every message.
"""

from routilux.connection import Connection
from routilux.error_handler import ErrorHandler, ErrorStrategy
from routilux.event import Event
from routilux.exceptions import (
    CheckpointError,
    ConfigurationError,
    FlowStateError,
    JobTimeoutError,
    RoutiluxError,
    RoutineCrashedError,
    SerializationError,
)
from routilux.execution_tracker import ExecutionTracker
from routilux.flow import Flow
from routilux.job_state import ExecutionRecord, JobState
from routilux.output_handler import (
    CallbackOutputHandler,
    NullOutputHandler,
    OutputHandler,
    QueueOutputHandler,
)
from routilux.routine import ExecutionContext, Routine
from routilux.runtime.restart import RestartPolicy
from routilux.slot import Slot

__version__ = "0.11.0"

__all__ = [
    "CallbackOutputHandler",
    "CheckpointError",
    "ConfigurationError",
    "Connection",
    "ErrorHandler",
    "ErrorStrategy",
    "Event",
    "ExecutionContext",
    "ExecutionRecord",
    "ExecutionTracker",
    "Flow",
    "FlowStateError",
    "JobState",
    "JobTimeoutError",
    "NullOutputHandler",
    "OutputHandler",
    "QueueOutputHandler",
    "RestartPolicy",
    "Routine",
    "RoutineCrashedError",
    "RoutiluxError",
    "SerializationError",
    "Slot",
    "__version__",
]
