"""Batcher: group messages into batches by size and/or age."""

from __future__ import annotations

import time
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.exceptions import ConfigurationError


class Batcher(BuiltinRoutine):
    """Collects items and emits them as lists.

    A batch is emitted when it holds ``batch_size`` items, or - with ``max_wait`` -
    when an item arrives and the open batch is ``max_wait`` seconds old or more (that
    batch is emitted first and the new item starts the next one), or when the
    ``flush`` slot receives any message (use it at the end of a stream, e.g. from
    ``Splitter``'s ``done`` event, or from a periodic tick). The Batcher starts no
    timer or thread (it must pickle and run in another process), so time is only
    looked at when a message arrives.

    The buffer belongs to the routine, not to a job: items still buffered when a job
    ends wait for the next message, flush or :meth:`reset`.

    Config: ``batch_size`` (int >= 1 or None), ``max_wait`` (seconds > 0 or None; at
    least one of the two must be set), ``input_key`` (the key whose value is the
    item; None (default): the whole message dict), ``clock`` (a callable returning
    seconds; None: ``time.monotonic``).

    Slots ``input`` (one item per message) and ``flush`` (any message).
    Event ``output(batch, count, reason)``: ``batch`` the list of items, ``count`` its
    length, ``reason`` ``"size"``, ``"time"`` or ``"flush"``.
    """

    CONFIG_DEFAULTS = {"batch_size": None, "max_wait": None, "input_key": None, "clock": None}

    def __init__(self, **config: Any) -> None:
        self._buffer: list[Any] = []
        self._opened_at: float | None = None
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_slot("flush", handler=self._on_flush)
        self.define_event("output", ["batch", "count", "reason"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "batch_size":
            return self._check_int(key, value, minimum=1, allow_none=True)
        if key == "max_wait":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise self._bad_config(key, "a number of seconds > 0 or None", value)
            return value
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        if key == "clock":
            return self._check_callable(key, value)
        return value

    @property
    def pending(self) -> list[Any]:
        """A copy of the items waiting in the open batch."""
        return list(self._buffer)

    def reset(self) -> None:
        """Drop the open batch."""
        self._buffer = []
        self._opened_at = None

    def _now(self) -> float:
        return (self._config["clock"] or time.monotonic)()

    def _emit_batch(self, reason: str) -> None:
        batch, self._buffer, self._opened_at = self._buffer, [], None
        self._count("batches")
        self.emit("output", batch=batch, count=len(batch), reason=reason)

    def _on_input(self, /, **message: Any) -> None:
        size = self._config["batch_size"]
        max_wait = self._config["max_wait"]
        if size is None and max_wait is None:
            raise ConfigurationError("Batcher needs batch_size and/or max_wait to be set")
        item = self._input_value(message)
        now = self._now() if max_wait is not None else 0.0
        if (
            max_wait is not None
            and self._buffer
            and self._opened_at is not None
            and now - self._opened_at >= max_wait
        ):
            self._emit_batch("time")
        if not self._buffer:
            self._opened_at = now
        self._buffer.append(item)
        if size is not None and len(self._buffer) >= size:
            self._emit_batch("size")

    def _on_flush(self, /, **_message: Any) -> None:
        if self._buffer:
            self._emit_batch("flush")
