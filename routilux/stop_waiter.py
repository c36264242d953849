"""Waiting in the main thread until a stop is asked for, by a signal or a thread.

Python runs a signal's handler in the main thread, between two bytecodes. The OS
may deliver a process's signal to any of its threads; when it lands on another
thread while the main thread is blocked on a lock (``Event.wait``), the handler
runs only once that wait ends, which can be never. A :class:`StopWaiter` blocks in
``select()`` on a socket that the interpreter's own C-level handler writes to
(``signal.set_wakeup_fd``), so a signal wakes it whichever thread received it, and
:meth:`StopWaiter.wake` wakes it from any thread.
"""

from __future__ import annotations

import select
import signal
import socket
from collections.abc import Callable

# Only a backstop: every signal and every wake() ends the select() at once.
_BACKSTOP_SECONDS = 60.0


class StopWaiter:
    """Blocks the main thread until ``stopped()`` holds (see the module docstring)."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def wait(self, stopped: Callable[[], bool]) -> None:
        """Return once ``stopped()`` is true; checked after every signal and wake().

        Call it from the main thread, with the signal handlers that make
        ``stopped()`` true installed."""
        previous = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        try:
            # stopped() is a call: a handler whose signal woke select() runs first.
            while not stopped():
                select.select([self._reader], [], [], _BACKSTOP_SECONDS)
                self._drain()
        finally:
            signal.set_wakeup_fd(previous)

    def wake(self) -> None:
        """Make :meth:`wait` check ``stopped()`` again (any thread)."""
        try:
            self._writer.send(b"\0")
        except OSError:  # the buffer is full (a wake-up is pending) or it is closed
            pass

    def close(self) -> None:
        """Release the sockets."""
        self._reader.close()
        self._writer.close()

    def _drain(self) -> None:
        try:
            while self._reader.recv(512):
                pass
        except OSError:  # nothing left (BlockingIOError) or closed
            pass
