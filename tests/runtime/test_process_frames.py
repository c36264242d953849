"""How a routine process's results travel: frames, step ends, failures among them."""

from __future__ import annotations

import threading

import pytest
from helpers import Sink, Source

from routilux import ErrorHandler, ErrorStrategy, Routine, SerializationError
from routilux.runtime.wire import Packer, pack_done, unpack


class FailsEvery(Routine):
    """Echoes ``x * 10``; raises on every ``every``-th message (by ``x``)."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        if x % self.every == self.every - 1:
            raise ValueError(f"no {x}")
        self.emit("out", x=x * 10)


def test_a_batch_mixes_pickles_and_step_end_records_in_order():
    packer = Packer()
    packer.add(("emit", 1, 0, "out", {"x": 1}), "an emit")
    packer.add_bytes(pack_done(2**40 + 3, 1.5, 2.25))
    packer.add(("done", 7, ("ValueError", "no", "tb", None), 1.0, 2.0), "a failed end")
    assert unpack(packer.take()) == [
        ("emit", 1, 0, "out", {"x": 1}),
        ("done", 2**40 + 3, None, 1.5, 2.25),
        ("done", 7, ("ValueError", "no", "tb", None), 1.0, 2.0),
    ]


def test_an_error_label_is_built_only_when_something_cannot_be_pickled():
    built = []

    def label() -> str:
        built.append(True)
        return "data for routine 'w' slot 'inp':"

    packer = Packer()
    packer.add(("step", 1, "inp", {"x": 1}, "job"), label)
    assert built == []
    with pytest.raises(SerializationError, match=r"data for routine 'w' slot 'inp'.*lock"):
        packer.add(("step", 2, "inp", {"lock": threading.Lock()}, "job"), label)
    assert built == [True]
    assert packer.count == 1  # the bad message left the batch as it was


@pytest.mark.parametrize("strategy", ["concurrent", "sequential"])
def test_failures_among_successes_of_one_frame_keep_every_step_in_order(make_flow, strategy):
    """Many tiny steps share a frame; the successes go back as one report, each
    failure on its own, and every count and message comes out as one by one."""
    flow = make_flow(execution_strategy=strategy, record_history=False)
    flow.add_routine(Source(), "src")
    worker = FailsEvery(7)
    worker.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(worker, "work", execution="process")
    sink = Sink("inp")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    n = 300
    job = flow.execute("src", {"n": n}, timeout=60)
    assert job.status == "completed", job.error
    expected = [x * 10 for x in range(n) if x % 7 != 6]
    assert sink.values("x") == expected
    record = job.routine_states["work"]
    assert record["processed"] == len(expected)
    assert sorted(int(f["message"].split()[1]) for f in job.failures) == [
        x for x in range(n) if x % 7 == 6
    ]
    assert flow.metrics()["work"]["processed"] == len(expected)
