"""A job's history is pickled chunk by chunk across cuts, and loads back whole."""

from __future__ import annotations

import pickle

from routilux.execution_tracker import ExecutionTracker
from routilux.job_state import JobState
from routilux.runtime.job_pickle import MAX_CHUNKS, HistoryChunks, snapshot
from routilux.runtime.wire import dumps


def _history(state: JobState) -> list[tuple]:
    return [(r.routine_id, r.event_name, r.data, r.wall_time) for r in state.execution_history]


def _roundtrip(state: JobState, chunks: HistoryChunks) -> JobState:
    return pickle.loads(dumps({"state": snapshot(state, chunks)}))["state"]


def _job(limit: int = 10_000) -> JobState:
    state = JobState("flow", "job-1")
    state.history_limit = limit
    state.entry = {"routine": "a", "slot": "trigger", "params": {"n": 3}}
    state.shared_data["k"] = [1, 2]
    return state


def test_each_cut_pickles_only_the_records_added_since_the_previous_one():
    state, chunks = _job(), HistoryChunks()
    for n in range(5):
        state.record_execution("a", "out", {"n": n})
    first = snapshot(state, chunks)
    for n in range(5, 8):
        state.record_execution("b", "out", {"n": n})
    second = snapshot(state, chunks)
    assert [c[:2] for c in second.chunks] == [(0, 5), (5, 3)]
    assert second.chunks[0] is first.chunks[0]  # the same bytes, not pickled again
    loaded = pickle.loads(dumps(second))
    assert _history(loaded) == _history(state)
    assert loaded.entry == state.entry and loaded.shared_data == {"k": [1, 2]}
    assert (loaded.job_id, loaded.status, loaded.created_at) == (
        state.job_id,
        state.status,
        state.created_at,
    )


def test_a_history_trimmed_at_the_front_loads_without_the_dropped_records():
    state, chunks = _job(limit=4), HistoryChunks()
    for n in range(6):
        state.record_execution("a", "out", {"n": n})
    snapshot(state, chunks)
    for n in range(6, 11):  # past 2 * limit: the front is trimmed
        state.record_execution("a", "out", {"n": n})
    assert state.history_dropped > 0
    loaded = _roundtrip(state, chunks)
    assert _history(loaded) == _history(state)
    assert loaded.history_dropped == state.history_dropped


def test_many_cuts_are_merged_into_one_chunk():
    state, chunks = _job(), HistoryChunks()
    for n in range(MAX_CHUNKS + 3):
        state.record_execution("a", "out", {"n": n})
        taken = snapshot(state, chunks)
        assert len(taken.chunks) <= MAX_CHUNKS
    assert _history(pickle.loads(dumps(taken))) == _history(state)


def test_a_replaced_history_is_pickled_again_from_scratch():
    state, chunks = _job(), HistoryChunks()
    for n in range(3):
        state.record_execution("a", "out", {"n": n})
    snapshot(state, chunks)
    state._history = state._history[:1]  # shorter: not an append
    state.record_execution("z", "out", {"n": 9})
    assert _history(_roundtrip(state, chunks)) == _history(state)
    state._history = list(state._history)  # same length, other records
    state._history[-1] = state._history[0]
    assert _history(_roundtrip(state, chunks)) == _history(state)


def test_the_tracker_comes_back_pointing_at_its_job():
    state = _job()
    state.execution_tracker = ExecutionTracker(state)
    state.record_execution("a", "out", {"n": 1})
    loaded = _roundtrip(state, HistoryChunks())
    assert loaded.execution_tracker.job_state is loaded
    assert _history(loaded) == _history(state)


def test_what_lives_in_main_is_pickled_by_value(monkeypatch):
    """The C pickler would refer to ``__main__.Thing``; a checkpoint must carry the
    class itself, since the recovering process's ``__main__`` is another one."""
    import sys

    from routilux.runtime.job_pickle import dumps as checkpoint_dumps

    thing = type("Thing", (), {"__module__": "__main__", "value": 7})
    monkeypatch.setattr(sys.modules["__main__"], "Thing", thing, raising=False)
    data = checkpoint_dumps({"obj": thing()})
    monkeypatch.delattr(sys.modules["__main__"], "Thing")
    assert pickle.loads(data)["obj"].value == 7
    assert pickle.loads(checkpoint_dumps({"plain": [1, "a"]})) == {"plain": [1, "a"]}


def test_a_chunk_with_cyclic_or_shared_data_loads_back_equal():
    """A chunk is one pickle of many records: a cycle in a record's data and data
    shared by records come back as they were."""
    state, chunks = _job(), HistoryChunks()
    looped: dict = {"n": 1}
    looped["self"] = looped
    shared = {"big": list(range(5))}
    state.record_execution("a", "out", looped)
    state.record_execution("a", "out", shared)
    state.record_execution("b", "out", shared)
    loaded = _roundtrip(state, chunks)
    records = loaded.execution_history
    assert records[0].data["self"] is records[0].data  # the cycle survived
    assert records[1].data == records[2].data == shared
    assert [r.wall_time for r in records] == [r.wall_time for r in state.execution_history]
    assert all(type(r.wall_time) is float for r in records)


def test_a_record_time_set_by_hand_to_none_does_not_fail_the_cut():
    state, chunks = _job(), HistoryChunks()
    state.record_execution("a", "out", {"n": 1})
    state.record_execution("a", "out", {"n": 2})
    state._history[0].wall_time = None  # set by hand: not a number
    loaded = _roundtrip(state, chunks)
    assert [r.data for r in loaded.execution_history] == [{"n": 1}, {"n": 2}]
