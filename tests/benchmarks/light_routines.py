"""Routines of the process workloads, in a module that imports only routilux: a
routine process imports the module of its class, and the workloads time routilux,
not the import of the benchmark's own modules."""

from __future__ import annotations

from routilux import Routine


class Echo(Routine):
    """Answers each ping with a pong carrying the same ``i``."""

    def __init__(self):
        super().__init__()
        self.define_slot("ping", handler=self.echo)
        self.define_event("pong", ["i"])

    def echo(self, i):
        self.emit("pong", i=i)


class Pinger(Routine):
    """Sends one ping per pong until ``cycles`` round trips are done."""

    def __init__(self):
        super().__init__()
        self.remaining = 0
        self.define_slot("trigger", handler=self.start)
        self.define_slot("pong", handler=self.pong)
        self.define_event("ping", ["i"])

    def start(self, cycles):
        self.remaining = cycles
        self.emit("ping", i=0)

    def pong(self, i):
        self.remaining -= 1
        if self.remaining > 0:
            self.emit("ping", i=i + 1)


class Tiny(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.take)

    def take(self, x):
        self._stats["x"] = x
