"""Many concurrent jobs, a store and small backpressure limits: no run ever stalls.

A 10-routine chain (the entry fans each job out into ``MESSAGES`` messages, nine
thread routines pass them on) runs 30 or 100 jobs at once with an SQLiteStore,
``execution_strategy="concurrent"`` and ``max_queued_per_routine=LIMIT``, so
checkpoints (periodic and at every job end) keep meeting steps blocked in
``emit()``. A stall that happens in one run of 25 must be caught: 95 runs in all
(``RUNS``; 95 runs miss a 1-in-25 stall 2% of the time), each against a deadline;
a run that misses it fails with the flow's metrics. Every job of every run must
complete with exact per-routine counts.
"""

from __future__ import annotations

import json
import time

import pytest

from faults.fault_helpers import KEY
from routilux import Flow, FlowStateError, Routine
from routilux.checkpoint import SQLiteStore

pytestmark = pytest.mark.slow

CHAIN = 10
MESSAGES = 4  # per job
LIMIT = 4  # max_queued_per_routine
DEADLINE = 10.0  # seconds for one run (a normal run takes a fraction of a second)
RUNS = {30: 60, 100: 35}  # jobs at once: runs (a run of 30 jobs costs a third)


class Head(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["job", "i"])

    def go(self, job, n):
        for i in range(n):
            self.emit("out", job=job, i=i)


class Link(Routine):
    """Passes each message on; the last link counts them per job."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, int] = {}
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["job", "i"])

    def take(self, job, i):
        self.seen[job] = self.seen.get(job, 0) + 1
        self.emit("out", job=job, i=i)


def build(store) -> Flow:
    flow = Flow("concurrent-store", "concurrent", max_workers=5, checkpoint_store=store,
                checkpoint_interval=0.05, max_queued_per_routine=LIMIT)
    flow.add_routine(Head(), "r0")
    for k in range(1, CHAIN):
        flow.add_routine(Link(), f"r{k}")
        flow.connect(f"r{k - 1}", "out", f"r{k}", "inp")
    return flow


def one_run(tmp_path, jobs: int, run: int) -> float:
    """Run ``jobs`` jobs at once; returns the seconds it took (fails on a stall)."""
    store = SQLiteStore(tmp_path / f"run-{jobs}-{run}.db", key=KEY)
    flow = build(store)
    started = time.monotonic()
    stalled = False
    try:
        states = [flow.execute("r0", {"job": k, "n": MESSAGES}, wait=False) for k in range(jobs)]
        deadline = started + DEADLINE
        for state in states:
            if not state.wait(max(deadline - time.monotonic(), 0.0)):
                stalled = True
                stuck = [s.job_id for s in states if not s.is_terminal]
                pytest.fail(
                    f"run {run + 1} with {jobs} jobs stalled: {len(stuck)} job(s) unfinished "
                    f"after {DEADLINE} s (last checkpoint error: "
                    f"{flow.last_checkpoint_error!r}); metrics:\n"
                    f"{json.dumps(flow.metrics(), default=str)}"
                )
        elapsed = time.monotonic() - started
        wrong = {
            s.job_id: (s.status, {rid: st["processed"] for rid, st in s.routine_states.items()})
            for s in states
            if s.status != "completed"
            or any(s.routine_states[f"r{k}"]["processed"] != MESSAGES for k in range(1, CHAIN))
        }
        assert not wrong, f"run {run + 1}: jobs not exact: {wrong}"
        for k in range(1, CHAIN):
            assert flow.routines[f"r{k}"].seen == dict.fromkeys(range(jobs), MESSAGES)
        return elapsed
    finally:
        try:
            flow.shutdown(timeout=5)  # a stalled flow: its checkpoint gives up, steps are let go
        except FlowStateError:
            if not stalled:
                raise
        store.close()


@pytest.mark.parametrize("jobs", list(RUNS))
def test_many_concurrent_jobs_with_a_store_never_stall(jobs, tmp_path):
    times = [one_run(tmp_path, jobs, run) for run in range(RUNS[jobs])]
    print(f"{jobs} concurrent jobs x {RUNS[jobs]} runs: none stalled; slowest run "
          f"{max(times):.2f} s, mean {sum(times) / len(times):.2f} s")
