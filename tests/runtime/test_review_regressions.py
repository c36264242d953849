"""Regressions for defects found in review: each test failed before its fix."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from runtime_helpers import Node

from routilux import (
    DirectoryStore,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    FlowStateError,
    RestartPolicy,
    Routine,
    SQLiteStore,
)
from routilux.exceptions import CheckpointError
from routilux.runtime.timers import Timers


def test_retry_gets_the_data_as_routed_not_as_the_failed_attempt_left_it(make_flow):
    seen = []

    def pops_then_fails(node, data):
        seen.append(dict(data))
        data.pop("items")
        if len(seen) == 1:
            raise ConnectionError("flaky")

    worker = Node(pops_then_fails)
    worker.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01))
    flow = make_flow()
    flow.add_routine(Node(lambda n, d: n.emit("out", items=[1, 2, 3])), "src")
    flow.add_routine(worker, "w")
    flow.connect("src", "out", "w", "in")
    job = flow.execute("src", timeout=10)
    assert job.status == "completed"
    assert seen == [{"items": [1, 2, 3]}, {"items": [1, 2, 3]}]
    # execution_history[0] is the job's "start" record (0.10); [1] is src's emit.
    assert job.execution_history[1].data == {"items": [1, 2, 3]}


def test_pause_from_inside_a_handler_returns_and_pauses(make_flow):
    def pause_me(node, data):
        flow, job, _ = node.get_execution_context()
        flow.pause(job, "from the handler")
        node.emit("out", v=1)

    sink = Node()
    flow = make_flow()
    flow.add_routine(Node(pause_me), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "in")
    job = flow.execute("src", timeout=10)
    assert job.status == "paused" and sink.calls == []
    flow.resume(job)
    assert job.wait(10) and job.status == "completed" and sink.calls == [{"v": 1}]


def test_checkpoint_inside_a_handler_is_refused(make_flow, tmp_path):
    errors = []

    def ask(node, data):
        flow, _, _ = node.get_execution_context()
        try:
            flow.checkpoint()
        except FlowStateError as exc:
            errors.append(str(exc))

    flow = make_flow(flow_id="ck", checkpoint_store=SQLiteStore(tmp_path / "s.db"))
    flow.add_routine(Node(ask), "src")
    assert flow.execute("src", timeout=10).status == "completed"
    assert errors and "inside a handler" in errors[0]


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
    deadline = time.monotonic() + 20
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    flow.pause(job, wait=False)
    os.kill(int(started.read_text()), signal.SIGKILL)
    assert job.wait(10) and job.status == "paused"
    assert job.pending_tasks and job.pending_tasks[0]["routine_id"] == "s"
    flow.cancel(job)


def test_sequential_jobs_do_not_overfill_a_process_replica(make_flow):
    class Echo(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=lambda blob: self.emit("out", n=len(blob)))
            self.define_event("out")

    flow = make_flow()
    flow.add_routine(Echo(), "e", execution="process")
    jobs = [flow.execute("e", {"blob": "x" * 30_000}, wait=False, timeout=60) for _ in range(20)]
    in_flight = max(flow.metrics()["e"]["in_flight"] for _ in range(20))
    assert in_flight <= 2  # the process credit holds in sequential mode too
    assert all(job.wait(60) and job.status == "completed" for job in jobs)


def test_job_ids_never_escape_a_directory_store(tmp_path):
    store = DirectoryStore(tmp_path / "store")
    flow = Flow(flow_id="f", checkpoint_store=store)
    flow.add_routine(Node(), "n")
    try:
        for job_id in ("../../escaped", "tenant/42"):
            assert flow.execute("n", job_id=job_id, timeout=10).status == "completed"
    finally:
        flow.shutdown()
    assert not (tmp_path / "escaped.intent").exists()
    assert all(p.is_relative_to(tmp_path / "store") for p in tmp_path.rglob("*.intent"))
    assert {row["job_id"] for row in store.list_jobs()} >= {"../../escaped", "tenant/42"}


def test_store_metadata_is_signed(tmp_path):
    import sqlite3

    store = SQLiteStore(tmp_path / "s.db")
    store.set_meta("flow:prod", "/srv/app.py:flow")
    assert store.get_meta("flow:prod") == "/srv/app.py:flow"
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('flow:prod', 'deadbeef:/tmp/evil.py:flow')")
    db.commit()
    db.close()
    with pytest.raises(CheckpointError, match="integrity"):
        store.get_meta("flow:prod")


def test_a_failing_timer_callback_does_not_stop_the_timer_thread():
    timers = Timers()
    fired = threading.Event()
    timers.call_later(0, lambda: 1 / 0)
    timers.call_later(0.01, fired.set)
    try:
        assert fired.wait(5)
    finally:
        timers.stop()


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
