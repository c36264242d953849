from __future__ import annotations

import cloudpickle
import pytest

from routilux.builtin_routines import Debouncer


def manual_clock():
    now = [0.0]

    def clock() -> float:
        return now[0]

    clock.now = now  # type: ignore[attr-defined]
    return clock


def ticking_clock(*times: float):
    """Returns the given readings in turn (picklable by value)."""
    readings = list(times)

    def clock() -> float:
        return readings.pop(0)

    return clock


def feed(routine, clock, timeline):
    """``timeline``: (time, message) pairs, delivered in order."""
    for at, message in timeline:
        clock.now[0] = at
        routine.get_slot("input").receive(message)


def test_trailing_passes_the_last_message_of_each_burst(collect):
    clock = manual_clock()
    routine = Debouncer(wait=1.0, clock=clock)
    got = collect(routine)["output"]
    feed(routine, clock, [(0.0, {"v": 1}), (0.5, {"v": 2}), (1.2, {"v": 3})])
    assert got == []  # still one burst: each gap < 1 s
    feed(routine, clock, [(2.2, {"v": 4})])  # 1 s of quiet ended the burst
    assert got == [{"v": 3}]
    assert routine.held == {"v": 4}
    routine.get_slot("flush").receive({})
    assert got == [{"v": 3}, {"v": 4}]
    assert routine.held is None
    assert routine.stats() == {"suppressed": 2, "emitted": 2}


def test_flush_with_nothing_held(collect):
    routine = Debouncer()
    got = collect(routine)["output"]
    routine.get_slot("flush").receive({})
    assert got == []


def test_leading_passes_the_first_message_at_once(collect):
    clock = manual_clock()
    routine = Debouncer(wait=1.0, leading=True, clock=clock)
    got = collect(routine)["output"]
    feed(routine, clock, [(0.0, {"v": 1}), (0.9, {"v": 2}), (1.8, {"v": 3}), (3.0, {"v": 4})])
    assert got == [{"v": 1}, {"v": 4}]
    assert routine.held is None
    routine.get_slot("flush").receive({})
    assert got == [{"v": 1}, {"v": 4}]


def test_zero_wait_passes_everything(collect):
    clock = manual_clock()
    routine = Debouncer(wait=0, clock=clock)
    got = collect(routine)["output"]
    feed(routine, clock, [(0, {"v": 1}), (0, {"v": 2})])
    routine.get_slot("flush").receive({})
    assert got == [{"v": 1}, {"v": 2}]


def test_reset(collect):
    clock = manual_clock()
    routine = Debouncer(wait=1.0, clock=clock)
    got = collect(routine)["output"]
    feed(routine, clock, [(0, {"v": 1})])
    routine.reset()
    feed(routine, clock, [(0.1, {"v": 2})])
    routine.get_slot("flush").receive({})
    assert got == [{"v": 2}]


def test_reserved_keys_are_refused():
    with pytest.raises(ValueError, match="reserves them"):
        Debouncer().get_slot("input").receive({"flow": 1})


def test_held_message_and_clock_survive_cloudpickle(collect):
    routine = Debouncer(wait=1.0, clock=ticking_clock(0.0, 5.0))
    routine.get_slot("input").receive({"v": 1})
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    got = collect(copy)["output"]
    copy.get_slot("input").receive({"v": 2})
    assert got == [{"v": 1}]


def test_in_a_flow(flow_runner):
    # readings: bursts {1, 2} and {3}; then the done message flushes the held one
    routine = Debouncer(wait=1.0, clock=ticking_clock(0.0, 0.5, 2.0))
    run = flow_runner.run(routine, [{"v": 1}, {"v": 2}, {"v": 3}], done_to="flush")
    assert run.events["output"] == [{"v": 2}, {"v": 3}]
    assert run.routine.stats() == {"suppressed": 1, "emitted": 2}
