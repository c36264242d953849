"""Sequential runs: the head of a job's queue that goes to one routine is handed to
its replica in one go. The order must stay exactly the one-at-a-time order (rule
*ordering*: breadth-first, per-job FIFO, fan-out in connection order), and a step
that fails, pauses or waits in emit() must hand the rest of its run back."""

from __future__ import annotations

import threading
from collections import deque

from helpers import Node as SharedNode
from helpers import src_w_sink, wait_until

from routilux import ErrorHandler, ErrorStrategy

# The graph of the model tests: name -> (what it emits for a value, as (event, value)
# pairs), and the connections in the order they are made.
#   src -> a (a's messages form one long run at the head of the queue); a -> b, c
#   (fan-out, in that order); b -> b (a loop with a stop condition) and b -> c;
#   c -> d -> c (a two-routine cycle with a stop condition).
BEHAVIOUR = {
    "src": lambda v: [("out", i) for i in range(v)],
    "a": lambda v: [("out", v)],
    "b": lambda v: ([("loop", v + 1000)] if v % 3 == 0 and v < 1000 else []) + [("out", v)],
    "c": lambda v: [("out", v + 1)] if v % 5 == 0 else [],
    "d": lambda v: [("out", v + 10_000)] if v < 10_000 else [],
}
CONNECTIONS = [
    ("src", "out", "a"),
    ("a", "out", "b"),
    ("a", "out", "c"),
    ("b", "loop", "b"),
    ("b", "out", "c"),
    ("c", "out", "d"),
    ("d", "out", "c"),
]


def model_order(n: int) -> list[tuple[str, int]]:
    """The one-at-a-time order: one FIFO queue, each emit queued per connection."""
    log, queue = [], deque([("src", n)])
    while queue:
        name, v = queue.popleft()
        log.append((name, v))
        for event, value in BEHAVIOUR[name](v):
            queue.extend((dst, value) for src, ev, dst in CONNECTIONS if (src, ev) == (name, event))
    return log


class Node(SharedNode):
    def __init__(self, fn=None):
        super().__init__(fn, events=("out", "loop"))


def model_flow(make_flow, log, on_step=None, **flow_kwargs):
    flow = make_flow(**flow_kwargs)

    def behave(name):
        def fn(node, data):
            v = data["v"]
            log.append((name, v))
            if on_step is not None:
                on_step(name, v)
            for event, value in BEHAVIOUR[name](v):
                node.emit(event, v=value)

        return fn

    for name in BEHAVIOUR:
        flow.add_routine(Node(behave(name)), name)
    for src, event, dst in CONNECTIONS:
        flow.connect(src, event, dst, "in")
    return flow


def test_runs_keep_the_exact_one_at_a_time_order_across_fan_out_and_cycles(make_flow):
    log: list = []
    most_in_flight = []
    flow = None

    def watch(name, v):
        if name == "a" and v == 0:  # the first of a's 150 deliveries
            most_in_flight.append(flow.metrics()["a"]["in_flight"])

    flow = model_flow(make_flow, log, on_step=watch)
    job = flow.execute("src", {"v": 150}, timeout=60)
    assert job.status == "completed", job.error
    expected = model_order(150)
    assert len(expected) > 800
    assert log == expected
    # Not vacuous: a's deliveries went to its replica as runs, not one by one.
    assert most_in_flight and most_in_flight[0] > 1


def test_several_sequential_jobs_each_keep_their_own_order(make_flow):
    logs: dict[int, list] = {0: [], 1: [], 2: []}
    lock = threading.Lock()
    flow = make_flow()

    def behave(name):
        def fn(node, data):
            v, tag = data["v"], data["tag"]
            with lock:
                logs[tag].append((name, v))
            for event, value in BEHAVIOUR[name](v):
                node.emit(event, v=value, tag=tag)

        return fn

    for name in BEHAVIOUR:
        flow.add_routine(Node(behave(name)), name)
    for src, event, dst in CONNECTIONS:
        flow.connect(src, event, dst, "in")
    jobs = [flow.execute("src", {"v": 40 + 10 * t, "tag": t}, wait=False) for t in logs]
    assert all(job.wait(60) for job in jobs)
    assert [job.status for job in jobs] == ["completed"] * 3
    for t, log in logs.items():
        assert log == model_order(40 + 10 * t)


def chain_with(make_flow, fn, count=10, **flow_kwargs):
    """src emits ``count`` messages to w (one run); w runs ``fn`` and emits to sink."""
    return src_w_sink(make_flow, count, fn, **flow_kwargs)


def fail_at(k):
    def fn(node, data):
        if data["v"] == k:
            raise RuntimeError(f"fails at {k}")
        node.emit("out", v=data["v"])

    return fn


