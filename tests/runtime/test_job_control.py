"""Jobs are isolated; pause, resume and cancel act on one job only."""

from __future__ import annotations

import threading

import pytest
from helpers import Node as SharedNode
from helpers import wait_until

from routilux import ErrorHandler, FlowStateError, JobState


class Node(SharedNode):
    """Records ``(job_id, data)``: the tests look at what each job delivered."""

    def record(self, data):
        self.calls.append((self.get_execution_context().job_state.job_id, data))

    def values(self, job, key="v"):
        return [d.get(key) for j, d in self.calls if j == job.job_id]


def forward(node, data):
    node.emit("out", **data)


def holder(entered, release):
    """Blocks the first call until ``release``; later calls pass straight through."""

    def fn(node, data):
        if not entered.is_set():
            entered.set()
            assert release.wait(10)
        node.emit("out", **data)

    return fn


def two_lane_flow(make_flow, gates, **flow_kwargs):
    """Lane A: a_hold (blocks) -> a_end.  Lane B: b1 -> b2 (blocks once) -> b3."""
    g = {name: gates() for name in ("a_in", "a_go", "b_in", "b_go")}
    flow = make_flow(**flow_kwargs)
    nodes = {
        "a_hold": Node(holder(g["a_in"], g["a_go"])),
        "a_end": Node(),
        "b1": Node(forward),
        "b2": Node(holder(g["b_in"], g["b_go"])),
        "b3": Node(),
    }
    for rid, node in nodes.items():
        flow.add_routine(node, rid)
    flow.connect("a_hold", "out", "a_end", "in")
    flow.connect("b1", "out", "b2", "in")
    flow.connect("b2", "out", "b3", "in")
    return flow, nodes, g


# ---------------------------------------------------------------- isolation
def test_jobs_have_separate_slot_data_history_and_state(make_flow, gates):
    entered, release = gates(), gates()

    def feed_a(node, data):
        node.emit("out", v=1)
        entered.set()
        assert release.wait(10)
        node.emit("out", v=2)

    flow = make_flow()
    agg = Node(merge_strategy="append")
    flow.add_routine(Node(feed_a), "feed_a")
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=v) for v in (10, 20, 30)]), "feed_b")
    flow.add_routine(agg, "agg")
    flow.connect("feed_a", "out", "agg", "in")
    flow.connect("feed_b", "out", "agg", "in")

    job_a = flow.execute("feed_a", wait=False)
    assert entered.wait(5)
    job_b = flow.execute("feed_b")  # runs to the end while job A is mid-step
    assert job_b.status == "completed"
    assert job_a.status == "running"
    release.set()
    assert job_a.wait(10) and job_a.status == "completed"

    assert agg.values(job_a) == [[1], [1, 2]]
    assert agg.values(job_b) == [[10], [10, 20], [10, 20, 30]]
    assert {r.routine_id for r in job_a.execution_history} == {"feed_a"}
    assert {r.routine_id for r in job_b.execution_history} == {"feed_b"}
    assert set(job_a.routine_states) == {"feed_a", "agg"}
    assert set(job_b.routine_states) == {"feed_b", "agg"}
    assert job_a.routine_states["agg"]["processed"] == 2
    assert job_b.routine_states["agg"]["processed"] == 3
    assert job_a.job_id != job_b.job_id


def test_sequential_jobs_progress_independently(make_flow):
    """Sequential means one step in flight per job, not per flow."""
    barrier = threading.Barrier(2, timeout=5)
    flow = make_flow()
    flow.add_routine(Node(lambda n, d: barrier.wait()), "x")
    flow.add_routine(Node(lambda n, d: barrier.wait()), "y")
    a = flow.execute("x", wait=False)
    b = flow.execute("y", wait=False)
    assert a.wait(10) and b.wait(10)
    assert (a.status, b.status) == ("completed", "completed"), (a.error, b.error)


