"""Flows for the command-line tests (loaded by `routilux` as FILE.py:NAME)."""

from __future__ import annotations

import os
import sys
import time

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine


class Numbers(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("number", ["n"])

    def go(self, **params):
        # **params: with several parameters and no matching key (empty params), a
        # handler gets the whole dict as its first argument (0.10's rule).
        count, fail_at = params.get("count", 10), params.get("fail_at")
        for n in range(1, count + 1):
            self.emit("number", n=n, fail_at=fail_at)


class Accumulate(Routine):
    """Adds numbers up; reports progress on stdout and the result in RESULT_FILE."""

    def __init__(self, delay=0.0):
        super().__init__()
        self.delay = delay
        self.total = 0
        self.count = 0
        self.define_slot("number", handler=self.add)

    def add(self, n, fail_at=None):
        if fail_at == n:
            raise ValueError(f"refusing {n}")
        if self.delay:
            time.sleep(self.delay)  # the workload: a slow step
        self.total += n
        self.count += 1
        self._stats["count"] = self.count
        print(f"progress {self.count}", file=sys.stderr, flush=True)
        target = os.environ.get("RESULT_FILE")
        if target:
            with open(target, "w") as f:
                f.write(f"{self.count} {self.total}\n")


def build(delay=0.0, flow_id="numbers"):
    flow = Flow(flow_id=flow_id)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Accumulate(delay), "acc")
    flow.connect("numbers", "number", "acc", "number")
    return flow


flow = build()


def slow_flow():
    return build(delay=0.02, flow_id="slow-numbers")


def slow_anonymous_flow():
    """The slow flow built without a flow_id (``routilux run`` gives it a stable one)."""
    return build(delay=0.02, flow_id=None)


class Flaky(Accumulate):
    """Refuses each number the first time it sees it; a retry succeeds."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def add(self, n, fail_at=None):
        if n not in self.seen:
            self.seen.add(n)
            raise RuntimeError(f"flaky on {n}")
        super().add(n)


def flaky_flow():
    flow = Flow(flow_id="flaky-numbers")
    flow.add_routine(Numbers(), "numbers")
    flaky = Flaky()
    flaky.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01))
    flow.add_routine(flaky, "acc")
    flow.connect("numbers", "number", "acc", "number")
    return flow


not_a_flow = 42