def test_a_step_that_stops_its_job_runs_nothing_after_it(make_flow):
    flow, w, sink = chain_with(make_flow, fail_at(3))
    job = flow.execute("src", timeout=30)
    assert job.status == "failed"
    assert [c["v"] for c in w.calls] == [0, 1, 2, 3]
    assert sink.calls == []  # sink's deliveries were queued behind w's run
    # The rest of the run (4..9) and the sink deliveries of 0..2 were dropped.
    assert job.dropped_messages == 6 + 3
    dropped = job.failures[-1]["dropped"]
    assert [(d["routine_id"], d["data"]["v"]) for d in dropped] == [
        ("w", v) for v in range(4, 10)
    ] + [("sink", v) for v in range(3)]


def test_a_step_error_the_job_continues_after_keeps_the_order(make_flow):
    flow, w, sink = chain_with(make_flow, fail_at(3))
    w.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))
    job = flow.execute("src", timeout=30)
    assert job.status == "completed", job.error
    assert [c["v"] for c in w.calls] == list(range(10))
    assert [c["v"] for c in sink.calls] == [v for v in range(10) if v != 3]
    assert flow.metrics()["w"]["processed"] == 9


def test_a_retried_step_goes_on_after_the_rest_of_its_run(make_flow):
    attempts: list[int] = []

    def flaky(node, data):
        if data["v"] == 3 and not attempts:
            attempts.append(1)
            raise RuntimeError("once")
        node.emit("out", v=data["v"])

    flow, w, sink = chain_with(make_flow, flaky)
    w.set_error_handler(ErrorHandler(strategy=ErrorStrategy.RETRY, retry_delay=0.01))
    job = flow.execute("src", timeout=30)
    assert job.status == "completed", job.error
    assert sorted(c["v"] for c in sink.calls) == list(range(10))
    assert [c["v"] for c in w.calls if c["v"] != 3] == [v for v in range(10) if v != 3]
    assert [c["v"] for c in w.calls].count(3) == 2


def test_a_pause_inside_a_run_hands_the_rest_back_in_order(make_flow):
    paused = threading.Event()
    flow = None

    def fn(node, data):
        if data["v"] == 2 and not paused.is_set():
            paused.set()
            flow.pause(job_ref[0], reason="mid-run")  # from a handler: returns at once
        node.emit("out", v=data["v"])

    job_ref: list = []
    flow, w, sink = chain_with(make_flow, fn)
    job = flow.execute("src", wait=False)
    job_ref.append(job)
    assert job.wait(30) and job.status == "paused"
    ran = [c["v"] for c in w.calls]
    assert ran == list(range(len(ran))) and 3 <= len(ran) < 10
    pending = [(t["routine_id"], t["data"]["v"]) for t in job.pending_tasks]
    assert pending[: 10 - len(ran)] == [("w", v) for v in range(len(ran), 10)]
    flow.resume(job)
    assert job.wait(30) and job.status == "completed", job.error
    assert [c["v"] for c in w.calls] == list(range(10))
    assert [c["v"] for c in sink.calls] == list(range(10))


LIMIT = 8
BOUND = 2 * LIMIT + 2  # as in test_backpressure: the limit plus emits on their way


def test_a_step_blocked_in_emit_hands_the_rest_back_and_the_job_completes(make_flow):
    """w's run of 8 emits 3 messages per step into sink, whose queue fills after a
    few steps: the blocked step's run must not keep the job's one slot, or nothing
    could drain sink (a deadlock); the bound on sink's queue holds throughout."""
    samples: list[int] = []
    most_in_flight: list[int] = []
    flow = None

    def relay(node, data):
        if data["v"] == 0:
            most_in_flight.append(flow.metrics()["w"]["in_flight"])
        for k in range(3):
            node.emit("out", v=data["v"], k=k)

    def consume(node, data):
        samples.append(flow.metrics()["sink"]["queued"])

    flow, w, sink = chain_with(make_flow, relay, count=LIMIT, max_queued_per_routine=LIMIT)
    sink.fn = consume
    job = flow.execute("src", wait=False)
    if not job.wait(20):
        flow.cancel(job, reason="test: deadlocked")
        wait_until(lambda: all(m["in_flight"] == 0 for m in flow.metrics().values()), interval=0)
    assert job.status == "completed", job.error
    assert most_in_flight == [LIMIT]  # w's messages went as one run
    assert [c["v"] for c in w.calls] == list(range(LIMIT))
    assert sorted((c["v"], c["k"]) for c in sink.calls) == [
        (v, k) for v in range(LIMIT) for k in range(3)
    ]
    assert max(samples) <= BOUND
    assert job.dropped_messages == 0