def test_a_failing_job_does_not_disturb_another(make_flow, gates):
    entered, release = gates(), gates()
    flow = make_flow()
    slow = Node(holder(entered, release))
    sink = Node()
    flow.add_routine(slow, "slow")
    flow.add_routine(sink, "sink")
    flow.add_routine(Node(lambda n, d: 1 / 0), "bad")
    flow.connect("slow", "out", "sink", "in")
    good = flow.execute("slow", {"v": 1}, wait=False)
    assert entered.wait(5)
    bad = flow.execute("bad")
    assert bad.status == "failed"
    release.set()
    assert good.wait(10) and good.status == "completed"
    assert sink.values(good) == [1]


# ---------------------------------------------------------------- pause / resume
def test_pause_and_resume_one_job_while_another_runs(make_flow, gates):
    flow, nodes, g = two_lane_flow(make_flow, gates)
    job_a = flow.execute("a_hold", {"v": "a"}, wait=False)
    assert g["a_in"].wait(5)
    job_b = flow.execute("b1", {"v": "b"}, wait=False)
    assert g["b_in"].wait(5)

    flow.pause(job_b, reason="maintenance", wait=False)
    g["b_go"].set()  # b2's step finishes; b3's message must stay queued
    assert job_b.wait(10)
    assert job_b.status == "paused"
    assert nodes["b3"].calls == []
    assert [(t["routine_id"], t["slot"], t["data"]) for t in job_b.pending_tasks] == [
        ("b3", "in", {"v": "b"})
    ]
    assert job_b.pause_points and job_b.pause_points[-1]["reason"] == "maintenance"
    assert job_a.status == "running"  # untouched

    flow.resume(job_b)
    assert job_b.wait(10) and job_b.status == "completed"
    assert nodes["b3"].values(job_b) == ["b"]
    assert job_b.pending_tasks == []
    assert job_a.status == "running"

    g["a_go"].set()
    assert job_a.wait(10) and job_a.status == "completed"
    assert nodes["a_end"].values(job_a) == ["a"]
    assert job_a.pause_points == []


def test_pause_from_a_handler_makes_execute_return_paused(make_flow):
    def pause_me(node, data):
        flow, job_state, _ = node.get_execution_context()
        flow.pause(job_state, reason="self", wait=False)
        node.emit("out", v=data["v"] + 1)

    flow = make_flow()
    end = Node()
    flow.add_routine(Node(pause_me), "first")
    flow.add_routine(end, "end")
    flow.connect("first", "out", "end", "in")
    job = flow.execute("first", {"v": 1})  # wait=True returns at "paused"
    assert job.status == "paused"
    assert end.calls == []
    flow.pause(job)  # pausing a paused job is a no-op
    assert job.status == "paused" and len(job.pause_points) == 1
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    assert end.values(job) == [2]


def test_pause_from_inside_a_handler_returns_and_pauses(make_flow):
    """``pause`` with its default ``wait=True`` from the job's own handler."""

    def pause_me(node, data):
        flow, job, _ = node.get_execution_context()
        flow.pause(job, "from the handler")
        node.emit("out", v=1)

    sink = SharedNode()
    flow = make_flow()
    flow.add_routine(SharedNode(pause_me), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "in")
    job = flow.execute("src", timeout=10)
    assert job.status == "paused" and sink.calls == []
    flow.resume(job)
    assert job.wait(10) and job.status == "completed" and sink.calls == [{"v": 1}]


def test_compat_keywords_are_accepted(make_flow):
    """0.10's ``pause(checkpoint=...)``, ``wait_for_completion(check_interval=...)`` and
    ``shutdown(wait=...)`` are accepted."""
    release = threading.Event()
    flow = make_flow()
    flow.add_routine(SharedNode(lambda n, d: release.wait(10)), "g")
    job = flow.execute("g", wait=False)
    flow.pause(job, wait=False, checkpoint=True)
    release.set()
    assert JobState.wait_for_completion(flow, job, timeout=10, check_interval=0.5)
    assert job.status == "paused"
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    flow.shutdown(wait=True)


