"""A thread replica reports the steps of a batch that succeeded together (DONE_BATCH):
every per-step record must come out as if each step had been reported alone, and a
report must not wait behind a step that waits in emit()."""

from __future__ import annotations

import pytest
from helpers import src_w_sink, wait_until

from routilux import ErrorHandler, ErrorStrategy
from routilux.runtime.bus import STEP_FINISHED

LIMIT = 64  # tight queues: steps are still reported in batches until a routine is full
BURST = 40  # 64 bursts overfill sink: its batch (64), LIMIT queued, LIMIT in the inbox
assert 64 * BURST > 64 + 2 * LIMIT


def relay_flow(make_flow, count, fn=None, **flow_kwargs):
    return src_w_sink(make_flow, count, fn, execution_strategy="concurrent", **flow_kwargs)


@pytest.mark.parametrize("strategy", ["concurrent", "sequential"])
def test_batched_reports_keep_every_step_record(make_flow, strategy):
    flow, _w, sink = relay_flow(make_flow, 300)
    flow.set_execution_strategy(strategy)
    job = flow.execute("src", timeout=30)
    assert job.status == "completed", job.error
    state = job.routine_states["w"]
    assert state["processed"] == 300 and state["failed"] == 0
    assert state["status"] == "completed"
    assert 0 < state["min_seconds"] <= state["max_seconds"] <= state["total_seconds"]
    assert state["first_start"] <= state["last_end"]
    assert state["execution_time"] > 0
    metrics = flow.metrics()["w"]
    assert (metrics["processed"], metrics["in_flight"], metrics["queued"]) == (300, 0, 0)
    assert metrics["mean_ms"] > 0
    assert [c["v"] for c in sink.calls] == list(range(300))


def test_step_events_stay_one_per_step(make_flow):
    flow, _w, _sink = relay_flow(make_flow, 100)
    sub = flow.subscribe(kinds=[STEP_FINISHED])
    job = flow.execute("src", timeout=30)
    assert job.status == "completed"
    events = []
    while len(events) < 201 and (event := sub.get(5)) is not None:
        events.append(event)
    finished = [e.data for e in events if e.data["routine"] == "w"]
    assert len(finished) == 100
    assert len({e["message_id"] for e in finished}) == 100
    assert all(e["error"] is None and e["duration"] > 0 for e in finished)


def test_failures_among_successes_of_a_batch_are_counted_in_order(make_flow):
    def fn(node, data):
        if data["v"] % 5 == 0:
            raise ValueError(f"bad {data['v']}")
        node.emit("out", v=data["v"])

    flow, w, sink = relay_flow(make_flow, 100, fn)
    w.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))
    job = flow.execute("src", timeout=30)
    assert job.status == "completed", job.error
    state = job.routine_states["w"]
    assert (state["processed"], state["failed"]) == (80, 20)
    assert [f["message"] for f in job.failures] == [f"bad {v}" for v in range(0, 100, 5)]
    assert [c["v"] for c in sink.calls] == [v for v in range(100) if v % 5]
    metrics = flow.metrics()["w"]
    assert (metrics["processed"], metrics["failed"]) == (80, 20)


def test_steps_that_ended_are_reported_while_a_later_one_waits_in_emit(make_flow, gates):
    """w's 64 steps (one batch) emit BURST messages each into sink, whose first step
    is held: sink's queue fills and a step of w waits in emit(). The steps of w that
    ended must be counted meanwhile (a pause or a checkpoint decision may depend on
    them), not when the waiting step ends."""
    hold = gates()

    def consume(node, data):
        if data["v"] == 0 and data["k"] == 0:
            hold.wait(10)

    def burst(node, data):
        for k in range(BURST):
            node.emit("out", v=data["v"], k=k)

    flow, w, sink = relay_flow(make_flow, 64, burst, max_queued_per_routine=LIMIT)
    sink.fn = consume
    job = flow.execute("src", wait=False)
    # blocked: w stops part way through its batch, every step before it reported
    assert wait_until(
        lambda: 1 < len(w.calls) < 64 and flow.metrics()["w"]["processed"] == len(w.calls) - 1,
        interval=0,
    )
    hold.set()
    assert job.wait(30) and job.status == "completed", job.error
    assert len(sink.calls) == 64 * BURST
    assert flow.metrics()["w"]["processed"] == 64
