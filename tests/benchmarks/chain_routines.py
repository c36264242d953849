"""The routines of the 10-routine chain, written against the API routilux 0.10 and
today's routilux share, so both versions run the very same workload.

Imported by the suite (today's routilux) and by ``rx010_chain.py`` inside the
routilux 0.10 virtual environment; it must import nothing else from this folder.
"""

from __future__ import annotations

import threading

from routilux import Routine

HOPS = 10


class Source(Routine):
    """Emits ``n`` messages in one step."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("out", ["i"])

    def start(self, n):
        for i in range(n):
            self.emit("out", i=i)


class Relay(Routine):
    """Passes each message on."""

    def __init__(self):
        super().__init__()
        self.define_slot("inp", handler=self.relay)
        self.define_event("out", ["i"])

    def relay(self, i):
        self.emit("out", i=i)


class Sink(Routine):
    """Counts arrivals; sets ``done`` when ``expect`` messages have arrived."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.expect = -1
        self.done = threading.Event()
        self.define_slot("inp", handler=self.take)

    def take(self, i):
        self.count += 1
        if self.count == self.expect:
            self.done.set()

    def arm(self, expect: int) -> None:
        """Reset the count and wait for ``expect`` arrivals."""
        self.count, self.expect = 0, expect
        self.done.clear()

    def __getstate__(self):  # the Event cannot be pickled into a checkpoint
        return {k: v for k, v in vars(self).items() if k != "done"}

    def __setstate__(self, state):
        vars(self).update(state)
        self.done = threading.Event()


def wire_chain(flow, hops: int = HOPS, source: Routine | None = None) -> Sink:
    """Add a ``hops``-routine chain r0 -> ... -> r<hops-1> to ``flow``; returns the sink."""
    flow.add_routine(source if source is not None else Source(), "r0")
    for k in range(1, hops - 1):
        flow.add_routine(Relay(), f"r{k}")
    sink = Sink()
    flow.add_routine(sink, f"r{hops - 1}")
    for k in range(hops - 1):
        flow.connect(f"r{k}", "out", f"r{k + 1}", "inp")
    return sink