def test_deferred_events_are_emitted_at_resume(make_flow):
    def defer_and_pause(node, data):
        node.emit_deferred_event("later", v="deferred")
        node.emit("out", v="now")
        flow, job_state, _ = node.get_execution_context()
        flow.pause(job_state, wait=False)

    src = Node(defer_and_pause)
    src.define_event("later")
    now, later = Node(), Node()
    flow = make_flow()
    flow.add_routine(src, "src")
    flow.add_routine(now, "now")
    flow.add_routine(later, "later")
    flow.connect("src", "out", "now", "in")
    flow.connect("src", "later", "later", "in")
    job = flow.execute("src")
    assert job.status == "paused"
    assert later.calls == []
    assert [(d["routine_id"], d["event_name"], d["data"]) for d in job.deferred_events] == [
        ("src", "later", {"v": "deferred"})
    ]
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    assert later.values(job) == ["deferred"]
    assert now.values(job) == ["now"]
    assert job.deferred_events == []
    assert ("src", "later") in [(r.routine_id, r.event_name) for r in job.execution_history]


def test_resume_of_a_running_job_is_harmless(make_flow, gates):
    entered, release = gates(), gates()
    flow = make_flow()
    flow.add_routine(Node(holder(entered, release)), "h")
    job = flow.execute("h", wait=False)
    assert entered.wait(5)
    flow.resume(job)
    assert job.status == "running"
    release.set()
    assert job.wait(10) and job.status == "completed"
    assert len(flow.get_routine("h").calls) == 1


def test_resume_of_a_finished_job_leaves_it(make_flow):
    flow = make_flow()
    flow.add_routine(Node(), "n")
    job = flow.execute("n")
    assert job.status == "completed"
    # 0.10's execute -> pause -> resume -> wait sequence: resume returns it unchanged
    assert flow.resume(job) is job and job.status == "completed"
    flow.pause(job)  # no-op on a finished job
    flow.cancel(job)
    assert job.status == "completed"


def test_concurrent_pause_returns_batched_messages_and_resume_delivers_them(
    make_flow, gates
):
    entered, release = gates(), gates()
    flow = make_flow(execution_strategy="concurrent")
    w = Node(holder(entered, release))
    sink = Node()
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(10)]), "src")
    flow.add_routine(w, "w")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "w", "in")
    flow.connect("w", "out", "sink", "in")
    job_a = flow.execute("src", wait=False)
    assert entered.wait(5)
    flow.pause(job_a, wait=False)
    release.set()
    assert job_a.wait(10) and job_a.status == "paused"
    done_before = len(w.values(job_a))
    assert done_before < 10
    assert len(job_a.pending_tasks) >= 10 - done_before

    # Another job goes through the same routines while job A is paused.
    job_b = flow.execute("w", {"v": "b"})
    assert job_b.status == "completed"
    assert sink.values(job_b) == ["b"]
    assert job_a.status == "paused"

    flow.resume(job_a)
    assert job_a.wait(10) and job_a.status == "completed"
    assert sorted(w.values(job_a)) == list(range(10))  # each exactly once
    assert sorted(sink.values(job_a)) == list(range(10))


def test_concurrent_pause_resume_keeps_fifo_per_routine(make_flow, gates):
    entered, release = gates(), gates()
    flow = make_flow(execution_strategy="concurrent")
    w = Node(holder(entered, release))
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(10)]), "src")
    flow.add_routine(w, "w")
    flow.connect("src", "out", "w", "in")
    job = flow.execute("src", wait=False)
    assert entered.wait(5)
    flow.pause(job, wait=False)
    release.set()
    assert job.wait(10) and job.status == "paused"
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    assert w.values(job) == list(range(10))


