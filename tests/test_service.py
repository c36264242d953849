"""Runtime: many flows and jobs in one process; graceful stop; restart resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers import Node

from routilux import (
    CheckpointError,
    DirectoryStore,
    Flow,
    FlowStateError,
    Routine,
    Runtime,
    SQLiteStore,
)
from routilux.exceptions import ConfigurationError


class Numbers(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("number", ["n"])

    def go(self, count=3):
        for n in range(1, count + 1):
            self.emit("number", n=n)


class Count(Routine):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.total = 0
        self.define_slot("number", handler=self.add)

    def add(self, n):
        self.count += 1
        self.total += n


def build(flow_id="numbers"):
    flow = Flow(flow_id=flow_id, execution_strategy="concurrent")
    counter = Count()
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(counter, "count")
    flow.connect("numbers", "number", "count", "number")
    return flow, counter


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(SQLiteStore(tmp_path / "rt.sqlite3"))
    yield rt
    rt.shutdown()


def test_submit_wait_and_list(runtime):
    flow, counter = build()
    assert runtime.add_flow(flow) == []
    jobs = [runtime.submit("numbers", "numbers", {"count": 4}) for _ in range(3)]
    assert all(job.status in ("running", "completed") for job in jobs)
    assert runtime.wait_all(30)
    assert [job.status for job in jobs] == ["completed"] * 3
    assert counter.count == 12 and counter.total == 30
    assert runtime.get_job(jobs[0].job_id) is jobs[0]
    assert runtime.wait(jobs[1].job_id, 5)
    assert len(runtime.jobs(status="completed")) == 3
    assert runtime.jobs(status="failed") == []
    stored = {row["job_id"]: row["status"] for row in runtime.store.list_jobs()}
    assert all(stored.get(job.job_id) in ("running", "completed") for job in jobs)


def test_two_flows_in_one_runtime(runtime):
    first, c1 = build("first")
    second, c2 = build("second")
    runtime.add_flow(first)
    runtime.add_flow(second)
    runtime.submit("first", "numbers", {"count": 2})
    runtime.submit("second", "numbers", {"count": 5})
    assert runtime.wait_all(30)
    assert (c1.total, c2.total) == (3, 15)


def test_bad_input_is_refused_clearly(runtime):
    flow, _ = build()
    runtime.add_flow(flow)
    with pytest.raises(ConfigurationError, match=r"no flow 'ghost'.*numbers"):
        runtime.submit("ghost", "numbers")
    with pytest.raises(ConfigurationError, match="already hosted"):
        runtime.add_flow(flow)
    with pytest.raises(ConfigurationError, match="no job"):
        runtime.get_job("nope")
    with pytest.raises(ConfigurationError, match="expects a Flow"):
        runtime.add_flow("flow")


def test_cancel_and_shutdown_stop_intake(tmp_path):
    rt = Runtime(SQLiteStore(tmp_path / "rt.sqlite3"))
    flow, _ = build()
    rt.add_flow(flow)
    job = rt.submit("numbers", "numbers", {"count": 1})
    rt.wait(job, 10)
    assert rt.cancel(job).status == "completed"  # cancelling a finished job is a no-op
    rt.shutdown()
    rt.shutdown()  # idempotent
    with pytest.raises(FlowStateError):
        rt.submit("numbers", "numbers")


def test_context_manager(tmp_path):
    with Runtime(SQLiteStore(tmp_path / "rt.sqlite3")) as rt:
        flow, counter = build()
        rt.add_flow(flow)
        rt.submit("numbers", "numbers", {"count": 3})
        assert rt.wait_all(30)
    assert counter.total == 6


def test_runtime_takes_a_store_path(tmp_path):
    with Runtime(tmp_path / "rt.sqlite3") as runtime:
        assert isinstance(runtime.store, SQLiteStore)
    with Runtime(tmp_path / "dir") as runtime:  # a directory that does not exist yet
        assert isinstance(runtime.store, SQLiteStore)
    (tmp_path / "ckdir").mkdir()
    with Runtime(str(tmp_path / "ckdir")) as runtime:
        assert isinstance(runtime.store, DirectoryStore)


def test_runtime_add_flow_failing_recovery_leaves_the_flow_unhosted(tmp_path):
    store = DirectoryStore(tmp_path / "ck")
    flow = Flow(flow_id="f", checkpoint_store=store)
    flow.add_routine(Node(), "g")
    flow.checkpoint_store.save("f", b"not a checkpoint", [])
    runtime = Runtime(store)
    try:
        with pytest.raises(CheckpointError):
            runtime.add_flow(flow)
        assert "f" not in runtime.flows
    finally:
        runtime.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_thousand_concurrent_jobs_with_bounded_memory(tmp_path):
    store = SQLiteStore(tmp_path / "rt.sqlite3")
    with Runtime(store, keep_finished_jobs=50) as rt:
        flow, counter = build()
        flow.keep_finished_jobs = 50
        rt.add_flow(flow)
        jobs = [rt.submit("numbers", "numbers", {"count": 2}) for _ in range(1000)]
        assert rt.wait_all(90)
        assert all(job.status == "completed" for job in jobs)
        assert counter.count == 2000 and counter.total == 3000
        # finished jobs are forgotten beyond the retention: memory stays bounded
        assert len(rt.jobs()) == 50
        assert not rt._live
        assert flow.wait_for_completion(0), "the supervisor still holds a live job"
        assert flow.metrics()["numbers"]["queued"] == 0


SERVICE = textwrap.dedent("""
    import sys, time
    from routilux import Flow, Routine, Runtime, SQLiteStore

    class Numbers(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.go)
            self.define_event("number", ["n"])

        def go(self, count):
            for n in range(1, count + 1):
                self.emit("number", n=n)

    class Slow(Routine):
        def __init__(self):
            super().__init__()
            self.total = 0
            self.count = 0
            self.define_slot("number", handler=self.add)

        def add(self, n):
            time.sleep(0.01)  # the workload
            self.total += n
            self.count += 1
            if self.count == 20:
                print("busy", flush=True)

    flow = Flow(flow_id="service", checkpoint_interval=0.2)
    slow = Slow()
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(slow, "slow")
    flow.connect("numbers", "number", "slow", "number")
    runtime = Runtime(SQLiteStore(sys.argv[1]))
    recovered = runtime.add_flow(flow)
    if sys.argv[2] == "start":
        for _ in range(3):
            runtime.submit("service", "numbers", {"count": 40})
        print("submitted", flush=True)
        runtime.serve_forever(grace=20)
        print("stopped", flush=True)
    else:
        print("recovered", len(recovered), flush=True)
        runtime.wait_all(60)
        print("result", slow.count, slow.total,
              sorted(j.status for j in runtime.jobs()), flush=True)
        runtime.shutdown()
