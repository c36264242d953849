"""Process-backed routines: real child processes, real pickling, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest
from helpers import Sink, Source, wait_until

from routilux import ErrorHandler, ErrorStrategy, Routine, SerializationError
from routilux.runtime.process_actor import MAX_CREDIT


class PidWorker(Routine):
    """Records what it saw; emits its pid with each result."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x", "pid"])

    def work(self, x, **extra):
        self.seen.append(x)
        self._stats["handled"] = self._stats.get("handled", 0) + 1
        self._stats["last"] = x
        self.emit("out", x=x * 10, pid=os.getpid())


def chain(make_flow, worker, *, strategy="sequential", workers=1, **add_kw):
    flow = make_flow(execution_strategy=strategy, max_workers=8)
    sink = Sink("inp")
    flow.add_routine(Source(), "src")
    flow.add_routine(worker, "work", execution="process", workers=workers, **add_kw)
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    return flow, sink


def test_runs_in_another_process_and_results_flow_back(make_flow):
    flow, sink = chain(make_flow, PidWorker())
    job = flow.execute("src", {"n": 3}, timeout=30)
    assert job.status == "completed", job.error
    assert [d["x"] for d in sink.calls] == [0, 10, 20]
    pids = {d["pid"] for d in sink.calls}
    assert len(pids) == 1 and os.getpid() not in pids
    assert flow.metrics()["work"]["pids"] == list(pids)


def test_state_and_stats_come_back_after_the_job(make_flow):
    worker = PidWorker()
    flow, _ = chain(make_flow, worker)
    job = flow.execute("src", {"n": 4}, timeout=30)
    assert job.status == "completed"
    assert worker.seen == [0, 1, 2, 3]
    assert worker.stats() == {"handled": 4, "last": 3}
    # a second job continues from that state, in the same process
    flow.execute("src", {"n": 1}, timeout=30)
    assert worker.seen == [0, 1, 2, 3, 0]
    assert worker.stats()["handled"] == 5


def test_replicas_spread_work_and_stats_are_summed(make_flow):
    worker = PidWorker()
    flow, sink = chain(make_flow, worker, strategy="concurrent", workers=2)
    job = flow.execute("src", {"n": 8}, timeout=30)
    assert job.status == "completed", job.error
    assert sorted(d["x"] for d in sink.calls) == [i * 10 for i in range(8)]
    pids = {d["pid"] for d in sink.calls}
    assert len(pids) == 2
    assert set(flow.metrics()["work"]["pids"]) == pids
    assert worker.stats()["handled"] == 8  # numeric stats summed over replicas
    assert len(worker.seen) < 8  # other attributes: one replica's view (documented)


def test_stats_are_current_while_a_job_runs(make_flow, tmp_path):
    gate = tmp_path / "release"

    class Gated(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)

        def work(self, x):
            self._stats["done"] = self._stats.get("done", 0) + 1
            if x == 1:  # the second message waits until the test lets it go
                wait_until(gate.exists, timeout=30)

    worker = Gated()
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(worker, "work", execution="process")
    flow.connect("src", "out", "work", "inp")
    job = flow.execute("src", {"n": 2}, wait=False, timeout=30)
    assert wait_until(lambda: worker.stats().get("done") == 1)
    assert job.status == "running"
    gate.touch()
    assert job.wait(30) and job.status == "completed"
    assert worker.stats()["done"] == 2


def test_routine_class_defined_in_a_closure_and_lambda_handlers(make_flow):
    def build(factor):
        class Scale(Routine):
            def __init__(self):
                super().__init__()
                self.define_slot("inp", handler=lambda x: self.emit("out", x=x * factor))
                self.define_event("out", ["x"])

        return Scale()

    flow = make_flow()
    sink = Sink("inp")
    flow.add_routine(Source(), "src")
    flow.add_routine(build(7), "scale", execution="process")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "scale", "inp")
    flow.connect("scale", "out", "sink", "inp")
    assert flow.execute("src", {"n": 3}, timeout=30).status == "completed"
    assert [d["x"] for d in sink.calls] == [0, 7, 14]