# ---------------------------------------------------------------- cancel
def test_cancel_one_job_while_another_runs(make_flow, gates, sync):
    flow, nodes, g = two_lane_flow(make_flow, gates)
    b2_done = threading.Event()
    original = nodes["b2"].fn

    def b2(node, data):
        original(node, data)
        b2_done.set()

    nodes["b2"].fn = b2
    job_a = flow.execute("a_hold", {"v": "a"}, wait=False)
    assert g["a_in"].wait(5)
    job_b = flow.execute("b1", {"v": "b"}, wait=False)
    assert g["b_in"].wait(5)

    flow.cancel(job_b, reason="user asked")
    assert job_b.wait(10)
    assert job_b.status == "cancelled"
    assert "user asked" in job_b.error
    g["b_go"].set()
    assert b2_done.wait(5)
    sync(flow)  # b2's emit has reached the supervisor
    assert nodes["b3"].calls == []  # emitted after the cancel: dropped
    assert job_b.status == "cancelled"
    assert job_a.status == "running"

    g["a_go"].set()
    assert job_a.wait(10) and job_a.status == "completed"
    assert nodes["a_end"].values(job_a) == ["a"]


def test_cancel_a_paused_job_drops_its_queue(make_flow):
    def pause_me(node, data):
        flow, job_state, _ = node.get_execution_context()
        flow.pause(job_state, wait=False)
        for i in range(3):
            node.emit("out", v=i)

    flow = make_flow()
    end = Node()
    flow.add_routine(Node(pause_me), "first")
    flow.add_routine(end, "end")
    flow.connect("first", "out", "end", "in")
    job = flow.execute("first", {})
    assert job.status == "paused" and len(job.pending_tasks) == 3
    flow.cancel(job)
    assert job.wait(5) and job.status == "cancelled"
    assert job.dropped_messages == 3
    assert end.calls == []
    assert flow.resume(job) is job and job.status == "cancelled"  # finished: unchanged
    assert end.calls == []


def test_cancelled_job_never_completes_later(make_flow, gates, sync):
    entered, release = gates(), gates()
    flow = make_flow()
    flow.add_routine(Node(holder(entered, release)), "h")
    end = Node()
    flow.add_routine(end, "end")
    flow.connect("h", "out", "end", "in")
    job = flow.execute("h", {"v": 1}, wait=False)
    assert entered.wait(5)
    flow.cancel(job)
    assert job.status == "cancelled"
    release.set()
    # A second job through the same actor proves the first step has ended.
    assert flow.execute("h", {"v": 2}).status == "completed"
    sync(flow)
    assert job.status == "cancelled"
    assert end.values(job) == []


def test_execution_strategy_cannot_change_while_a_job_runs(make_flow, gates):
    entered, release = gates(), gates()
    flow = make_flow()
    flow.add_routine(Node(holder(entered, release)), "h")
    job = flow.execute("h", wait=False)
    assert entered.wait(5)
    with pytest.raises(FlowStateError, match="running"):
        flow.set_execution_strategy("concurrent")
    assert flow.execution_strategy == "sequential"
    release.set()
    assert job.wait(10) and job.status == "completed"
    flow.set_execution_strategy("concurrent")
    assert flow.execute("h", {"v": 1}).status == "completed"


def test_pause_with_wait_returns_once_the_running_step_ended(make_flow, gates):
    entered, release = gates(), gates()
    flow = make_flow()
    end = Node()
    flow.add_routine(Node(holder(entered, release)), "h")
    flow.add_routine(end, "end")
    flow.connect("h", "out", "end", "in")
    job = flow.execute("h", {"v": 1}, wait=False)
    assert entered.wait(5)
    returned = threading.Event()

    def pauser():
        flow.pause(job, reason="from another thread", timeout=10)
        returned.set()

    thread = threading.Thread(target=pauser)
    thread.start()
    try:
        assert not returned.wait(0.05)  # the step is still running
        assert job.status == "running"
    finally:
        release.set()
    thread.join(10)
    assert returned.is_set()
    assert job.status == "paused"
    assert end.calls == []
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    assert end.values(job) == [1]


