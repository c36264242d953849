"""Rule *the supervisor never dies silently*: an error on the supervisor's thread
fails the jobs it concerns with one line, and the flow goes on serving."""

from __future__ import annotations

import pytest
from helpers import Node, Source

DEPTH = 100_000


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_an_error_while_routing_fails_that_job_only_and_the_flow_goes_on(make_flow):
    flow = make_flow(execution_strategy="concurrent")
    flow.add_routine(Source(), "source")
    sink = Node()
    flow.add_routine(sink, "sink")
    connection = flow.connect("source", "out", "sink", "in", param_mapping={"x": "y"})

    class Broken(dict):
        def items(self):
            raise KeyError("a bug in the routing code")

    connection.param_mapping = Broken(x="y")  # read on the supervisor's thread
    job = flow.execute("source", {"n": 1}, timeout=30)
    assert job.status == "failed"
    assert "internal error in the flow's supervisor" in job.error
    assert "KeyError" in job.error and "\n" not in job.error
    # The supervisor is alive: a job that avoids the broken route runs.
    assert flow.execute("sink", {"x": 1}, entry_slot="in", timeout=30).status == "completed"


@pytest.mark.parametrize("execution", ["thread", "process"])
def test_data_nested_too_deeply_fails_the_job_with_one_line(make_flow, execution):
    """Regression: describing unpicklable data recursed past the interpreter's limit on
    the supervisor's thread, killing it; the job hung even with a timeout."""
    flow = make_flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(Node(), "sink", execution=execution)
    flow.connect("source", "out", "sink", "in")
    job = flow.execute("source", {"n": 1, "payload": nested(DEPTH)}, timeout=30)
    if execution == "process":
        assert job.status == "failed", job.status
        assert "nested too deeply" in job.error and "\n" not in job.error
    else:
        assert job.status == "completed"  # threads share the data, nothing is pickled
    assert flow.execute("source", {"n": 2}, timeout=30).status == "completed"