def test_main_module_classes_are_shipped_by_value(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import os
        from routilux import Flow, Routine

        class Square(Routine):
            def __init__(self):
                super().__init__()
                self.results = []
                self.define_slot("trigger", handler=self.go)

            def go(self, x):
                self.results.append((x * x, os.getpid()))

        if __name__ == "__main__":
            flow = Flow()
            sq = Square()
            flow.add_routine(sq, "sq", execution="process")
            job = flow.execute("sq", {"x": 9}, timeout=30)
            (value, pid), = sq.results
            print(job.status, value, pid != os.getpid())
            flow.shutdown()
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["completed", "81", "True"]


def test_sequential_jobs_do_not_overfill_a_process_replica(make_flow):
    class Echo(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=lambda blob: self.emit("out", n=len(blob)))
            self.define_event("out")

    flow = make_flow()
    flow.add_routine(Echo(), "e", execution="process")
    jobs = [flow.execute("e", {"blob": "x" * 30_000}, wait=False, timeout=60) for _ in range(100)]
    in_flight = max(flow.metrics()["e"]["in_flight"] for _ in range(100))
    assert in_flight <= MAX_CREDIT  # the process credit holds in sequential mode too
    assert all(job.wait(60) and job.status == "completed" for job in jobs)


def test_unpicklable_payload_fails_the_message_with_a_clear_error(make_flow):
    flow, sink = chain(make_flow, PidWorker())
    job = flow.execute("src", {"n": 1, "lock": threading.Lock()}, timeout=30)
    assert job.status == "failed"
    failure = job.failures[0]
    assert failure["exception_type"] == "SerializationError"
    assert "'work'" in failure["message"] and "'inp'" in failure["message"]
    assert "lock" in failure["message"]
    assert sink.calls == []


def test_unpicklable_emit_from_the_child_applies_the_error_strategy(make_flow):
    class EmitsGenerator(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            self.emit("out", x=(i for i in range(3)))

    worker = EmitsGenerator()
    worker.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow, sink = chain(make_flow, worker)
    job = flow.execute("src", {"n": 2}, timeout=30)
    assert job.status == "completed"
    assert [f["exception_type"] for f in job.failures] == ["SerializationError"] * 2
    assert "event 'out'" in job.failures[0]["message"]
    assert "generator" in job.failures[0]["message"]
    assert sink.calls == []


def test_unpicklable_routine_is_refused_before_any_process_starts(make_flow):
    worker = PidWorker()
    worker.lock = threading.Lock()
    flow = make_flow()
    with pytest.raises(SerializationError, match=r"attribute 'lock'.*lock"):
        flow.add_routine(worker, "work", execution="process")
    assert "work" not in flow.routines


def test_errors_in_a_process_keep_their_type_for_retry(make_flow, tmp_path):
    marker = tmp_path / "failed-once"

    class FailsOnce(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            if not marker.exists():
                marker.touch()
                raise ConnectionError("flaky")
            self.emit("out", x=x)

    worker = FailsOnce()
    worker.set_error_handler(ErrorHandler(
        ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01,
        retryable_exceptions=(ConnectionError,),
    ))
    flow, sink = chain(make_flow, worker)
    job = flow.execute("src", {"n": 1}, timeout=30)
    assert job.status == "completed", job.error
    assert job.failures[0]["exception_type"] == "ConnectionError"
    assert sink.calls == [{"x": 0}]


def test_metrics_report_resources_of_process_routines(make_flow):
    flow, _ = chain(make_flow, PidWorker(), workers=2)
    flow.execute("src", {"n": 2}, timeout=30)
    figures = flow.metrics()["work"]
    assert figures["execution"] == "process" and figures["workers"] == 2
    assert len(figures["pids"]) == 2
    assert figures["rss_bytes"] > 1_000_000
    # A percentage summed over the replicas: at most 100 % of every core for each.
    cpu_limit = 100.0 * psutil.cpu_count() * len(figures["pids"])
    assert isinstance(figures["cpu_percent"], float)
    assert 0.0 <= figures["cpu_percent"] <= cpu_limit, figures["cpu_percent"]


def test_shutdown_reaps_children_and_is_idempotent(make_flow):
    flow, _ = chain(make_flow, PidWorker(), workers=2)
    flow.execute("src", {"n": 2}, timeout=30)
    pids = flow.metrics()["work"]["pids"]
    procs = [psutil.Process(pid) for pid in pids]
    flow.shutdown()
    flow.shutdown()
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive
    # the flow starts again on demand
    assert flow.execute("src", {"n": 1}, timeout=30).status == "completed"
    assert not set(flow.metrics()["work"]["pids"]) & set(pids)


ORPHAN_SCRIPT = """
import os, sys, time
from routilux import Flow, Routine

class Idle(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=lambda: None)

flow = Flow()
flow.add_routine(Idle(), "a", execution="process", workers=2)
flow.execute("a", timeout=30)
print(" ".join(map(str, flow.metrics()["a"]["pids"])), flush=True)
mode = sys.argv[1]
if mode == "raise":
    raise RuntimeError("the caller failed")
if mode == "hang":
    time.sleep(600)
# mode == "exit": leave without calling shutdown()
"""


@pytest.mark.parametrize("mode", ["exit", "raise", "sigkill"])
def test_no_orphans_when_the_parent_goes_away(tmp_path, mode):
    script = tmp_path / "parent.py"
    script.write_text(ORPHAN_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script), "hang" if mode == "sigkill" else mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = parent.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2, parent.stderr.read()
        children = []
        for pid in pids:
            try:
                children.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass  # already gone with its parent (mode "exit" can be that quick)
        if mode == "sigkill":
            parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"orphaned routine processes: {alive}"
        if mode == "raise":
            assert parent.returncode == 1
    finally:
        parent.kill()
        parent.wait()


def test_neighbours_are_not_shipped_with_a_process_routine(make_flow):
    """Wiring belongs to the flow: a lock in a connected thread routine is fine."""
    sink = Sink("inp")
    sink.lock = threading.Lock()
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(PidWorker(), "work", execution="process")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    assert flow.execute("src", {"n": 2}, timeout=30).status == "completed"
    assert [d["x"] for d in sink.calls] == [0, 10]


def test_a_handler_in_a_process_knows_its_job_id(make_flow):
    class Who(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["job_id"])

        def work(self, x):
            flow, job, routine_id = self.get_execution_context()
            assert flow is None and routine_id == "work"
            self.emit("out", job_id=job.job_id)

    flow, sink = chain(make_flow, Who())
    job = flow.execute("src", {"n": 1}, timeout=30)
    assert job.status == "completed", job.error
    assert sink.calls == [{"job_id": job.job_id}]
