"""§5 of the 0.10 compatibility spec: ``start``, ``error``, ``error_continued`` and
``completed`` records in ``job.execution_history``."""

from __future__ import annotations

import pytest

from routilux import ErrorHandler, ErrorStrategy
from tests.compat.compat_helpers import EXECUTIONS, Worker, history, pipeline, run


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_start_record_comes_first_with_the_entry_params(make_flow, execution):
    flow, _, _ = pipeline(make_flow, execution)
    job = run(flow, params={"values": [4]})
    assert history(job) == [
        ("producer", "start", {"values": [4]}),
        ("producer", "output", {"value": 4}),
        ("worker", "output", {"value": 8}),
    ]


@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize(
    "handler",
    [None, ErrorHandler("stop"), ErrorHandler("retry", max_retries=1, retry_delay=0.01)],
    ids=["no handler", "stop", "retry gave up"],
)
def test_a_failing_step_records_error(make_flow, execution, handler):
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=-1), handler)
    job = run(flow)
    errors = [r for r in job.execution_history if r.event_name == "error"]  # the 0.10 docs
    assert [(r.routine_id, r.data) for r in errors] == [
        ("worker", {"slot": "input", "error": "bad value 1", "error_type": "ValueError"})
    ]
    assert len(job.failures) == (2 if handler and handler.strategy == "retry" else 1)


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_continue_records_error_continued(make_flow, execution):
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=-1), ErrorHandler("continue"))
    job = run(flow, params={"values": [1, 2]})
    records = [r for r in job.execution_history if r.event_name in ("error", "error_continued")]
    assert [(r.routine_id, r.event_name, r.data["error"]) for r in records] == [
        ("worker", "error_continued", "bad value 1"),
        ("worker", "error_continued", "bad value 2"),
    ]
    assert records[0].data == {"slot": "input", "error": "bad value 1", "error_type": "ValueError"}


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_skip_has_no_record(make_flow, execution):
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=-1), ErrorHandler("skip"))
    job = run(flow)
    assert [e for _, e, _ in history(job)] == ["start", "output"]
    assert job.routine_states["worker"]["status"] == "skipped"


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_success_after_retries_records_completed(make_flow, execution):
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    flow, _, _ = pipeline(make_flow, execution, Worker(fail_first=1), handler)
    job = run(flow)
    assert job.status == "completed"
    records = history(job)
    assert [e for _, e, _ in records] == ["start", "output", "output", "completed"]
    rid, _, data = records[-1]
    assert rid == "worker" and data["retried"] is True and data["execution_time"] >= 0.01
    assert len(job.failures) == 1  # retried attempts add no record; failures lists them


def test_entry_routine_retry_keeps_its_emits(make_flow):
    # 0.10 lost the emits of a retried entry routine (a bug not copied).
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    worker = Worker(fail_first=1)
    worker.set_error_handler(handler)
    flow = make_flow()
    flow.add_routine(worker, "worker")
    job = run(flow, "worker", {"value": 5})
    assert history(job) == [
        ("worker", "start", {"value": 5}),
        ("worker", "output", {"value": 10}),
        ("worker", "completed", history(job)[-1][2]),
    ]


def test_record_history_false_records_nothing(make_flow):
    flow, _, _ = pipeline(make_flow, worker=Worker(fail_first=-1), record_history=False)
    job = run(flow)
    assert job.status == "failed" and job.execution_history == []

