from __future__ import annotations

import cloudpickle
import pytest
from helpers import Sink

from routilux.builtin_routines import Batcher
from routilux.exceptions import ConfigurationError


def manual_clock():
    """A clock the test moves by hand: ``clock.now[0] = t``."""
    now = [0.0]

    def clock() -> float:
        return now[0]

    clock.now = now  # type: ignore[attr-defined]
    return clock


def ticking_clock(step: float):
    """Each call is ``step`` seconds after the previous one (picklable by value)."""
    t = [0.0]

    def clock() -> float:
        t[0] += step
        return t[0]

    return clock


def send(batcher, *items, key="item"):
    for item in items:
        batcher.get_slot("input").receive({key: item})


def test_batches_by_size(collect):
    batcher = Batcher(batch_size=2, input_key="item")
    got = collect(batcher)["output"]
    send(batcher, 1, 2, 3, 4, 5)
    assert got == [
        {"batch": [1, 2], "count": 2, "reason": "size"},
        {"batch": [3, 4], "count": 2, "reason": "size"},
    ]
    assert batcher.pending == [5]
    batcher.get_slot("flush").receive({})
    assert got[-1] == {"batch": [5], "count": 1, "reason": "flush"}
    assert batcher.pending == []


def test_flush_with_nothing_pending_emits_nothing(collect):
    batcher = Batcher(batch_size=3)
    got = collect(batcher)["output"]
    batcher.get_slot("flush").receive({})
    assert got == []


def test_whole_messages_are_the_items_by_default(collect):
    batcher = Batcher(batch_size=2)
    got = collect(batcher)["output"]
    batcher.get_slot("input").receive({"a": 1})
    batcher.get_slot("input").receive({"b": 2, "c": 3})
    assert got == [{"batch": [{"a": 1}, {"b": 2, "c": 3}], "count": 2, "reason": "size"}]


def test_batches_by_age_when_the_next_item_arrives(collect):
    clock = manual_clock()
    batcher = Batcher(max_wait=10, input_key="item", clock=clock)
    got = collect(batcher)["output"]
    send(batcher, "a")
    clock.now[0] = 9.9
    send(batcher, "b")
    assert got == []
    clock.now[0] = 10.0  # the open batch (opened at 0) is now 10 s old
    send(batcher, "c")
    assert got == [{"batch": ["a", "b"], "count": 2, "reason": "time"}]
    assert batcher.pending == ["c"]
    clock.now[0] = 15.0
    send(batcher, "d")
    assert batcher.pending == ["c", "d"]


def test_size_and_time_together(collect):
    clock = manual_clock()
    batcher = Batcher(batch_size=3, max_wait=5, input_key="item", clock=clock)
    got = collect(batcher)["output"]
    send(batcher, 1, 2, 3)
    clock.now[0] = 1
    send(batcher, 4)
    clock.now[0] = 7
    send(batcher, 5)
    assert [(o["batch"], o["reason"]) for o in got] == [([1, 2, 3], "size"), ([4], "time")]


def test_batch_size_one_emits_every_item(collect):
    batcher = Batcher(batch_size=1, input_key="item")
    got = collect(batcher)["output"]
    send(batcher, "x", "y")
    assert [o["batch"] for o in got] == [["x"], ["y"]]


def test_needs_size_or_time():
    with pytest.raises(ConfigurationError, match="batch_size and/or max_wait"):
        Batcher().get_slot("input").receive({"x": 1})


def test_missing_input_key_is_explained():
    with pytest.raises(ValueError, match=r"reads the 'item' key.*\['value'\]"):
        Batcher(batch_size=2, input_key="item").get_slot("input").receive({"value": 1})


def test_reset_drops_the_open_batch(collect):
    batcher = Batcher(batch_size=3, input_key="item")
    got = collect(batcher)["output"]
    send(batcher, 1, 2)
    batcher.reset()
    send(batcher, 3, 4, 5)
    assert got == [{"batch": [3, 4, 5], "count": 3, "reason": "size"}]


def test_pending_items_and_clock_survive_cloudpickle(collect):
    batcher = Batcher(batch_size=3, max_wait=100, input_key="item", clock=ticking_clock(1.0))
    send(batcher, "a", "b")
    copy = cloudpickle.loads(cloudpickle.dumps(batcher))
    got = collect(copy)["output"]
    send(copy, "c")
    assert got == [{"batch": ["a", "b", "c"], "count": 3, "reason": "size"}]
    assert batcher.pending == ["a", "b"]  # the original is untouched


def test_no_thread_or_timer_is_started(no_thread_leak):
    batcher = Batcher(max_wait=0.01, input_key="item")
    send(batcher, 1)


def test_in_a_flow_by_size_with_flush_at_the_end(flow_runner):
    run = flow_runner.run(
        Batcher(batch_size=2, input_key="item"),
        [{"item": i} for i in range(5)],
        done_to="flush",
    )
    assert run.events["output"] == [
        {"batch": [0, 1], "count": 2, "reason": "size"},
        {"batch": [2, 3], "count": 2, "reason": "size"},
        {"batch": [4], "count": 1, "reason": "flush"},
    ]
    assert run.routine.pending == []
    assert run.routine.stats() == {"batches": 3}


def test_in_a_flow_by_time(flow_runner):
    # the clock advances 1 s per reading: items arrive at t = 1, 2, 3, 4, 5
    batcher = Batcher(max_wait=2, input_key="item", clock=ticking_clock(1.0))
    run = flow_runner.run(batcher, [{"item": i} for i in "abcde"], done_to="flush")
    assert [(o["batch"], o["reason"]) for o in run.events["output"]] == [
        (["a", "b"], "time"),
        (["c", "d"], "time"),
        (["e"], "flush"),
    ]


def test_buffer_is_kept_between_jobs(make_flow, execution):
    flow = make_flow()
    collector = Sink("input")
    flow.add_routine(Batcher(batch_size=2, input_key="item"), "batcher", execution=execution)
    flow.add_routine(collector, "sink")
    flow.connect("batcher", "output", "sink", "input")
    first = flow.execute("batcher", {"item": 1}, entry_slot="input", timeout=30)
    assert first.status == "completed"
    assert flow.routines["batcher"].pending == [1]
    second = flow.execute("batcher", {"item": 2}, entry_slot="input", timeout=30)
    assert second.status == "completed"
    assert flow.routines["batcher"].pending == []
    assert flow.routines["batcher"].stats() == {"batches": 1}
    assert collector.calls == [{"batch": [1, 2], "count": 2, "reason": "size"}]
