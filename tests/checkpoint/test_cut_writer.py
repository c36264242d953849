"""A cut is written off the supervisor's thread while jobs run, in order, and whoever
waits for it wakes once it is written."""

from __future__ import annotations

import threading

from helpers import wait_until

from routilux import Flow, Routine
from routilux.checkpoint import SQLiteStore

KEY = b"cut-writer-test-key-0123456789ab"


class SlowStore(SQLiteStore):
    """Holds each checkpoint write until ``gate`` is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.saved = 0

    def save(self, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(30), "the test never let the write through"
        super().save(*args, **kwargs)
        self.saved += 1


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


def test_jobs_move_on_while_a_cut_is_written_and_its_waiter_wakes_after(tmp_path):
    store = SlowStore(tmp_path / "ck.db", key=KEY)
    store.gate.set()
    flow = Flow("slow-store", checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Loop(), "loop")
    flow.connect("loop", "out", "loop", "again")
    loop = flow.routines["loop"]
    try:
        flow.recover()
        job = flow.execute("loop", {"left": 100_000}, wait=False)
        assert wait_until(lambda: loop.steps > 10, 30)
        store.gate.clear()
        store.entered.clear()
        done = threading.Event()
        threading.Thread(target=lambda: (flow.checkpoint(timeout=60), done.set())).start()
        assert store.entered.wait(30), "the checkpoint was never written"
        at_write = loop.steps
        # The store write is stuck, yet the job keeps running: the supervisor let
        # dispatch go on once the cut was pickled.
        assert wait_until(lambda: loop.steps > at_write + 50, 30)
        assert not done.is_set(), "checkpoint() returned before its cut was written"
        store.gate.set()
        assert done.wait(30)
        assert store.saved >= 1
    finally:
        store.gate.set()
        flow.cancel(job)
        flow.shutdown()
        store.close()
