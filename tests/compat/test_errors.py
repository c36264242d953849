"""§3 of the 0.10 compatibility spec: RETRY that runs out fails the job;
``ErrorHandler.retry_count`` and ``reset()``."""

from __future__ import annotations

import pytest

from routilux import ConfigurationError, ErrorHandler, ErrorStrategy
from tests.compat.compat_helpers import EXECUTIONS, Worker, pipeline, run


def retry(max_retries: int = 2, **kwargs) -> ErrorHandler:
    return ErrorHandler(ErrorStrategy.RETRY, max_retries=max_retries, retry_delay=0.01, **kwargs)


@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize("critical", [False, True])
def test_retry_that_runs_out_fails_the_job_whatever_is_critical_says(
    make_flow, execution, critical
):
    handler = retry(is_critical=critical)
    flow, worker, collector = pipeline(make_flow, execution, Worker(fail_first=-1), handler)
    job = run(flow, params={"values": [5]})
    assert job.status == "failed"
    assert worker.calls == [5, 5, 5]  # 1 + max_retries calls
    assert collector.results == []
    assert "bad value 5" in job.error
    assert handler.retry_count == 2


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_set_as_optional_retry_fails_the_job_too(make_flow, execution):
    worker = Worker(fail_first=-1)
    worker.set_as_optional(ErrorStrategy.RETRY)
    worker.get_error_handler().retry_delay = 0.01
    flow, worker, _ = pipeline(make_flow, execution, worker)
    job = run(flow)
    assert job.status == "failed"
    assert len(worker.calls) == 1 + worker.get_error_handler().max_retries


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_a_non_retryable_exception_fails_at_once(make_flow, execution):
    handler = retry(retryable_exceptions=(ConnectionError,))
    flow, worker, _ = pipeline(make_flow, execution, Worker(fail_first=-1), handler)
    job = run(flow)
    assert job.status == "failed"
    assert worker.calls == [1]
    assert handler.retry_count == 0


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_retry_count_after_one_failure_then_success(make_flow, execution):
    handler = retry()
    flow, _, collector = pipeline(make_flow, execution, Worker(fail_first=1), handler)
    job = run(flow, params={"values": [3]})
    assert job.status == "completed"
    assert collector.results == [{"value": 6}]
    assert handler.retry_count == 1
    handler.reset()
    assert handler.retry_count == 0


def test_retry_count_counts_every_retry_under_the_handler_object(make_flow):
    # One handler object on the flow: retries of every routine and job add up;
    # retry decisions stay per message (each value gets its own budget).
    handler = retry(max_retries=1)
    flow, _, collector = pipeline(make_flow, "thread", Worker(fail_first=1))
    flow.set_error_handler(handler)
    assert run(flow, params={"values": [1, 2]}).status == "completed"
    assert handler.retry_count == 2
    assert run(flow, params={"values": [3]}).status == "completed"
    assert handler.retry_count == 3
    assert sorted(r["value"] for r in collector.results) == [2, 4, 6]


@pytest.mark.parametrize("strategy", ["stop", "continue", "skip"])
def test_retry_count_stays_0_without_retry(make_flow, strategy):
    handler = ErrorHandler(strategy)
    flow, _, _ = pipeline(make_flow, "thread", Worker(fail_first=-1), handler)
    run(flow)
    assert handler.retry_count == 0


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_on_exhausted_continue_is_an_explicit_opt_in(make_flow, execution):
    handler = retry(max_retries=1, on_exhausted="continue")
    flow, worker, _ = pipeline(make_flow, execution, Worker(fail_first=-1), handler)
    job = run(flow, params={"values": [1, 2]})
    assert job.status == "completed"
    assert sorted(worker.calls) == [1, 1, 2, 2]
    assert job.routine_states["worker"]["status"] == "error_continued"


def test_error_handler_defaults_and_bad_on_exhausted():
    handler = ErrorHandler()
    assert handler.strategy is ErrorStrategy.STOP and handler.retry_count == 0
    with pytest.raises(ConfigurationError, match="on_exhausted"):
        ErrorHandler(ErrorStrategy.RETRY, on_exhausted="carry-on")
