"""Ray routines crash like process routines: restarted by routilux, not by Ray."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from helpers import Sink, Source, wait_until  # noqa: E402

from routilux import RestartPolicy, Routine  # noqa: E402

pytestmark = pytest.mark.ray
FAST = RestartPolicy(
    max_restarts=3, within=60.0, backoff=0.01, backoff_max=0.05, warm_spare=True
)
SMALL = {"num_cpus": 0.25}


class Blocking(Routine):
    """On message ``block_on``, the first time only: emits, writes its pid to
    ``started`` and blocks (until killed, or its step times out)."""

    def __init__(self, started: str, block_on: int = 0):
        super().__init__()
        self.started = started
        self.block_on = block_on
        self.handled = 0
        self.define_slot("in", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        if x == self.block_on and not os.path.exists(self.started):
            self.emit("out", x=x * 100)  # an emit before the crash: must come once
            temp = self.started + ".tmp"
            Path(temp).write_text(str(os.getpid()))
            os.replace(temp, self.started)  # whole or absent: the test reads it at once
            threading.Event().wait(60)
        else:
            self.emit("out", x=x * 100)
        self.handled += 1
        self._stats["handled"] = self.handled
        self.emit("out", x=x)


def build(make_flow, worker, **kw):
    flow = make_flow(execution_strategy="concurrent", max_workers=4, restart=FAST)
    sink = Sink("in")
    flow.add_routine(Source(), "src")
    flow.add_routine(worker, "work", execution="ray", ray_options=SMALL, **kw)
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "work", "in")
    flow.connect("work", "out", "sink", "in")
    return flow, sink


def test_sigkill_of_the_actor_mid_step_restarts_and_redelivers_once(
    make_flow, ray_address, tmp_path, caplog
):
    started = tmp_path / "started"
    worker = Blocking(str(started), block_on=2)
    flow, sink = build(make_flow, worker)
    with caplog.at_level(logging.WARNING, logger="routilux.supervisor"):
        job = flow.execute("src", {"n": 5}, wait=False, timeout=60)
        assert wait_until(started.exists, timeout=30)
        victim = int(started.read_text())
        assert victim in flow.metrics()["work"]["pids"]
        os.kill(victim, signal.SIGKILL)
        assert job.wait(60) and job.status == "completed", job.error
    assert sorted(sink.values("x")) == sorted([x * 100 for x in range(5)] + list(range(5)))
    figures = flow.metrics()["work"]
    assert figures["restarts"] == 1 and victim not in figures["pids"]
    # the warm standby took over the replica (under its own name)
    assert figures["ray_actors"][0].startswith(f"{flow.flow_id}:work:standby-")
    assert figures["last_crash"].startswith("Ray actor died")
    (crash,) = job.crashes
    assert crash["routine_id"] == "work" and crash["pid"] == victim
    assert "Ray actor died" in crash["reason"]
    assert any("crashed" in r.getMessage() for r in caplog.records)
    # the new actor started from the state after the last completed step
    assert worker.handled == 5 and worker.stats() == {"handled": 5}


def test_a_step_past_its_timeout_kills_the_actor_and_is_redelivered(
    make_flow, ray_address, tmp_path
):
    worker = Blocking(str(tmp_path / "started"), block_on=0)
    flow, sink = build(make_flow, worker, timeout=1.0)
    job = flow.execute("src", {"n": 2}, timeout=60)
    assert job.status == "completed", job.error
    assert sorted(sink.values("x")) == [0, 0, 1, 100]
    assert "timeout of 1 s" in job.crashes[0]["reason"]
    assert flow.metrics()["work"]["restarts"] == 1


class AlwaysDies(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("in", handler=lambda x: os._exit(9))


def test_crashes_beyond_the_restart_policy_fail_with_routine_crashed_error(
    make_flow, ray_address
):
    policy = RestartPolicy(max_restarts=2, within=60, backoff=0.01, backoff_max=0.02)
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(AlwaysDies(), "work", execution="ray", restart=policy, ray_options=SMALL)
    flow.connect("src", "out", "work", "in")
    job = flow.execute("src", {"n": 1}, timeout=60)
    assert job.status == "failed"
    assert "RoutineCrashedError" in job.error and "'work'" in job.error
    assert "3 time(s)" in job.error and "Ray actor died" in job.error
    assert len(job.crashes) == 3
    assert flow.metrics()["work"]["restarts"] == 3
