"""Debouncer: let one message through per burst."""

from __future__ import annotations

import time
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.builtin_routines.stream._common import check_forwardable


class Debouncer(BuiltinRoutine):
    """Passes on one message per burst; a burst ends after ``wait`` quiet seconds.

    Trailing mode (default): the *last* message of a burst is passed on. The
    Debouncer starts no timer or thread (it must pickle and run in another process),
    so the end of a burst is noticed when the next message arrives ``wait`` seconds
    or more after the previous one (the held message is emitted, the new one is
    held), or when the ``flush`` slot receives any message (the held message is
    emitted at once). Leading mode (``leading=True``): the *first* message of a burst
    is passed on at once and the rest of the burst is dropped; nothing is held.

    Messages pass unchanged. Dropped messages are counted in
    ``stats()["suppressed"]``. The held message belongs to the routine, not to a job.

    Config: ``wait`` (seconds >= 0, default 0.5), ``leading`` (default False),
    ``clock`` (a callable returning seconds; None: ``time.monotonic``).

    Slots ``input`` and ``flush``.
    Event ``output``: the keys of the message passed on.
    """

    CONFIG_DEFAULTS = {"wait": 0.5, "leading": False, "clock": None}

    def __init__(self, **config: Any) -> None:
        self._held: dict[str, Any] | None = None
        self._last_at: float | None = None
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_slot("flush", handler=self._on_flush)
        self.define_event("output")

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "wait":
            return self._check_number(key, value, minimum=0.0)
        if key == "leading":
            return self._check_bool(key, value)
        if key == "clock":
            return self._check_callable(key, value)
        return value

    @property
    def held(self) -> dict[str, Any] | None:
        """The message waiting for the end of its burst (trailing mode), or None."""
        return None if self._held is None else dict(self._held)

    def reset(self) -> None:
        """Forget the held message and the burst."""
        self._held = None
        self._last_at = None

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._count("emitted")
            self.emit("output", **held)

    def _on_input(self, /, **message: Any) -> None:
        check_forwardable("Debouncer", message)
        now = (self._config["clock"] or time.monotonic)()
        quiet = self._last_at is None or now - self._last_at >= self._config["wait"]
        self._last_at = now
        if self._config["leading"]:
            if quiet:
                self._count("emitted")
                self.emit("output", **message)
            else:
                self._count("suppressed")
            return
        if self._held is not None:
            if quiet:
                self._release()
            else:
                self._count("suppressed")
        self._held = dict(message)

    def _on_flush(self, /, **_message: Any) -> None:
        self._release()
