"""A cut is written off the supervisor's thread while jobs run, in order, and whoever
waits for it wakes once it is written."""

from __future__ import annotations

import pickle
import threading
from contextlib import contextmanager

from helpers import wait_until

from routilux import Flow, Routine
from routilux.checkpoint import SQLiteStore
from routilux.checkpoint.format import decode
from routilux.runtime import commands

KEY = b"cut-writer-test-key-0123456789ab"


class SlowStore(SQLiteStore):
    """Holds each checkpoint write until ``gate`` is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.saved = 0
        self.steps: list[int] = []  # the loop's steps in each checkpoint saved

    def save(self, flow_id, blob, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(30), "the test never let the write through"
        super().save(flow_id, blob, *args, **kwargs)
        self.saved += 1
        routines = decode(blob, self.key, flow_id)[1]["routines"]
        self.steps.append(pickle.loads(routines["loop"]["state"])["steps"])


class Loop(Routine):
    """Sends itself ``n`` messages, one per step."""

    def __init__(self):
        super().__init__()
        self.steps = 0
        self.define_slot("trigger", handler=self.step)
        self.define_slot("again", handler=self.step)
        self.define_event("out", ["left"])

    def step(self, left=0):
        self.steps += 1
        if left > 0:
            self.emit("out", left=left - 1)


@contextmanager
def a_write_held(tmp_path, flow_id: str):
    """A looping job runs; a ``checkpoint()`` on another thread is held in the store
    write. Yields ``(flow, store, loop, written)``; ``written`` is set when that
    ``checkpoint()`` returns."""
    store = SlowStore(tmp_path / "ck.db", key=KEY)
    store.gate.set()
    flow = Flow(flow_id, checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Loop(), "loop")
    flow.connect("loop", "out", "loop", "again")
    loop = flow.routines["loop"]
    job = None
    try:
        flow.recover()
        job = flow.execute("loop", {"left": 100_000}, wait=False)
        assert wait_until(lambda: loop.steps > 10, 30)
        store.gate.clear()
        store.entered.clear()
        written = threading.Event()
        threading.Thread(target=lambda: (flow.checkpoint(timeout=60), written.set())).start()
        assert store.entered.wait(30), "the checkpoint was never written"
        yield flow, store, loop, written
    finally:
        store.gate.set()
        if job is not None:
            flow.cancel(job)
        flow.shutdown()
        store.close()


def test_jobs_move_on_while_a_cut_is_written_and_its_waiter_wakes_after(tmp_path):
    with a_write_held(tmp_path, "slow-store") as (_flow, store, loop, done):
        at_write = loop.steps
        # The store write is stuck, yet the job keeps running: the supervisor let
        # dispatch go on once the cut was pickled.
        assert wait_until(lambda: loop.steps > at_write + 50, 30)
        assert not done.is_set(), "checkpoint() returned before its cut was written"
        store.gate.set()
        assert done.wait(30)
        assert store.saved >= 1


def test_a_cut_asked_for_while_one_is_written_is_taken_after_it(tmp_path):
    """One cut at a time in the writer while jobs run (memory stays bounded with a
    slow store); the one asked for meanwhile is taken once the first is written."""
    with a_write_held(tmp_path, "slow-store-2") as (flow, store, loop, first):
        # Ask for a second cut; ask() returns once the supervisor has taken the request.
        second = flow._supervisor.ask(commands.TakeCheckpoint())
        asked_at = loop.steps
        assert wait_until(lambda: loop.steps > asked_at + 50, 30), "dispatch was held"
        store.gate.set()
        assert first.wait(30) and second.wait(30) and second.error is None
        assert len(store.steps) >= 2
        assert store.steps[1] > asked_at + 50, (asked_at, store.steps)  # taken after
