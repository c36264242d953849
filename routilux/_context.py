"""The execution context of the step running in the current thread.

A routine actor sets it around every handler call; ``Routine.emit`` reads it to
decide between routing through the supervisor and synchronous standalone delivery.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

_local = threading.local()
# routine -> the step context of the actor hosting it, for emits made from threads
# a handler started (they have no thread-local context of their own).
_hosted: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def current_step() -> Any | None:
    """The step context of this thread, or None outside any handler run by a flow."""
    return getattr(_local, "step", None)


def set_current_step(step: Any | None) -> Any | None:
    """Install ``step`` as this thread's context; returns the previous one."""
    previous = getattr(_local, "step", None)
    _local.step = step
    return previous


def host_routine(routine: Any, step: Any) -> None:
    """Record that ``routine`` runs on an actor whose step context is ``step``."""
    try:
        _hosted[routine] = step
    except TypeError:  # an unhashable routine: helper-thread emits stay unsupported
        pass


def unhost_routine(routine: Any, step: Any) -> None:
    """Forget the binding made by :func:`host_routine` (if it is still ``step``)."""
    try:
        if _hosted.get(routine) is step:
            del _hosted[routine]
    except TypeError:
        pass


def hosting_step(routine: Any) -> Any | None:
    """The step context of the actor hosting ``routine``, if any."""
    try:
        return _hosted.get(routine)
    except TypeError:
        return None
