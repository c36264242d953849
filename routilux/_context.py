"""The execution context of the step running in the current thread.

A routine actor sets it around every handler call; ``Routine.emit`` reads it to
decide between routing through the supervisor and synchronous standalone delivery.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, NamedTuple


class ExecutionContext(NamedTuple):
    """Where a handler is running: its flow, its job and its routine id in the flow."""

    flow: Any
    job_state: Any
    routine_id: str


_local = threading.local()
# routine -> the step context of the actor hosting it, for emits made from threads
# a handler started (they have no thread-local context of their own).
_hosted: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def current_step() -> Any | None:
    """The step context of this thread, or None outside any handler run by a flow."""
    return getattr(_local, "step", None)


def in_handler() -> bool:
    """True when called from a step (a handler run by some flow's actor)."""
    return current_step() is not None


def set_current_step(step: Any | None) -> Any | None:
    """Install ``step`` as this thread's context; returns the previous one."""
    previous = getattr(_local, "step", None)
    _local.step = step
    return previous


def host_routine(routine: Any, step: Any) -> None:
    """Record that ``routine`` runs on an actor whose step context is ``step``
    (several for a routine with thread replicas)."""
    try:
        _hosted.setdefault(routine, []).append(step)
    except TypeError:  # an unhashable routine: helper-thread emits stay unsupported
        pass


def unhost_routine(routine: Any, step: Any) -> None:
    """Forget the binding made by :func:`host_routine`."""
    try:
        steps = _hosted.get(routine)
        if steps and step in steps:
            steps.remove(step)
            if not steps:
                del _hosted[routine]
    except TypeError:
        pass


def hosting_step(routine: Any) -> Any | None:
    """The step context of the actor hosting ``routine`` that is running a handler
    (or, if none is, any of them, so that the caller can say what went wrong).

    Raises LookupError when several replicas run handlers at once: a thread cannot
    be told apart by the replica that started it.
    """
    try:
        steps = _hosted.get(routine)
    except TypeError:
        return None
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    active = [s for s in steps if s.active]
    if len(active) > 1:
        raise LookupError("several replicas are running handlers")
    return active[0] if active else steps[0]
