"""Error strategies on downstream routines, retries, failure records, job timeouts."""

from __future__ import annotations

import threading

from helpers import Node as SharedNode
from helpers import wait_until

from routilux import ErrorHandler, ErrorStrategy


class Node(SharedNode):
    """The shared test routine, with the events this module uses."""

    def __init__(self, fn=None):
        super().__init__(fn, events=("out", "side"))


def explode(node, data):
    raise ValueError(f"bad value {data.get('v')}")


def fail_times(n, exc=ConnectionError):
    """Fail the first ``n`` calls per value of ``v``, then forward."""
    counts: dict = {}
    lock = threading.Lock()

    def fn(node, data):
        with lock:
            counts[data.get("v")] = counts.get(data.get("v"), 0) + 1
            attempt = counts[data.get("v")]
        if attempt <= n:
            raise exc(f"attempt {attempt} for {data.get('v')}")
        node.emit("out", **data)

    return fn


def downstream_flow(make_flow, bad_fn, handler=None, flow_handler=None, **flow_kwargs):
    """src -> bad -> after, and src -> other (after bad in connection order)."""
    flow = make_flow(**flow_kwargs)
    nodes = {
        "src": Node(lambda n, d: n.emit("out", v=d.get("v", 1))),
        "bad": Node(bad_fn),
        "other": Node(lambda n, d: n.emit("out", **d)),
        "after": Node(),
        "other_after": Node(),
    }
    for rid, node in nodes.items():
        flow.add_routine(node, rid)
    flow.connect("src", "out", "bad", "in")
    flow.connect("src", "out", "other", "in")
    flow.connect("bad", "out", "after", "in")
    flow.connect("other", "out", "other_after", "in")
    if handler is not None:
        nodes["bad"].set_error_handler(handler)
    if flow_handler is not None:
        flow.set_error_handler(flow_handler)
    return flow, nodes


# ---------------------------------------------------------------- STOP
def test_stop_on_a_downstream_routine_fails_the_job_and_drops_the_rest(make_flow):
    flow, nodes = downstream_flow(make_flow, explode, ErrorHandler(ErrorStrategy.STOP))
    job = flow.execute("src", {"v": 7})
    assert job.status == "failed"
    assert nodes["other"].calls == [] and nodes["other_after"].calls == []
    assert nodes["after"].calls == []
    assert job.dropped_messages == 1
    [failure] = job.failures
    assert [(d["routine_id"], d["data"]) for d in failure["dropped"]] == [("other", {"v": 7})]
    assert "'bad'" in job.error and "ValueError" in job.error and "bad value 7" in job.error
    assert job.routine_states["bad"]["status"] == "failed"


def test_failure_record_has_routine_slot_type_message_and_traceback(make_flow):
    flow, _ = downstream_flow(make_flow, explode)
    job = flow.execute("src", {"v": 3})
    [failure] = job.failures
    assert failure["routine_id"] == "bad"
    assert failure["slot"] == "in"
    assert failure["exception_type"] == "ValueError"
    assert failure["message"] == "bad value 3"
    assert "Traceback" in failure["traceback"]
    assert "explode" in failure["traceback"]  # the handler's frame
    assert "ValueError: bad value 3" in failure["traceback"]


def test_stop_is_the_default_for_a_downstream_routine(make_flow):
    flow, nodes = downstream_flow(make_flow, explode)
    job = flow.execute("src")
    assert job.status == "failed"
    assert nodes["other"].calls == []


# ---------------------------------------------------------------- CONTINUE / SKIP
def test_continue_records_the_error_and_goes_on(make_flow):
    def emit_then_fail(node, data):
        node.emit("out", v="partial")
        raise KeyError("missing")

    flow, nodes = downstream_flow(make_flow, emit_then_fail, ErrorHandler(ErrorStrategy.CONTINUE))
    job = flow.execute("src", {"v": 1})
    assert job.status == "completed"
    assert nodes["other_after"].calls == [{"v": 1}]
    assert nodes["after"].calls == [{"v": "partial"}]  # emitted before the error
    assert job.routine_states["bad"]["status"] == "error_continued"  # 0.10's name
    assert job.routine_states["bad"]["error"] == "'missing'"
    assert job.routine_states["bad"]["failed"] == 1
    [failure] = job.failures
    assert failure["routine_id"] == "bad" and failure["exception_type"] == "KeyError"
    assert job.error is None


