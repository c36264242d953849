"""Flow lifecycle: shutdown (no thread left, idempotent, jobs cancelled), restart,
and the runtime metrics."""

from __future__ import annotations

import itertools
import threading

import pytest
from helpers import Node, wait_until

from routilux import ErrorHandler, Flow, FlowStateError

METRIC_KEYS = {"processed", "failed", "queued", "in_flight", "restarts", "mean_ms", "p95_ms"}


def chain(flow, n=3, fn=None):
    ids = [f"n{i}" for i in range(n)]
    for rid in ids:
        flow.add_routine(Node(fn or (lambda node, d: node.emit("out", **d))), rid)
    for a, b in itertools.pairwise(ids):
        flow.connect(a, "out", b, "in")
    return ids


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_shutdown_leaves_no_thread(no_thread_leak, strategy):
    flow = Flow(execution_strategy=strategy, max_workers=3)
    ids = chain(flow, 4)
    flow.add_routine(Node(lambda n, d: 1 / 0), "bad", workers=2)
    flow.get_routine("bad").set_error_handler(ErrorHandler("retry", 1, 0.01))
    flow.connect("n0", "out", "bad", "in")
    jobs = [flow.execute(ids[0], {"v": i}, wait=False, timeout=30) for i in range(10)]
    assert all(job.wait(10) for job in jobs)
    # A RETRY that runs out fails the job (0.10), critical or not.
    assert all(job.status == "failed" for job in jobs)
    flow.shutdown()
    # no_thread_leak checks that every actor, supervisor and timer thread is gone.


def test_shutdown_is_idempotent(no_thread_leak):
    Flow().shutdown()  # never started
    flow = Flow()
    chain(flow)
    assert flow.execute("n0", {"v": 1}).status == "completed"
    flow.shutdown()
    flow.shutdown()
    flow.shutdown(timeout=1)


def test_execute_after_shutdown_starts_the_flow_again(no_thread_leak):
    flow = Flow()
    ids = chain(flow)
    assert flow.execute("n0", {"v": 1}).status == "completed"
    flow.shutdown()
    job = flow.execute("n0", {"v": 2})
    assert job.status == "completed"
    assert [c["v"] for c in flow.get_routine(ids[-1]).calls] == [1, 2]
    flow.shutdown()


def test_shutdown_cancels_unfinished_jobs(no_thread_leak):
    def pause_me(node, data):
        flow, job_state, _ = node.get_execution_context()
        flow.pause(job_state, wait=False)
        node.emit("out", **data)

    flow = Flow()
    flow.add_routine(Node(pause_me), "p")
    flow.add_routine(Node(), "end")
    flow.connect("p", "out", "end", "in")
    flow.add_routine(Node(lambda n, d: 1 / 0), "retrying")
    flow.get_routine("retrying").set_error_handler(ErrorHandler("retry", 1, 60.0))
    paused = flow.execute("p", {"v": 1})
    assert paused.status == "paused"
    retrying = flow.execute("retrying", wait=False)
    # Wait (on supervisor round trips) until the first attempt has failed.
    assert wait_until(lambda: flow.metrics()["retrying"]["failed"] == 1, interval=0)
    assert retrying.status == "running"  # only the retry timer is pending
    flow.shutdown()
    assert paused.status == "cancelled"
    assert retrying.wait(0) and retrying.status == "cancelled"
    assert flow.get_routine("end").calls == []


def test_shutdown_with_a_stuck_handler_raises_and_recovers(make_flow):
    release = threading.Event()
    entered = threading.Event()

    def stuck(node, data):
        entered.set()
        release.wait(10)

    before = set(threading.enumerate())
    flow = Flow()
    flow.add_routine(Node(stuck), "stuck")
    job = flow.execute("stuck", wait=False)
    assert entered.wait(5)
    try:
        with pytest.raises(FlowStateError, match=flow.flow_id):
            flow.shutdown(timeout=0.2)
        assert job.status == "cancelled"
    finally:
        release.set()
    for thread in set(threading.enumerate()) - before:
        thread.join(10)
        assert not thread.is_alive(), thread


def test_shutdown_while_a_step_waits_for_backpressure():
    entered, stop = threading.Event(), threading.Event()

    def produce(node, data):
        entered.set()
        for i in range(100_000):
            if stop.is_set():
                return
            node.emit("out", i=i)

    before = set(threading.enumerate())
    flow = Flow(max_queued_per_routine=2)
    consumer = Node()
    flow.add_routine(Node(produce), "producer")
    flow.add_routine(consumer, "consumer")
    flow.connect("producer", "out", "consumer", "in")
    job = flow.execute("producer", wait=False)
    assert entered.wait(5)
    assert wait_until(lambda: len(consumer.calls) >= 50, interval=0)  # the consumer lags behind
    try:
        flow.shutdown(timeout=3)  # the producer's step must be let out of emit()
        assert job.status == "cancelled"
        leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        assert not leaked, leaked
    finally:
        stop.set()
        _unblock(flow, before)


def _unblock(flow, before):
    """Best effort after a failed shutdown: free a step stuck in emit() and wait for
    the threads to end, so the session keeps no spinning thread (uses internals)."""
    mailbox = getattr(flow, "_mailbox", None)
    if mailbox is not None:
        mailbox.items.clear()
    for thread in set(threading.enumerate()) - before:
        thread.join(15)


# ---------------------------------------------------------------- metrics
def test_metrics_count_per_routine(make_flow):
    flow = make_flow()
    flow.set_error_handler(ErrorHandler("continue"))
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(10)]), "src")
    flow.add_routine(Node(lambda n, d: 1 / 0 if d["v"] < 3 else None), "sink")
    flow.connect("src", "out", "sink", "in")
    for _ in range(2):
        assert flow.execute("src").status == "completed"
    metrics = flow.metrics()
    assert set(metrics) == {"src", "sink"}
    for figures in metrics.values():
        assert METRIC_KEYS <= set(figures)
        assert figures["queued"] == 0 and figures["in_flight"] == 0
        assert figures["restarts"] == 0
        assert figures["mean_ms"] > 0 and figures["p95_ms"] > 0  # every routine ran
    assert (metrics["src"]["processed"], metrics["src"]["failed"]) == (2, 0)
    assert (metrics["sink"]["processed"], metrics["sink"]["failed"]) == (14, 6)
    assert metrics["sink"]["mean_ms"] > 0


def test_metrics_show_queued_and_in_flight_live(make_flow):
    entered, release = threading.Event(), threading.Event()

    def hold(node, data):
        if data["v"] == 0:
            entered.set()
            release.wait(10)

    flow = make_flow()
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(5)]), "src")
    flow.add_routine(Node(hold), "slow")
    flow.connect("src", "out", "slow", "in")
    try:
        job = flow.execute("src", wait=False)
        assert entered.wait(5)
        metrics = flow.metrics()
        # sequential: the five deliveries to "slow" are the head of the job's queue,
        # one run handed to its replica together (run one at a time, in order)
        assert metrics["slow"]["in_flight"] == 5
        assert metrics["slow"]["queued"] == 0
        assert metrics["src"]["processed"] == 1
    finally:
        release.set()
    assert job.wait(10) and job.status == "completed"
    assert flow.metrics()["slow"]["processed"] == 5
