"""Process routines, the fast paths: restart without backoff on a first crash,
batched frames, warm spares and the pre-imported template (real processes)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from helpers import Sink, Source, wait_until

from routilux import RestartPolicy, Routine

# A backoff far longer than any test may take: only a restart without it completes.
SLOW_BACKOFF = RestartPolicy(max_restarts=3, within=600.0, backoff=3600.0, backoff_max=3600.0)


class DiesOnce(Routine):
    """Kills its own process the first time it sees ``crash_on`` (a marker file
    outside the process remembers), else passes ``x`` on."""

    def __init__(self, marker: str, crash_on: int = 1):
        super().__init__()
        self.marker = marker
        self.crash_on = crash_on
        self.handled = 0
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        if x == self.crash_on and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        self.handled += 1
        self._stats["handled"] = self.handled
        self.emit("out", x=x)


def build(make_flow, worker, *, strategy="sequential", workers=1, restart=SLOW_BACKOFF, **kw):
    flow = make_flow(execution_strategy=strategy, max_workers=8)
    sink = Sink("inp")
    flow.add_routine(Source(), "src")
    flow.add_routine(worker, "work", execution="process", workers=workers, restart=restart, **kw)
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    return flow, sink


def test_restart_delay_is_zero_for_a_first_crash_then_backs_off():
    policy = RestartPolicy(backoff=0.05, backoff_max=0.3)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.0, 0.05, 0.1, 0.2, 0.3]


def test_a_first_crash_is_restarted_without_waiting_for_the_backoff(make_flow, tmp_path):
    worker = DiesOnce(str(tmp_path / "crashed"))
    flow, sink = build(make_flow, worker)
    job = flow.execute("src", {"n": 3}, wait=False)
    # With an hour of backoff, only an immediate restart lets the job finish.
    assert job.wait(60) and job.status == "completed", job.error
    assert sink.values("x") == [0, 1, 2]
    assert flow.metrics()["work"]["restarts"] == 1
    assert worker.stats() == {"handled": 3}


def test_a_second_crash_in_the_window_waits_for_the_backoff(make_flow, tmp_path):
    """Two crashes within ``within``: the second restart waits (an hour here), so
    the routine's messages wait too while other routines go on."""
    first, second = tmp_path / "first", tmp_path / "second"

    class DiesTwice(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            for marker in (first, second):
                if not marker.exists():
                    marker.write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGKILL)
            self.emit("out", x=x)

    flow, sink = build(make_flow, DiesTwice())
    job = flow.execute("src", {"n": 1}, wait=False)
    assert wait_until(lambda: flow.metrics()["work"]["restarts"] == 2, timeout=60)
    metrics = flow.metrics()["work"]
    assert metrics["queued"] == 1 and metrics["pids"] == []  # waiting for the backoff
    assert job.status == "running" and sink.values("x") == []
    flow.cancel(job)
    assert job.wait(30) and job.status == "cancelled"
