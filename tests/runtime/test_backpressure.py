"""Backpressure: the supervisor holds a bounded number of messages per routine;
emitting steps wait for room; nothing is dropped; loops and cycles do not deadlock."""

from __future__ import annotations

import threading

import pytest
from helpers import Node as SharedNode
from helpers import wait_until


class Node(SharedNode):
    """The shared test routine, with the events this module uses."""

    def __init__(self, fn=None):
        super().__init__(fn, events=("out", "loop"))


LIMIT = 4
# What the supervisor may hold for one routine: the limit, plus emits that were
# already on their way (in its inbox) when the routine's queue filled up.
BOUND = 2 * LIMIT + 2


class Producer(Node):
    def __init__(self, count):
        super().__init__(self._produce)
        self.count = count
        self.emitted = 0

    @staticmethod
    def _produce(node, data):
        for i in range(node.count):
            node.emit("out", i=i)
            node.emitted += 1


def producer_consumer(make_flow, count, consumer_fn, **flow_kwargs):
    flow = make_flow(max_queued_per_routine=LIMIT, **flow_kwargs)
    producer, consumer = Producer(count), Node(consumer_fn)
    flow.add_routine(producer, "producer")
    flow.add_routine(consumer, "consumer")
    flow.connect("producer", "out", "consumer", "in")
    return flow, producer, consumer


def run_or_cancel(flow, job, timeout):
    """Wait for ``job``; if it did not settle, cancel it and let its steps finish, so
    that the flow's shutdown at teardown does not meet a step blocked in ``emit``."""
    settled = job.wait(timeout)
    if not settled:
        flow.cancel(job, reason="test: deadlocked")
        wait_until(lambda: all(m["in_flight"] == 0 for m in flow.metrics().values()), interval=0)
    return settled


def test_sequential_slow_consumer_bounded_queue_nothing_dropped(make_flow):
    samples: list[int] = []

    def consume(node, data):
        # Every consumer step asks the supervisor how much it holds for us.
        samples.append(flow.metrics()["consumer"]["queued"])

    flow, producer, consumer = producer_consumer(make_flow, 500, consume)
    job = flow.execute("producer")
    assert job.status == "completed"
    assert producer.emitted == 500
    assert [c["i"] for c in consumer.calls] == list(range(500))  # all, in order
    assert max(samples) <= BOUND, max(samples)
    assert max(samples) >= LIMIT - 1  # the consumer really was behind


def test_concurrent_blocked_consumer_stalls_the_producer(make_flow, gates):
    entered, release = gates(), gates()
    samples: list[int] = []

    def consume(node, data):
        if data["i"] == 0:
            entered.set()
            assert release.wait(10)
        samples.append(flow.metrics()["consumer"]["queued"])

    count = 2000
    flow, producer, consumer = producer_consumer(
        make_flow, count, consume, execution_strategy="concurrent"
    )
    job = flow.execute("producer", wait=False)
    assert entered.wait(5)
    # While the consumer is stuck the producer can only get so far ahead.
    for _ in range(200):
        samples.append(flow.metrics()["consumer"]["queued"])
    assert producer.emitted < count
    assert job.status == "running"
    release.set()
    assert job.wait(20) and job.status == "completed"
    assert producer.emitted == count
    assert [c["i"] for c in consumer.calls] == list(range(count))
    assert max(samples) <= BOUND, max(samples)


def test_many_jobs_through_a_small_queue_lose_nothing(make_flow):
    flow, _producer, consumer = producer_consumer(
        make_flow, 300, None, execution_strategy="concurrent", max_workers=3
    )
    jobs = [flow.execute("producer", wait=False) for _ in range(5)]
    assert all(job.wait(20) for job in jobs)
    assert all(job.status == "completed" for job in jobs)
    assert len(consumer.calls) == 5 * 300
    assert sorted(c["i"] for c in consumer.calls) == sorted(list(range(300)) * 5)
    assert all(job.dropped_messages == 0 for job in jobs)
    metrics = flow.metrics()
    assert metrics["consumer"]["processed"] == 1500 and metrics["consumer"]["queued"] == 0


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_self_loop_with_a_full_queue_does_not_deadlock(make_flow, strategy):
    def fn(node, data):
        if "n" not in data:
            for i in range(50):
                node.emit("loop", n=i)

    flow = make_flow(max_queued_per_routine=1, execution_strategy=strategy)
    node = Node(fn)
    flow.add_routine(node, "self")
    flow.connect("self", "loop", "self", "in")
    job = flow.execute("self", wait=False)
    assert run_or_cancel(flow, job, 10)
    assert job.status == "completed"
    assert sorted(c["n"] for c in node.calls[1:]) == list(range(50))


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_ring_cycle_with_a_stop_condition_under_backpressure(make_flow, strategy):
    def a(node, data):
        n = data.get("n", 0)
        if n < 300:
            node.emit("out", n=n + 1)

    flow = make_flow(max_queued_per_routine=1, execution_strategy=strategy)
    ra, rb = Node(a), Node(lambda node, d: node.emit("out", n=d["n"]))
    flow.add_routine(ra, "a")
    flow.add_routine(rb, "b")
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "a", "in")
    job = flow.execute("a", wait=False)
    assert run_or_cancel(flow, job, 10)
    assert job.status == "completed"
    assert [c["n"] for c in rb.calls] == list(range(1, 301))


