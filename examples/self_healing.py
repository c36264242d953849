"""A routine that crashes at random, and a flow that still gets the right answer.

    python examples/self_healing.py
    routilux run examples/self_healing.py:flow --params '{"count": 40}'
    routilux run examples/self_healing.yaml --allow self_healing --params '{"count": 40}'

``Squarer`` runs in its own process and kills itself (SIGKILL) on about one step
in five. The supervisor notices each death from the OS, starts a new process from
the routine's last known state, and redelivers the message it was working on.
Emits made before a crash are not routed twice, so the sum is exact.
"""

from __future__ import annotations

import logging
import os
import random
import signal

from routilux import Flow, RestartPolicy, Routine


class Numbers(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("number", ["n", "of"])

    def go(self, count):
        for n in range(1, count + 1):
            self.emit("number", n=n, of=count)


class Squarer(Routine):
    """Squares numbers; dies at random."""

    def __init__(self, crash_rate: float = 0.2):
        super().__init__()
        self.crash_rate = crash_rate
        self.define_slot("number", handler=self.square)
        self.define_event("square", ["n", "square", "of"])

    def square(self, n, of=None):
        if random.Random(os.getpid() * 1_000_003 + n).random() < self.crash_rate:
            os.kill(os.getpid(), signal.SIGKILL)  # as if the OOM killer struck
        self._stats["squared"] = self._stats.get("squared", 0) + 1
        self.emit("square", n=n, square=n * n, of=of)


class Summer(Routine):
    def __init__(self):
        super().__init__()
        self.total = 0
        self.seen = set()
        self.define_slot("square", handler=self.add)

    def add(self, n, square, of=None):
        assert n not in self.seen, f"{n} delivered twice"
        self.seen.add(n)
        self.total += square
        if len(self.seen) == of:
            self.send_output("sum", sum_of_squares=self.total, numbers=of)


def flow() -> Flow:
    """The flow, also for `routilux run examples/self_healing.py:flow`."""
    flow = Flow(flow_id="self-healing", execution_strategy="concurrent")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(
        Squarer(), "squarer", execution="process",
        restart=RestartPolicy(max_restarts=100, within=60.0, backoff=0.01, backoff_max=0.1),
    )
    flow.add_routine(Summer(), "summer")
    flow.connect("numbers", "number", "squarer", "number")
    flow.connect("squarer", "square", "summer", "square")
    return flow


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    count = 40
    pipeline = flow()
    summer = pipeline.routines["summer"]
    job = pipeline.execute("numbers", {"count": count}, timeout=120)
    expected = sum(n * n for n in range(1, count + 1))
    print(f"job {job.status}: sum of squares 1..{count} = {summer.total} (expected {expected})")
    restarts = pipeline.metrics()["squarer"]["restarts"]
    print(f"crashes survived: {len(job.crashes)}; restarts: {restarts}")
    print(f"squarer stats: {pipeline.routines['squarer'].stats()}")
    pipeline.shutdown()
    assert job.status == "completed" and summer.total == expected


if __name__ == "__main__":
    main()
