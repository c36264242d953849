"""Crash recovery: SIGKILL a busy process routine, time detection and redelivery.

For each of ``--kills`` runs, a process routine spins on a message; we SIGKILL its
process and measure (a) the time until the supervisor notices (its WARNING log
record) and (b) the time until the redelivered message's result reaches the next
routine. The default restart backoff (50 ms) is part of (b).

    python tests/benchmarks/recovery.py [--kills 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from routilux import Flow, RestartPolicy, Routine


class Spinner(Routine):
    """Spins on the first delivery of each message; answers at once on redelivery."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory
        self.define_slot("trigger", handler=self.work)
        self.define_event("done", ["x"])

    def work(self, x):
        marker = Path(self.directory, f"{x}.pid")
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            while True:  # busy: pure Python CPU loop
                pass
        self.emit("done", x=x)


class Arrival(Routine):
    def __init__(self):
        super().__init__()
        self.times: dict[int, float] = {}
        self.arrived = threading.Condition()
        self.define_slot("done", handler=self.take)

    def take(self, x):
        with self.arrived:
            self.times[x] = time.perf_counter()
            self.arrived.notify_all()


class CrashClock(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.times: list[float] = []

    def emit(self, record):
        if "crashed" in record.getMessage():
            self.times.append(time.perf_counter())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    clock = CrashClock()
    logging.getLogger("routilux.supervisor").addHandler(clock)
    directory = tempfile.mkdtemp(prefix="routilux-recovery-")
    arrival = Arrival()
    # A short window so that every kill is judged on its own (default backoff).
    policy = RestartPolicy(max_restarts=3, within=0.1, backoff=0.05, backoff_max=5.0)
    flow = Flow(execution_strategy="concurrent")
    flow.add_routine(Spinner(directory), "spinner", execution="process", restart=policy)
    flow.add_routine(arrival, "arrival")
    flow.connect("spinner", "done", "arrival", "done")
    detect, redeliver = [], []
    for x in range(args.kills):
        job = flow.execute("spinner", {"x": x}, wait=False, timeout=60)
        marker = Path(directory, f"{x}.pid")
        while not (marker.exists() and marker.read_text()):
            time.sleep(0.001)
        time.sleep(0.02)  # let the step get well into its busy loop
        before = len(clock.times)
        killed = time.perf_counter()
        os.kill(int(marker.read_text()), signal.SIGKILL)
        with arrival.arrived:
            arrival.arrived.wait_for(lambda x=x: x in arrival.times, timeout=30)
        assert job.wait(30) and job.status == "completed", job.error
        detect.append(clock.times[before] - killed)
        redeliver.append(arrival.times[x] - killed)
    flow.shutdown()
    ms = 1000.0
    print(f"{args.kills} SIGKILLs of a busy process routine")
    print(f"  kill -> supervisor notices:     median {statistics.median(detect) * ms:6.2f} ms, "
          f"max {max(detect) * ms:6.2f} ms")
    print(f"  kill -> redelivered result:     median {statistics.median(redeliver) * ms:6.2f} ms, "
          f"max {max(redeliver) * ms:6.2f} ms  (includes {policy.backoff * ms:.0f} ms backoff)")


if __name__ == "__main__":
    main()