def fan_cycle(make_flow, strategy):
    """a emits 20 messages to b in one step; b sends each back to a."""

    def a(node, data):
        if "n" not in data:
            for i in range(20):
                node.emit("out", n=i)

    flow = make_flow(max_queued_per_routine=2, execution_strategy=strategy)
    ra, rb = Node(a), Node(lambda node, d: node.emit("out", n=d["n"]))
    flow.add_routine(ra, "a")
    flow.add_routine(rb, "b")
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "a", "in")
    return flow, ra, rb


def test_fan_out_cycle_does_not_deadlock_concurrent(make_flow):
    flow, ra, rb = fan_cycle(make_flow, "concurrent")
    job = flow.execute("a", wait=False)
    assert run_or_cancel(flow, job, 10)
    assert job.status == "completed"
    assert sorted(c["n"] for c in rb.calls) == list(range(20))
    assert sorted(c["n"] for c in ra.calls[1:]) == list(range(20))


def test_fan_out_cycle_does_not_deadlock_sequential(make_flow):
    flow, _ra, rb = fan_cycle(make_flow, "sequential")
    job = flow.execute("a", wait=False)
    assert run_or_cancel(flow, job, 2)
    assert job.status == "completed"
    assert sorted(c["n"] for c in rb.calls) == list(range(20))


def test_self_loop_then_full_target_does_not_deadlock_sequential(make_flow):
    def fn(node, data):
        if "n" in data:
            return
        node.emit("loop", n=0)
        for i in range(6):
            node.emit("out", i=i)

    flow = make_flow(max_queued_per_routine=2)
    src, sink = Node(fn), Node()
    flow.add_routine(src, "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "loop", "src", "in")
    flow.connect("src", "out", "sink", "in")
    job = flow.execute("src", wait=False)
    assert run_or_cancel(flow, job, 2)
    assert job.status == "completed"
    assert [c["i"] for c in sink.calls] == list(range(6))


def test_backpressure_with_a_single_worker_does_not_deadlock(make_flow):
    flow, _producer, consumer = producer_consumer(
        make_flow, 50, None, execution_strategy="concurrent", max_workers=1
    )
    job = flow.execute("producer", wait=False)
    assert run_or_cancel(flow, job, 2)
    assert job.status == "completed"
    assert len(consumer.calls) == 50


def test_emit_blocks_only_while_the_target_is_full(make_flow, gates):
    """A producer feeding two consumers: the blocked one stalls it, then it goes on."""
    entered, release = gates(), gates()
    progress = threading.Event()

    def slow(node, data):
        if data["i"] == 0:
            entered.set()
            assert release.wait(10)

    flow = make_flow(max_queued_per_routine=LIMIT, execution_strategy="concurrent")
    producer = Producer(200)
    fast, slow_node = Node(lambda n, d: progress.set()), Node(slow)
    flow.add_routine(producer, "producer")
    flow.add_routine(fast, "fast")
    flow.add_routine(slow_node, "slow")
    flow.connect("producer", "out", "fast", "in")
    flow.connect("producer", "out", "slow", "in")
    job = flow.execute("producer", wait=False)
    assert entered.wait(5) and progress.wait(5)
    for _ in range(50):
        assert flow.metrics()["slow"]["queued"] <= BOUND
    assert producer.emitted < 200
    release.set()
    assert job.wait(20) and job.status == "completed"
    assert len(fast.calls) == len(slow_node.calls) == 200


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_relay_between_a_fast_producer_and_a_slow_consumer_stays_bounded(make_flow, strategy):
    """Regression: a relay whose only replica waits in emit() almost all the time was
    never marked full, so the producer filled its queue without bound."""
    samples: list[int] = []

    def relay(node, data):
        node.emit("out", **data)

    def consume(node, data):
        samples.append(flow.metrics()["relay"]["queued"])

    flow = make_flow(max_queued_per_routine=LIMIT, execution_strategy=strategy)
    producer = Producer(300)
    flow.add_routine(producer, "producer")
    flow.add_routine(Node(relay), "relay")
    consumer = Node(consume)
    flow.add_routine(consumer, "consumer")
    flow.connect("producer", "out", "relay", "in")
    flow.connect("relay", "out", "consumer", "in")
    job = flow.execute("producer", timeout=60)
    assert job.status == "completed", job.error
    assert [c["i"] for c in consumer.calls] == list(range(300))
    assert max(samples) <= BOUND, f"the relay's queue reached {max(samples)} (bound {BOUND})"
