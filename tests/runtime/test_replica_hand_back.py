"""What a thread replica hands back unrun, driven on the test's thread (no actor
thread, no supervisor): the replica's messages land in a plain mailbox. The rules:
no step starts while a cut is waiting (rule *cuts never wait on dispatch*); a
sequential job's run goes back when one of its steps fails, before the failure."""

from __future__ import annotations

import threading

import pytest
from helpers import Node

from routilux import ErrorHandler, ErrorStrategy, Flow
from routilux.checkpoint import SQLiteStore
from routilux.runtime.backpressure import Gate
from routilux.runtime.ledger import ActorHandle, RuntimeEnv
from routilux.runtime.mailbox import Mailbox
from routilux.runtime.messages import DONE, DONE_BATCH, RETURNED, Delivery
from routilux.runtime.thread_actor import ThreadRoutineActor


class Job:
    """The two fields a replica reads of a job."""

    def __init__(self, serial: bool) -> None:
        self.running = True
        self.serial = serial


class Ring:
    def tell(self, message):
        pass


def replica(fn, limit=10_000):
    """A replica of a Node running ``fn`` whose messages go to ``mailbox.items``
    (``limit``: the flow's max_queued_per_routine)."""
    mailbox = Mailbox()
    mailbox.ref = Ring()
    env = RuntimeEnv(mailbox, Gate(limit, mailbox.__len__), None)
    handle = ActorHandle("w", 0)
    actor = ThreadRoutineActor(handle, Node(fn), "w", env, Mailbox())
    return actor, env, mailbox.items


def batch(job, count):
    deliveries = []
    for v in range(count):
        delivery = Delivery(v, job, "w", "in", {"v": v})
        delivery.call_data = delivery.data
        deliveries.append(delivery)
    return deliveries


def kinds(items):
    return [item[0] for item in items]


@pytest.mark.parametrize("serial", [True, False])
def test_no_step_starts_while_a_cut_waits(serial):
    ran = []
    actor, env, items = replica(lambda node, data: ran.append(data["v"]))
    env.holding = True
    deliveries = batch(Job(serial), 5)
    actor._run(list(deliveries))
    assert ran == []
    assert kinds(items) == [RETURNED]
    assert items[0][2] == deliveries


def test_a_cut_requested_during_a_batch_stops_it_after_the_running_step():
    ran = []
    env_ref = []

    def fn(node, data):
        ran.append(data["v"])
        if data["v"] == 1:
            env_ref[0].holding = True  # the supervisor asks for a cut meanwhile

    actor, env, items = replica(fn)
    env_ref.append(env)
    deliveries = batch(Job(False), 6)
    actor._run(list(deliveries))
    assert ran == [0, 1]
    # the steps that ended are reported first, then the rest goes back unrun
    assert kinds(items) == [DONE_BATCH, RETURNED]
    assert items[0][2] == deliveries[:2]
    assert items[1][2] == deliveries[2:]


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("limit", [10_000, 4])
def test_a_batchs_steps_are_reported_together(limit, full):
    """Tight queues or a full routine elsewhere: the successful steps of a batch still
    go in one report (a step waiting in emit() reports those before it, tested in
    test_batch_reports.py)."""
    actor, env, items = replica(lambda node, data: None, limit=limit)
    if full:
        env.gate.mark_full("elsewhere")
    actor._run(batch(Job(False), 6))
    # one report (two if the machine paused this thread past REPORT_EVERY)
    assert set(kinds(items)) == {DONE_BATCH} and len(items) <= 2
    assert sum(len(item[2]) for item in items) == 6


@pytest.mark.parametrize("serial", [True, False])
def test_a_failed_step_of_a_sequential_run_hands_the_rest_back_first(serial):
    ran = []

    def fn(node, data):
        ran.append(data["v"])
        if data["v"] == 2:
            raise ValueError("no")

    actor, _env, items = replica(fn)
    deliveries = batch(Job(serial), 6)
    actor._run(list(deliveries))
    if serial:  # nothing of a sequential job may run before the failure is handled
        assert ran == [0, 1, 2]
        assert kinds(items) == [DONE_BATCH, RETURNED, DONE]
        assert items[1][2] == deliveries[3:]
    else:  # concurrent: the batch goes on (the error strategy applies meanwhile)
        assert ran == [0, 1, 2, 3, 4, 5]
        assert kinds(items) == [DONE_BATCH, DONE, DONE_BATCH]
        assert items[2][2] == deliveries[3:]
    assert items[0][2] == deliveries[:2]
    done = next(item for item in items if item[0] is DONE)
    assert done[2] is deliveries[2] and done[3].type_name == "ValueError"


@pytest.mark.parametrize("strategy", ["concurrent", "sequential"])
def test_cuts_during_batches_lose_and_repeat_nothing(tmp_path, strategy):
    """Checkpoints taken while replicas hold batches: every message is handled once
    and the job's records count each once (the batches handed back are requeued in
    their order)."""
    flow = Flow(
        execution_strategy=strategy,
        checkpoint_store=SQLiteStore(tmp_path / "s.db"),
        checkpoint_interval=0.01,
    )
    cuts = threading.Event()
    flow.subscribe(lambda event: cuts.set(), kinds=["checkpoint.written"])
    try:
        w, sink = Node(lambda n, d: n.emit("out", v=d["v"])), Node()
        w.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))
        flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(3000)]), "src")
        flow.add_routine(w, "w")
        flow.add_routine(sink, "sink")
        flow.connect("src", "out", "w", "in")
        flow.connect("w", "out", "sink", "in")
        job = flow.execute("src", timeout=60)
        assert job.status == "completed", job.error
        assert cuts.is_set()
        assert [c["v"] for c in w.calls] == list(range(3000))
        assert [c["v"] for c in sink.calls] == list(range(3000))
        assert job.routine_states["w"]["processed"] == 3000
        assert job.routine_states["sink"]["processed"] == 3000
    finally:
        flow.shutdown()