def test_job_id_names_the_job_and_a_running_name_is_refused(make_flow, gates):
    entered, release = gates(), gates()
    flow = make_flow()
    flow.add_routine(Node(holder(entered, release)), "h")
    job = flow.execute("h", {"v": 1}, job_id="nightly", wait=False)
    assert job.job_id == "nightly"
    assert entered.wait(5)
    with pytest.raises(FlowStateError, match="nightly"):
        flow.execute("h", {"v": 2}, job_id="nightly", wait=False)
    release.set()
    assert job.wait(10) and job.status == "completed"
    again = flow.execute("h", {"v": 3}, job_id="nightly")  # free again once finished
    assert again.status == "completed" and again is not job
    with pytest.raises(ValueError):
        flow.execute("h", job_id="")


def test_pause_settles_when_the_running_step_fails_into_a_retry(make_flow, gates):
    entered, release = gates(), gates()
    attempts = []

    def flaky(node, data):
        attempts.append(1)
        if len(attempts) == 1:
            entered.set()
            assert release.wait(10)
            raise ConnectionError("transient")
        node.emit("out", **data)

    flow = make_flow()
    node, end = Node(flaky), Node()
    node.set_error_handler(ErrorHandler("retry", max_retries=2, retry_delay=0.01))
    flow.add_routine(node, "flaky")
    flow.add_routine(end, "end")
    flow.connect("flaky", "out", "end", "in")
    job = flow.execute("flaky", {"v": 1}, wait=False)
    assert entered.wait(5)
    flow.pause(job, wait=False)
    release.set()
    settled = job.wait(2)
    flow.resume(job)  # lets the job finish either way
    assert job.wait(10) and job.status == "completed"
    assert end.values(job) == [1]
    assert settled and len(job.pause_points) == 1


def test_resume_before_the_pause_settles_loses_nothing(make_flow, gates):
    w_in, w_go, x_in, x_go = gates(), gates(), gates(), gates()
    flow = make_flow(execution_strategy="concurrent")
    src = Node(lambda n, d: ([n.emit("out", v=i) for i in range(5)], n.emit("side")))
    src.define_event("side")
    w, x = Node(holder(w_in, w_go)), Node(holder(x_in, x_go))
    flow.add_routine(src, "src")
    flow.add_routine(w, "w")
    flow.add_routine(x, "x")
    flow.connect("src", "out", "w", "in")
    flow.connect("src", "side", "x", "in")
    job = flow.execute("src", wait=False)
    assert w_in.wait(5) and x_in.wait(5)
    flow.pause(job, wait=False)
    w_go.set()  # w finishes its step and hands the rest of its batch back
    assert wait_until(lambda: flow.metrics()["w"]["in_flight"] == 0, interval=0)
    assert job.status == "running"  # x's step still runs: the pause has not settled
    flow.resume(job)
    x_go.set()
    assert job.wait(10) and job.status == "completed"
    assert w.values(job) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("trial", range(8))
def test_pause_settles_while_a_step_waits_for_backpressure(make_flow, trial):
    """Regression: the pause landed while the consumer ran and the producer waited in
    emit(); when the consumer's step ended, only a job with nothing in flight was
    settled, so the pause never completed (about 1 run in 5 here)."""
    started = threading.Event()

    def produce(node, data):
        started.set()
        for i in range(300):
            node.emit("out", i=i)

    flow = make_flow(max_queued_per_routine=2)
    consumer = Node()
    flow.add_routine(Node(produce), "producer")
    flow.add_routine(consumer, "consumer")
    flow.connect("producer", "out", "consumer", "in")
    job = flow.execute("producer", wait=False)
    assert started.wait(5)
    assert wait_until(lambda: len(consumer.calls) >= 20)  # the pause meets a busy stream
    flow.pause(job, wait=False)
    settled = job.wait(5)
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    assert settled and job.pause_points
    assert consumer.values(job, "i") == list(range(300))
