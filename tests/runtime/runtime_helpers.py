"""Routines and helpers shared by the runtime tests.

This module is importable by routine processes too (they get the parent's
``sys.path``), so routines defined here can run with ``execution="process"``.
"""

from __future__ import annotations

import time

from routilux import Routine


class Node(Routine):
    """A routine whose behaviour is ``fn(node, data)``; records every call.

    ``calls`` holds each message's data and ``times`` when it arrived.
    """

    def __init__(
        self,
        fn=None,
        slots=("trigger", "in"),
        events=("out",),
        merge_strategy="override",
    ):
        super().__init__()
        self.fn = fn
        self.calls: list = []
        self.times: list[float] = []
        for name in slots:
            self.define_slot(
                name,
                handler=self._handle,
                merge_strategy=merge_strategy if name == "in" else "override",
            )
        for name in events:
            self.define_event(name)

    def _handle(self, **data):
        self.record(data)
        if self.fn is not None:
            self.fn(self, data)

    def record(self, data: dict) -> None:
        self.calls.append(data)
        self.times.append(time.monotonic())


class Source(Routine):
    """Emits ``x=0..n-1`` on ``out`` (extra keys are passed along)."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["x"])

    def go(self, n=1, **extra):
        for i in range(n):
            self.emit("out", x=i, **extra)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.005) -> bool:
    """Wait for a condition another process brings about (bounded, never a settle)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
