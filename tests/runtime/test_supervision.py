"""Supervision: real crashes of routine processes, restarts and redelivery."""

from __future__ import annotations

import logging
import os
import signal
import threading

import psutil
import pytest
from faults.fault_helpers import live_children
from helpers import Faulty, Node, Sink, Source, process_chain, wait_until

from routilux import ErrorHandler, ErrorStrategy, RestartPolicy, Routine

FAST = RestartPolicy(max_restarts=3, within=60.0, backoff=0.01, backoff_max=0.05)


def build(make_flow, worker, *, restart=FAST, **kw):
    return process_chain(make_flow, worker, restart=restart, **kw)


@pytest.mark.parametrize("how, reason", [
    ("exit", "exit code 3"),
    ("segfault", "signal SIGSEGV"),
    ("sigkill", "signal SIGKILL"),
])
def test_crash_is_restarted_and_the_message_redelivered(make_flow, tmp_path, how, reason, caplog):
    worker = Faulty(how, crash_on=1, marker=str(tmp_path / "crashed"))
    flow, sink = build(make_flow, worker)
    with caplog.at_level(logging.WARNING, logger="routilux.supervisor"):
        job = flow.execute("src", {"n": 3}, timeout=30)
    assert job.status == "completed", job.error
    assert sink.values("x") == [0, 1, 2]
    assert flow.metrics()["work"]["restarts"] == 1
    (crash,) = job.crashes
    assert crash["routine_id"] == "work" and crash["reason"] == reason and crash["restart"] == 1
    assert any(reason in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert any("restart 1 of at most 3 within 60 s" in r.getMessage() for r in caplog.records)
    # the new process continued from the state after the last completed step
    assert worker.handled == 3 and worker.stats() == {"handled": 3}


def test_a_crash_is_published_on_the_event_bus_with_its_cause(make_flow, tmp_path):
    worker = Faulty("exit", crash_on=1, marker=str(tmp_path / "crashed"))
    flow, _ = build(make_flow, worker)
    sub = flow.subscribe(kinds=["routine.restarted"])
    assert flow.execute("src", {"n": 3}, timeout=30).status == "completed"
    event = sub.get(5)
    assert event is not None and event.data["routine"] == "work"
    assert event.data["cause"] == "exit code 3" and event.data["returncode"] == 3
    assert event.data["pid"] == int((tmp_path / "crashed").read_text())


def test_sigkill_from_outside_mid_step(make_flow, tmp_path):
    started = tmp_path / "started"
    release = tmp_path / "release"

    class Blocking(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            temp = started.with_suffix(".tmp")
            temp.write_text(str(os.getpid()))
            os.replace(temp, started)  # whole or absent: the test reads it at once
            wait_until(release.exists, timeout=30)
            self.emit("out", x=x)

    flow, sink = build(make_flow, Blocking())
    job = flow.execute("src", {"n": 1}, wait=False, timeout=30)
    assert wait_until(started.exists)
    victim = int(started.read_text())
    started.unlink()
    os.kill(victim, signal.SIGKILL)
    assert wait_until(started.exists)  # redelivered to a new process
    assert int(started.read_text()) != victim
    release.touch()
    assert job.wait(30) and job.status == "completed"
    assert sink.values("x") == [0]
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE


def test_crash_while_pausing_still_pauses(make_flow, tmp_path):
    started = tmp_path / "started"

    class Slow(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.work)

        def work(self):
            started.write_text(str(os.getpid()))
            threading.Event().wait(30)

    flow = make_flow(restart=RestartPolicy(backoff=0.01, backoff_max=0.02))
    flow.add_routine(Slow(), "s", execution="process")
    job = flow.execute("s", wait=False, timeout=60)
    # write_text is one write(): the file is either empty or whole
    assert wait_until(lambda: started.exists() and started.read_text() != "", timeout=20)
    flow.pause(job, wait=False)
    os.kill(int(started.read_text()), signal.SIGKILL)
    assert job.wait(10) and job.status == "paused"
    assert job.pending_tasks and job.pending_tasks[0]["routine_id"] == "s"
    flow.cancel(job)


def test_emits_before_a_crash_are_not_duplicated(make_flow, tmp_path):
    worker = Faulty("exit", crash_on=0, marker=str(tmp_path / "m"), emits_before=2)
    flow, sink = build(make_flow, worker)
    job = flow.execute("src", {"n": 2}, timeout=30)
    assert job.status == "completed", job.error
    assert sink.values("x") == [0, 1, 0, 1]  # 0*100+0, 0*100+1, then 0 itself, then 1


def test_step_past_its_timeout_is_killed_and_restarted(make_flow, tmp_path):
    worker = Faulty("hang", crash_on=0, marker=str(tmp_path / "m"))
    flow, sink = build(make_flow, worker, timeout=0.5)
    job = flow.execute("src", {"n": 2}, timeout=30)
    assert job.status == "completed", job.error
    assert sink.values("x") == [0, 1]
    assert "timeout of 0.5 s" in job.crashes[0]["reason"]


def test_repeated_crashes_beyond_the_policy_fail_the_message(make_flow, tmp_path):
    class AlwaysDies(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=lambda x: os._exit(9))

    policy = RestartPolicy(max_restarts=2, within=60, backoff=0.01, backoff_max=0.02)
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(AlwaysDies(), "work", execution="process", restart=policy)
    flow.connect("src", "out", "work", "inp")
    job = flow.execute("src", {"n": 1}, timeout=30)
    assert job.status == "failed"
    assert "RoutineCrashedError" in job.error and "'work'" in job.error
    assert "exit code 9" in job.error and "3 time(s)" in job.error
    assert len(job.crashes) == 3
    assert flow.metrics()["work"]["restarts"] == 3


def test_crash_beyond_policy_with_continue_lets_the_job_go_on(make_flow, tmp_path):
    class DiesOnOne(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            if x == 1:
                os._exit(1)
            self.emit("out", x=x)

    worker = DiesOnOne()
    worker.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    policy = RestartPolicy(max_restarts=0, within=60, backoff=0.01, backoff_max=0.01)
    flow, sink = build(make_flow, worker, restart=policy)
    job = flow.execute("src", {"n": 3}, timeout=30)
    assert job.status == "completed"
    assert sink.values("x") == [0, 2]
    assert job.failures[0]["exception_type"] == "RoutineCrashedError"


def test_crash_with_several_messages_queued_delivers_all_in_order_once(make_flow, tmp_path):
    worker = Faulty("sigkill", crash_on=3, marker=str(tmp_path / "m"))
    flow, sink = build(make_flow, worker, strategy="concurrent")
    job = flow.execute("src", {"n": 10}, timeout=30)
    assert job.status == "completed", job.error
    assert sink.values("x") == list(range(10))


def test_crash_does_not_disturb_another_job(make_flow, tmp_path):
    release = tmp_path / "release"

    class Slow(Routine):
        """Job B's routine: busy while job A's routine crashes."""

        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            wait_until(release.exists, timeout=30)
            self.emit("out", x=x)

    flow = make_flow(execution_strategy="concurrent")
    sink_a, sink_b = Sink("inp"), Sink("inp")
    flow.add_routine(Source(), "src_a")
    flow.add_routine(Source(), "src_b")
    flow.add_routine(Faulty("exit", 0, str(tmp_path / "m")), "crashy", execution="process",
                     restart=FAST)
    flow.add_routine(Slow(), "slow", execution="process")
    flow.add_routine(sink_a, "sink_a")
    flow.add_routine(sink_b, "sink_b")
    flow.connect("src_a", "out", "crashy", "inp")
    flow.connect("crashy", "out", "sink_a", "inp")
    flow.connect("src_b", "out", "slow", "inp")
    flow.connect("slow", "out", "sink_b", "inp")
    job_b = flow.execute("src_b", {"n": 2}, wait=False, timeout=30)
    job_a = flow.execute("src_a", {"n": 2}, timeout=30)
    assert job_a.status == "completed" and sink_a.values("x") == [0, 1]
    assert job_b.status == "running"
    release.touch()
    assert job_b.wait(30) and job_b.status == "completed"
    assert sink_b.values("x") == [0, 1] and job_b.crashes == []


def test_crash_of_one_replica_leaves_the_other_running(make_flow, tmp_path):
    worker = Faulty("sigkill", crash_on=2, marker=str(tmp_path / "m"))
    flow, sink = build(make_flow, worker, strategy="concurrent", workers=2)
    flow.execute("src", {"n": 2}, timeout=30)
    before = set(flow.metrics()["work"]["pids"])
    sink.calls.clear()
    job = flow.execute("src", {"n": 8}, timeout=30)
    assert job.status == "completed", job.error
    assert sorted(sink.values("x")) == list(range(8))
    after = set(flow.metrics()["work"]["pids"])
    assert len(before & after) == 1  # one replica replaced, the other untouched
    (crash,) = job.crashes
    assert crash["pid"] in before


def test_memory_blowup_under_a_limit_does_not_take_the_flow_down(make_flow):
    class Hog(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            import resource

            if x == 0:
                limit = 512 * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                bytearray(2 * limit)  # MemoryError, or death if the C side fails
            self.emit("out", x=x)

    worker = Hog()
    worker.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    policy = RestartPolicy(max_restarts=3, within=60, backoff=0.01, backoff_max=0.02)
    flow, sink = build(make_flow, worker, restart=policy)
    job = flow.execute("src", {"n": 3}, timeout=60)
    assert job.status == "completed", job.error
    assert sink.values("x")[-2:] == [1, 2]
    assert job.failures or job.crashes


def test_no_process_left_after_crashes_and_shutdown(make_flow, tmp_path):
    worker = Faulty("sigkill", crash_on=0, marker=str(tmp_path / "m"))
    flow, _ = build(make_flow, worker, workers=2)
    flow.execute("src", {"n": 3}, timeout=30)
    children = live_children()  # the routine's processes (not the worker template)
    assert children
    flow.shutdown()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    assert not [c for c in live_children() if c.status() == psutil.STATUS_ZOMBIE]


def test_thread_actor_that_dies_outside_a_handler_is_restarted(make_flow, monkeypatch, caplog):
    """A failure in the actor's own machinery (not in a handler) is a crash: the
    routine gets a new actor and the message it held is delivered again."""
    import routilux.runtime.thread_actor as thread_actor

    real = thread_actor.set_current_step
    calls = {"n": 0}

    def flaky(step):
        calls["n"] += 1
        if calls["n"] == 3:  # entering the relay's first step: outside any handler
            raise RuntimeError("actor machinery failed")
        return real(step)

    monkeypatch.setattr(thread_actor, "set_current_step", flaky)

    class Relay(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=lambda x: self.emit("out", x=x))
            self.define_event("out", ["x"])

    flow = make_flow(restart=FAST)
    sink = Sink("inp")
    flow.add_routine(Source(), "src")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "relay", "inp")
    flow.connect("relay", "out", "sink", "inp")
    with caplog.at_level(logging.WARNING, logger="routilux.supervisor"):
        job = flow.execute("src", {"n": 3}, timeout=30)
    assert job.status == "completed", job.error
    assert sink.values("x") == [0, 1, 2]
    assert flow.metrics()["relay"]["restarts"] == 1
    assert "thread actor failed" in job.crashes[0]["reason"]


def test_actor_failure_also_reports_batches_still_in_its_inbox(make_flow):
    class BadStr(Exception):
        def __str__(self):
            raise ValueError("no str")

    release = threading.Event()

    def work(node, data):
        release.wait(5)
        if data["n"] == 1:
            raise BadStr()

    flow = make_flow(restart=RestartPolicy(backoff=0.01))
    flow.add_routine(Node(work), "w")
    first = flow.execute("w", {"n": 1}, wait=False, timeout=20)
    second = flow.execute("w", {"n": 2}, wait=False, timeout=20)
    release.set()
    assert first.wait(20) and second.wait(20)
    assert first.status == "failed" and second.status == "completed"
    assert "BadStr" in first.error