def test_continue_from_flow_handler_records_each_failure(make_flow):
    flow = make_flow()
    flow.set_error_handler(ErrorHandler("continue"))
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(5)]), "src")
    flow.add_routine(Node(lambda n, d: 1 / 0 if d["v"] % 2 else n.emit("out", **d)), "half")
    sink = Node()
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "half", "in")
    flow.connect("half", "out", "sink", "in")
    job = flow.execute("src")
    assert job.status == "completed"
    assert [c["v"] for c in sink.calls] == [0, 2, 4]
    assert [f["exception_type"] for f in job.failures] == ["ZeroDivisionError"] * 2
    state = job.routine_states["half"]
    assert (state["processed"], state["failed"]) == (3, 2)
    assert flow.metrics()["half"]["failed"] == 2


def test_skip_marks_the_routine_skipped_and_goes_on(make_flow):
    flow, nodes = downstream_flow(make_flow, explode, ErrorHandler(ErrorStrategy.SKIP))
    job = flow.execute("src", {"v": 2})
    assert job.status == "completed"
    assert job.routine_states["bad"]["status"] == "skipped"
    assert nodes["after"].calls == []
    assert nodes["other_after"].calls == [{"v": 2}]
    assert job.failures[0]["routine_id"] == "bad"
    assert job.failures[0]["strategy"] == "skip"


def test_set_as_optional_on_a_downstream_routine(make_flow):
    flow, nodes = downstream_flow(make_flow, explode)
    nodes["bad"].set_as_optional()
    job = flow.execute("src")
    assert job.status == "completed"
    assert nodes["other_after"].calls == [{"v": 1}]


# ---------------------------------------------------------------- RETRY
def test_retry_redelivers_the_same_message_until_it_succeeds(make_flow):
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01)
    flow, nodes = downstream_flow(make_flow, fail_times(2), handler)
    job = flow.execute("src", {"v": 5})
    assert job.status == "completed", job.error
    assert nodes["bad"].calls == [{"v": 5}] * 3
    assert nodes["after"].calls == [{"v": 5}]
    assert [f["attempt"] for f in job.failures] == [0, 1]
    assert all(f["exception_type"] == "ConnectionError" for f in job.failures)
    assert job.routine_states["bad"]["status"] == "completed"
    assert nodes["other_after"].calls == [{"v": 5}]


def test_retry_from_flow_handler_applies_to_downstream_routines(make_flow):
    flow, nodes = downstream_flow(
        make_flow,
        fail_times(1),
        flow_handler=ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.01),
    )
    job = flow.execute("src", {"v": 1})
    assert job.status == "completed", job.error
    assert nodes["after"].calls == [{"v": 1}]