""")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_checkpoints_and_the_next_runtime_finishes_every_job(tmp_path):
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    store = tmp_path / "service.sqlite3"
    proc = subprocess.Popen([sys.executable, str(script), str(store), "start"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "submitted"
        assert proc.stdout.readline().strip() == "busy"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out
    again = subprocess.run([sys.executable, str(script), str(store), "finish"],
                           capture_output=True, text=True, timeout=90)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0] == "recovered 3"
    assert lines[1] == "result 120 " + str(3 * sum(range(1, 41))) + \
        " ['completed', 'completed', 'completed']"
    assert os.stat(store).st_mode & 0o777 == 0o600


# The OS gives a process's signal to any of its threads. Python runs the handler
# in the main thread, so serve_forever must wake when another thread got it.
SIGNAL_ON_ANOTHER_THREAD = textwrap.dedent("""
    import os, signal, sys, threading, time
    from routilux import Runtime, SQLiteStore

    runtime = Runtime(SQLiteStore(sys.argv[1]))
    main = threading.main_thread()

    def main_is_waiting():
        # serve_forever's main thread, in the wait it blocks in
        frame = sys._current_frames().get(main.ident)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        return bool(names) and names[0] == "wait" and "serve_forever" in names

    def signal_this_thread():
        deadline = time.monotonic() + 30
        while not main_is_waiting():
            if time.monotonic() > deadline:
                os._exit(3)
            time.sleep(0.005)  # polling a condition, with a deadline
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=signal_this_thread).start()
    runtime.serve_forever(grace=5)
    print("stopped", flush=True)
""")


@pytest.mark.slow
def test_sigterm_received_by_another_thread_stops_serve_forever(tmp_path):
    script = tmp_path / "signalled.py"
    script.write_text(SIGNAL_ON_ANOTHER_THREAD)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "s.sqlite3")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "stopped", proc.stderr[-2000:]
