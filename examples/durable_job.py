"""A job that survives the death of the process running it.

    python examples/durable_job.py
    routilux run examples/durable_job.py:flow --params '{"count": 20}'

The job sends the numbers 1..200 through a slow stage (about 50 ms each, so the
job takes about 10 s) that keeps a running total in an attribute. The flow saves
checkpoints to ``./.routilux/durable_job.sqlite3``.

Stop the script at any point, with Ctrl-C or ``kill -9``, and run it again: it finds
the unfinished job in the store, recovers it and finishes it, and the total is
still exactly 1 + 2 + ... + 200 = 20100. When the store holds no unfinished job,
the script starts a new one.

Two habits make this safe, and both apply to any durable flow:

* call ``flow.recover()`` when the process starts, before starting new jobs, so the
  routine objects hold the state the store has (not a fresh one);
* routine objects are shared by every job of the flow, so keep a job's results
  under its job id.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from routilux import Flow, Routine, SQLiteStore

FLOW_ID = "durable-job"
STORE_PATH = Path(".routilux") / "durable_job.sqlite3"
COUNT = 200
EXPECTED = COUNT * (COUNT + 1) // 2
UNFINISHED = ("pending", "running", "paused")


class Numbers(Routine):
    """Entry routine: emits 1..count."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.send)
        self.define_event("number", ["n", "of"])

    def send(self, count):
        for n in range(1, count + 1):
            self.emit("number", n=n, of=count)


class RunningTotal(Routine):
    """The slow stage: adds each number to the total of its job.

    ``totals`` and ``handled`` are plain attributes (dicts keyed by job id).
    Checkpoints save them together with the job's queued messages, so after a
    recovery they agree with what is left to do: no number is counted twice or
    missed.
    """

    def __init__(self, delay=0.05):
        super().__init__()
        self.delay = delay
        self.totals = {}
        self.handled = {}
        self.define_slot("number", handler=self.add)

    def add(self, n, of=COUNT):
        job_id = self.get_execution_context().job_state.job_id
        time.sleep(self.delay)  # stands for real work
        self.totals[job_id] = self.totals.get(job_id, 0) + n
        self.handled[job_id] = handled = self.handled.get(job_id, 0) + 1
        if handled % 20 == 0:
            print(
                f"progress: {handled}/{of} numbers, total so far {self.totals[job_id]}",
                flush=True,
            )
        if handled == of:
            self.send_output("total", total=self.totals[job_id], numbers=of)


def build_flow(store):
    flow = Flow(flow_id=FLOW_ID, checkpoint_store=store, checkpoint_interval=0.5)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(RunningTotal(), "total")
    flow.connect("numbers", "number", "total", "number")
    return flow


def flow():
    """For `routilux run examples/durable_job.py:flow` (the CLI gives it its store)."""
    return build_flow(None)


def main() -> int:
    store = SQLiteStore(STORE_PATH)
    flow = build_flow(store)
    try:
        # Restores the routine's attributes and continues unfinished jobs (if any).
        jobs = flow.recover()
        unfinished = [j for j in jobs if j.status in UNFINISHED]
        if unfinished:
            job = unfinished[0]
            done = flow.routines["total"].handled.get(job.job_id, 0)
            print(
                f"recovered job {job.job_id} from {STORE_PATH}: "
                f"{done}/{COUNT} numbers already counted",
                flush=True,
            )
            if job.status == "paused":
                flow.resume(job)
        else:
            job = flow.execute("numbers", {"count": COUNT}, wait=False)
            print(f"started job {job.job_id}; checkpoints go to {STORE_PATH}", flush=True)
        job.wait()
    except KeyboardInterrupt:
        # shutdown() checkpoints the unfinished job; the next run continues it.
        flow.shutdown()
        print("\ninterrupted: run the script again to finish the job", flush=True)
        return 130
    total = flow.routines["total"].totals.get(job.job_id, 0)
    print(f"job {job.status}: total {total} (expected {EXPECTED})", flush=True)
    flow.shutdown()
    store.close()
    return 0 if job.status == "completed" and total == EXPECTED else 1


if __name__ == "__main__":
    sys.exit(main())
