"""§4 of the 0.10 compatibility spec: routine status names and keys in
``job.routine_states``."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from routilux import ErrorHandler, ErrorStrategy, Routine
from tests.compat.compat_helpers import EXECUTIONS, Producer, Worker, pipeline, run


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_success_is_completed(make_flow, execution):
    flow, _, _ = pipeline(make_flow, execution)
    job = run(flow)
    assert job.status == "completed"
    state = job.routine_states["worker"]
    assert state["status"] == "completed"
    assert state["retry_count"] == 0 and state["execution_time"] > 0
    assert state["processed"] == 1  # our counters stay beside the 0.10 keys


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_success_after_retries_has_retry_count_and_execution_time(make_flow, execution):
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01)
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=2), handler)
    job = run(flow)
    state = job.routine_states["worker"]
    assert state["status"] == "completed"
    assert state["retry_count"] == 2
    assert state["execution_time"] >= 0.01 + 0.02  # the retry delays are inside
    assert state["error"] == "bad value 1"  # the latest error stays after success


@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize(
    "handler",
    [None, ErrorHandler("stop"), ErrorHandler("retry", max_retries=1, retry_delay=0.01)],
    ids=["no handler", "stop", "retry gave up"],
)
def test_failed_has_error_and_error_time(make_flow, execution, handler):
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=-1), handler)
    job = run(flow)
    assert job.status == "failed"
    state = job.routine_states["worker"]
    assert state["status"] == "failed"
    assert state["error"] == "bad value 1"
    assert job.created_at <= datetime.fromisoformat(state["error_time"]) <= datetime.now()


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_continue_is_error_continued(make_flow, execution):
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=-1), ErrorHandler("continue"))
    job = run(flow)
    assert job.status == "completed"
    state = job.routine_states["worker"]
    assert state["status"] == "error_continued" and state["error"] == "bad value 1"


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_status_is_the_latest_step_and_error_stays(make_flow, execution):
    handler = ErrorHandler("continue")
    flow, _, collector = pipeline(make_flow, execution, Worker(fail_first=1), handler)
    job = run(flow, params={"values": [1, 1]})  # the first fails, the second succeeds
    assert job.status == "completed"
    state = job.routine_states["worker"]
    assert state["status"] == "completed" and state["error"] == "bad value 1"
    assert collector.results == [{"value": 2}]


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_skip_is_skipped(make_flow, execution):
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=-1), ErrorHandler("skip"))
    job = run(flow)
    assert job.status == "completed"
    state = job.routine_states["worker"]
    assert state["status"] == "skipped" and state["error"] == "bad value 1"


def test_every_routine_that_ran_has_an_entry(make_flow):
    # KEEP 2: 0.10 gave an entry to the entry routine only.
    flow, _, _ = pipeline(make_flow)
    job = run(flow)
    assert set(job.routine_states) == {"producer", "worker", "collector"}


def test_cancel_with_a_reason_stores_it_and_views_skip_it(make_flow):
    started, release = threading.Event(), threading.Event()

    class Blocker(Routine):
        def __init__(self):
            super().__init__()
            self.input_slot = self.define_slot("input", handler=self.block)

        def block(self, **kwargs):
            started.set()
            release.wait(10)

    flow = make_flow()
    flow.add_routine(Producer(), "producer")
    flow.add_routine(Blocker(), "blocker")
    flow.connect("producer", "output", "blocker", "input")
    job = flow.execute("producer", {"values": [1]}, wait=False)
    assert started.wait(10)
    flow.cancel(job, reason="operator asked")
    release.set()
    assert job.wait(10) and job.status == "cancelled"
    assert job.routine_states["_cancellation"] == {"reason": "operator asked"}
    tracker = job.execution_tracker
    assert set(tracker.routine_executions) == {"producer"}
    assert tracker.get_flow_performance()["routines"] == 1
    assert tracker.get_routine_performance("_cancellation") is None
