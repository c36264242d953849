"""routilux: event-driven workflows on an actor runtime.

A :class:`Flow` is a graph of :class:`Routine` objects whose events feed slots; each
routine runs as an actor and a per-flow supervisor routes every message.
"""

import importlib

from routilux._version import __version__
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

# Heavier parts load on first use, so that ``import routilux`` stays fast.
_LAZY = {
    "CheckpointStore": "routilux.checkpoint.stores",
    "SQLiteStore": "routilux.checkpoint.stores",
    "DirectoryStore": "routilux.checkpoint.stores",
    "Runtime": "routilux.service",
    # The built-in routines were exported from the package root in 0.10.
    **{
        name: "routilux.builtin_routines"
        for name in (
            "TextClipper",
            "TextRenderer",
            "ResultExtractor",
            "TimeProvider",
            "DataFlattener",
            "DataTransformer",
            "DataValidator",
            "ConditionalRouter",
            "Batcher",
            "Aggregator",
            "Splitter",
            "Filter",
            "Mapper",
            "Debouncer",
        )
    },
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'routilux' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CallbackOutputHandler",
    "CheckpointError",
    "CheckpointStore",
    "ConfigurationError",
    "Connection",
    "DirectoryStore",
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
    "RoutiluxError",
    "Routine",
    "RoutineCrashedError",
    "Runtime",
    "SQLiteStore",
    "SerializationError",
    "Slot",
    "__version__",
]