class RecordingHandler(ErrorHandler):
    """An ErrorHandler that keeps every retry delay the runtime asks it for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delays: list[float] = []

    def delay_for(self, retry_number):
        delay = super().delay_for(retry_number)
        self.delays.append(delay)
        return delay


def test_retry_backoff_delays_grow(make_flow):
    handler = RecordingHandler(
        ErrorStrategy.RETRY, max_retries=3, retry_delay=0.05, retry_backoff=2.0
    )
    flow, nodes = downstream_flow(make_flow, fail_times(3), handler)
    job = flow.execute("src")
    assert job.status == "completed", job.error
    assert len(nodes["bad"].calls) == 4
    # Each retry waits retry_delay * retry_backoff ** (n - 1): the delays the runtime
    # scheduled, in order (that a timer waits its delay is the timer's contract).
    assert handler.delays == [0.05, 0.1, 0.2]


def test_emits_of_a_failed_attempt_are_not_duplicated_by_the_retry(make_flow):
    calls = []

    def emit_then_fail_once(node, data):
        calls.append(1)
        node.emit("out", v=data["v"])
        if len(calls) == 1:
            raise ConnectionError("transient")

    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    flow, nodes = downstream_flow(make_flow, emit_then_fail_once, handler)
    job = flow.execute("src", {"v": 9})
    assert job.status == "completed"
    assert len(calls) == 2
    assert nodes["after"].calls == [{"v": 9}]  # the same emit id, routed once


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


def check_retry_does_not_block_the_job(make_flow, gates, sync, **flow_kwargs):
    other_done = gates()
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=30.0)
    flow, nodes = downstream_flow(make_flow, explode, handler, **flow_kwargs)
    nodes["other_after"].fn = lambda n, d: other_done.set()
    job = flow.execute("src", wait=False)
    # The job's other messages run while the retry waits out its 30 s delay.
    assert other_done.wait(2)
    # The handler that set the gate may still be reporting back; wait for it.
    assert wait_until(
        lambda: all(m["in_flight"] == 0 and m["queued"] == 0 for m in sync(flow).values())
    ), sync(flow)
    assert job.status == "running"  # a pending retry keeps the job open
    assert len(nodes["bad"].calls) == 1
    flow.cancel(job)
    assert job.wait(5) and job.status == "cancelled"


def test_retry_backoff_does_not_block_other_messages_sequential(make_flow, gates, sync):
    check_retry_does_not_block_the_job(make_flow, gates, sync)


def test_retry_backoff_does_not_block_other_messages_concurrent(make_flow, gates, sync):
    check_retry_does_not_block_the_job(make_flow, gates, sync, execution_strategy="concurrent")


def test_retry_backoff_does_not_block_other_jobs(make_flow, sync):
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=30.0)
    flow, nodes = downstream_flow(make_flow, explode, handler)
    waiting = flow.execute("bad", {"v": 1}, wait=False)
    assert wait_until(lambda: sync(flow)["bad"]["failed"] >= 1)  # the first attempt reported
    assert len(nodes["bad"].calls) == 1
    other = flow.execute("other", {"v": "x"})
    assert other.status == "completed"
    assert nodes["other_after"].calls == [{"v": "x"}]
    assert waiting.status == "running"
    flow.cancel(waiting)
    assert waiting.wait(5) and waiting.status == "cancelled"


def test_retry_counts_are_per_message(make_flow):
    flow = make_flow()
    bad = Node(fail_times(1))
    bad.set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.01, is_critical=True)
    )
    sink = Node()
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(4)]), "src")
    flow.add_routine(bad, "bad")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "bad", "in")
    flow.connect("bad", "out", "sink", "in")
    job = flow.execute("src")
    # Each message fails once and has its own retry budget of 1.
    assert job.status == "completed", job.error
    assert sorted(c["v"] for c in sink.calls) == [0, 1, 2, 3]
    assert len(bad.calls) == 8
    assert len(job.failures) == 4 and all(f["attempt"] == 0 for f in job.failures)


def test_critical_routine_fails_the_job_when_retries_run_out(make_flow):
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01, is_critical=True)
    flow, nodes = downstream_flow(make_flow, explode, handler)
    job = flow.execute("src", {"v": 4})
    assert job.status == "failed"
    assert len(nodes["bad"].calls) == 3  # first attempt + 2 retries
    assert [f["attempt"] for f in job.failures] == [0, 1, 2]
    assert "'bad'" in job.error and "bad value 4" in job.error
    assert job.routine_states["bad"]["status"] == "failed"


def test_set_as_critical_on_a_downstream_routine(make_flow):
    flow, nodes = downstream_flow(make_flow, explode)
    nodes["bad"].set_as_critical(max_retries=1, retry_delay=0.01)
    job = flow.execute("src")
    assert job.status == "failed"
    assert len(nodes["bad"].calls) == 2


def test_non_critical_routine_fails_the_job_when_retries_run_out(make_flow):
    # 0.10: a RETRY that gives up fails the job whatever is_critical says.
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    flow, nodes = downstream_flow(make_flow, explode, handler)
    job = flow.execute("src", {"v": 4})
    assert job.status == "failed"
    assert len(nodes["bad"].calls) == 3
    assert nodes["after"].calls == []
    assert job.routine_states["bad"]["status"] == "failed"
    assert len(job.failures) == 3
    assert handler.retry_count == 2


def test_on_exhausted_continue_lets_the_job_go_on_when_retries_run_out(make_flow):
    handler = ErrorHandler(
        ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01, on_exhausted="continue"
    )
    flow, nodes = downstream_flow(make_flow, explode, handler)
    job = flow.execute("src", {"v": 4})
    assert job.status == "completed"
    assert len(nodes["bad"].calls) == 3
    assert nodes["after"].calls == []
    assert nodes["other_after"].calls == [{"v": 4}]
    assert job.routine_states["bad"]["status"] == "error_continued"
    assert len(job.failures) == 3


def test_non_retryable_exception_is_not_retried(make_flow):
    handler = ErrorHandler(
        ErrorStrategy.RETRY,
        max_retries=3,
        retry_delay=0.01,
        retryable_exceptions=(ConnectionError,),
        is_critical=True,
    )
    flow, nodes = downstream_flow(make_flow, explode, handler)
    job = flow.execute("src")
    assert job.status == "failed"
    assert len(nodes["bad"].calls) == 1


def test_retryable_exception_subclass_is_retried(make_flow):
    handler = ErrorHandler(
        ErrorStrategy.RETRY,
        max_retries=3,
        retry_delay=0.01,
        retryable_exceptions=(ConnectionError,),
        is_critical=True,
    )
    flow, nodes = downstream_flow(make_flow, fail_times(2, ConnectionResetError), handler)
    job = flow.execute("src")
    assert job.status == "completed"
    assert len(nodes["bad"].calls) == 3


def test_error_strategies_in_concurrent_mode(make_flow):
    for strategy, status in (("stop", "failed"), ("continue", "completed"), ("skip", "completed")):
        flow, nodes = downstream_flow(
            make_flow, explode, ErrorHandler(strategy), execution_strategy="concurrent"
        )
        job = flow.execute("src")
        assert job.status == status, strategy
        assert job.failures[0]["routine_id"] == "bad"
    flow, nodes = downstream_flow(
        make_flow,
        fail_times(1),
        ErrorHandler("retry", 1, 0.01),
        execution_strategy="concurrent",
    )
    job = flow.execute("src")
    assert job.status == "completed"
    assert nodes["after"].calls == [{"v": 1}]


def test_stop_in_concurrent_mode_records_every_dropped_message(make_flow, gates, sync):
    entered, release = gates(), gates()

    def other(node, data):
        if data.get("v") == 0:
            entered.set()
            assert release.wait(10)

    def bad(node, data):
        assert entered.wait(10)
        raise ValueError("boom")

    flow = make_flow(execution_strategy="concurrent")
    flow.add_routine(
        Node(lambda n, d: ([n.emit("out", v=i) for i in range(5)], n.emit("side"))), "src"
    )
    flow.add_routine(Node(other), "other")
    flow.add_routine(Node(bad), "bad")
    flow.connect("src", "out", "other", "in")
    flow.connect("src", "side", "bad", "in")
    job = flow.execute("src")
    assert job.status == "failed"
    release.set()
    # A job through the same actor: the old batch has been handled (or returned) by then.
    assert flow.execute("other", {"v": 99}).status == "completed"
    sync(flow)
    ran = len([c for c in flow.get_routine("other").calls if c["v"] != 99])
    assert ran == 1
    assert job.dropped_messages == 4


# ---------------------------------------------------------------- timeouts
def test_job_timeout_fails_the_job_naming_the_timeout(make_flow, gates):
    release = gates()
    returned = []
    flow = make_flow()
    after = Node()
    flow.add_routine(
        Node(lambda n, d: (release.wait(10), returned.append(1), n.emit("out"))), "slow"
    )
    flow.add_routine(after, "after")
    flow.connect("slow", "out", "after", "in")
    job = flow.execute("slow", timeout=0.2)  # wait=True returns when the job fails
    assert job.status == "failed"
    assert returned == []  # execute returned at the timeout, with the step still held
    assert "timeout" in job.error.lower() and "0.2" in job.error
    assert job.failures[-1]["exception_type"] == "JobTimeoutError"
    release.set()
    assert flow.execute("after").status == "completed"
    assert job.status == "failed"
    assert len(after.calls) == 1  # only the second job's; the timed-out job's emit was dropped


def test_flow_execution_timeout_is_the_default(make_flow, gates):
    release = gates()
    flow = make_flow(execution_timeout=0.2)
    flow.add_routine(Node(lambda n, d: release.wait(10)), "slow")
    job = flow.execute("slow")
    assert job.status == "failed"
    assert "0.2" in job.error and "timeout" in job.error.lower()


def test_a_job_that_finishes_in_time_stays_completed(make_flow, gates):
    release = gates()
    flow = make_flow()
    flow.add_routine(Node(), "fast")
    flow.add_routine(Node(lambda n, d: release.wait(10)), "slow")
    fast = flow.execute("fast", timeout=0.1)
    assert fast.status == "completed"
    # Use a later timeout as the clock: when it fires, the fast job's has passed.
    slow = flow.execute("slow", timeout=0.3)
    assert slow.status == "failed"
    assert fast.status == "completed" and fast.error is None


# ---------------------------------------------------------------- more failure cases
def test_system_exit_in_a_handler_fails_the_job_not_the_flow(make_flow):
    def exit_three(node, data):
        raise SystemExit(3)

    flow, nodes = downstream_flow(make_flow, exit_three)
    job = flow.execute("src")
    assert job.status == "failed"
    assert job.failures[0]["exception_type"] == "SystemExit"
    # The routine's actor survived: the next job runs through it.
    nodes["bad"].fn = lambda n, d: n.emit("out", **d)
    job2 = flow.execute("src", {"v": 2})
    assert job2.status == "completed"
    assert nodes["after"].calls == [{"v": 2}]


def test_a_retry_that_emits_more_routes_only_the_new_emits(make_flow):
    attempts = []

    def fn(node, data):
        attempts.append(1)
        node.emit("out", x="first")
        if len(attempts) == 1:
            raise ConnectionError("transient")
        node.emit("out", x="second")

    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    flow, nodes = downstream_flow(make_flow, fn, handler)
    job = flow.execute("src")
    assert job.status == "completed"
    assert nodes["after"].calls == [{"x": "first"}, {"x": "second"}]


def test_job_timeout_in_concurrent_mode(make_flow, gates):
    release = gates()
    flow = make_flow(execution_strategy="concurrent")
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(3)]), "src")
    flow.add_routine(Node(lambda n, d: release.wait(10)), "slow")
    flow.connect("src", "out", "slow", "in")
    job = flow.execute("src", timeout=0.2)
    assert job.status == "failed"
    assert "0.2" in job.error
    release.set()
    assert flow.execute("slow", {"v": "next"}).status == "completed"


def test_execute_timeout_overrides_the_flow_default(make_flow, gates):
    release = gates()
    flow = make_flow(execution_timeout=0.1)
    flow.add_routine(Node(lambda n, d: release.wait(10)), "held")
    flow.add_routine(Node(lambda n, d: release.wait(10)), "clock")
    long_job = flow.execute("held", timeout=30, wait=False)
    clock = flow.execute("clock")  # the flow's 0.1 s default: fails first
    assert clock.status == "failed" and "0.1" in clock.error
    assert long_job.status == "running"
    release.set()
    assert long_job.wait(10) and long_job.status == "completed"
