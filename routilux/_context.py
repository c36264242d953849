"""The execution context of the step running in the current thread.

A routine actor sets it around every handler call; ``Routine.emit`` reads it to
decide between routing through the supervisor and synchronous standalone delivery.
"""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


def current_step() -> Any | None:
    """The step context of this thread, or None outside any handler run by a flow."""
    return getattr(_local, "step", None)


def set_current_step(step: Any | None) -> Any | None:
    """Install ``step`` as this thread's context; returns the previous one."""
    previous = getattr(_local, "step", None)
    _local.step = step
    return previous
